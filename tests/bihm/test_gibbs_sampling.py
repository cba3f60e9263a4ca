r"""The BiHM Gibbs sampler against the exact p*(x, h) of an enumerable 4-3-2 net.

p*(x, h) = sqrt(p(x,h) q(h|x)) sqrt(p~*(x)) / Z^2 over all 16 x 32 states. Each test
runs n independent chains and keeps one state per chain, so the kept states are iid;
their empirical distribution's total variation (TV) from the exact one is then below
TV_BOUND(p, n) (``tests/total_variation.py``) except with probability FALSE_ALARM. What is
left is the chains' distance from stationarity, zero when they start from p* itself
(the invariance tests).
"""

from __future__ import annotations

import pyro
import pytest
import torch

from pyro_dgm.bihm import gibbs_sampling
from pyro_dgm.bihm.gibbs_sampling import (
    GibbsState,
    initial_state_from_guide,
    inpaint,
    run_gibbs,
    sample_p_star,
    unnormalized_log_p_star,
    update_latent_layer,
    update_visible_layer,
)
from pyro_dgm.infer.estimators.exact import all_binary_configurations
from pyro_dgm.models.sbn_guides import BottomUpGuide
from tests.infer.exact_expectations import exact_log_terms
from tests.infer.small_models import tiny_bihm
from tests.total_variation import (
    binary_codes,
    code_frequencies,
    total_variation,
    total_variation_threshold,
)

FALSE_ALARM = 1e-4
"""Probability that a correct sampler fails one TV check (McDiarmid)."""

NUM_CHAINS = 20_000
"""Independent chains, one kept state each."""

NUM_SWEEPS = 8
"""Burn-in from p: the x-marginal TV reaches its noise floor after about 5 sweeps."""

NUM_CANDIDATES = 4
NUM_INNER = 4

NUM_PIXELS, NUM_LATENT_BITS = 4, 5


def tv_bound(probabilities: torch.Tensor, num_samples: int) -> float:
    return total_variation_threshold(probabilities, num_samples, FALSE_ALARM)


def code_total_variation(codes: torch.Tensor, probabilities: torch.Tensor) -> float:
    """TV of the states' frequencies among ``codes`` from ``probabilities``."""
    return total_variation(code_frequencies(codes, probabilities.numel()), probabilities)


def state_code(x: torch.Tensor, latents: list[torch.Tensor]) -> torch.Tensor:
    return binary_codes(x) * 2**NUM_LATENT_BITS + binary_codes(torch.cat(latents, dim=-1))


def exact_log_p_star(model, guide) -> torch.Tensor:
    """log p*(x, h), shape (16, 32): rows x codes, columns h = (h1, h2) codes."""
    log_p, log_q = exact_log_terms(model, guide)
    log_root = 0.5 * (log_p + log_q)
    log_bound = 2 * torch.logsumexp(log_root, dim=1, keepdim=True)  # log p~*(x), Eq. 1
    return log_root + 0.5 * log_bound - torch.logsumexp(log_bound, dim=0)


def decode(codes: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, list[torch.Tensor]]:
    bits = all_binary_configurations(NUM_PIXELS + NUM_LATENT_BITS, dtype=dtype)[codes]
    return bits[:, :NUM_PIXELS], [bits[:, NUM_PIXELS : NUM_PIXELS + 3], bits[:, NUM_PIXELS + 3 :]]


def test_the_checks_can_tell_p_star_from_its_neighbours():
    """Chains sampling p(x, h), or sqrt(p q) without the sqrt(p~*(x)) factor, would fail the TV checks.

    Their empirical TV from p* would exceed TV(wrong, p*) - TV_BOUND(wrong) (the
    triangle inequality), which is above TV_BOUND(p*), on the joint and on x alone.
    """
    model, guide = tiny_bihm()
    log_p, log_q = exact_log_terms(model, guide)
    exact = exact_log_p_star(model, guide).exp()
    for wrong in (log_p.exp(), torch.softmax(0.5 * (log_p + log_q).flatten(), dim=0).view_as(exact)):
        for reduce in (torch.flatten, lambda table: table.sum(dim=1)):  # joint, x-marginal
            distance = total_variation(reduce(wrong), reduce(exact))
            assert distance > tv_bound(reduce(exact), NUM_CHAINS) + tv_bound(reduce(wrong), NUM_CHAINS)


@pytest.mark.parametrize("num_candidates", [1, NUM_CANDIDATES])
def test_latent_updates_leave_p_star_invariant(num_candidates):
    """Chains drawn from the exact p*, then h1 and h2 updated: still exactly p* (no burn-in)."""
    model, guide = tiny_bihm()
    exact = exact_log_p_star(model, guide).exp().flatten()
    generator = torch.Generator().manual_seed(7)
    codes = torch.multinomial(exact, NUM_CHAINS, replacement=True, generator=generator)
    x, latents = decode(codes, exact.dtype)
    layers = [x, *latents]
    with torch.no_grad():
        for layer in (1, 2):  # odd, then even
            layers[layer] = update_latent_layer(model, guide, layers, layer, num_candidates)
    assert not torch.equal(layers[1], latents[0])  # the chains moved
    distance = code_total_variation(state_code(layers[0], layers[1:]), exact)
    assert distance < tv_bound(exact, NUM_CHAINS)


@pytest.mark.slow
def test_chains_from_p_converge_to_p_star():
    model, guide = tiny_bihm()
    exact = exact_log_p_star(model, guide).exp()
    state = sample_p_star(
        model, guide, NUM_CHAINS, NUM_SWEEPS, num_candidates=NUM_CANDIDATES, num_inner=NUM_INNER
    )
    joint_codes = state_code(state.x, state.latents)
    joint = exact.flatten()
    assert code_total_variation(joint_codes, joint) < tv_bound(joint, NUM_CHAINS)
    marginal = exact.sum(dim=1)
    assert code_total_variation(binary_codes(state.x), marginal) < tv_bound(marginal, NUM_CHAINS)


@pytest.mark.slow
def test_inpainting_samples_the_exact_conditional():
    """Pixels 0 and 2 clamped to (1, 0): (x1, x3, h) ~ p*(x_mis, h | x_obs)."""
    model, guide = tiny_bihm()
    observed = torch.tensor([True, False, True, False])
    clamped = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # missing pixels start at 0
    pixel_codes = all_binary_configurations(NUM_PIXELS, dtype=torch.float64)
    consistent = (pixel_codes[:, observed] == clamped[observed]).all(dim=1)
    conditional = exact_log_p_star(model, guide).exp()[consistent]  # rows: x1, x3 in code order
    conditional = (conditional / conditional.sum()).flatten()
    state = inpaint(
        model,
        guide,
        clamped.expand(NUM_CHAINS, -1).clone(),
        observed,
        NUM_SWEEPS,
        num_candidates=NUM_CANDIDATES,
        num_inner=NUM_INNER,
    )
    assert torch.equal(state.x[:, observed], clamped[observed].expand(NUM_CHAINS, -1))
    missing_code = binary_codes(state.x[:, ~observed])
    codes = missing_code * 2**NUM_LATENT_BITS + binary_codes(torch.cat(state.latents, dim=-1))
    assert code_total_variation(codes, conditional) < tv_bound(conditional, NUM_CHAINS)


def test_unnormalized_log_p_star_is_p_star_up_to_its_constant():
    """With the exact sqrt(p~*(x)) as the auxiliary value, it is log p*(x, h) + 2 log Z at every state."""
    model, guide = tiny_bihm()
    exact = exact_log_p_star(model, guide)
    log_p, log_q = exact_log_terms(model, guide)
    log_sqrt_bound = torch.logsumexp(0.5 * (log_p + log_q), dim=1)  # log sqrt(p~*(x)), Eq. 1
    codes = torch.arange(exact.numel())
    x, latents = decode(codes, exact.dtype)
    state = GibbsState(x, latents, log_sqrt_bound[codes // 2**NUM_LATENT_BITS])
    log_target = unnormalized_log_p_star(model, guide, state)
    constant = log_target - exact.flatten()
    torch.testing.assert_close(constant, constant.mean().expand_as(constant))
    torch.testing.assert_close(constant.mean(), torch.logsumexp(2 * log_sqrt_bound, dim=0))  # log Z^2 = log sum_x p~*(x)


def test_state_shapes_and_zero_sweeps():
    model, guide = tiny_bihm()
    x = torch.zeros(5, NUM_PIXELS, dtype=torch.float64)
    state = initial_state_from_guide(model, guide, x, num_inner=2)
    assert [h.shape for h in state.latents] == [(5, 3), (5, 2)] and state.log_sqrt_bound.shape == (5,)
    assert run_gibbs(model, guide, state, 0) is state
    moved = run_gibbs(model, guide, state, 2, num_candidates=2, num_inner=2)
    assert isinstance(moved, GibbsState) and moved.x.shape == x.shape


def test_rejects_bad_arguments():
    model, guide = tiny_bihm()
    x = torch.zeros(2, NUM_PIXELS, dtype=torch.float64)
    state = initial_state_from_guide(model, guide, x, num_inner=2)
    with pytest.raises(ValueError, match="num_candidates"):
        run_gibbs(model, guide, state, 1, num_candidates=0)
    with pytest.raises(ValueError, match="num_sweeps"):
        run_gibbs(model, guide, state, -1)
    with pytest.raises(ValueError, match="bool"):
        inpaint(model, guide, x, torch.ones(NUM_PIXELS), 1)
    with pytest.raises(ValueError, match="broadcast"):
        inpaint(model, guide, x, torch.ones(3, dtype=torch.bool), 1)
    with pytest.raises(ValueError, match="layer sizes differ"):
        sample_p_star(model, BottomUpGuide([4, 3, 3]).double(), 2, 1)
    pyro.clear_param_store()


# ----- one update at a time, from its exact full conditional: small state spaces, high power -----

CONDITIONAL_X_CODE, CONDITIONAL_H2_CODE = 9, 2
"""The (x, h2) at which the h1 test runs: where leaving q(h2 | h1) out moves p*(h1 | x, h2) most (TV 0.24)."""
CONDITIONAL_H_CODE = 20
"""The h = (h1, h2) at which the x test runs: where leaving out sqrt(p~*(x)) or q(h1 | x) moves p*(x | h) most."""


def _log_sqrt_joint(model, guide) -> torch.Tensor:
    """log sqrt(p(x, h) q(h | x)), shape (16, 32): rows x codes, columns h = (h1, h2) codes."""
    log_p, log_q = exact_log_terms(model, guide)
    return 0.5 * (log_p + log_q)


def _bernoulli_log_prob(logits: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return torch.distributions.Bernoulli(logits=logits).log_prob(value).sum(-1)


def _assert_distinguishable(wrong: torch.Tensor, exact: torch.Tensor) -> None:
    """A sampler of ``wrong`` fails the TV check against ``exact`` but for probability FALSE_ALARM."""
    assert total_variation(wrong, exact) > tv_bound(exact, NUM_CHAINS) + tv_bound(wrong, NUM_CHAINS)


def test_h1_update_samples_its_exact_full_conditional():
    """x and h2 fixed, h1 drawn from p*(h1 | x, h2) over its 8 states: one update keeps exactly that law.

    p*(h1 | x, h2) is proportional to sqrt(p(h1 | h2) p(x | h1) q(h1 | x) q(h2 | h1)); the
    same conditional without q(h2 | h1) (the factor from the layer above) is asserted to be
    told apart by the check.
    """
    model, guide = tiny_bihm()
    h1_states = all_binary_configurations(3, dtype=torch.float64)
    h2 = all_binary_configurations(2, dtype=torch.float64)[CONDITIONAL_H2_CODE]
    columns = torch.arange(8) * 4 + CONDITIONAL_H2_CODE  # h code = h1 code * 4 + h2 code
    log_target = _log_sqrt_joint(model, guide)[CONDITIONAL_X_CODE, columns]
    exact = torch.softmax(log_target, dim=0)
    with torch.no_grad():
        log_q_above = _bernoulli_log_prob(guide.conditionals[1].logits(h1_states), h2)
    _assert_distinguishable(torch.softmax(log_target - 0.5 * log_q_above, dim=0), exact)

    generator = torch.Generator().manual_seed(11)
    start = torch.multinomial(exact, NUM_CHAINS, replacement=True, generator=generator)
    x = all_binary_configurations(NUM_PIXELS, dtype=torch.float64)[CONDITIONAL_X_CODE]
    layers = [x.expand(NUM_CHAINS, -1), h1_states[start], h2.expand(NUM_CHAINS, -1)]
    pyro.set_rng_seed(11)
    with torch.no_grad():
        new_h1 = update_latent_layer(model, guide, layers, 1, NUM_CANDIDATES)
    assert (binary_codes(new_h1) != start).any()  # the chains moved
    assert code_total_variation(binary_codes(new_h1), exact) < tv_bound(exact, NUM_CHAINS)


def test_x_update_samples_its_exact_full_conditional(monkeypatch):
    """h fixed, x drawn from p*(x | h) over its 16 states: one x update keeps exactly that law.

    p*(x | h) is proportional to sqrt(p(x | h1) q(h1 | x)) sqrt(p~*(x)). The pseudo-marginal
    estimate of sqrt(p~*(x)) is replaced by its exact value (enumerated), for the current x
    and every candidate, so the step is an exact conditional importance resampling step;
    the law without sqrt(p~*(x)), and without q(h1 | x), are asserted to be told apart.
    """
    model, guide = tiny_bihm()
    log_sqrt_joint = _log_sqrt_joint(model, guide)
    log_sqrt_bound = torch.logsumexp(log_sqrt_joint, dim=1)  # log sqrt(p~*(x)), Eq. 1
    monkeypatch.setattr(
        gibbs_sampling, "estimate_log_sqrt_bound", lambda model, guide, x, num_inner: log_sqrt_bound[binary_codes(x)]
    )
    x_states = all_binary_configurations(NUM_PIXELS, dtype=torch.float64)
    h = all_binary_configurations(NUM_LATENT_BITS, dtype=torch.float64)[CONDITIONAL_H_CODE]
    h1, h2 = h[:3], h[3:]
    exact = torch.softmax(log_sqrt_joint[:, CONDITIONAL_H_CODE] + log_sqrt_bound, dim=0)
    with torch.no_grad():
        log_q_first = _bernoulli_log_prob(guide.conditionals[0].logits(x_states), h1)
    _assert_distinguishable(torch.softmax(log_sqrt_joint[:, CONDITIONAL_H_CODE], dim=0), exact)
    _assert_distinguishable(
        torch.softmax(log_sqrt_joint[:, CONDITIONAL_H_CODE] + log_sqrt_bound - 0.5 * log_q_first, dim=0), exact
    )

    generator = torch.Generator().manual_seed(13)
    start = torch.multinomial(exact, NUM_CHAINS, replacement=True, generator=generator)
    state = GibbsState(x_states[start], [h1.expand(NUM_CHAINS, -1), h2.expand(NUM_CHAINS, -1)], log_sqrt_bound[start])
    pyro.set_rng_seed(13)
    with torch.no_grad():
        new_x, new_log_sqrt_bound = update_visible_layer(model, guide, state, NUM_CANDIDATES, NUM_INNER)
    codes = binary_codes(new_x)
    assert (codes != start).any()
    assert torch.equal(new_log_sqrt_bound, log_sqrt_bound[codes])  # each x keeps its own estimate
    assert code_total_variation(codes, exact) < tv_bound(exact, NUM_CHAINS)

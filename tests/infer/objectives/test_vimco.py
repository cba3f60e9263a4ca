"""VIMCO against the exact gradient of the K-sample bound, enumerated over K-tuples.

For K = 2 or 3, E_q[L_K] is a finite sum over the 32^K tuples of TinySBN's latent
configurations; autograd through it (the tuple probabilities included) is the exact
gradient VIMCO estimates without bias. Helpers are shared with ``test_rws.py``.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import RenyiELBO

from pyro_dgm.infer.importance import log_mean_exp
from pyro_dgm.infer.objectives.vimco import VIMCO, leave_one_out_bounds
from tests.infer.exact_expectations import ExactKSample, exact_particles
from tests.infer.gradients import flat_gradient
from tests.infer.monte_carlo_checks import NUM_STANDARD_ERRORS, grouped_replicate_gradients, replicate_gradients
from tests.infer.small_models import SUBSAMPLE_FACTOR, TinySBN
from tests.infer.training_checks import assert_svi_improves_the_exact_likelihood

FINITE_DIFFERENCE_STEP = 1e-5
FINITE_DIFFERENCE_TOLERANCE = 1e-7
"""Central differences in float64: error O(step^2) ~ 1e-10 plus rounding ~ 1e-11 / step."""


def exact_bound_gradient(sbn: TinySBN, data: torch.Tensor, num_particles: int) -> torch.Tensor:
    """Exact ∇ sum_b E[L_K(x_b)] over all of TinySBN's parameters."""
    expected = ExactKSample.of(exact_particles(sbn, data), num_particles).expected_bound()
    return flat_gradient(expected.sum(), list(sbn.parameters()))


def test_exact_ground_truth_matches_finite_differences(sbn, data):
    """The enumerated ∇E[L_2] itself, checked against central differences."""
    num_particles = 2
    params = list(sbn.parameters())
    analytic = exact_bound_gradient(sbn, data, num_particles)

    def expected_bound() -> float:
        with torch.no_grad():
            return (
                ExactKSample.of(exact_particles(sbn, data), num_particles)
                .expected_bound()
                .sum()
                .item()
            )

    numeric = []
    with torch.no_grad():
        for param in params:
            flat = param.view(-1)
            for i in range(flat.numel()):
                flat[i] += FINITE_DIFFERENCE_STEP
                upper = expected_bound()
                flat[i] -= 2 * FINITE_DIFFERENCE_STEP
                lower = expected_bound()
                flat[i] += FINITE_DIFFERENCE_STEP
                numeric.append((upper - lower) / (2 * FINITE_DIFFERENCE_STEP))
    assert torch.allclose(
        analytic,
        torch.tensor(numeric, dtype=torch.float64),
        atol=FINITE_DIFFERENCE_TOLERANCE,
        rtol=0,
    )


@pytest.mark.parametrize(
    "num_particles, leave_one_out, num_replicates",
    [(2, "geometric", 8000), (3, "geometric", 4000), (3, "arithmetic", 4000)],
)
def test_gradient_matches_exact_gradient_of_the_bound(
    sbn, data, num_particles, leave_one_out, num_replicates
):
    params = list(sbn.parameters())
    exact = -exact_bound_gradient(sbn, data, num_particles)  # of the loss
    objective = VIMCO(num_particles=num_particles, leave_one_out=leave_one_out)
    terms = objective.terms(sbn.model, sbn.guide, data.repeat(num_replicates, 1))
    replicate_gradients(terms.surrogate, params).assert_matches(exact)


def test_without_score_term_the_guide_gradient_is_wrong(sbn, data):
    """The pathwise part alone is biased (RenyiELBO(alpha=0) on discrete guides, issue #3289)."""
    num_particles, num_replicates = 3, 4000
    guide_params = sbn.guide_parameters()
    exact = -flat_gradient(
        ExactKSample.of(exact_particles(sbn, data), num_particles).expected_bound().sum(),
        guide_params,
    )
    particles = VIMCO(num_particles=num_particles).weighted_particles(
        sbn.model, sbn.guide, data.repeat(num_replicates, 1)
    )
    no_score = -log_mean_exp(particles.log_weights, dim=0)
    assert (
        replicate_gradients(no_score, guide_params).z_scores(exact).max() > 2 * NUM_STANDARD_ERRORS
    )


@pytest.mark.parametrize("num_data_factor", [None, SUBSAMPLE_FACTOR])
def test_loss_is_minus_the_expected_bound(sbn, data, num_data_factor):
    num_particles, num_replicates = 3, 2000
    template = data.repeat(num_replicates, 1)
    num_data = None if num_data_factor is None else num_data_factor * template.size(0)
    scale = 1.0 if num_data_factor is None else float(num_data_factor)
    loss = VIMCO(num_particles=num_particles).loss(sbn.model, sbn.guide, template, num_data)
    exact = ExactKSample.of(exact_particles(sbn, data), num_particles)
    with torch.no_grad():
        expected = -scale * num_replicates * exact.expected_bound().sum().item()
        standard_error = scale * math.sqrt(num_replicates * exact.variance_of_bound().sum().item())
    assert abs(loss - expected) < NUM_STANDARD_ERRORS * standard_error


def reference_leave_one_out(log_weights: torch.Tensor, mean: str) -> torch.Tensor:
    """Eq. (3) written out, one k at a time (reference only)."""
    num_particles = log_weights.size(0)
    rows = []
    for k in range(num_particles):
        others = torch.cat([log_weights[:k], log_weights[k + 1 :]])
        if mean == "geometric":
            replacement = others.mean(0)
        else:
            replacement = torch.logsumexp(others, 0) - math.log(num_particles - 1)
        rows.append(log_mean_exp(torch.cat([others, replacement.unsqueeze(0)]), dim=0))
    return torch.stack(rows)


@pytest.mark.parametrize("mean", ["geometric", "arithmetic"])
def test_leave_one_out_bounds(mean):
    log_weights = torch.randn(5, 4, dtype=torch.float64) * 3
    log_weights[0, 0] = 400.0  # one weight dominating by e^400: no cancellation, no NaN
    result = leave_one_out_bounds(log_weights, mean)
    assert torch.allclose(result, reference_leave_one_out(log_weights, mean))
    two = log_weights[:2]  # K = 2: the baseline of sample k is the other sample's weight
    assert torch.allclose(leave_one_out_bounds(two, mean), two.flip(0))


# ------------------------------------------------------------------ reparameterised sites


class GaussianLatent:
    """z ~ N(mu, 1), x ~ N(z, 1) per point; guide N(a x + c, exp(log_s)): all reparameterised."""

    initial = {"mu": 0.3, "a": 0.1, "c": -0.2, "log_s": 0.4}

    def params(self) -> list[torch.Tensor]:
        return [
            pyro.param(name, torch.tensor(value, dtype=torch.float64))
            for name, value in self.initial.items()
        ]

    def model(self, x: torch.Tensor) -> None:
        mu = pyro.param("mu", torch.tensor(self.initial["mu"], dtype=torch.float64))
        with pyro.plate("data", x.size(0)):
            z = pyro.sample("z", dist.Normal(mu, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def guide(self, x: torch.Tensor) -> None:
        a, c, log_s = (
            pyro.param(n, torch.tensor(self.initial[n], dtype=torch.float64))
            for n in ("a", "c", "log_s")
        )
        with pyro.plate("data", x.size(0)):
            pyro.sample("z", dist.Normal(a * x + c, log_s.exp()))


def test_reparameterized_guide_matches_pyro_iwae_on_one_data_point():
    """rsample sites get the pathwise gradient and no score term: on one data point (where
    Pyro's per-minibatch weight is per point) the same samples give RenyiELBO(alpha=0)'s
    gradient exactly."""
    gaussian = GaussianLatent()
    params = gaussian.params()
    x = torch.tensor([1.5], dtype=torch.float64)
    num_particles = 5
    pyro.set_rng_seed(3)
    loss = VIMCO(num_particles=num_particles, max_plate_nesting=1).differentiable_loss(
        gaussian.model, gaussian.guide, x
    )
    ours = torch.stack(torch.autograd.grad(loss, params))
    pyro.set_rng_seed(3)
    reference_loss = RenyiELBO(
        alpha=0, num_particles=num_particles, vectorize_particles=True, max_plate_nesting=1
    ).loss_and_grads(gaussian.model, gaussian.guide, x)
    reference = torch.stack([p.grad for p in params])
    assert loss.item() == pytest.approx(reference_loss)
    assert ours.abs().min() > 0
    assert torch.allclose(ours, reference)


# ----------------------------------------------------------------------------- errors, SVI


def test_guide_with_a_misnamed_site_is_named(sbn, data):
    def guide_with_typo(x, num_data=None):
        pyro.module(sbn.name, sbn)
        with pyro.plate("data", x.size(0)):
            h1 = pyro.sample(
                "h1", dist.Bernoulli(logits=x @ sbn.q1_weight + sbn.q1_bias).to_event(1)
            )
            pyro.sample("h_2", dist.Bernoulli(logits=h1 @ sbn.q2_weight + sbn.q2_bias).to_event(1))

    with pytest.raises(ValueError, match="'h2'"):
        VIMCO(num_particles=3).loss(sbn.model, guide_with_typo, data)


@pytest.mark.parametrize("bad", [{"num_particles": 1}, {"leave_one_out": "harmonic"}])
def test_invalid_arguments(bad):
    with pytest.raises(ValueError):
        VIMCO(**bad)


def test_svi_training_improves_the_exact_likelihood():
    objective = VIMCO(num_particles=10)
    assert_svi_improves_the_exact_likelihood(objective)
    assert 1.0 <= objective.last_effective_sample_size <= 10


def test_leave_one_out_baseline_lowers_the_guide_gradient_variance_below_reinforce(sbn, data):
    """VIMCO's learning signal L - L^{-k} (Eq. 2-3) against plain REINFORCE's L, on the same draws.

    Both estimators are unbiased for the exact gradient of E[L_K] (enumerated), so their
    mean squared error around it is their variance. Per replicate r (one copy of the
    minibatch), d_r = |g_REINFORCE,r - g|^2 - |g_VIMCO,r - g|^2 over the guide's
    parameters; the baseline must make mean(d) exceed NUM_STANDARD_ERRORS standard errors.
    Replacing the baseline by the plain bound (REINFORCE) gives d = 0 exactly.
    """
    num_particles, num_replicates, seed = 3, 200, 7
    guide_params = sbn.guide_parameters()
    exact = -flat_gradient(
        ExactKSample.of(exact_particles(sbn, data), num_particles).expected_bound().sum(), guide_params
    )
    objective = VIMCO(num_particles=num_particles, max_plate_nesting=1)  # stated: a guess would draw numbers
    replicated = data.repeat(num_replicates, 1)

    pyro.set_rng_seed(seed)
    vimco = objective.terms(sbn.model, sbn.guide, replicated).surrogate
    pyro.set_rng_seed(seed)  # the same particles
    particles = objective.weighted_particles(sbn.model, sbn.guide, replicated)
    bound = log_mean_exp(particles.log_weights, dim=0)  # Eq. (1)
    score = (bound.detach() * particles.guide_log_prob).sum(0)  # REINFORCE: the bound as learning signal
    reinforce = -(bound + score - score.detach())

    def squared_errors(surrogate):
        per_replicate = grouped_replicate_gradients(surrogate, guide_params, num_groups=num_replicates)
        return ((per_replicate - exact) ** 2).sum(1)

    difference = squared_errors(reinforce) - squared_errors(vimco)
    standard_error = difference.std() / math.sqrt(num_replicates)
    assert difference.mean() > NUM_STANDARD_ERRORS * standard_error, (difference.mean(), standard_error)

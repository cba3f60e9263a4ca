"""Block Gibbs, persistent chains and the log-Z surrogate against the exact law of the chain."""

import math

import pytest
import torch

import pyro_dgm.distributions.rbm as rbm_module
from pyro_dgm.distributions.gibbs import PersistentChains, block_gibbs, log_partition_surrogate
from pyro_dgm.distributions.rbm import MAX_ENUMERATED_UNITS, RBM
from pyro_dgm.infer.estimators.exact import all_binary_configurations
from tests.distributions.rbm_brute_force import brute_force_probabilities
from tests.total_variation import (
    empirical_probabilities,
    total_variation,
    total_variation_threshold,
)

NUM_CHAINS = 20_000
"""Independent chains per sampling test, one draw each: TV threshold ~0.045 on 64 states
(``total_variation_threshold``: a correct sampler fails with probability <= 1e-6)."""

STANDARD_ERRORS = 4.0
"""A Monte Carlo mean is accepted within 4 standard errors (two-sided p ~ 6e-5 per component)."""

N1, N2 = 3, 3
"""The sampling tests' RBM: 64 states, small enough for the exact law of every chain."""


def strongly_coupled_parameters(scale=1.5):
    """Random 3+3 RBM parameters; with scale 1.5 Gibbs needs several sweeps to mix."""
    return (
        scale * torch.randn(N1, dtype=torch.float64),
        scale * torch.randn(N2, dtype=torch.float64),
        scale * torch.randn(N1, N2, dtype=torch.float64),
    )


def exact_joint(bias1, bias2, weight):
    """p(z1, z2) from the definition, as a (2^n1, 2^n2) table (most significant bit first)."""
    _, probs = brute_force_probabilities(bias1, bias2, weight)
    return probs.reshape(2 ** bias1.size(-1), 2 ** bias2.size(-1))


def exact_law_after_sweeps(joint, num_sweeps):
    r"""Law of (z1, z2) after ``num_sweeps`` sweeps from uniform z1, flattened z1-major.

    With :math:`\pi_0` uniform and the sweep kernel
    :math:`T(z_1, z_1') = \sum_{z_2} p(z_2 \mid z_1)\, p(z_1' \mid z_2)`, the last sweep
    draws :math:`z_2` from :math:`\pi_{k-1} P_{2|1}` then :math:`z_1` given it.
    """
    given1 = joint / joint.sum(1, keepdim=True)  # p(z2 | z1), rows z1
    given2 = joint / joint.sum(0, keepdim=True)  # p(z1 | z2), columns z2
    marginal1 = torch.full((joint.size(0),), 1.0 / joint.size(0), dtype=joint.dtype)
    for _ in range(num_sweeps - 1):
        marginal1 = (marginal1 @ given1) @ given2.T
    return ((marginal1 @ given1)[None, :] * given2).flatten()


def uniform_bits(*shape):
    return torch.randint(0, 2, shape).double()


# ----- block Gibbs -------------------------------------------------------------------------


@pytest.mark.parametrize("num_sweeps", [1, 2, 50])
def test_block_gibbs_follows_the_exact_law_of_the_chain(num_sweeps):
    """One draw per independent chain; the law after k sweeps is computed exactly."""
    bias1, bias2, weight = strongly_coupled_parameters()
    rbm = RBM(bias1, bias2, weight)
    joint = exact_joint(bias1, bias2, weight)
    law = exact_law_after_sweeps(joint, num_sweeps)
    z1, z2 = block_gibbs(rbm, uniform_bits(NUM_CHAINS, N1), num_sweeps)
    frequencies = empirical_probabilities(torch.cat([z1, z2], -1))
    threshold = total_variation_threshold(law, NUM_CHAINS)
    assert total_variation(frequencies, law) < threshold
    stationary = joint.flatten()
    if num_sweeps == 1:  # power: after one sweep the chain is measurably off p ...
        assert total_variation(frequencies, stationary) > threshold
    if num_sweeps == 50:  # ... and after 50 it has mixed to within 1e-6 of p
        assert total_variation(law, stationary) < 1e-6


def test_block_gibbs_shapes_batched_and_detached():
    bias1 = torch.randn(2, N1, requires_grad=True)
    rbm = RBM(bias1, torch.randn(N2), torch.randn(N1, N2))
    z1, z2 = block_gibbs(rbm, torch.zeros(5, 2, N1), 3)
    assert z1.shape == (5, 2, N1) and z2.shape == (5, 2, N2)
    assert not z1.requires_grad and not z2.requires_grad
    assert z1.dtype == torch.float32


def test_block_gibbs_draws_what_the_conditionals_draw():
    """Only the starting states are validated; each unit is drawn as 1[u < p] with p the conditional's probability."""
    rbm = RBM(*strongly_coupled_parameters(), validate_args=True)
    start = uniform_bits(50, N1)
    torch.manual_seed(1)
    z1, z2 = block_gibbs(rbm, start, 5)
    torch.manual_seed(1)
    expected1 = start
    for _ in range(5):
        probs2 = rbm.conditional2(expected1).base_dist.probs
        expected2 = (torch.rand_like(probs2) < probs2).double()
        probs1 = rbm.conditional1(expected2).base_dist.probs
        expected1 = (torch.rand_like(probs1) < probs1).double()
    assert torch.equal(z1, expected1) and torch.equal(z2, expected2)


@pytest.mark.parametrize("start_shape", [(5, 2, N1), (5, 1, N1)])
def test_block_gibbs_of_a_shared_rbm_draws_what_the_general_loop_draws(start_shape):
    """An RBM expanded by plates takes the preallocated-GEMM loop; the same RBM copied per batch
    element takes the general one: same seed, same draws, same shapes."""
    bias1, bias2, weight = strongly_coupled_parameters()
    shared = RBM(bias1, bias2, weight).expand((2,))
    copied = RBM(bias1.expand(2, N1).clone(), bias2.expand(2, N2).clone(), weight.expand(2, N1, N2).clone())
    start = uniform_bits(*start_shape)
    original = start.clone()
    draws = []
    for rbm in (shared, copied):
        torch.manual_seed(2)
        draws.append(block_gibbs(rbm, start, 4))
    (fast1, fast2), (general1, general2) = draws
    assert fast1.shape == general1.shape == (5, 2, N1) and fast2.shape == (5, 2, N2)
    assert torch.equal(fast1, general1) and torch.equal(fast2, general2)
    assert torch.equal(start, original)  # the caller's states are not written


def test_block_gibbs_bad_input():
    rbm = RBM(*strongly_coupled_parameters(), validate_args=True)
    with pytest.raises(ValueError, match="num_sweeps"):
        block_gibbs(rbm, uniform_bits(4, N1), 0)
    with pytest.raises(ValueError, match="z1"):
        block_gibbs(rbm, uniform_bits(4, N1 + 1), 1)
    with pytest.raises(ValueError, match="z1"):
        block_gibbs(rbm, torch.full((4, N1), 0.5, dtype=torch.float64), 1)
    with pytest.raises(ValueError, match="z1"):
        block_gibbs(rbm.expand((3,)), uniform_bits(4, 2, N1), 1)


def test_rbm_sample_falls_back_to_gibbs_when_not_enumerable(monkeypatch):
    monkeypatch.setattr(rbm_module, "MAX_ENUMERATED_UNITS", 0)
    monkeypatch.setattr(rbm_module, "DEFAULT_BURN_IN_SWEEPS", 50)  # the law is exact for any number
    bias1, bias2, weight = strongly_coupled_parameters()
    rbm = RBM(bias1, bias2, weight)
    assert not rbm.is_enumerable
    law = exact_law_after_sweeps(
        exact_joint(bias1, bias2, weight), rbm_module.DEFAULT_BURN_IN_SWEEPS
    )
    samples = rbm.sample((NUM_CHAINS,))
    assert samples.shape == (NUM_CHAINS, N1 + N2)
    assert total_variation(empirical_probabilities(samples), law) < total_variation_threshold(
        law, NUM_CHAINS
    )


def test_rbm_sample_runs_the_sweeps_it_is_given(monkeypatch):
    """RBM.sample(..., num_sweeps=1) on a non-enumerable RBM has the law after one sweep, not p."""
    monkeypatch.setattr(rbm_module, "MAX_ENUMERATED_UNITS", 0)
    bias1, bias2, weight = strongly_coupled_parameters()
    joint = exact_joint(bias1, bias2, weight)
    law = exact_law_after_sweeps(joint, 1)
    frequencies = empirical_probabilities(RBM(bias1, bias2, weight).sample((NUM_CHAINS,), num_sweeps=1))
    threshold = total_variation_threshold(law, NUM_CHAINS)
    assert total_variation(frequencies, law) < threshold
    assert total_variation(frequencies, joint.flatten()) > threshold  # the default 1000 sweeps would pass this


def test_rbm_sample_rejects_a_bad_sweep_count():
    with pytest.raises(ValueError, match="num_sweeps"):
        RBM(*strongly_coupled_parameters()).sample((2,), num_sweeps=0)


# ----- persistent chains -------------------------------------------------------------------


def test_persistent_chains_keep_their_state_across_steps():
    """Two steps of one sweep have the law of two sweeps, not of one: the state persisted."""
    bias1, bias2, weight = strongly_coupled_parameters()
    rbm = RBM(bias1, bias2, weight)
    joint = exact_joint(bias1, bias2, weight)
    after_one, after_two = (exact_law_after_sweeps(joint, k) for k in (1, 2))
    chains = PersistentChains(NUM_CHAINS, N1, N2, dtype=torch.float64)
    first = chains.step(rbm, num_sweeps=1)
    second = chains.step(rbm, num_sweeps=1)
    assert not torch.equal(first, second)  # the returned states are copies, not the buffer
    torch.testing.assert_close(chains.chains, second)
    frequencies = empirical_probabilities(second)
    threshold = total_variation_threshold(after_two, NUM_CHAINS)
    assert total_variation(frequencies, after_two) < threshold
    assert total_variation(frequencies, after_one) > threshold  # power: a reset would show


def test_persistent_chains_state_dict_dtype_and_reset():
    chains = PersistentChains(7, N1, N2, batch_shape=(2,))
    assert chains.chains.shape == (7, 2, N1 + N2) and chains.chains.dtype == torch.float32
    assert set(torch.unique(chains.chains).tolist()) == {0.0, 1.0}
    rbm = RBM(torch.randn(2, N1), torch.randn(2, N2), torch.randn(2, N1, N2))
    states = chains.step(rbm, 2)
    assert states.shape == (7, 2, N1 + N2)
    state = chains.state_dict()
    assert set(state) == {"chains"}
    restored = PersistentChains(7, N1, N2, batch_shape=(2,))
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.chains, chains.chains)
    restored.to(torch.float64)
    assert restored.chains.dtype == torch.float64
    torch.testing.assert_close(restored.chains, chains.chains.double())
    before = chains.chains.clone()
    chains.reset()
    assert not torch.equal(chains.chains, before)  # 42 fair bits: equal with probability 2^-42


def test_persistent_chains_follow_the_rbm_dtype():
    chains = PersistentChains(4, N1, N2)  # float32 states
    rbm = RBM(*strongly_coupled_parameters())  # float64 parameters
    assert chains.step(rbm, 1).dtype == torch.float64


def test_persistent_chains_bad_input():
    chains = PersistentChains(4, N1, N2)
    with pytest.raises(ValueError, match="units"):
        chains.step(RBM(torch.randn(N1 + 1), torch.randn(N2), torch.randn(N1 + 1, N2)), 1)
    with pytest.raises(ValueError, match="batch shape"):
        chains.step(RBM(torch.randn(2, N1), torch.randn(N2), torch.randn(N1, N2)), 1)
    with pytest.raises(ValueError, match="num_sweeps"):
        chains.step(RBM(torch.randn(N1), torch.randn(N2), torch.randn(N1, N2)), 0)
    with pytest.raises(ValueError, match="num_chains"):
        PersistentChains(0, N1, N2)
    with pytest.raises(ValueError, match="dtype"):
        PersistentChains(4, N1, N2, dtype=torch.int64)


@pytest.mark.cuda
def test_persistent_chains_move_to_cuda():
    chains = PersistentChains(16, N1, N2).to("cuda")
    rbm = RBM(*(p.float().cuda() for p in strongly_coupled_parameters()))
    states = chains.step(rbm, 3)
    assert states.device.type == "cuda" and chains.chains.device.type == "cuda"
    with pytest.raises(ValueError, match="device"):
        chains.cpu().step(rbm, 1)


# ----- log-partition surrogate -------------------------------------------------------------


def sufficient_statistics(samples):
    r"""Per-sample :math:`-\nabla_\theta E(z) = (z_1, z_2, z_1 z_2^\top)`, flattened, (N, 15)."""
    z1, z2 = samples[:, :N1], samples[:, N1:]
    return torch.cat([z1, z2, (z1[:, :, None] * z2[:, None, :]).flatten(1)], dim=1)


def test_surrogate_value_is_exact_and_gradient_unbiased():
    bias1, bias2, weight = (p.requires_grad_() for p in strongly_coupled_parameters())
    rbm = RBM(bias1, bias2, weight)
    samples = rbm.sample((NUM_CHAINS,))  # exact draws
    surrogate = log_partition_surrogate(rbm, samples)
    joint = exact_joint(bias1.detach(), bias2.detach(), weight.detach())
    states = all_binary_configurations(N1 + N2, torch.float64)
    exact_gradient = joint.flatten() @ sufficient_statistics(states)
    exact_log_partition = rbm.log_partition.detach()
    torch.testing.assert_close(surrogate.detach(), exact_log_partition, rtol=0, atol=0)
    gradient = torch.cat(
        [g.flatten() for g in torch.autograd.grad(surrogate, (bias1, bias2, weight))]
    )
    statistics = sufficient_statistics(samples)
    # the gradient is the sample mean of the statistics ...
    torch.testing.assert_close(gradient, statistics.mean(0), rtol=1e-12, atol=1e-12)
    # ... and that mean is within STANDARD_ERRORS of the exact expectation
    standard_error = statistics.std(0) / math.sqrt(NUM_CHAINS)
    assert torch.all((gradient - exact_gradient).abs() < STANDARD_ERRORS * standard_error)
    # power: the exact gradient is far (in standard errors) from the gradient at other parameters
    other = exact_joint(torch.zeros(N1, dtype=torch.float64), bias2.detach(), weight.detach())
    shifted = other.flatten() @ sufficient_statistics(states)
    assert torch.any((gradient - shifted).abs() > STANDARD_ERRORS * standard_error)


def test_surrogate_without_log_partition_is_nan_with_the_right_gradient():
    n = MAX_ENUMERATED_UNITS + 1
    bias1 = torch.randn(2, n, requires_grad=True)
    rbm = RBM(bias1, torch.zeros(n), torch.zeros(n, n))
    samples = uniform_bits(5, 2, 2 * n).float()
    surrogate = log_partition_surrogate(rbm, samples)
    assert surrogate.shape == (2,) and torch.isnan(surrogate).all()
    (gradient,) = torch.autograd.grad(surrogate.sum(), bias1)
    torch.testing.assert_close(gradient, samples[..., :n].mean(0))
    estimated = RBM(
        bias1, torch.zeros(n), torch.zeros(n, n), log_partition=torch.tensor([1.0, 2.0])
    )
    torch.testing.assert_close(
        log_partition_surrogate(estimated, samples).detach(), torch.tensor([1.0, 2.0])
    )


def test_surrogate_with_persistent_chains_batched():
    rbm = RBM(torch.randn(3, N1, requires_grad=True), torch.randn(N2), torch.randn(N1, N2))
    chains = PersistentChains(8, N1, N2, batch_shape=(3,))
    surrogate = log_partition_surrogate(rbm, chains.step(rbm, 2))
    assert surrogate.shape == (3,)
    torch.testing.assert_close(surrogate.detach(), rbm.log_partition.detach())


def test_surrogate_bad_input():
    rbm = RBM(*strongly_coupled_parameters())
    with pytest.raises(ValueError, match="samples"):
        log_partition_surrogate(rbm, uniform_bits(5, N1 + N2 + 1))
    with pytest.raises(ValueError, match="samples"):
        log_partition_surrogate(rbm, uniform_bits(N1 + N2))
    with pytest.raises(ValueError, match="samples"):
        log_partition_surrogate(rbm.expand((3,)), uniform_bits(5, 2, N1 + N2))

"""The geometric RBM path against brute-force sums over every state of tiny RBMs."""

import math

import pytest
import torch

from pyro_dgm.distributions.rbm import RBM, exact_log_partition
from pyro_dgm.infer.estimators.exact import all_binary_configurations
from pyro_dgm.infer.estimators.tempered_rbm import (
    MEAN_FIELD_DAMPING,
    MEAN_FIELD_UPDATES,
    GeometricRBMPath,
    check_schedule,
    linear_schedule,
)

STANDARD_ERRORS = 4.0
"""A Monte Carlo frequency is accepted within 4 standard errors (two-sided p ~ 6e-5 each)."""

NUM_DRAWS = 100_000
"""Draws for the invariance test: per-state standard errors of ~0.0016 or less."""

BETAS = (0.0, 0.3, 1.0)


def tiny_rbm(num_units1=3, num_units2=4, scale=1.0, batch_shape=()):
    return RBM(
        scale * torch.randn(*batch_shape, num_units1, dtype=torch.float64),
        scale * torch.randn(*batch_shape, num_units2, dtype=torch.float64),
        scale * torch.randn(*batch_shape, num_units1, num_units2, dtype=torch.float64),
    )


def brute_force_mean_field(rbm):
    """Eq. B4 unit by unit from m = 1/2, the smaller block first (as the path labels them); the fields, original labels."""
    swapped = rbm.num_units1 > rbm.num_units2
    first, second = (rbm.bias2, rbm.bias1) if swapped else (rbm.bias1, rbm.bias2)
    weight = rbm.weight.T if swapped else rbm.weight  # (first, second)
    mean_first, mean_second = [0.5] * first.numel(), [0.5] * second.numel()

    def field_first(i):
        return first[i].item() + sum(weight[i, j].item() * mean_second[j] for j in range(second.numel()))

    def field_second(j):
        return second[j].item() + sum(weight[i, j].item() * mean_first[i] for i in range(first.numel()))

    for _ in range(MEAN_FIELD_UPDATES):
        mean_first = [
            (1 - MEAN_FIELD_DAMPING) * m + MEAN_FIELD_DAMPING / (1 + math.exp(-field_first(i)))
            for i, m in enumerate(mean_first)
        ]
        mean_second = [
            (1 - MEAN_FIELD_DAMPING) * m + MEAN_FIELD_DAMPING / (1 + math.exp(-field_second(j)))
            for j, m in enumerate(mean_second)
        ]
    fields_first = torch.tensor([field_first(i) for i in range(first.numel())], dtype=torch.float64)
    fields_second = torch.tensor([field_second(j) for j in range(second.numel())], dtype=torch.float64)
    return (fields_second, fields_first) if swapped else (fields_first, fields_second)


def brute_force_log_marginal(rbm, base, beta, kept_side):
    r"""log sum over the other block of f_0^(1-beta) f_1^beta, for every state of the kept block."""
    zero = torch.zeros_like
    base1 = rbm.bias1 if base == "biases" else zero(rbm.bias1)
    base2 = rbm.bias2 if base == "biases" else zero(rbm.bias2)
    if base == "mean_field":
        base1, base2 = brute_force_mean_field(rbm)
    z1 = all_binary_configurations(rbm.num_units1, torch.float64)
    z2 = all_binary_configurations(rbm.num_units2, torch.float64)
    log_f1 = (z1 @ rbm.bias1)[:, None] + (z2 @ rbm.bias2)[None, :] + z1 @ rbm.weight @ z2.T
    log_f0 = (z1 @ base1)[:, None] + (z2 @ base2)[None, :]
    log_f = (1 - beta) * log_f0 + beta * log_f1
    other_dim = 1 if kept_side == 1 else 0
    return torch.logsumexp(log_f, dim=other_dim)


@pytest.mark.parametrize("base", ["biases", "uniform", "mean_field"])
@pytest.mark.parametrize("num_units1, num_units2", [(3, 4), (4, 3)])
def test_log_marginal_sums_out_the_larger_block(base, num_units1, num_units2):
    rbm = tiny_rbm(num_units1, num_units2)
    path = GeometricRBMPath(rbm, base)
    kept_side = 1 if num_units1 <= num_units2 else 2
    assert path.num_units1 == min(num_units1, num_units2)
    z1 = all_binary_configurations(path.num_units1, torch.float64)
    betas = torch.tensor(BETAS, dtype=torch.float64)[:, None]  # all temperatures in one call
    actual = path.log_marginal(z1, path.coupling(z1), betas)
    expected = torch.stack([brute_force_log_marginal(rbm, base, b, kept_side) for b in BETAS])
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("base", ["biases", "uniform", "mean_field"])
def test_base_is_exactly_normalised_and_the_end_is_the_rbm(base):
    rbm = tiny_rbm()
    path = GeometricRBMPath(rbm, base)
    z1 = all_binary_configurations(path.num_units1, torch.float64)
    coupling = path.coupling(z1)
    log_z0 = torch.logsumexp(path.log_marginal(z1, coupling, 0.0), 0)
    log_z1 = torch.logsumexp(path.log_marginal(z1, coupling, 1.0), 0)
    torch.testing.assert_close(path.log_partition_base(), log_z0)
    torch.testing.assert_close(log_z1, exact_log_partition(rbm.bias1, rbm.bias2, rbm.weight))
    if base == "uniform":
        torch.testing.assert_close(
            path.log_partition_base(), torch.tensor(7 * math.log(2), dtype=torch.float64)
        )


def test_mean_field_base_is_uncoupled_or_centred_rbms_own_base():
    """W = 0: the mean-field base is the biases base; a = -W 1 / 2 (centred, planted): it is uniform."""
    rbm = tiny_rbm(3, 5)
    uncoupled = RBM(rbm.bias1, rbm.bias2, torch.zeros_like(rbm.weight))
    path = GeometricRBMPath(uncoupled, "mean_field")
    torch.testing.assert_close(path.base_bias1, rbm.bias1, rtol=0, atol=0)
    torch.testing.assert_close(path.base_bias2, rbm.bias2, rtol=0, atol=0)
    centred = RBM(-0.5 * rbm.weight.sum(1), -0.5 * rbm.weight.sum(0), rbm.weight)
    path = GeometricRBMPath(centred, "mean_field")
    torch.testing.assert_close(path.base_bias1, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(path.base_bias2, torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-12)


def test_mean_field_base_of_a_weakly_coupled_rbm_is_its_fixed_point():
    """sigma(b1) = sigma(a1 + W sigma(b2)) and likewise for block 2, to the convergence of 10 damped updates."""
    rbm = tiny_rbm(4, 6)
    rbm = RBM(rbm.bias1, rbm.bias2, 0.3 * rbm.weight)  # ||W||_2 < 4: the updates contract
    path = GeometricRBMPath(rbm, "mean_field")
    mean1, mean2 = torch.sigmoid(path.base_bias1), torch.sigmoid(path.base_bias2)
    torch.testing.assert_close(path.base_bias1, rbm.bias1 + rbm.weight @ mean2, rtol=0, atol=1e-2)
    torch.testing.assert_close(path.base_bias2, rbm.bias2 + rbm.weight.T @ mean1, rtol=0, atol=1e-2)


def test_mean_field_base_of_a_batch_is_each_rbms_own():
    rbm = tiny_rbm(3, 4, batch_shape=(2,))
    path = GeometricRBMPath(rbm, "mean_field")
    for index in range(2):
        one = GeometricRBMPath(RBM(rbm.bias1[index], rbm.bias2[index], rbm.weight[index]), "mean_field")
        torch.testing.assert_close(path.base_bias1[index], one.base_bias1)
        torch.testing.assert_close(path.base_bias2[index], one.base_bias2)


def test_base_draws_follow_the_base():
    rbm = tiny_rbm()
    path = GeometricRBMPath(rbm, "biases")
    draws = path.sample_base((NUM_DRAWS,))
    expected = torch.sigmoid(rbm.bias1)
    standard_error = (expected * (1 - expected) / NUM_DRAWS).sqrt()
    assert ((draws.mean(0) - expected).abs() < STANDARD_ERRORS * standard_error).all()


@pytest.mark.parametrize("base", ["biases", "uniform", "mean_field"])
def test_gibbs_sweep_leaves_the_tempered_marginal_invariant(base):
    """Exact draws of p_beta(z1), one sweep at beta: the state frequencies must not move."""
    beta = 0.6
    rbm = tiny_rbm(3, 4, scale=1.5)
    path = GeometricRBMPath(rbm, base)
    states = all_binary_configurations(path.num_units1, torch.float64)
    probs = torch.softmax(path.log_marginal(states, path.coupling(states), beta), 0)
    index = torch.multinomial(probs, NUM_DRAWS, replacement=True)
    moved = path.gibbs_sweep(path.coupling(states[index]), beta)
    state_index = (moved * 2 ** torch.arange(path.num_units1 - 1, -1, -1)).sum(-1).long()
    frequencies = torch.bincount(state_index, minlength=states.size(0)) / NUM_DRAWS
    standard_error = (probs * (1 - probs) / NUM_DRAWS).sqrt()
    assert ((frequencies - probs).abs() < STANDARD_ERRORS * standard_error).all()
    # the test can fail: the same sweep at another temperature moves the frequencies
    other = path.gibbs_sweep(path.coupling(states[index]), 0.1)
    other_index = (other * 2 ** torch.arange(path.num_units1 - 1, -1, -1)).sum(-1).long()
    other_frequencies = torch.bincount(other_index, minlength=states.size(0)) / NUM_DRAWS
    assert ((other_frequencies - probs).abs() > STANDARD_ERRORS * standard_error).any()


def test_batched_couplings_match_per_element_products():
    rbm = tiny_rbm(batch_shape=(2,))  # one weight matrix per batch element: the bmm path
    path = GeometricRBMPath(rbm)
    z1 = torch.randint(0, 2, (5, 2, 3), dtype=torch.float64)
    expected = torch.einsum("sbi,bij->sbj", z1, rbm.weight)
    torch.testing.assert_close(path.coupling(z1), expected)
    shared = RBM(rbm.bias1, rbm.bias2, rbm.weight[0])  # weight broadcast over the batch
    torch.testing.assert_close(
        GeometricRBMPath(shared).coupling(z1), torch.einsum("sbi,ij->sbj", z1, rbm.weight[0])
    )


def test_linear_schedule():
    torch.testing.assert_close(linear_schedule(5), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    like = torch.zeros(1, dtype=torch.float64)
    assert linear_schedule(3, like=like).dtype == torch.float64
    with pytest.raises(ValueError, match="num_temperatures must be an int >= 2"):
        linear_schedule(1)
    with pytest.raises(ValueError, match="num_temperatures must be an int"):
        linear_schedule(2.0)


@pytest.mark.parametrize(
    "betas, message",
    [
        (torch.tensor([0.0]), "at least 2"),
        (torch.tensor([[0.0, 1.0]]), "1-D"),
        (torch.tensor([0.1, 1.0]), "start at 0"),
        (torch.tensor([0.0, 0.9]), "end at 1"),
        (torch.tensor([0.0, 0.6, 0.4, 1.0]), "non-decreasing"),
        (torch.tensor([0.0, float("nan"), 1.0]), "finite"),
    ],
)
def test_bad_schedules_are_rejected(betas, message):
    with pytest.raises(ValueError, match=message):
        check_schedule(betas)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="base must be one of"):
        GeometricRBMPath(tiny_rbm(), "gaussian")
    with pytest.raises(ValueError, match="RBM"):
        GeometricRBMPath("not an rbm")

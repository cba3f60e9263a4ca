"""Parallel tempering with Bennett's acceptance ratio against exact log Z and replicate runs."""

import math

import pytest
import torch

from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.infer.estimators.parallel_tempering import (
    _clustered_standard_error,
    bennett_log_ratio,
    parallel_tempering,
)
from tests.infer.random_rbms import exact_log_partition_of, random_rbm

STANDARD_ERRORS = 4.0
"""An estimate is accepted within 4 of its standard errors (two-sided p ~ 6e-5 if normal)."""

MAX_STANDARD_ERROR = 0.02
"""The exact-agreement runs must be precise, so a 4-SE window cannot hide a wrong answer."""

NUM_REPLICATES = 64
"""Independent PT runs (one batch) for the standard-error calibration."""

SPREAD_RATIO_BOUNDS = (0.65, 1.5)
r"""Accepted range of sd(replicate estimates) / mean(reported SE) for PT.

64 replicates give the sample sd a relative standard error of ~1/sqrt(2 * 63) = 9%;
4 of those is 36%. Each reported SE is a 16-cluster sandwich (relative error ~18%),
but their mean over 64 runs is stable to ~2%; the bounds are +-36% on the log scale.
"""

GAUSSIAN_SHIFT = 1.0
"""Bennett test problems: N(0, 1) against N(1, 1), overlap enough for ~0.05 nats at n = 500."""


def gaussian_bennett_problems(num_draws, num_problems, log_ratio):
    r"""Delta = log f1 - log f0 for f0 = N(0,1) density, f1 = e^{log_ratio} N(1,1) density."""
    shift = GAUSSIAN_SHIFT

    def delta(x):
        return log_ratio + shift * x - shift**2 / 2

    forward = delta(torch.randn(num_draws, num_problems, dtype=torch.float64))
    backward = delta(shift + torch.randn(num_draws, num_problems, dtype=torch.float64))
    return forward, backward


def test_bennett_ratio_of_proportional_densities_is_exact():
    forward = torch.full((10, 3), 2.5, dtype=torch.float64)
    expected = torch.full((3,), 2.5, dtype=torch.float64)
    torch.testing.assert_close(bennett_log_ratio(forward, forward), expected)


def test_bennett_ratio_and_its_sandwich_error_on_gaussians():
    """200 independent problems with a known answer: centred, and spread = reported SE."""
    num_draws, num_problems, log_ratio = 500, 200, 1.7
    forward, backward = gaussian_bennett_problems(num_draws, num_problems, log_ratio)
    estimates = bennett_log_ratio(forward, backward)
    # every draw its own cluster: shape (steps=1, rungs=1, clusters=num_draws, problems)
    as_clusters = (forward[None, None], backward[None, None])
    standard_errors = _clustered_standard_error(*as_clusters, estimates[None])
    spread = estimates.std()
    assert (estimates.mean() - log_ratio).abs() < STANDARD_ERRORS * spread / math.sqrt(num_problems)
    # 200 problems: the sd is known to ~5%; 4 of those plus slack
    assert 0.75 < spread / standard_errors.mean() < 1.33


@pytest.mark.parametrize("base", ["uniform", "biases"])
@pytest.mark.parametrize("num_units1, num_units2", [(12, 30), (20, 20)])
def test_agrees_with_exact_log_partition(base, num_units1, num_units2):
    rbm = random_rbm(num_units1, num_units2, weight_scale=0.5)
    result = parallel_tempering(rbm, num_chains=16, betas=8, num_steps=600, base=base)
    error = (result.log_partition - exact_log_partition_of(rbm)).abs()
    assert result.standard_error < MAX_STANDARD_ERROR
    assert error < STANDARD_ERRORS * result.standard_error
    assert result.log_ratios.shape == (7,)
    assert ((result.swap_rates > 0) & (result.swap_rates < 1)).all()


def test_standard_error_matches_the_spread_of_replicate_runs():
    rbm = random_rbm(8, 8, weight_scale=1.0).expand((NUM_REPLICATES,))
    result = parallel_tempering(rbm, num_chains=16, betas=8, num_steps=400)
    estimates = result.log_partition
    spread = estimates.std()
    ratio = spread / result.standard_error.mean()
    assert SPREAD_RATIO_BOUNDS[0] < ratio < SPREAD_RATIO_BOUNDS[1]
    mean_error = (estimates.mean() - exact_log_partition_of(rbm)[0]).abs()
    assert mean_error < STANDARD_ERRORS * spread / math.sqrt(NUM_REPLICATES)


def test_adapted_ladder_equalises_swap_rates():
    """A ladder bunched near beta = 1 has very uneven swap rates; the re-spaced one does not."""
    rbm = random_rbm(10, 20, weight_scale=1.0)
    bunched = torch.tensor([0.0, 0.6, 0.9, 0.95, 0.97, 0.98, 0.99, 1.0], dtype=torch.float64)
    options = dict(num_chains=16, betas=bunched, num_steps=600)
    fixed = parallel_tempering(rbm, adapt_ladder=False, **options)
    adapted = parallel_tempering(rbm, **options)
    assert fixed.swap_rates.max() - fixed.swap_rates.min() > 0.5  # measured 0.07 ... 0.99
    assert adapted.swap_rates.max() - adapted.swap_rates.min() < 0.1  # measured 0.71 ... 0.73
    torch.testing.assert_close(fixed.betas, bunched)
    assert adapted.betas[0] == 0 and adapted.betas[-1] == 1
    assert (adapted.betas[1:] > adapted.betas[:-1]).all()


def test_batched_rbms_each_agree_with_exact():
    rbm = random_rbm(6, 9, weight_scale=0.7, batch_shape=(3,))  # three different RBMs
    result = parallel_tempering(rbm, num_chains=16, betas=6, num_steps=400)
    assert result.log_partition.shape == (3,)
    assert result.swap_rates.shape == (5, 3)
    error = (result.log_partition - exact_log_partition_of(rbm)).abs()
    assert (error < STANDARD_ERRORS * result.standard_error).all()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_chains": 1}, "num_chains"),
        ({"num_steps": 0}, "num_steps"),
        ({"burn_in_fraction": 1.0}, "burn_in_fraction"),
        ({"betas": torch.tensor([0.0, 0.5, 0.5, 1.0])}, "strictly increasing"),
        ({"betas": torch.tensor([0.0, 0.5])}, "end at 1"),
        ({"base": "data"}, "base must be one of"),
    ],
)
def test_bad_arguments_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        parallel_tempering(random_rbm(3, 3, 0.5), **options)


def test_bennett_needs_equal_sample_sizes():
    with pytest.raises(ValueError, match="equal shapes"):
        bennett_log_ratio(torch.zeros(3), torch.zeros(4))


@pytest.mark.cuda
def test_runs_on_cuda():
    rbm = random_rbm(10, 12, weight_scale=0.5)
    on_gpu = RBM(rbm.bias1.cuda(), rbm.bias2.cuda(), rbm.weight.cuda())
    result = parallel_tempering(on_gpu, num_chains=16, betas=8, num_steps=400)
    assert result.log_partition.device.type == "cuda"
    error = (result.log_partition.cpu() - exact_log_partition_of(rbm)).abs()
    assert error < STANDARD_ERRORS * result.standard_error.cpu()

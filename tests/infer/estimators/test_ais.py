"""AIS for log Z against exact enumeration, and its standard error against replicate runs."""

import pytest
import torch

from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.infer.estimators.ais import annealed_importance_sampling
from pyro_dgm.infer.estimators.tempered_rbm import GeometricRBMPath
from pyro_dgm.infer.importance import log_mean_exp
from tests.infer.random_rbms import exact_log_partition_of, random_rbm

STANDARD_ERRORS = 4.0
"""An estimate is accepted within 4 of its standard errors (two-sided p ~ 6e-5 if normal)."""

MAX_STANDARD_ERROR = 0.02
"""The exact-agreement runs must be precise, so a 4-SE window cannot hide a wrong answer."""

ROUNDING_TOLERANCE = 1e-6
"""A standard error that is 0 in exact arithmetic: the log-space ESS leaves ~1e-9 in float64."""

NUM_REPLICATES = 128
"""Independent AIS runs (one batch) for the standard-error calibration."""

SPREAD_RATIO_BOUNDS = (0.7, 1.4)
r"""Accepted range of sd(replicate estimates) / mean(reported SE).

With 128 replicates the sample sd has relative standard error ~1/sqrt(2 * 127) = 6.3%
for normal estimates; 4 of those (25%) widened to 30-40% for the excess kurtosis of
log-mean-exp estimates at an ESS of ~60% of the chains.
"""


@pytest.mark.parametrize("base", ["biases", "uniform", "mean_field"])
@pytest.mark.parametrize("num_units1, num_units2", [(12, 30), (20, 20)])
def test_agrees_with_exact_log_partition(base, num_units1, num_units2):
    rbm = random_rbm(num_units1, num_units2, weight_scale=0.5)
    result = annealed_importance_sampling(rbm, num_chains=512, betas=200, base=base)
    error = (result.log_partition - exact_log_partition_of(rbm)).abs()
    assert result.standard_error < MAX_STANDARD_ERROR
    assert error < STANDARD_ERRORS * result.standard_error


def test_standard_error_matches_the_spread_of_replicate_runs():
    """128 independent runs on a strongly coupled RBM with a short schedule (ESS ~ 60%)."""
    rbm = random_rbm(10, 10, weight_scale=1.0).expand((NUM_REPLICATES,))
    result = annealed_importance_sampling(rbm, num_chains=256, betas=30)
    estimates = result.log_partition
    spread = estimates.std()
    ratio = spread / result.standard_error.mean()
    assert SPREAD_RATIO_BOUNDS[0] < ratio < SPREAD_RATIO_BOUNDS[1]
    # and the replicates are centred on the truth (log-mean-exp bias ~ -SE^2/2 ~ 1e-3)
    mean_error = (estimates.mean() - exact_log_partition_of(rbm)[0]).abs()
    assert mean_error < STANDARD_ERRORS * spread / NUM_REPLICATES**0.5


def test_standard_error_and_ess_from_the_weights():
    rbm = random_rbm(6, 9, weight_scale=1.0)
    result = annealed_importance_sampling(rbm, num_chains=64, betas=5, return_log_weights=True)
    weights = (result.log_weights - result.log_weights.max()).exp()
    relative_sd = weights.std() / weights.mean()  # sd(w) / mean(w), unbiased variance
    torch.testing.assert_close(result.standard_error, relative_sd / 64**0.5)
    kish = weights.sum() ** 2 / weights.square().sum()
    torch.testing.assert_close(result.effective_sample_size, kish)
    path = GeometricRBMPath(rbm, "mean_field")  # the default base of AIS
    torch.testing.assert_close(
        result.log_partition, path.log_partition_base() + log_mean_exp(result.log_weights)
    )


def test_two_temperatures_are_importance_sampling_from_the_base():
    """With betas = (0, 1) there is no transition: w = f_1(z) / f_0(z) with z ~ p_0."""
    rbm = random_rbm(4, 5, weight_scale=1.0)
    num_chains = 20_000
    torch.manual_seed(1)
    result = annealed_importance_sampling(
        rbm, num_chains=num_chains, betas=torch.tensor([0.0, 1.0]), return_log_weights=True
    )
    torch.manual_seed(1)
    path = GeometricRBMPath(rbm, "mean_field")  # the default base of AIS
    z1 = path.sample_base((num_chains,))
    coupling = path.coupling(z1)
    expected = path.log_marginal(z1, coupling, 1.0) - path.log_marginal(z1, coupling, 0.0)
    torch.testing.assert_close(result.log_weights, expected)
    assert (result.log_partition - exact_log_partition_of(rbm)).abs() < STANDARD_ERRORS * result.standard_error


def test_uncoupled_rbm_is_exact_with_the_biases_base():
    """W = 0: the base is the target, every weight is 1, the estimate is exact with SE 0."""
    rbm = RBM(
        torch.randn(10, dtype=torch.float64),
        torch.randn(40, dtype=torch.float64),
        torch.zeros(10, 40, dtype=torch.float64),
    )
    result = annealed_importance_sampling(
        rbm, num_chains=16, betas=10, base="biases", return_log_weights=True
    )
    assert (result.log_weights == 0).all()
    torch.testing.assert_close(result.log_partition, exact_log_partition_of(rbm))
    assert result.standard_error < ROUNDING_TOLERANCE
    torch.testing.assert_close(
        result.effective_sample_size, torch.tensor(16.0, dtype=torch.float64)
    )


def test_batched_rbms_each_agree_with_exact():
    rbm = random_rbm(8, 14, weight_scale=0.7, batch_shape=(3,))  # three different RBMs
    result = annealed_importance_sampling(rbm, num_chains=256, betas=100)
    assert result.log_partition.shape == (3,)
    assert (result.standard_error < MAX_STANDARD_ERROR).all()
    assert (
        (result.log_partition - exact_log_partition_of(rbm)).abs() < STANDARD_ERRORS * result.standard_error
    ).all()


def test_user_schedule_is_used_and_returned():
    rbm = random_rbm(5, 5, weight_scale=0.5)
    betas = torch.tensor([0.0, 0.1, 0.5, 1.0], dtype=torch.float64)
    result = annealed_importance_sampling(rbm, num_chains=8, betas=betas)
    torch.testing.assert_close(result.betas, betas)
    assert result.log_weights is None


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_chains": 1}, "num_chains"),
        ({"num_sweeps": 0}, "num_sweeps"),
        ({"betas": 1}, "num_temperatures must be an int >= 2"),
        ({"betas": torch.tensor([0.0, 0.5])}, "end at 1"),
        ({"base": "data"}, "base must be one of"),
    ],
)
def test_bad_arguments_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        annealed_importance_sampling(random_rbm(3, 3, 0.5), **options)


@pytest.mark.cuda
def test_runs_on_cuda():
    rbm = random_rbm(10, 12, weight_scale=0.5)
    on_gpu = RBM(rbm.bias1.cuda(), rbm.bias2.cuda(), rbm.weight.cuda())
    result = annealed_importance_sampling(on_gpu, num_chains=256, betas=100)
    assert result.log_partition.device.type == "cuda"
    error = (result.log_partition.cpu() - exact_log_partition_of(rbm)).abs()
    assert error < STANDARD_ERRORS * result.standard_error.cpu()

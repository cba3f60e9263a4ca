"""The log-Z entry point: method choice, results, and errors."""

import pytest
import torch

from pyro_dgm.distributions.rbm import MAX_ENUMERATED_UNITS
from pyro_dgm.infer.estimators.rbm_partition import LogPartitionEstimate, estimate_log_partition
from tests.infer.random_rbms import exact_log_partition_of, random_rbm

STANDARD_ERRORS = 4.0
"""An estimate is accepted within 4 of its standard errors."""


def test_auto_is_exact_when_enumerable():
    rbm = random_rbm(8, 50, weight_scale=0.3)
    estimate = estimate_log_partition(rbm)
    assert isinstance(estimate, LogPartitionEstimate)
    assert estimate.method == "exact"
    torch.testing.assert_close(estimate.value, exact_log_partition_of(rbm))
    assert estimate.standard_error == 0


def test_auto_is_ais_when_not_enumerable():
    num_units = MAX_ENUMERATED_UNITS + 1
    rbm = random_rbm(num_units, num_units, weight_scale=0.1)
    estimate = estimate_log_partition(rbm, num_chains=64, betas=20)
    assert estimate.method == "ais"
    assert 0 < estimate.standard_error < 0.05
    # the estimators agree with each other where enumeration is not available
    other = estimate_log_partition(rbm, "pt", num_chains=8, betas=4, num_steps=200)
    assert other.method == "pt"
    combined_error = (estimate.standard_error**2 + other.standard_error**2).sqrt()
    assert (estimate.value - other.value).abs() < STANDARD_ERRORS * combined_error


@pytest.mark.parametrize("method", ["ais", "pt"])
def test_estimators_agree_with_exact(method):
    rbm = random_rbm(6, 10, weight_scale=0.3)
    options = {"ais": dict(num_chains=256, betas=50), "pt": dict(num_chains=8, num_steps=300)}
    estimate = estimate_log_partition(rbm, method, **options[method])
    exact = exact_log_partition_of(rbm)
    assert estimate.method == method
    assert (estimate.value - exact).abs() < STANDARD_ERRORS * estimate.standard_error


def test_bad_requests_are_rejected():
    big = random_rbm(MAX_ENUMERATED_UNITS + 1, MAX_ENUMERATED_UNITS + 1, weight_scale=0.3)
    with pytest.raises(ValueError, match="method must be one of"):
        estimate_log_partition(random_rbm(3, 3, weight_scale=0.3), "bridge")
    with pytest.raises(ValueError, match="enumerable"):
        estimate_log_partition(big, "exact")
    with pytest.raises(ValueError, match="takes no options"):
        estimate_log_partition(random_rbm(3, 3, weight_scale=0.3), "exact", num_chains=3)
    with pytest.raises(ValueError, match="RBM"):
        estimate_log_partition(torch.zeros(3))

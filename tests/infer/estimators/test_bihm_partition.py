r"""BiHM's Z^2 estimator (Eq. 7) and log p*(x) against exact enumeration over x and h.

Exact: Z^2 = sum_x p~*(x) (sum BiHM Eq. 1 over x; 2^4 values of x, 2^5 of h for
TinySBN), p*(x) = p~*(x) / Z^2. The Z^2 estimator is unbiased for every K_inner, so
its mean is compared with the exact value within 4 of its own standard errors.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_dgm.infer.estimators.bihm_partition import bihm_log_likelihood, estimate_log_partition_squared
from pyro_dgm.infer.estimators.exact import all_binary_configurations
from pyro_dgm.infer.estimators.log_likelihood import log_likelihood
from pyro_dgm.infer.objectives.bihm import BiHMELBO
from tests.infer.exact_expectations import exact_log_bound, exact_log_marginal, exact_particles
from tests.infer.fixed_draws import DrawPool, guide_draws
from tests.infer.monte_carlo_checks import (
    NUM_STANDARD_ERRORS,
    ROUNDING_TOLERANCE,
    per_point_mean_and_standard_error,
    replicate,
)
from tests.infer.small_models import NUM_DATA_POINTS, ExactPosteriorPair, TinySBN

NUM_PIXELS = 4


def exact_log_partition_squared(sbn: TinySBN) -> torch.Tensor:
    """log Z^2 = log sum_x p~*(x), every x in {0,1}^4 enumerated."""
    every_x = all_binary_configurations(NUM_PIXELS, dtype=torch.float64)
    return torch.logsumexp(exact_log_bound(exact_particles(sbn, every_x)), dim=0)


def test_exact_p_star_is_normalised_and_bounds_hold(sbn):
    """Checks of the exact reference itself: sum_x p*(x) = 1, Z <= 1, p~* <= p* (Eq. 1)."""
    every_x = all_binary_configurations(NUM_PIXELS, dtype=torch.float64)
    with torch.no_grad():
        log_bound = exact_log_bound(exact_particles(sbn, every_x))
        log_partition_squared = exact_log_partition_squared(sbn)
    log_p_star = log_bound - log_partition_squared
    torch.testing.assert_close(torch.logsumexp(log_p_star, 0), torch.zeros((), dtype=torch.float64))
    assert log_partition_squared < 0  # Cauchy-Schwarz: Z <= 1, = 1 only if p = q


@pytest.mark.parametrize("num_inner", [1, 4])
def test_partition_squared_is_unbiased(sbn, data, num_inner):
    estimate = estimate_log_partition_squared(
        sbn.model, sbn.guide, data, num_outer=200_000, num_inner=num_inner, chunk_size=50_000
    )
    with torch.no_grad():
        exact = exact_log_partition_squared(sbn).exp()
    error = (estimate.partition_squared - exact).abs()
    assert error < NUM_STANDARD_ERRORS * estimate.partition_squared_standard_error
    assert estimate.num_outer == 200_000 and estimate.num_inner == num_inner


def test_standard_error_matches_spread_of_replicate_estimates(sbn, data):
    """Mean reported SE^2 (delta method) vs the variance of independent log Z^2 estimates.

    Both sides are random; each gets its own standard error from the replicates
    (the sample variance's from the fourth central moment, as log Z^2-hat is not
    Gaussian at small K_outer: its kurtosis reaches ~8 for some seeds).
    """
    num_replicates = 100
    estimates = [
        estimate_log_partition_squared(sbn.model, sbn.guide, data, num_outer=1000)
        for _ in range(num_replicates)
    ]
    values = torch.stack([e.log_partition_squared for e in estimates])
    reported_variances = torch.stack([e.standard_error for e in estimates]) ** 2
    centered = values - values.mean()
    variance = centered.pow(2).mean()
    variance_error = ((centered.pow(4).mean() - variance**2) / num_replicates).sqrt()
    reported_error = reported_variances.std() / num_replicates**0.5
    spread = (variance_error**2 + reported_error**2).sqrt()
    assert (variance - reported_variances.mean()).abs() < NUM_STANDARD_ERRORS * spread


def test_exact_posterior_guide_gives_unit_partition_with_zero_error():
    """q(h|x) = p(h|x): every Eq. 7 term is p(x)^-1/2 p(x)^1/2 = 1, so Z^2 = 1 exactly."""
    pair = ExactPosteriorPair()
    estimate = estimate_log_partition_squared(
        pair.model, pair.guide, pair.all_data(), num_outer=500, num_inner=3, chunk_size=200
    )
    zero = torch.zeros((), dtype=torch.float64)
    torch.testing.assert_close(
        estimate.log_partition_squared, zero, atol=ROUNDING_TOLERANCE, rtol=0
    )
    # the SE is the square root of a variance that is zero up to rounding
    torch.testing.assert_close(
        estimate.standard_error, zero, atol=ROUNDING_TOLERANCE**0.5, rtol=0
    )


def test_log_p_star_approaches_exact(sbn, data):
    r"""E log p~*-hat = log p~* - (p/p~* - 1)/K + O(K^-2), and log p*-hat = log p~*-hat - log Z^2-hat.
    """
    num_samples, num_replicates = 1000, 200
    partition = estimate_log_partition_squared(
        sbn.model, sbn.guide, data, num_outer=100_000, chunk_size=25_000
    )
    result = bihm_log_likelihood(
        sbn.model, sbn.guide, replicate(data, num_replicates),
        partition=partition, num_samples=num_samples, chunk_size=500,
    )
    mean, standard_error = per_point_mean_and_standard_error(result.log_p_star, NUM_DATA_POINTS)
    with torch.no_grad():
        exact = exact_particles(sbn, data)
        log_bound = exact_log_bound(exact)
        exact_log_p_star = log_bound - exact_log_partition_squared(sbn)
        first_order_bias = -(exact_log_marginal(exact) - log_bound).expm1() / num_samples
    spread = (standard_error**2 + partition.standard_error**2).sqrt()  # Z^2 error is shared
    assert ((mean - (exact_log_p_star + first_order_bias)).abs() < NUM_STANDARD_ERRORS * spread).all()
    log_p_star = result.log_bound - partition.log_partition_squared
    torch.testing.assert_close(result.log_p_star, log_p_star)


def test_bihm_estimates_share_draws_with_log_likelihood_and_objective(sbn, data):
    num_samples = 40
    draws = guide_draws(sbn, data, num_samples)
    partition = estimate_log_partition_squared(sbn.model, sbn.guide, data, num_outer=100)
    result = bihm_log_likelihood(
        sbn.model, DrawPool(draws)(sbn.guide), data, partition=partition,
        num_samples=num_samples, chunk_size=15,
    )
    top_down = log_likelihood(sbn.model, DrawPool(draws)(sbn.guide), data, num_samples=num_samples)
    objective = BiHMELBO(num_particles=num_samples)
    objective.loss(sbn.model, DrawPool(draws)(sbn.guide), data)
    torch.testing.assert_close(result.log_p, top_down.log_likelihood)
    torch.testing.assert_close(result.log_bound, objective.log_bound)
    torch.testing.assert_close(result.effective_sample_size, objective.effective_sample_size)
    assert (result.log_bound <= result.log_p + ROUNDING_TOLERANCE).all()  # Jensen: p~*-hat <= p-hat


def two_observation_model(x: torch.Tensor) -> None:
    with pyro.plate("data", x.size(0)):
        h = pyro.sample("h", dist.Bernoulli(0.5 * torch.ones(x.size(0), 1)).to_event(1))
        pyro.sample("x", dist.Bernoulli(0.25 + 0.5 * h).to_event(1), obs=x)
        pyro.sample("y", dist.Bernoulli(0.5 * torch.ones(x.size(0))), obs=x[:, 0])


def two_observation_guide(x: torch.Tensor) -> None:
    with pyro.plate("data", x.size(0)):
        pyro.sample("h", dist.Bernoulli(0.5 * torch.ones(x.size(0), 1)).to_event(1))


def test_names_the_observed_site_when_ambiguous_or_wrong():
    x = torch.zeros(2, 1)
    with pytest.raises(ValueError, match=r"observed sites \['x', 'y'\]"):
        estimate_log_partition_squared(two_observation_model, two_observation_guide, x, num_outer=4)
    with pytest.raises(ValueError, match="'h' is not an observed site"):
        estimate_log_partition_squared(
            two_observation_model, two_observation_guide, x, num_outer=4, observed_site="h"
        )
    estimate = estimate_log_partition_squared(
        two_observation_model, two_observation_guide, x, num_outer=4, observed_site="x"
    )
    assert torch.isfinite(estimate.log_partition_squared)

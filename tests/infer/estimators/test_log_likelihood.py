r"""The chunked importance-weighted log-likelihood against exact enumeration.

The estimate log (1/K) sum_k w_k is biased low by ~Var(w)/(2K p(x)^2) (delta method): its
mean is the ELBO at K = 1 (computed exactly), the exact finite-K expectation at K = 2 (all C^2
particle pairs), and approaches log p(x) as K grows.
"""

from __future__ import annotations

import pytest
import torch

from pyro_dgm.infer.estimators.log_likelihood import StreamingLogPowerSums, log_likelihood
from pyro_dgm.infer.importance import effective_sample_size, log_mean_exp
from tests.infer.exact_expectations import (
    exact_log_marginal,
    exact_particles,
    finite_k_expectation,
)
from tests.infer.fixed_draws import DrawPool, guide_draws
from tests.infer.monte_carlo_checks import (
    NUM_STANDARD_ERRORS,
    ROUNDING_TOLERANCE,
    per_point_mean_and_standard_error,
    replicate,
)
from tests.infer.small_models import NUM_DATA_POINTS, ExactPosteriorPair


def iwae_statistic(tuple_log_w: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k w_k for each particle tuple."""
    return log_mean_exp(tuple_log_w, dim=1)


def chi_square(exact) -> torch.Tensor:
    r"""Var_q(w) / p(x)^2 = sum_h p(x,h)^2 / (q(h|x) p(x)^2) - 1, per data point."""
    log_second_moment = torch.logsumexp(exact.model_log_prob + exact.log_weights, dim=0)
    return (log_second_moment - 2 * exact_log_marginal(exact)).expm1()


def test_bias_shrinks_with_k_and_vanishes_within_standard_error(sbn, data):
    num_replicates = 400
    batch = replicate(data, num_replicates)
    with torch.no_grad():
        exact = exact_particles(sbn, data)
        log_marginal = exact_log_marginal(exact)
    bias, standard_error = {}, {}
    for num_particles in (1, 2, 10, 1000):
        estimate = log_likelihood(
            sbn.model, sbn.guide, batch, num_samples=num_particles, chunk_size=250
        ).log_likelihood
        mean, standard_error[num_particles] = per_point_mean_and_standard_error(
            estimate, NUM_DATA_POINTS
        )
        bias[num_particles] = mean - log_marginal
        if num_particles <= 2:  # exact finite-K expectation (K = 1: the ELBO)
            expected = finite_k_expectation(
                exact.guide_log_prob, exact.log_weights, num_particles, iwae_statistic
            )
            assert ((mean - expected).abs() < NUM_STANDARD_ERRORS * standard_error[num_particles]).all()

    def significantly_smaller(small: int, large: int) -> torch.Tensor:
        spread = (standard_error[small] ** 2 + standard_error[large] ** 2).sqrt()
        return bias[large].abs() < bias[small].abs() - NUM_STANDARD_ERRORS * spread

    assert significantly_smaller(1, 10).all()
    assert significantly_smaller(10, 1000).all()
    # at K = 1000 what is left is the first-order bias -chi^2(p(h|x) || q) / (2K), plus noise
    first_order_bias = -chi_square(exact) / (2 * 1000)
    assert ((bias[1000] - first_order_bias).abs() < NUM_STANDARD_ERRORS * standard_error[1000]).all()


def test_chunked_and_unchunked_agree_on_the_same_draws(sbn, data):
    num_samples = 20
    draws = guide_draws(sbn, data, num_samples)
    whole = log_likelihood(
        sbn.model, DrawPool(draws)(sbn.guide), data, num_samples=num_samples,
        chunk_size=num_samples, keep_log_weights=True,
    )
    chunked = log_likelihood(  # chunks of 7, 7 and 6
        sbn.model, DrawPool(draws)(sbn.guide), data, num_samples=num_samples,
        chunk_size=7, keep_log_weights=True,
    )
    torch.testing.assert_close(chunked.log_weights, whole.log_weights, rtol=0, atol=0)
    torch.testing.assert_close(
        chunked.log_likelihood, whole.log_likelihood, rtol=ROUNDING_TOLERANCE, atol=0
    )
    torch.testing.assert_close(
        chunked.effective_sample_size, whole.effective_sample_size, rtol=ROUNDING_TOLERANCE, atol=0
    )


def test_result_is_consistent_with_kept_log_weights(sbn, data):
    result = log_likelihood(
        sbn.model, sbn.guide, data, num_samples=50, chunk_size=16, keep_log_weights=True
    )
    assert result.log_weights.shape == (50, NUM_DATA_POINTS)
    torch.testing.assert_close(result.log_likelihood, log_mean_exp(result.log_weights))
    torch.testing.assert_close(
        result.effective_sample_size, effective_sample_size(result.log_weights)
    )
    relative = result.relative_effective_sample_size
    assert ((relative > 0) & (relative <= 1)).all()
    assert not result.log_likelihood.requires_grad
    assert log_likelihood(sbn.model, sbn.guide, data, num_samples=50).log_weights is None


def test_single_sample_has_unit_ess(sbn, data):
    result = log_likelihood(sbn.model, sbn.guide, data, num_samples=1)
    torch.testing.assert_close(result.effective_sample_size, torch.ones_like(result.log_likelihood))


def test_exact_posterior_guide_is_exact_at_any_k():
    """q(h|x) = p(h|x): every weight is p(x), so the estimate is exact and ESS = K."""
    pair = ExactPosteriorPair()
    x = pair.all_data()
    num_samples = 9
    result = log_likelihood(pair.model, pair.guide, x, num_samples=num_samples, chunk_size=4)
    torch.testing.assert_close(result.log_likelihood, pair.log_marginal(x))
    full = torch.full_like(result.log_likelihood, float(num_samples))
    torch.testing.assert_close(result.effective_sample_size, full)


def test_estimates_ignore_subsample_scale(sbn, data):
    num_samples = 30
    draws = guide_draws(sbn, data, num_samples)
    full = log_likelihood(sbn.model, DrawPool(draws)(sbn.guide), data, num_samples=num_samples)
    subsampled = log_likelihood(
        sbn.model, DrawPool(draws)(sbn.guide), data, num_samples=num_samples, num_data=100
    )
    torch.testing.assert_close(subsampled.log_likelihood, full.log_likelihood)


def test_streaming_log_power_sums_match_one_shot():
    log_values = torch.randn(25, 4, dtype=torch.float64) * 30  # spans hundreds of nats
    sums = StreamingLogPowerSums(powers=(0.5, 1.0, 2.0))
    for chunk in log_values.split(6):
        sums.update(chunk)
    assert sums.count == 25
    for power in (0.5, 1.0, 2.0):
        torch.testing.assert_close(sums.log_sum(power), torch.logsumexp(power * log_values, 0))
    with pytest.raises(ValueError, match="power 3"):
        sums.log_sum(3.0)


@pytest.mark.parametrize("bad", [{"num_samples": 0}, {"num_samples": 10, "chunk_size": 0}])
def test_rejects_non_positive_sizes(sbn, data, bad):
    with pytest.raises(ValueError, match="positive integer"):
        log_likelihood(sbn.model, sbn.guide, data, **bad)


def test_all_zero_weights_warn_naming_the_site():
    """A guide that draws z before zeta (and apart from it): in the binary limit zeta = z has zero support."""
    import pyro
    import pyro.distributions as dist

    from pyro_dgm.distributions.binary_limit import BinaryLimit
    from pyro_dgm.infer.estimators.log_likelihood import ZeroImportanceWeightsWarning

    num_units, saturated_logit = 2, 50.0  # sigma(50) is 1 in float64: the guide's zeta is always 1

    def model(x):
        with pyro.plate("data", x.size(0)):
            z = pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(num_units, dtype=torch.float64)).to_event(1))
            smoother = BinaryLimit(logits=torch.zeros(num_units, dtype=torch.float64))
            zeta = pyro.sample("zeta", smoother.conditional(z).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=zeta.sum(-1)), obs=x)

    def guide(x):
        with pyro.plate("data", x.size(0)):
            pyro.sample("z", dist.Bernoulli(torch.zeros(x.size(0), num_units, dtype=torch.float64)).to_event(1))
            logits = torch.full((x.size(0), num_units), saturated_logit, dtype=torch.float64)
            pyro.sample("zeta", BinaryLimit(logits=logits).to_event(1))

    x = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    with pytest.warns(ZeroImportanceWeightsWarning, match=r"for 3 of 3 data points.*model site 'zeta'"):
        result = log_likelihood(model, guide, x, num_samples=7, chunk_size=3)
    assert torch.isneginf(result.log_likelihood).all()

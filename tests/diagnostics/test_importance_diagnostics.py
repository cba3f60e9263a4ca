"""PSIS k-hat and Kish ESS on log-weights whose tail shape and second moment are known.

Target p = N(0, 1), proposal q = N(0, s^2), x ~ q, log w = log p(x) - log q(x), so
E_q[w] = 1 and

- the weights are bounded (true k < 0) for s > 1;
- for s < 1 their tail is Pareto with shape k = 1 - s^2 (P(w > t) ~ t^(-1/(1-s^2)));
  infinite variance from s <= 1/sqrt(2);
- for s > 1/sqrt(2), E_q[w^2] = s^2 / sqrt(2 s^2 - 1), so Kish ESS / K -> sqrt(2 s^2 - 1) / s^2.
"""

import math

import pytest
import torch
from torch.distributions import Normal

from pyro_dgm.diagnostics.importance_diagnostics import (
    MIN_PSIS_NUM_SAMPLES,
    PSIS_KHAT_THRESHOLD,
    importance_summary,
    khat_threshold,
    kish_ess,
    pareto_khat,
    psis,
)

NUM_SAMPLES = 4000
NUM_DATA = 60
Z_TOLERANCE = 4.0
"""Tolerances are this many standard errors of a mean over data points."""
ARVIZ_PRIOR_PSEUDO_DRAWS = 10
ARVIZ_PRIOR_KHAT = 0.5
"""ArviZ's generalised-Pareto fit shrinks k-hat towards 0.5 with the weight of 10 tail draws."""

pytestmark = pytest.mark.usefixtures("arviz_line")


def gaussian_log_weights(proposal_scale: float, num_samples: int = NUM_SAMPLES, num_data: int = NUM_DATA):
    x = proposal_scale * torch.randn(num_samples, num_data, dtype=torch.float64)
    return Normal(0.0, 1.0).log_prob(x) - Normal(0.0, proposal_scale).log_prob(x)


def standard_error(values: torch.Tensor) -> float:
    return values.std().item() / math.sqrt(values.numel())


def test_khat_small_for_matched_proposal():
    khat = pareto_khat(gaussian_log_weights(1.2, num_samples=2000, num_data=40))  # bounded weights
    assert khat.shape == (40,)
    assert khat.max().item() < 0.5


def test_khat_large_for_heavy_tailed_mismatch():
    khat = pareto_khat(gaussian_log_weights(0.3))  # true k = 0.91: infinite variance
    assert khat.mean().item() - Z_TOLERANCE * standard_error(khat) > PSIS_KHAT_THRESHOLD
    summary = importance_summary(gaussian_log_weights(0.3))
    assert summary["fraction_khat_above_threshold"] > 0.5


def test_khat_recovers_the_pareto_shape():
    proposal_scale = 0.8
    true_k = 1 - proposal_scale**2
    khat = pareto_khat(gaussian_log_weights(proposal_scale))
    tail_length = math.ceil(min(NUM_SAMPLES / 5, 3 * math.sqrt(NUM_SAMPLES)))
    expected = (tail_length * true_k + ARVIZ_PRIOR_PSEUDO_DRAWS * ARVIZ_PRIOR_KHAT) / (
        tail_length + ARVIZ_PRIOR_PSEUDO_DRAWS
    )
    assert abs(khat.mean().item() - expected) < Z_TOLERANCE * standard_error(khat)


@pytest.mark.parametrize("proposal_scale", [1.2, 2.0])
def test_kish_ess_matches_second_moment_of_weights(proposal_scale):
    relative_ess = kish_ess(gaussian_log_weights(proposal_scale)) / NUM_SAMPLES
    expected = math.sqrt(2 * proposal_scale**2 - 1) / proposal_scale**2
    assert abs(relative_ess.mean().item() - expected) < Z_TOLERANCE * standard_error(relative_ess)


def test_equal_weights():
    log_weights = torch.full((100, 3), -7.0)
    assert torch.allclose(kish_ess(log_weights), torch.full((3,), 100.0))
    # No tail above the cutoff: ArviZ's convention k = inf (read as unreliable).
    assert torch.isinf(pareto_khat(log_weights)).all()


def test_psis_output_layout_and_normalisation():
    log_weights = gaussian_log_weights(0.9, num_samples=500, num_data=7).float()
    log_weights[0, 0] = -math.inf  # a zero weight is allowed
    smoothed, khat = psis(log_weights)
    assert smoothed.shape == (500, 7) and khat.shape == (7,)
    assert smoothed.dtype == khat.dtype == torch.float32
    assert torch.allclose(torch.logsumexp(smoothed, dim=0), torch.zeros(7), atol=1e-5)
    # Smoothing touches only the tail: the smallest weights keep their order.
    order = torch.argsort(log_weights[:, 1])[:100]
    assert torch.all(torch.diff(smoothed[order, 1]) >= 0)


def test_smallest_sample_size_gets_a_finite_khat():
    """At K = MIN_PSIS_NUM_SAMPLES every ArviZ line fits a tail (arviz-stats takes floor(K/5) draws)."""
    khat = pareto_khat(gaussian_log_weights(1.2, num_samples=MIN_PSIS_NUM_SAMPLES, num_data=5))
    assert torch.isfinite(khat).all()


def test_khat_threshold_depends_on_sample_size():
    assert khat_threshold(100) == pytest.approx(0.5)
    assert khat_threshold(1000) == pytest.approx(2 / 3)
    assert khat_threshold(10_000) == PSIS_KHAT_THRESHOLD


def test_importance_summary_values():
    log_weights = gaussian_log_weights(1.2, num_samples=1000, num_data=20)
    summary = importance_summary(log_weights)
    khat, ess = pareto_khat(log_weights), kish_ess(log_weights)
    log_likelihood = (torch.logsumexp(log_weights, 0) - math.log(1000)).mean().item()
    assert summary["num_samples"] == 1000 and summary["num_data"] == 20
    assert summary["log_likelihood"] == pytest.approx(log_likelihood)
    assert summary["khat_max"] == pytest.approx(khat.max().item())
    assert summary["khat_mean"] == pytest.approx(khat.mean().item())
    assert summary["ess_mean"] == pytest.approx(ess.mean().item())
    assert summary["relative_ess_mean"] == pytest.approx(ess.mean().item() / 1000)
    assert summary["khat_sample_size_threshold"] == pytest.approx(2 / 3)
    assert all(isinstance(value, float) for value in summary.values())


@pytest.mark.parametrize(
    "log_weights, message",
    [
        (torch.zeros(100), "log_weights must have 2 dimensions"),
        (torch.tensor([[0.0, float("nan")]] * 30), "log_weights contains NaN"),
        (torch.tensor([[0.0, float("inf")]] * 30), r"log_weights contains \+inf"),
        (torch.tensor([[0.0, -float("inf")]] * 30), "all zero"),
        (torch.zeros(MIN_PSIS_NUM_SAMPLES - 1, 3), "K=24 samples"),
    ],
)
def test_bad_log_weights(log_weights, message):
    with pytest.raises(ValueError, match=message):
        importance_summary(log_weights)


@pytest.mark.cuda
def test_results_stay_on_the_input_device():
    log_weights = gaussian_log_weights(0.9, num_samples=200, num_data=3).cuda()
    smoothed, khat = psis(log_weights)
    assert smoothed.device == khat.device == kish_ess(log_weights).device == log_weights.device

r"""The fast SBN importance estimates against exact enumeration on the 4-3-2 BiHM.

Every (x, h) of :func:`tiny_bihm` is enumerable, so :math:`\log p(x) = \log \sum_h p(x,h)`,
:math:`\log \tilde p^*(x) = 2 \log \sum_h \sqrt{p(x,h) q(h|x)}` (BiHM Eq. 1) and the
limits of the ESS ratios, :math:`(\mathbb E_q w)^2 / \mathbb E_q w^2`, are exact sums.
The estimators are consistent (bias O(1/K)); with K = 200,000 the statistical error of
each per-example estimate is below MAX_STANDARD_ERROR here, and the checks allow
Z_SCORE_BOUND standard errors of the per-example log-mean (delta method).
"""

from __future__ import annotations

import math

import pyro
import pytest
import torch

from pyro_dgm.bihm.sbn_importance import sbn_importance_estimate, sbn_log_weights
from pyro_dgm.bihm.sbn_partition import SigmoidBeliefStack
from pyro_dgm.infer.estimators.exact import all_binary_configurations
from tests.infer.exact_expectations import exact_log_terms
from tests.infer.small_models import TINY_BIHM_LAYER_SIZES, tiny_bihm

Z_SCORE_BOUND = 4.0
NUM_SAMPLES = 200_000
MAX_STANDARD_ERROR = 0.06
"""The untrained tiny net's weights vary a lot (Var(w)/p^2 up to 570): the sharpest check is that its
worst example stays below this, in nats."""


def ess_ratio_and_standard_error(log_q: torch.Tensor, log_v: torch.Tensor, num_samples: int):
    r"""Kish's :math:`(\mathbb E v)^2 / \mathbb E v^2` under q, exact, and the delta-method standard
    error of its K-sample estimate :math:`\bar v^2 / \overline{v^2}` (needs :math:`\mathbb E v^3, \mathbb E v^4`)."""
    m1, m2, m3, m4 = (torch.logsumexp(log_q + power * log_v, dim=1).exp() for power in (1, 2, 3, 4))
    ratio = m1**2 / m2
    d1, d2 = 2 * m1 / m2, -(m1**2) / m2**2  # partial derivatives of m1^2 / m2
    variance = d1**2 * (m2 - m1**2) + d2**2 * (m4 - m2**2) + 2 * d1 * d2 * (m3 - m1 * m2)
    return ratio, (variance / num_samples).sqrt()


def exact_quantities():
    model, guide = tiny_bihm(torch.float64)
    log_p, log_q = exact_log_terms(model, guide)  # (16 x, 32 h)
    log_w = log_p - log_q
    q = log_q.exp()
    log_mean_w = torch.logsumexp(log_p, dim=1)  # E_q w = p(x)
    log_mean_w2 = torch.logsumexp(log_q + 2 * log_w, dim=1)
    log_mean_sqrt_w = torch.logsumexp(log_q + 0.5 * log_w, dim=1)
    assert torch.allclose(q.sum(dim=1), torch.ones(16, dtype=torch.float64))
    return model, guide, {
        "log_p": log_mean_w,
        "log_p_tilde_star": 2 * log_mean_sqrt_w,
        "ess": ess_ratio_and_standard_error(log_q, log_w, NUM_SAMPLES),
        "bihm_ess": ess_ratio_and_standard_error(log_q, 0.5 * log_w, NUM_SAMPLES),
        "relative_variance": (log_mean_w2 - 2 * log_mean_w).exp() - 1,  # Var_q(w) / p(x)^2
        "relative_variance_sqrt": (log_mean_w - 2 * log_mean_sqrt_w).exp() - 1,
    }


def test_log_weights_equal_the_trace_log_densities():
    model, guide = tiny_bihm(torch.float64)
    stack = SigmoidBeliefStack.from_modules(model, guide)
    x = all_binary_configurations(TINY_BIHM_LAYER_SIZES[0], dtype=torch.float64)
    log_p, log_q = exact_log_terms(model, guide)
    pyro.set_rng_seed(0)
    log_weights = sbn_log_weights(stack, x, 50)  # (50, 16): every value must be one of the exact log w(x, h)
    exact = (log_p - log_q).unsqueeze(0)  # (1, 16, 32)
    distance = (log_weights.unsqueeze(-1) - exact).abs().min(dim=-1).values
    assert distance.max().item() < 1e-10


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_estimates_match_exact_enumeration(dtype):
    model, guide, exact = exact_quantities()
    model, guide = model.to(dtype), guide.to(dtype)
    x = all_binary_configurations(TINY_BIHM_LAYER_SIZES[0], dtype=dtype)
    pyro.set_rng_seed(0)
    estimate = sbn_importance_estimate(model, guide, x, NUM_SAMPLES, chunk_size=30_000)  # remainder chunk too
    standard_error = (exact["relative_variance"] / NUM_SAMPLES).sqrt()
    standard_error_sqrt = (exact["relative_variance_sqrt"] / NUM_SAMPLES).sqrt()
    assert standard_error.max() < MAX_STANDARD_ERROR
    assert ((estimate.log_likelihood.double() - exact["log_p"]).abs() < Z_SCORE_BOUND * standard_error).all()
    # 2 log mean sqrt(w): twice the delta-method error of the log-mean of sqrt(w)
    assert ((estimate.log_p_tilde_star.double() - exact["log_p_tilde_star"]).abs()
            < 2 * Z_SCORE_BOUND * standard_error_sqrt).all()
    assert (estimate.log_p_tilde_star <= estimate.log_likelihood + 1e-5).all()  # Cauchy-Schwarz: p~* <= p
    ess_ratio = estimate.effective_sample_size.double() / NUM_SAMPLES
    bihm_ess_ratio = estimate.bihm_effective_sample_size.double() / NUM_SAMPLES
    for measured, (ratio, ratio_se) in ((ess_ratio, exact["ess"]), (bihm_ess_ratio, exact["bihm_ess"])):
        assert ((measured - ratio).abs() < Z_SCORE_BOUND * ratio_se).all()
    assert (exact["bihm_ess"][0] - exact["ess"][0] > Z_SCORE_BOUND * exact["bihm_ess"][1]).all()  # tells the two apart


def test_wrong_data_width_names_x():
    model, guide = tiny_bihm(torch.float64)
    with pytest.raises(ValueError, match="x must have shape"):
        sbn_importance_estimate(model, guide, torch.zeros(3, 5, dtype=torch.float64), 10)

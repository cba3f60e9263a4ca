r"""Reliability of importance-weighted estimates: PSIS Pareto :math:`\hat k` and Kish ESS.

For each data point :math:`x_b` an importance-weighted estimator draws
:math:`h_k \sim q(h \mid x_b)`, :math:`k = 1..K`, and averages the weights

.. math::

    w_{k,b} = \frac{p(x_b, h_k)}{q(h_k \mid x_b)}, \qquad
    \widehat{p}(x_b) = \frac{1}{K} \sum_k w_{k,b}.

The estimate is only as good as the right tail of the weight distribution. Pareto
smoothed importance sampling (Vehtari, Simpson, Gelman, Yao & Gabry, 2024) fits a
generalised Pareto distribution to the :math:`M = \lceil \min(K/5, 3\sqrt{K}) \rceil`
largest weights; its shape :math:`\hat k` estimates how many moments the weights
have (:math:`1/k` of them). :math:`\hat k < 1/2` means finite variance;
:math:`\hat k > 0.7` means the estimate is unreliable for any practical :math:`K`,
whatever the effective sample size says. Kish's effective sample size
:math:`(\sum_k w_k)^2 / \sum_k w_k^2` is the complementary, cheaper measure; it is
itself a ratio of noisy moments and can look healthy when the variance is infinite.

Everything here takes log-weights of shape ``(K, B)`` — particles first, as
:mod:`pyro_dgm.infer` produces them — on any device, and returns tensors on that
device. ArviZ does the Pareto fit on CPU NumPy (``arviz.psislw`` of ``arviz`` < 1 or
``arviz_stats``' ``psislw``, whichever :mod:`~pyro_dgm.diagnostics.arviz_backend` chose).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pyro_dgm.diagnostics import arviz_backend
from pyro_dgm.diagnostics._tensors import ArrayLike, checked_tensor, to_numpy
from pyro_dgm.infer.importance import effective_sample_size, log_mean_exp

PSIS_KHAT_THRESHOLD = 0.7
r"""Pareto :math:`\hat k` above which an importance-sampling estimate is unreliable.

Vehtari, Simpson, Gelman, Yao & Gabry (2024), *Pareto smoothed importance sampling*,
JMLR 25(72), Sec. 3.2 (0.7 already in the 2017 arXiv version). The paper refines it
to the sample-size dependent :func:`khat_threshold`, which equals 0.7 for
:math:`K \ge 2155`.
"""

MIN_PARETO_TAIL_LENGTH = arviz_backend.MIN_PARETO_TAIL_LENGTH
r"""ArviZ fits the Pareto tail only with at least 5 tail draws; otherwise :math:`\hat k = \infty`."""

MIN_PSIS_NUM_SAMPLES = 25
r"""Smallest K whose tail holds ``MIN_PARETO_TAIL_LENGTH`` draws in both ArviZ lines: the tail is
:math:`\lceil \min(K/5, 3\sqrt K) \rceil` draws in ``arviz`` < 1 but :math:`\lfloor K/5 \rfloor`
(K ≤ 225) in ``arviz-stats``."""


def khat_threshold(num_samples: int) -> float:
    r"""Sample-size dependent reliability threshold :math:`\min(1 - 1/\log_{10} K,\ 0.7)`.

    Vehtari et al. (2024), Sec. 3.2: with :math:`K` draws a Pareto tail of shape
    :math:`k` is estimated reliably only below this value (0.5 at K = 100, 0.67 at
    K = 1000, 0.7 from K = 2155 on).
    """
    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2, got {num_samples}")
    return min(1.0 - 1.0 / math.log10(num_samples), PSIS_KHAT_THRESHOLD)


def _checked_log_weights(log_weights: ArrayLike) -> torch.Tensor:
    log_weights = checked_tensor(log_weights, "log_weights", ndim=2, allow_neg_inf=True)
    if torch.isneginf(log_weights).all(dim=0).any():
        raise ValueError(
            "log_weights has a data point (column) whose weights are all zero (-inf): "
            "its estimate and diagnostics are undefined"
        )
    return log_weights


def psis(log_weights: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Pareto-smoothed, self-normalised log-weights and :math:`\hat k` per data point.

    Args:
        log_weights: ``(K, B)`` log importance weights :math:`\log w_{k,b}`, particles
            first; :math:`-\infty` (zero weight) is allowed, NaN is not.

    Returns:
        ``(smoothed, khat)``: ``smoothed`` of shape ``(K, B)`` with
        :math:`\operatorname{logsumexp}_k = 0` per data point, and ``khat`` of shape
        ``(B,)``, both on the device and dtype of ``log_weights``. ``khat`` is ``inf``
        when the tail has fewer than ``MIN_PARETO_TAIL_LENGTH`` distinct draws above the
        cutoff (ties, e.g. a constant column: ArviZ's convention, read as unreliable).

    Raises:
        ValueError: wrong rank, NaN or +inf, an all-zero column, or
            ``K < MIN_PSIS_NUM_SAMPLES``.
    """
    log_weights = _checked_log_weights(log_weights)
    num_samples = log_weights.size(0)
    if num_samples < MIN_PSIS_NUM_SAMPLES:
        raise ValueError(
            f"log_weights has K={num_samples} samples (dim 0): the Pareto tail fit needs "
            f"K >= {MIN_PSIS_NUM_SAMPLES} ({MIN_PARETO_TAIL_LENGTH} tail draws)"
        )
    # The backends take samples on the *last* axis: hand them (B, K), in float64 for the fit.
    log_weights_by_data = np.ascontiguousarray(to_numpy(log_weights).T, dtype=np.float64)
    smoothed, khat = arviz_backend.ACTIVE.psislw(log_weights_by_data)
    like = dict(device=log_weights.device, dtype=log_weights.dtype)
    return torch.as_tensor(smoothed.T.copy(), **like), torch.as_tensor(np.asarray(khat), **like)


def pareto_khat(log_weights: ArrayLike) -> torch.Tensor:
    r"""PSIS Pareto shape :math:`\hat k` of each data point, shape ``(B,)``; see :func:`psis`."""
    return psis(log_weights)[1]


def kish_ess(log_weights: ArrayLike) -> torch.Tensor:
    r"""Kish's effective sample size per data point, shape ``(B,)``, in :math:`[1, K]`.

    .. math::

        \mathrm{ESS}_b = \frac{(\sum_k w_{k,b})^2}{\sum_k w_{k,b}^2},

    computed in log space by :func:`pyro_dgm.infer.importance.effective_sample_size`.
    For iid draws from a proposal :math:`q` it converges to
    :math:`K / \mathbb{E}_q[w^2]` (with :math:`\mathbb{E}_q[w] = 1`).
    """
    return effective_sample_size(_checked_log_weights(log_weights), dim=0)


def importance_summary(log_weights: ArrayLike) -> dict[str, float]:
    r"""Compact reliability summary of an importance-weighted evaluation, for logs and the CLI.

    Args:
        log_weights: ``(K, B)`` log-weights, particles first.

    Returns:
        Plain floats (JSON-serialisable; ``inf`` can occur, see :func:`psis`):

        - ``num_samples``, ``num_data``: K and B;
        - ``log_likelihood``: mean over data points of
          :math:`\log \frac1K \sum_k w_{k,b}`;
        - ``khat_mean``, ``khat_median``, ``khat_max`` over data points;
        - ``khat_threshold``: :data:`PSIS_KHAT_THRESHOLD` (0.7) and
          ``fraction_khat_above_threshold``: share of data points above it;
        - ``khat_sample_size_threshold``: :func:`khat_threshold` ``(K)`` and
          ``fraction_khat_above_sample_size_threshold``;
        - ``ess_mean``, ``ess_min``: Kish ESS over data points, and
          ``relative_ess_mean`` = ``ess_mean / K``.
    """
    log_weights = _checked_log_weights(log_weights)
    num_samples, num_data = log_weights.shape
    khat = pareto_khat(log_weights)
    ess = kish_ess(log_weights)
    sample_size_threshold = khat_threshold(num_samples)
    return {
        "num_samples": float(num_samples),
        "num_data": float(num_data),
        "log_likelihood": log_mean_exp(log_weights, dim=0).mean().item(),
        "khat_mean": khat.mean().item(),
        "khat_median": khat.median().item(),
        "khat_max": khat.max().item(),
        "khat_threshold": PSIS_KHAT_THRESHOLD,
        "fraction_khat_above_threshold": (khat > PSIS_KHAT_THRESHOLD).double().mean().item(),
        "khat_sample_size_threshold": sample_size_threshold,
        "fraction_khat_above_sample_size_threshold": (khat > sample_size_threshold)
        .double()
        .mean()
        .item(),
        "ess_mean": ess.mean().item(),
        "ess_min": ess.min().item(),
        "relative_ess_mean": ess.mean().item() / num_samples,
    }

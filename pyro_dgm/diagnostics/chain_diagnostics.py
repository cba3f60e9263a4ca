r"""Convergence of Markov chains: rank-normalised split :math:`\hat R`, bulk and tail ESS.

For :math:`M` chains of :math:`N` draws of a scalar :math:`\theta` (an energy, the share
of units on, one unit), Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021),
*Rank-normalization, folding, and localization: an improved* :math:`\hat R`,
Bayesian Analysis 16(2), split every chain in halves, replace draws by the normal
scores of their ranks over all chains, and compute

.. math::

    \hat R = \sqrt{\frac{\frac{N-1}{N} W + \frac1N B}{W}},

with :math:`W` the mean within-chain and :math:`B/N` the between-chain variance
(ArviZ reports the larger of the bulk and folded versions). Chains stuck in
different modes give :math:`\hat R \gg 1`; well-mixed chains give
:math:`\hat R < 1.01`. The bulk ESS is :math:`MN/\hat\tau` with :math:`\hat\tau` the
integrated autocorrelation time of the rank-normalised draws (Geyer's initial
monotone sequence); the tail ESS is the smaller ESS of the 5% and 95% quantile
indicators.

Traces are taken in sampler order, ``(num_steps, num_chains, ...)``, on any device;
:func:`arviz.rhat` and :func:`arviz.ess` compute on CPU NumPy.
"""

from __future__ import annotations

import math

import arviz
import numpy as np
import torch

from pyro_dgm.diagnostics._tensors import ArrayLike, checked_tensor, to_numpy
from pyro_dgm.diagnostics.arviz_conversion import checked_chains, chains_to_inference_data

RHAT_THRESHOLD = 1.01
r""":math:`\hat R` below which chains are considered mixed (Vehtari et al. 2021, Sec. 4)."""

MIN_NUM_STEPS = 4
"""ArviZ returns NaN for fewer draws per chain (each split half needs two)."""


def _checked_trace(trace: ArrayLike, name: str = "trace") -> torch.Tensor:
    trace = checked_tensor(trace, name, min_ndim=2)
    if trace.size(0) < MIN_NUM_STEPS:
        raise ValueError(
            f"{name} has {trace.size(0)} steps (dim 0): R-hat and ESS need at least {MIN_NUM_STEPS}"
        )
    return trace


def _per_element(trace: ArrayLike, statistic) -> torch.Tensor:
    trace = _checked_trace(trace)
    # ArviZ reads a bare array as one variable "x" of dims (chain, draw, *shape).
    dataset = arviz.convert_to_dataset(to_numpy(trace.transpose(0, 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = statistic(dataset)["x"].values
    return torch.as_tensor(np.asarray(values), dtype=trace.dtype, device=trace.device)


def rank_rhat(trace: ArrayLike) -> torch.Tensor:
    r"""Rank-normalised split :math:`\hat R` of every element of a ``(num_steps, num_chains, ...)`` trace.

    Returns a tensor of shape ``trace.shape[2:]`` on the device of ``trace``; NaN for an
    element that is constant across all chains and steps.
    """
    return _per_element(trace, lambda array: arviz.rhat(array, method="rank"))


def bulk_ess(trace: ArrayLike) -> torch.Tensor:
    """Bulk effective sample size of every element of a ``(num_steps, num_chains, ...)`` trace."""
    return _per_element(trace, lambda array: arviz.ess(array, method="bulk"))


def tail_ess(trace: ArrayLike) -> torch.Tensor:
    """Tail (5% and 95% quantile) effective sample size of every element of a trace."""
    return _per_element(trace, lambda array: arviz.ess(array, method="tail"))


def _nan_extreme(values: np.ndarray, reduce) -> float:
    finite = values[np.isfinite(values)]
    return float(reduce(finite)) if finite.size else math.nan


def chain_summary(states: ArrayLike, energies: ArrayLike | None = None) -> dict[str, float]:
    r"""Compact convergence summary of chains over binary units, for logs and the CLI.

    Args:
        states: ``(num_steps, num_chains, num_units)`` chain states (steps = draws).
        energies: optional ``(num_steps, num_chains)`` energies of those states.

    Returns:
        Plain floats: ``num_steps``, ``num_chains``, ``num_units``; for ``energy`` (if
        given) and ``mean_activation`` (the share of units on) each of ``<name>_rhat``,
        ``<name>_ess_bulk``, ``<name>_ess_tail``; over units, ``unit_rhat_max``,
        ``unit_ess_bulk_min`` and ``unit_ess_tail_min`` (units constant in every chain
        have no :math:`\hat R` and are skipped; NaN if all are); ``rhat_max`` over all of
        these and ``rhat_threshold`` (:data:`RHAT_THRESHOLD`).
    """
    states, energies = checked_chains(states, energies)
    _checked_trace(states, "states")
    posterior = chains_to_inference_data(states, energies).posterior
    with np.errstate(invalid="ignore", divide="ignore"):
        rhat = arviz.rhat(posterior, method="rank")
        ess = {method: arviz.ess(posterior, method=method) for method in ("bulk", "tail")}
    num_steps, num_chains, num_units = states.shape
    summary = {
        "num_steps": float(num_steps),
        "num_chains": float(num_chains),
        "num_units": float(num_units),
    }
    scalars = ["mean_activation"] + (["energy"] if energies is not None else [])
    for name in scalars:
        summary[f"{name}_rhat"] = float(rhat[name])
        summary[f"{name}_ess_bulk"] = float(ess["bulk"][name])
        summary[f"{name}_ess_tail"] = float(ess["tail"][name])
    summary["unit_rhat_max"] = _nan_extreme(rhat["state"].values, np.max)
    summary["unit_ess_bulk_min"] = _nan_extreme(ess["bulk"]["state"].values, np.min)
    summary["unit_ess_tail_min"] = _nan_extreme(ess["tail"]["state"].values, np.min)
    rhats = np.array([summary[f"{name}_rhat"] for name in scalars] + [summary["unit_rhat_max"]])
    summary["rhat_max"] = _nan_extreme(rhats, np.max)
    summary["rhat_threshold"] = RHAT_THRESHOLD
    return summary

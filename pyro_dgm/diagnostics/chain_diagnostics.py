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
ArviZ's ``rhat`` and ``ess`` (of the line :mod:`~pyro_dgm.diagnostics.arviz_backend`
chose) compute on CPU NumPy. :func:`record_block_gibbs`
records such traces for the chains of an RBM, one draw per sweep, vectorised over chains.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
import xarray

from pyro_dgm.diagnostics import arviz_backend, arviz_conversion
from pyro_dgm.diagnostics._tensors import ArrayLike, checked_tensor, to_numpy
from pyro_dgm.diagnostics.arviz_conversion import (
    checked_chains,
    checked_traces,
    chains_posterior,
    sample_dataset,
    traces_posterior,
)
from pyro_dgm.distributions.argument_checks import check_int
from pyro_dgm.distributions.gibbs import block_gibbs
from pyro_dgm.distributions.rbm import RBM

RHAT_THRESHOLD = 1.01
r""":math:`\hat R` below which chains are considered mixed (Vehtari et al. 2021, Sec. 4)."""

MIN_NUM_STEPS = 4
"""ArviZ returns NaN for fewer draws per chain (each split half needs two)."""

ARVIZ_LAYOUT_WARNING = r"More chains \(\d+\) than draws \(\d+\)"
"""ArviZ's warning that an array with more chains than draws may have its axes swapped."""


@contextlib.contextmanager
def known_chain_layout() -> Iterator[None]:
    """Silence :data:`ARVIZ_LAYOUT_WARNING` inside the block, for arrays laid out ``(chain, draw, ...)`` by construction.

    Many short chains are normal here (e.g. 100 persistent chains continued for 50 sweeps).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=ARVIZ_LAYOUT_WARNING, category=UserWarning)
        yield


def _checked_trace(trace: ArrayLike, name: str = "trace") -> torch.Tensor:
    trace = checked_tensor(trace, name, min_ndim=2)
    if trace.size(0) < MIN_NUM_STEPS:
        raise ValueError(
            f"{name} has {trace.size(0)} steps (dim 0): R-hat and ESS need at least {MIN_NUM_STEPS}"
        )
    return trace


def _per_element(trace: ArrayLike, statistic) -> torch.Tensor:
    trace = _checked_trace(trace)
    dataset = sample_dataset({"x": to_numpy(trace.transpose(0, 1))})  # one variable of dims (chain, draw, ...)
    with known_chain_layout(), np.errstate(invalid="ignore", divide="ignore"):
        values = statistic(dataset)["x"].values
    return torch.as_tensor(np.asarray(values), dtype=trace.dtype, device=trace.device)


def rank_rhat(trace: ArrayLike) -> torch.Tensor:
    r"""Rank-normalised split :math:`\hat R` of every element of a ``(num_steps, num_chains, ...)`` trace.

    Returns a tensor of shape ``trace.shape[2:]`` on the device of ``trace``; NaN for an
    element that is constant across all chains and steps.
    """
    return _per_element(trace, lambda array: arviz_backend.ACTIVE.rhat(array))


def bulk_ess(trace: ArrayLike) -> torch.Tensor:
    """Bulk effective sample size of every element of a ``(num_steps, num_chains, ...)`` trace."""
    return _per_element(trace, lambda array: arviz_backend.ACTIVE.ess(array, "bulk"))


def tail_ess(trace: ArrayLike) -> torch.Tensor:
    """Tail (5% and 95% quantile) effective sample size of every element of a trace."""
    return _per_element(trace, lambda array: arviz_backend.ACTIVE.ess(array, "tail"))


def _nan_extreme(values: np.ndarray, reduce) -> float:
    finite = values[np.isfinite(values)]
    return float(reduce(finite)) if finite.size else math.nan


def _summarise(posterior: xarray.Dataset, scalars: list[str]) -> dict[str, float]:
    """R-hat and ESS of the ``(chain, draw)`` variables ``scalars`` and, if present, of every unit of ``state``."""
    backend = arviz_backend.ACTIVE
    with known_chain_layout(), np.errstate(invalid="ignore", divide="ignore"):
        rhat = backend.rhat(posterior)
        ess = {method: backend.ess(posterior, method) for method in ("bulk", "tail")}
    summary = {}
    for name in scalars:
        summary[f"{name}_rhat"] = float(rhat[name])
        summary[f"{name}_ess_bulk"] = float(ess["bulk"][name])
        summary[f"{name}_ess_tail"] = float(ess["tail"][name])
    keys = {statistic: [f"{name}_{statistic}" for name in scalars] for statistic in ("rhat", "ess_bulk", "ess_tail")}
    if "state" in posterior:
        summary["unit_rhat_max"] = _nan_extreme(rhat["state"].values, np.max)
        summary["unit_ess_bulk_min"] = _nan_extreme(ess["bulk"]["state"].values, np.min)
        summary["unit_ess_tail_min"] = _nan_extreme(ess["tail"]["state"].values, np.min)
        for statistic, unit_key in (("rhat", "unit_rhat_max"), ("ess_bulk", "unit_ess_bulk_min"),
                                    ("ess_tail", "unit_ess_tail_min")):
            keys[statistic].append(unit_key)
    summary["rhat_max"] = _nan_extreme(np.array([summary[key] for key in keys["rhat"]]), np.max)
    summary["ess_bulk_min"] = _nan_extreme(np.array([summary[key] for key in keys["ess_bulk"]]), np.min)
    summary["ess_tail_min"] = _nan_extreme(np.array([summary[key] for key in keys["ess_tail"]]), np.min)
    summary["rhat_threshold"] = RHAT_THRESHOLD
    return summary


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
        have no :math:`\hat R` and are skipped; NaN if all are); the worst over all of
        these, ``rhat_max``, ``ess_bulk_min`` and ``ess_tail_min``; and
        ``rhat_threshold`` (:data:`RHAT_THRESHOLD`).
    """
    states, energies = checked_chains(states, energies)
    _checked_trace(states, "states")
    posterior = chains_posterior(states, energies)
    num_steps, num_chains, num_units = states.shape
    summary = {
        "num_steps": float(num_steps),
        "num_chains": float(num_chains),
        "num_units": float(num_units),
    }
    scalars = ["mean_activation"] + (["energy"] if energies is not None else [])
    return {**summary, **_summarise(posterior, scalars)}


def _checked_traces(traces: Mapping[str, ArrayLike]) -> dict[str, torch.Tensor]:
    checked = checked_traces(traces)
    for name, trace in checked.items():
        _checked_trace(trace, f"traces['{name}']")
    return checked


def trace_summary(traces: Mapping[str, ArrayLike]) -> dict[str, float]:
    r"""R-hat and bulk/tail ESS of several scalar traces of the same chains, and the worst of each.

    Each trace :math:`\theta^{(n)}_m` (draw :math:`n` of chain :math:`m`) is a statistic of
    the chains' states, e.g. an energy or the mean activation of one layer; the chains
    are mixed only if every tracked :math:`\theta` is (:math:`\hat R \le`
    :data:`RHAT_THRESHOLD` for all).

    Args:
        traces: name → ``(num_steps, num_chains)`` trace; all of one shape, at least
            :data:`MIN_NUM_STEPS` steps.

    Returns:
        Plain floats: ``num_steps``, ``num_chains``; ``<name>_rhat``, ``<name>_ess_bulk``,
        ``<name>_ess_tail`` for every name; ``rhat_max``, ``ess_bulk_min``,
        ``ess_tail_min`` over the names (a constant trace has no :math:`\hat R` and is
        skipped; NaN if all are); ``rhat_threshold``.
    """
    checked = _checked_traces(traces)
    num_steps, num_chains = next(iter(checked.values())).shape
    summary = {"num_steps": float(num_steps), "num_chains": float(num_chains)}
    return {**summary, **_summarise(traces_posterior(checked), list(checked))}


def record_block_gibbs(rbm: RBM, states: torch.Tensor, num_sweeps: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Continue block-Gibbs chains of an RBM from ``states``, keeping every sweep's state and energy.

    Sweep :math:`n` draws :math:`z_2 \sim p(z_2 \mid z_1)`, then :math:`z_1 \sim p(z_1 \mid z_2)`
    (:func:`~pyro_dgm.distributions.gibbs.block_gibbs`) on all chains at once, and records
    :math:`z^{(n)} = [z_1, z_2]` with its energy

    .. math::

        E(z) = -a_1^\top z_1 - a_2^\top z_2 - z_1^\top W z_2 \qquad \text{(DVAE Eq. 6)} .

    Args:
        rbm: an RBM with batch shape ``()``.
        states: ``(num_chains, n1 + n2)`` starting states (e.g. the persistent chains of
            :class:`~pyro_dgm.distributions.gibbs.PersistentChains`); only :math:`z_1` is
            used, as the first draw is :math:`z_2 \mid z_1`.
        num_sweeps: draws per chain (the start is not one of them).

    Returns:
        ``(states, energies)`` of shapes ``(num_sweeps, num_chains, n1 + n2)`` and
        ``(num_sweeps, num_chains)``, detached, ready for :func:`chain_summary`.

    Example::

        states, energies = record_block_gibbs(rbm, persistent.chains, num_sweeps=200)
        chain_summary(states, energies)["rhat_max"]   # > RHAT_THRESHOLD: not mixed
    """
    check_int("num_sweeps", num_sweeps)
    if rbm.batch_shape:
        raise ValueError(f"record_block_gibbs needs an RBM of batch shape (), got {tuple(rbm.batch_shape)}")
    num_units = rbm.num_units1 + rbm.num_units2
    if states.dim() != 2 or states.size(-1) != num_units:
        raise ValueError(f"states must have shape (num_chains, {num_units}), got {tuple(states.shape)}")
    z1 = states[:, : rbm.num_units1].to(device=rbm.bias1.device, dtype=rbm.bias1.dtype)
    trace = torch.empty(num_sweeps, *z1.shape[:-1], num_units, dtype=z1.dtype, device=z1.device)
    for sweep in range(num_sweeps):
        z1, z2 = block_gibbs(rbm, z1, num_sweeps=1)
        trace[sweep, :, : rbm.num_units1] = z1
        trace[sweep, :, rbm.num_units1 :] = z2
    with torch.no_grad():
        energies = -rbm.unnormalized_log_prob(trace)
    return trace, energies


def __getattr__(name: str) -> Any:
    """``traces_to_inference_data``, moved to :mod:`~pyro_dgm.diagnostics.arviz_conversion`, with a warning, for one release."""
    if name == "traces_to_inference_data":
        warnings.warn(
            f"{__name__}.{name} moved to {arviz_conversion.__name__}.{name}; import it from there "
            "(the old path will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return arviz_conversion.traces_to_inference_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

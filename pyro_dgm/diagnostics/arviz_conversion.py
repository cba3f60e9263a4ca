r"""Conversion of guide samples, importance weights and Markov chains to ArviZ containers.

Three kinds of draws come out of a deep generative model with discrete latents:

- **guide posterior samples** :math:`h_s \sim q(h \mid x_b)`: a dict of site name to a
  tensor ``(num_samples, B, *event)`` → group ``posterior`` with dims
  ``(chain, draw, data, <site>_unit)`` (one chain: the draws are independent);
- **importance log-weights** :math:`\log w_{k,b}`, ``(K, B)`` → group
  ``sample_stats`` (``log_weight`` and the PSIS-smoothed ``smoothed_log_weight``,
  dims ``(chain, draw, data)``) plus the per-data-point group
  ``importance_diagnostics`` (``pareto_k``, ``ess``, ``iw_log_likelihood``, dim
  ``data``). The weights are sampler statistics of draws of :math:`h`, not the
  pointwise log-likelihood of posterior draws that ArviZ's ``log_likelihood`` group
  holds, so they are kept out of that group: :func:`arviz.loo` on them would
  compute a meaningless quantity;
- **Markov chains** (persistent RBM chains, Gibbs chains of :math:`p^*`):
  states ``(num_steps, num_chains, num_units)`` and optional energies
  ``(num_steps, num_chains)`` → group ``posterior`` with ``state`` of dims
  ``(chain, draw, unit)``, ``mean_activation`` (the share of units on) and
  ``energy``, of dims ``(chain, draw)``.
  Named scalar traces ``{name: (num_steps, num_chains)}`` (e.g. the energy of each
  chain after each sweep) → group ``posterior``, one variable of dims ``(chain, draw)``
  per name (:func:`traces_to_inference_data`).

The container is the one of the ArviZ line in use
(:mod:`pyro_dgm.diagnostics.arviz_backend`): ``arviz.InferenceData`` with ``arviz`` < 1,
``xarray.DataTree`` with ``arviz-base``/``arviz-stats``. Either way every group is an
``xarray.Dataset`` built here, reached as ``data["posterior"]`` (or ``data.posterior``),
with the same variables, dims and coordinates.

Tensors may live on any device; they are moved to CPU NumPy here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray

from pyro_dgm.diagnostics import arviz_backend
from pyro_dgm.diagnostics._tensors import ArrayLike, as_tensor, checked_tensor, to_numpy
from pyro_dgm.diagnostics.importance_diagnostics import (
    PSIS_KHAT_THRESHOLD,
    kish_ess,
    psis,
)
from pyro_dgm.infer.importance import log_mean_exp

CHAIN_DIM = "chain"
DRAW_DIM = "draw"
DATA_DIM = "data"
UNIT_DIM = "unit"
IMPORTANCE_DIAGNOSTICS_GROUP = "importance_diagnostics"
"""Name of the group of per-data-point importance diagnostics (not part of ArviZ's schema)."""
INFERENCE_LIBRARY = "pyro_dgm"
ROOT_ATTRS = {"inference_library": INFERENCE_LIBRARY}


def sample_dataset(
    variables: Mapping[str, np.ndarray],
    dims: Mapping[str, Sequence[str]] | None = None,
    coords: Mapping[str, Sequence[Any]] | None = None,
) -> xarray.Dataset:
    """An ArviZ group: every array is ``(chain, draw, *rest)``, ``rest`` named by ``dims[name]``.

    ``chain`` and ``draw`` get integer coordinates from 0; so does every other dim
    not in ``coords``; a dim missing from ``dims`` is named ``<name>_dim_<i>`` as ArviZ does.
    """
    dims, coords = dims or {}, dict(coords or {})
    data_vars = {}
    for name, array in variables.items():
        rest = list(dims.get(name, [f"{name}_dim_{i}" for i in range(array.ndim - 2)]))
        if len(rest) != array.ndim - 2:
            raise ValueError(f"{name} has shape {array.shape}: (chain, draw) and {len(rest)} named dims expected")
        data_vars[name] = ((CHAIN_DIM, DRAW_DIM, *rest), array)
        for dim, size in zip((CHAIN_DIM, DRAW_DIM, *rest), array.shape):
            coords.setdefault(dim, np.arange(size))
    return xarray.Dataset(data_vars, coords=coords)


def make_tree(**groups: xarray.Dataset) -> Any:
    """The active ArviZ line's container of ``groups``, with :data:`ROOT_ATTRS`."""
    return arviz_backend.ACTIVE.make_tree(groups, ROOT_ATTRS)


def _data_coord(data_index: ArrayLike | None, num_data: int) -> list[int]:
    if data_index is None:
        return list(range(num_data))
    index = as_tensor(data_index, "data_index").reshape(-1)
    if index.numel() != num_data:
        raise ValueError(f"data_index has {index.numel()} entries for {num_data} data points")
    return [int(i) for i in index.tolist()]


def _unit_dims(site: str, event_shape: torch.Size) -> list[str]:
    if len(event_shape) == 1:
        return [f"{site}_{UNIT_DIM}"]
    return [f"{site}_{UNIT_DIM}_{i}" for i in range(len(event_shape))]


def guide_samples_to_inference_data(
    samples: Mapping[str, ArrayLike], *, data_index: ArrayLike | None = None
) -> Any:
    """Guide posterior samples of every data point as the ``posterior`` group of an ArviZ container.

    Args:
        samples: site name → tensor of shape ``(num_samples, B, *event)``: independent
            draws :math:`h_s \\sim q(h \\mid x_b)`; every site shares ``num_samples`` and ``B``.
        data_index: coordinate values of the ``data`` dim (e.g. the rows of the test set);
            ``0..B-1`` by default.

    Returns:
        the container (``InferenceData`` / ``DataTree``) whose ``posterior`` holds each site with dims
        ``(chain, draw, data, <site>_unit)`` (``<site>_unit_<i>`` for several event dims,
        none for a scalar site), ``chain`` of size 1.

    Example:
        >>> idata = guide_samples_to_inference_data({"h1": torch.zeros(10, 4, 3)})
        >>> idata["posterior"]["h1"].dims
        ('chain', 'draw', 'data', 'h1_unit')
    """
    if not samples:
        raise ValueError("samples is empty: pass at least one site")
    tensors = {
        site: checked_tensor(value, f"samples['{site}']", min_ndim=2)
        for site, value in samples.items()
    }
    first_site, first = next(iter(tensors.items()))
    leading = first.shape[:2]
    for site, value in tensors.items():
        if value.shape[:2] != leading:
            raise ValueError(
                f"samples['{site}'] has leading shape (num_samples, B) = {tuple(value.shape[:2])} "
                f"but samples['{first_site}'] has {tuple(leading)}"
            )
    posterior = {site: to_numpy(value)[None] for site, value in tensors.items()}
    dims = {site: [DATA_DIM] + _unit_dims(site, value.shape[2:]) for site, value in tensors.items()}
    coords = {DATA_DIM: _data_coord(data_index, leading[1])}
    return make_tree(posterior=sample_dataset(posterior, dims, coords))


def importance_weights_to_inference_data(
    log_weights: ArrayLike, *, data_index: ArrayLike | None = None
) -> Any:
    r"""Importance log-weights ``(K, B)`` and their per-data-point reliability diagnostics.

    Returns:
        an ArviZ container (``InferenceData`` / ``DataTree``) with

        - ``sample_stats``: ``log_weight`` (raw :math:`\log w_{k,b}`) and
          ``smoothed_log_weight`` (PSIS-smoothed, self-normalised per data point), dims
          ``(chain, draw, data)`` with one chain of K draws;
        - ``importance_diagnostics``: ``pareto_k`` (PSIS :math:`\hat k`),
          ``ess`` (Kish) and ``iw_log_likelihood``
          (:math:`\log \frac1K \sum_k w_{k,b}`), dim ``data``; attrs ``num_samples`` and
          ``khat_threshold``.

    Raises:
        ValueError: as :func:`~pyro_dgm.diagnostics.importance_diagnostics.psis`
            (wrong shape, NaN, K < 21, ...).
    """
    log_weights = checked_tensor(log_weights, "log_weights", ndim=2, allow_neg_inf=True)
    smoothed, khat = psis(log_weights)
    ess = kish_ess(log_weights)
    num_samples, num_data = log_weights.shape
    coords = {DATA_DIM: _data_coord(data_index, num_data)}
    sample_stats = sample_dataset(
        {"log_weight": to_numpy(log_weights)[None], "smoothed_log_weight": to_numpy(smoothed)[None]},
        dims={"log_weight": [DATA_DIM], "smoothed_log_weight": [DATA_DIM]},
        coords=coords,
    )
    diagnostics = xarray.Dataset(
        {
            "pareto_k": (DATA_DIM, to_numpy(khat)),
            "ess": (DATA_DIM, to_numpy(ess)),
            "iw_log_likelihood": (DATA_DIM, to_numpy(log_mean_exp(log_weights, dim=0))),
        },
        coords=coords,
        attrs={"num_samples": num_samples, "khat_threshold": PSIS_KHAT_THRESHOLD},
    )
    return make_tree(sample_stats=sample_stats, **{IMPORTANCE_DIAGNOSTICS_GROUP: diagnostics})


def checked_chains(
    states: ArrayLike, energies: ArrayLike | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate chain states ``(num_steps, num_chains, num_units)`` and energies ``(num_steps, num_chains)``."""
    states = checked_tensor(states, "states", ndim=3)
    if energies is None:
        return states, None
    energies = checked_tensor(energies, "energies", ndim=2)
    if energies.shape != states.shape[:2]:
        raise ValueError(
            f"energies has shape {tuple(energies.shape)} but states has (num_steps, num_chains) "
            f"= {tuple(states.shape[:2])}"
        )
    return states, energies


def chains_to_inference_data(
    states: ArrayLike,
    energies: ArrayLike | None = None,
    *,
    unit_names: Sequence[str] | None = None,
) -> Any:
    """Markov chains over binary units (persistent RBM chains, Gibbs chains of p*) as ``posterior``.

    Args:
        states: ``(num_steps, num_chains, num_units)``: the state of every chain after every
            recorded step, e.g. ``torch.stack`` of :class:`PersistentChains` snapshots.
        energies: optional ``(num_steps, num_chains)`` energies (or any scalar per state).
        unit_names: optional coordinate labels of the ``unit`` dim (``0..num_units-1``).

    Returns:
        an ArviZ container whose ``posterior`` holds ``state`` ``(chain, draw, unit)``,
        ``mean_activation`` ``(chain, draw)`` = mean of the units of each state, and
        ``energy`` ``(chain, draw)`` when given. Steps become draws.
    """
    return make_tree(posterior=chains_posterior(states, energies, unit_names=unit_names))


def chains_posterior(
    states: ArrayLike,
    energies: ArrayLike | None = None,
    *,
    unit_names: Sequence[str] | None = None,
) -> xarray.Dataset:
    """The ``posterior`` group of :func:`chains_to_inference_data` as an ``xarray.Dataset``."""
    states, energies = checked_chains(states, energies)
    num_units = states.size(-1)
    if unit_names is not None and len(unit_names) != num_units:
        raise ValueError(f"unit_names has {len(unit_names)} names for {num_units} units")
    posterior = {
        "state": to_numpy(states.transpose(0, 1)),
        "mean_activation": to_numpy(states.mean(dim=-1).transpose(0, 1)),
    }
    if energies is not None:
        posterior["energy"] = to_numpy(energies.transpose(0, 1))
    coords = {UNIT_DIM: list(unit_names) if unit_names is not None else list(range(num_units))}
    return sample_dataset(posterior, dims={"state": [UNIT_DIM]}, coords=coords)


def checked_traces(traces: Mapping[str, ArrayLike]) -> dict[str, torch.Tensor]:
    """Validate named scalar traces: a non-empty mapping of ``(num_steps, num_chains)`` tensors of one shape."""
    if not isinstance(traces, Mapping) or not traces:
        raise ValueError("traces must be a non-empty mapping of name to a (num_steps, num_chains) trace")
    checked = {name: checked_tensor(trace, f"traces['{name}']", ndim=2) for name, trace in traces.items()}
    first_name, first = next(iter(checked.items()))
    for name, trace in checked.items():
        if trace.shape != first.shape:
            raise ValueError(
                f"traces['{name}'] has shape {tuple(trace.shape)} but traces['{first_name}'] has "
                f"{tuple(first.shape)}: every trace needs the same (num_steps, num_chains)"
            )
    return checked


def traces_to_inference_data(traces: Mapping[str, ArrayLike]) -> Any:
    """Named scalar traces ``(num_steps, num_chains)`` as ``posterior`` variables of dims ``(chain, draw)``.

    Example:
        >>> idata = traces_to_inference_data({"energy": torch.randn(100, 4)})
        >>> idata["posterior"]["energy"].dims
        ('chain', 'draw')
    """
    return make_tree(posterior=traces_posterior(traces))


def traces_posterior(traces: Mapping[str, ArrayLike]) -> xarray.Dataset:
    """The ``posterior`` group of :func:`traces_to_inference_data` as an ``xarray.Dataset``."""
    checked = checked_traces(traces)
    return sample_dataset({name: to_numpy(trace.transpose(0, 1)) for name, trace in checked.items()})

r"""Conversion of guide samples, importance weights and Markov chains to :class:`arviz.InferenceData`.

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

Tensors may live on any device; they are moved to CPU NumPy here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import arviz
import torch
import xarray

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
) -> arviz.InferenceData:
    """Guide posterior samples of every data point as an ``InferenceData`` ``posterior`` group.

    Args:
        samples: site name → tensor of shape ``(num_samples, B, *event)``: independent
            draws :math:`h_s \\sim q(h \\mid x_b)`; every site shares ``num_samples`` and ``B``.
        data_index: coordinate values of the ``data`` dim (e.g. the rows of the test set);
            ``0..B-1`` by default.

    Returns:
        ``InferenceData`` whose ``posterior`` holds each site with dims
        ``(chain, draw, data, <site>_unit)`` (``<site>_unit_<i>`` for several event dims,
        none for a scalar site), ``chain`` of size 1.

    Example:
        >>> idata = guide_samples_to_inference_data({"h1": torch.zeros(10, 4, 3)})
        >>> idata.posterior["h1"].dims
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
    return arviz.from_dict(
        posterior=posterior, dims=dims, coords=coords, attrs={"inference_library": INFERENCE_LIBRARY}
    )


def importance_weights_to_inference_data(
    log_weights: ArrayLike, *, data_index: ArrayLike | None = None
) -> arviz.InferenceData:
    r"""Importance log-weights ``(K, B)`` and their per-data-point reliability diagnostics.

    Returns:
        ``InferenceData`` with

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
    idata = arviz.from_dict(
        sample_stats={
            "log_weight": to_numpy(log_weights)[None],
            "smoothed_log_weight": to_numpy(smoothed)[None],
        },
        dims={"log_weight": [DATA_DIM], "smoothed_log_weight": [DATA_DIM]},
        coords=coords,
        attrs={"inference_library": INFERENCE_LIBRARY},
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
    idata.add_groups({IMPORTANCE_DIAGNOSTICS_GROUP: diagnostics})
    return idata


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
) -> arviz.InferenceData:
    """Markov chains over binary units (persistent RBM chains, Gibbs chains of p*) as ``posterior``.

    Args:
        states: ``(num_steps, num_chains, num_units)``: the state of every chain after every
            recorded step, e.g. ``torch.stack`` of :class:`PersistentChains` snapshots.
        energies: optional ``(num_steps, num_chains)`` energies (or any scalar per state).
        unit_names: optional coordinate labels of the ``unit`` dim (``0..num_units-1``).

    Returns:
        ``InferenceData`` whose ``posterior`` holds ``state`` ``(chain, draw, unit)``,
        ``mean_activation`` ``(chain, draw)`` = mean of the units of each state, and
        ``energy`` ``(chain, draw)`` when given. Steps become draws.
    """
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
    return arviz.from_dict(
        posterior=posterior,
        dims={"state": [UNIT_DIM]},
        coords=coords,
        attrs={"inference_library": INFERENCE_LIBRARY},
    )

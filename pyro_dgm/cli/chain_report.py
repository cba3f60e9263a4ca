r"""R-hat and ESS of the Markov chains that ``pyro-dgm sample --gibbs`` and ``pyro-dgm evaluate`` run.

* ``sample --gibbs N``: BiHM's :math:`p^*` Gibbs chains, one per sample, started from
  ancestral draws of :math:`p`. After every sweep each chain records, vectorised over
  chains, its energy :math:`-\log \tilde p^*(x, h)`
  (:func:`~pyro_dgm.bihm.gibbs_sampling.unnormalized_log_p_star`) and the mean activation
  of every layer :math:`x, h_1, \dots, h_L`; :func:`~pyro_dgm.diagnostics.chain_diagnostics.trace_summary`
  gives their R-hat and bulk/tail ESS.
* ``evaluate`` on a model with an RBM prior: a copy of the persistent chains saved in
  the checkpoint takes ``--chain-sweeps`` more block-Gibbs sweeps with the trained
  RBM (the checkpoint is not changed); every sweep's states and energies
  :math:`E(z)` go to :func:`~pyro_dgm.diagnostics.chain_diagnostics.chain_summary`.

Draws are the states after each sweep (the start excluded). A summary is printed as
its worst R-hat and ESS, then one row per tracked quantity, and is saved as plain
floats; the traces themselves are written as ArviZ ``InferenceData`` (netcdf) when a
netcdf backend of xarray is installed.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pyro_dgm.bihm.gibbs_sampling import GibbsState, gibbs_sweep, initial_state_from_model, unnormalized_log_p_star
from pyro_dgm.cli.registry import BuiltModel
from pyro_dgm.diagnostics.arviz_conversion import chains_to_inference_data, traces_to_inference_data
from pyro_dgm.diagnostics.chain_diagnostics import (
    MIN_NUM_STEPS,
    chain_summary,
    known_chain_layout,
    record_block_gibbs,
    trace_summary,
)
from pyro_dgm.distributions.gibbs import PersistentChains
from pyro_dgm.models.sbn import OBSERVED_SITE, SigmoidBeliefNet, latent_site_name
from pyro_dgm.models.sbn_guides import BottomUpGuide

DEFAULT_CHAIN_SWEEPS = 200
"""Block-Gibbs sweeps ``evaluate`` adds to an RBM prior's persistent chains. With the default
100 chains that is 2 x 10^4 draws: chains with an autocorrelation time up to 50 sweeps still
have the bulk and tail ESS above 400 that Vehtari et al. (2021) ask for before trusting R-hat."""

MAX_QUANTITY_ROWS = 8
"""Summaries tracking more quantities than this print only their worst values (all are in the JSON)."""

NETCDF_ENGINES = (("h5netcdf", "h5netcdf"), ("netcdf4", "netCDF4"))
"""xarray engines that write ArviZ's netcdf files, with the module each needs; the first installed is used."""


@dataclass
class ChainDiagnostics:
    """The convergence summary of one set of chains, and its traces.

    Attributes:
        title: what the chains are, printed before the summary.
        summary: the plain floats of :func:`chain_summary` or :func:`trace_summary`
            (plus ``origin`` for RBM chains).
        rows: one printed row per tracked quantity: its label and the ``summary`` keys of
            its R-hat, bulk ESS and tail ESS.
        draws: the traces as an ArviZ container (``InferenceData`` or ``DataTree``), for netcdf.
    """

    title: str
    summary: dict[str, Any]
    rows: list[tuple[str, str, str, str]]
    draws: Any


def _scalar_rows(names: list[str]) -> list[tuple[str, str, str, str]]:
    return [(name, f"{name}_rhat", f"{name}_ess_bulk", f"{name}_ess_tail") for name in names]


def record_p_star_chains(
    model: SigmoidBeliefNet, guide: BottomUpGuide, num_chains: int, num_sweeps: int
) -> tuple[GibbsState, dict[str, torch.Tensor]]:
    r""":func:`~pyro_dgm.bihm.gibbs_sampling.sample_p_star` that also records a trace per sweep.

    Draws exactly what ``sample_p_star(model, guide, num_chains, num_sweeps)`` draws from
    the same RNG state (recording takes no random numbers).

    Returns:
        The final state and the traces ``(num_sweeps, num_chains)``: ``energy``
        :math:`= -\log \tilde p^*(x, h)`, and ``<layer>_mean_activation`` (the share of
        the layer's units on) for ``x``, ``h1``, ..., ``hL``.
    """
    state = initial_state_from_model(model, guide, num_chains)
    layer_names = [OBSERVED_SITE, *(latent_site_name(layer) for layer in range(1, model.num_latent_layers + 1))]
    energy = state.x.new_empty(num_sweeps, num_chains)
    mean_activation = state.x.new_empty(num_sweeps, len(layer_names), num_chains)
    with torch.no_grad():
        for sweep in range(num_sweeps):
            state = gibbs_sweep(model, guide, state)
            energy[sweep] = -unnormalized_log_p_star(model, guide, state)
            mean_activation[sweep] = torch.stack([layer.mean(dim=-1) for layer in state.layers])
    traces = {"energy": energy}
    for index, name in enumerate(layer_names):
        traces[f"{name}_mean_activation"] = mean_activation[:, index]
    return state, traces


def p_star_diagnostics(traces: dict[str, torch.Tensor]) -> ChainDiagnostics | None:
    """R-hat and ESS of :func:`record_p_star_chains` traces; None below :data:`MIN_NUM_STEPS` sweeps."""
    num_sweeps, num_chains = traces["energy"].shape
    if num_sweeps < MIN_NUM_STEPS:
        return None
    return ChainDiagnostics(
        title=f"p* Gibbs chains ({num_chains} chains x {num_sweeps} sweeps)",
        summary=trace_summary(traces),
        rows=_scalar_rows(list(traces)),
        draws=traces_to_inference_data(traces),
    )


def rbm_chain_diagnostics(
    built: BuiltModel, objective_state: dict[str, Any] | None, num_sweeps: int, num_fresh_chains: int
) -> dict[str, ChainDiagnostics]:
    """Continue the persistent chains of every RBM prior site of ``built`` and summarise them.

    A site whose chains the checkpoint does not hold (an objective without persistent
    chains, e.g. ``elbo``) gets ``num_fresh_chains`` chains started from fair coin flips
    instead, so its R-hat also covers their burn-in. Returns ``{site: diagnostics}``,
    empty for a model without an RBM prior.
    """
    diagnostics = {}
    for site, rbm in built.rbm_priors().items():
        saved = (objective_state or {}).get(site)
        sizes = (rbm.num_units1, rbm.num_units2)
        if saved is not None and (saved["num_units1"], saved["num_units2"]) == sizes and saved["chains"].dim() == 2:
            start, origin = saved["chains"], "persisted"
        else:
            start = PersistentChains(num_fresh_chains, *sizes, dtype=rbm.bias1.dtype, device=rbm.bias1.device).chains
            origin = "fresh"
        states, energies = record_block_gibbs(rbm, start, num_sweeps)
        summary = {"origin": origin, **chain_summary(states, energies)}
        with known_chain_layout():
            draws = chains_to_inference_data(states, energies)
        label = "persisted PCD chains" if origin == "persisted" else "fresh chains"
        note = "" if origin == "persisted" else "; the checkpoint holds none"
        diagnostics[site] = ChainDiagnostics(
            title=f"RBM prior '{site}' ({start.size(0)} {label} x {num_sweeps} sweeps{note})",
            summary=summary,
            rows=[*_scalar_rows(["energy", "mean_activation"]),
                  ("worst unit", "unit_rhat_max", "unit_ess_bulk_min", "unit_ess_tail_min")],
            draws=draws,
        )
    return diagnostics


def format_diagnostics(diagnostics: ChainDiagnostics) -> str:
    """The worst R-hat and ESS on one line, then (for few quantities) a row per quantity."""
    summary = diagnostics.summary
    rhat_max, threshold = summary["rhat_max"], summary["rhat_threshold"]
    if math.isnan(rhat_max):
        verdict = "undefined: every tracked quantity is constant"
    elif rhat_max <= threshold:
        verdict = f"at most {threshold}: mixed"
    else:
        verdict = f"above {threshold}: not mixed"
    rhats = {label: summary[rhat] for label, rhat, *_ in diagnostics.rows if math.isfinite(summary[rhat])}
    worst = f"{max(rhats, key=rhats.get)}; " if rhats else ""
    lines = [
        f"{diagnostics.title}: R-hat max {rhat_max:.3f} ({worst}{verdict}), "
        f"bulk ESS min {summary['ess_bulk_min']:.1f}, tail ESS min {summary['ess_tail_min']:.1f}"
    ]
    if len(diagnostics.rows) <= MAX_QUANTITY_ROWS:
        width = max(len("quantity"), *(len(label) for label, *_ in diagnostics.rows))
        lines.append(f"  {'quantity':<{width}}  {'R-hat':>7}  {'bulk ESS':>9}  {'tail ESS':>9}")
        for label, rhat, bulk, tail in diagnostics.rows:
            lines.append(f"  {label:<{width}}  {summary[rhat]:>7.3f}  {summary[bulk]:>9.1f}  {summary[tail]:>9.1f}")
    return "\n".join(lines)


def netcdf_engine() -> str | None:
    """The first xarray netcdf engine of :data:`NETCDF_ENGINES` whose module is installed, else None."""
    for engine, module in NETCDF_ENGINES:
        if importlib.util.find_spec(module) is not None:
            return engine
    return None


def write_draws(diagnostics: ChainDiagnostics, path: Path) -> Path | None:
    """Write the traces as netcdf to ``path`` if a backend is installed; returns the path written, or None."""
    engine = netcdf_engine()
    if engine is None:
        return None
    diagnostics.draws.to_netcdf(str(path), engine=engine)
    return path

r"""Curves: learning curves, estimates against the number of samples K, running log Z.

- :func:`plot_learning_curves`: every metric of ``metrics.jsonl`` (one JSON object per
  epoch, see :mod:`pyro_dgm.cli.run_directory`) against the epoch, one panel each;
- :func:`plot_estimates_vs_num_samples`: BiHM Fig. 1C: the test-set mean of
  per-data-point estimates (log p(x), log p*(x), ...) against K with ± one standard
  error, and the mean effective sample size against K;
- :func:`plot_running_log_mean_exp`: BiHM Fig. 3: the running estimate
  :math:`\log \frac1n \sum_{i \le n} w_i` (e.g. of :math:`2 \log Z`) against the number
  of samples n, with a ± one standard error band.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyro_dgm.diagnostics._tensors import ArrayLike, checked_tensor, to_numpy
from pyro_dgm.diagnostics.plots import PathLike, new_figure, save_figure

PANEL_WIDTH_PIXELS = 360
PANEL_HEIGHT_PIXELS = 270
MAX_PANELS_PER_ROW = 3
BOOKKEEPING_KEYS = ("epoch", "step", "seconds")
"""Keys of a metrics record that are not plotted as metrics."""
METRICS_FILE_NAME = "metrics.jsonl"
"""File read when :func:`read_metrics` is given a run folder (as written by the CLI)."""
MAX_CURVE_POINTS = 400
"""A running estimate is drawn at this many log-spaced sample counts at most."""
BAND_ALPHA = 0.25
"""Opacity of standard-error bands."""


def read_metrics(metrics: PathLike | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Metrics records from a ``metrics.jsonl`` file, a run folder holding one, or a list of dicts."""
    if isinstance(metrics, (str, Path)) or hasattr(metrics, "__fspath__"):
        path = Path(metrics)
        if path.is_dir():
            path = path / METRICS_FILE_NAME
        if not path.is_file():
            raise ValueError(f"metrics file '{path}' does not exist")
        lines = path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    if not all(isinstance(record, Mapping) for record in metrics):
        raise ValueError("metrics must be a path, a run folder, or a sequence of mappings")
    return [dict(record) for record in metrics]


def _panel_grid(num_panels: int):
    columns = min(num_panels, MAX_PANELS_PER_ROW)
    rows = -(-num_panels // columns)
    figure = new_figure(columns * PANEL_WIDTH_PIXELS, rows * PANEL_HEIGHT_PIXELS)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for unused in axes[num_panels:]:
        unused.set_visible(False)
    return figure, axes[:num_panels]


def plot_learning_curves(
    metrics: PathLike | Sequence[Mapping[str, Any]], path: PathLike, *, x: str = "epoch"
) -> Path:
    """Plot every numeric metric (``train_loss``, ``valid_log_likelihood``, ...) against ``x``.

    Args:
        metrics: ``metrics.jsonl`` path, run folder, or records (one dict per epoch).
        path: ``.png`` file to write.
        x: the record key on the horizontal axis (``"epoch"`` or ``"step"``).

    Records missing a metric (e.g. validation every few epochs) are skipped for that
    metric only. ``train_loss`` comes first, the others in alphabetical order.

    Returns:
        The path written: ``min(#metrics, 3) * 360`` by ``rows * 270`` pixels.
    """
    records = read_metrics(metrics)
    if not records:
        raise ValueError("metrics holds no records")
    if any(x not in record for record in records):
        raise ValueError(f"every metrics record needs the key x='{x}'")
    names = sorted(
        {
            key
            for record in records
            for key, value in record.items()
            if key not in BOOKKEEPING_KEYS and key != x and isinstance(value, (int, float))
            and not isinstance(value, bool)
        },
        key=lambda key: (key != "train_loss", key),
    )
    if not names:
        raise ValueError(f"metrics records hold no numeric metric besides {BOOKKEEPING_KEYS}")
    figure, axes = _panel_grid(len(names))
    for axis, name in zip(axes, names):
        points = sorted((record[x], record[name]) for record in records if name in record)
        xs, ys = zip(*points)
        axis.plot(xs, ys, marker="o" if len(points) < 30 else None, markersize=3)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel(x, fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def _as_curves(
    estimates: Mapping[Any, Any], name: str, default_label: str
) -> dict[str, dict[int, torch.Tensor]]:
    """``{label: {K: (B,) tensor}}`` from that or from a single ``{K: (B,) tensor}``."""
    if not estimates:
        raise ValueError(f"{name} is empty")
    if all(isinstance(key, (int, np.integer)) for key in estimates):
        estimates = {default_label: estimates}
    curves = {}
    for label, per_k in estimates.items():
        if not isinstance(per_k, Mapping) or not per_k:
            raise ValueError(f"{name}['{label}'] must be a non-empty dict K -> per-data-point tensor")
        curves[str(label)] = {}
        for num_samples, values in sorted(per_k.items()):
            if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
                raise ValueError(f"{name}['{label}'] has key {num_samples!r}: keys must be positive K")
            tensor = checked_tensor(values, f"{name}['{label}'][{num_samples}]", ndim=(0, 1))
            curves[str(label)][int(num_samples)] = tensor.reshape(-1)
    return curves


def _mean_and_standard_error(values: torch.Tensor) -> tuple[float, float]:
    count = values.numel()
    standard_error = values.std().item() / math.sqrt(count) if count > 1 else 0.0
    return values.mean().item(), standard_error


def _draw_curves(axis, curves: dict[str, dict[int, torch.Tensor]]) -> None:
    for label, per_k in curves.items():
        ks = list(per_k)
        means, errors = zip(*(_mean_and_standard_error(per_k[k]) for k in ks))
        axis.errorbar(ks, means, yerr=errors, marker="o", markersize=3, capsize=2, label=label)
    axis.set_xscale("log")
    axis.set_xlabel("number of samples K", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7)


def plot_estimates_vs_num_samples(
    estimates: Mapping[Any, Any],
    path: PathLike,
    *,
    ess: Mapping[Any, Any] | None = None,
    ylabel: str = "log-likelihood (nats)",
) -> Path:
    """Plot estimates against the number of importance samples K (BiHM Fig. 1C).

    Args:
        estimates: ``{label: {K: per-data-point estimates (B,)}}`` (e.g. labels
            ``"BiHM log p(x)"``, ``"BiHM log p*(x)"``, ``"RWS log p(x)"``), or a single
            ``{K: (B,)}``. Each point is the mean over data points with ± one standard
            error (standard deviation / sqrt(B)).
        path: ``.png`` file to write.
        ess: optional effective sample sizes in the same layout; drawn in a second
            panel on log-log axes with the ideal ESS = K dashed.
        ylabel: label of the estimate axis.

    Returns:
        The path written: 360 (720 with ``ess``) by 270 pixels.
    """
    curves = _as_curves(estimates, "estimates", "estimate")
    ess_curves = _as_curves(ess, "ess", "ESS") if ess is not None else None
    figure, axes = _panel_grid(1 if ess_curves is None else 2)
    _draw_curves(axes[0], curves)
    axes[0].set_ylabel(ylabel, fontsize=8)
    if ess_curves is not None:
        _draw_curves(axes[1], ess_curves)
        all_k = sorted({k for per_k in ess_curves.values() for k in per_k})
        axes[1].plot(all_k, all_k, linestyle="--", color="grey", linewidth=1, label="ESS = K")
        axes[1].set_yscale("log")
        axes[1].set_ylabel("effective sample size", fontsize=8)
        axes[1].legend(fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)


def running_log_mean_exp(log_weights: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Running :math:`\log \hat\mu_n = \log \frac1n \sum_{i\le n} w_i` and its standard error.

    For weights :math:`w_i` (e.g. importance weights whose mean is :math:`Z^2`), along the
    last dim. The standard error of :math:`\log\hat\mu_n` is the delta-method one,

    .. math::

        \mathrm{se}_n = \frac{s_n}{\sqrt n\, \hat\mu_n}
        = \sqrt{\frac{\widehat{\mu^{(2)}_n} / \hat\mu_n^2 - 1}{n - 1}},

    with :math:`s_n^2` the unbiased sample variance of the weights and
    :math:`\widehat{\mu^{(2)}_n}` the mean of their squares, all in log space (NaN at n = 1).

    Returns:
        ``(estimate, standard_error)``, both of the shape of ``log_weights``.
    """
    log_weights = checked_tensor(log_weights, "log_weights", allow_neg_inf=True)
    counts = torch.arange(1, log_weights.size(-1) + 1, device=log_weights.device, dtype=log_weights.dtype)
    log_mean = torch.logcumsumexp(log_weights, dim=-1) - counts.log()
    log_second_moment = torch.logcumsumexp(2 * log_weights, dim=-1) - counts.log()
    relative_variance = torch.expm1(log_second_moment - 2 * log_mean).clamp(min=0.0)
    standard_error = (relative_variance / (counts - 1)).sqrt()
    return log_mean, standard_error


def plot_running_log_mean_exp(
    log_weights: ArrayLike,
    path: PathLike,
    *,
    samples_per_weight: int = 1,
    ylabel: str = r"$2 \log Z$ estimate",
) -> Path:
    r"""Plot the running estimate :math:`\log \frac1n \sum_{i \le n} w_i` against n (BiHM Fig. 3).

    Args:
        log_weights: ``(num_samples,)`` log-weights of one run, or ``(num_runs,
            num_samples)``. One run: its running estimate with the ± one delta-method
            standard error band of :func:`running_log_mean_exp`. Several runs: each run
            thin, and their mean ± one standard deviation across runs as the band (the
            grey region of BiHM Fig. 3).
        path: ``.png`` file to write.
        samples_per_weight: model samples behind each weight (BiHM's :math:`K_{inner}`);
            the horizontal axis counts ``n * samples_per_weight`` samples (Fig. 3B).
        ylabel: label of the estimate axis.

    Returns:
        The path written: 360 by 270 pixels.
    """
    log_weights = checked_tensor(log_weights, "log_weights", ndim=(1, 2), allow_neg_inf=True)
    if samples_per_weight < 1:
        raise ValueError(f"samples_per_weight must be positive, got {samples_per_weight}")
    runs = log_weights.reshape(-1, log_weights.size(-1))
    num_samples = runs.size(-1)
    if num_samples < 2:
        raise ValueError(f"log_weights needs at least 2 samples (last dim), got {num_samples}")
    shown = np.unique(np.geomspace(1, num_samples, MAX_CURVE_POINTS).round().astype(int)) - 1
    estimate, standard_error = running_log_mean_exp(runs)
    estimate = to_numpy(estimate)[:, shown]
    x = (shown + 1) * samples_per_weight
    if len(runs) == 1:
        centre, half_width = estimate[0], to_numpy(standard_error)[0, shown]
        band_label = "± 1 s.e."
    else:
        centre, half_width = estimate.mean(axis=0), estimate.std(axis=0, ddof=1)
        band_label = f"mean ± 1 s.d. of {len(runs)} runs"
    figure, (axis,) = _panel_grid(1)
    for run in estimate:
        axis.plot(x, run, linewidth=0.8 if len(runs) > 1 else 1.2, alpha=0.6 if len(runs) > 1 else 1.0)
    axis.fill_between(x, centre - half_width, centre + half_width, color="grey", alpha=BAND_ALPHA, label=band_label)
    axis.set_xscale("log")
    axis.set_xlabel("number of samples", fontsize=8)
    axis.set_ylabel(ylabel, fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)

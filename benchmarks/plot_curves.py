"""Learning curves of the reproduction runs: validation log-likelihood against optimiser steps.

One panel per BiHM Table 1 dataset (every job of :mod:`benchmarks.uci_bihm`, one line per
method, learning rate and seed) and one panel per trained MNIST configuration of
:mod:`benchmarks.reproduce` (the ``curve`` of each row of every ``*_full*.json`` report),
each with the paper's *test* value as a dashed line: how far a run is from convergence,
and from the paper, at a glance.

    python -m benchmarks.plot_curves            # writes docs/img/bihm1_curves.png, docs/img/mnist_full_curves.png
                                                # and docs/img/dvaesharp_curves.png

A table whose rows are methods compared at equal budget (:data:`METHOD_COMPARISONS`: issue 16's
DVAE# against DVAE++ and DVAE) also gets one panel per network, one colour per method, so the
methods' curves can be read against each other.

The validation numbers are the runs' own (UCI: the whole validation set, the job's K;
MNIST: :data:`benchmarks.evaluation.CURVE_PARTICLES` samples on a fixed subset of
:data:`benchmarks.reproduce.CURVE_IMAGES` validation images), so they sit below the
test estimates at the papers' K; the curve's shape, not its last value, is what they show.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from benchmarks import uci_bihm  # noqa: E402

RESULTS_DIR = Path("benchmarks/results")
IMAGE_DIR = Path("docs/img")
UCI_FIGURE = "bihm1_curves.png"
MNIST_FIGURE = "mnist_full_curves.png"
PANEL_SIZE = (4.2, 3.2)
"""Inches per panel."""

METHOD_COMPARISONS = {"dvaesharp": "dvaesharp_curves.png"}
"""Tables drawn a second time with one panel per network and one colour per method, and their figures."""

METHOD_COLOURS = {"BiHM": "tab:blue", "RWS": "tab:orange"}
LEARNING_RATE_STYLES = {0.01: "-", 0.001: "--"}


def uci_curves(results_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Per UCI dataset: ``{"label", "method", "learning_rate", "steps", "valid_nll", "paper"}`` of every job."""
    panels: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(results_dir.glob("*.json")):
        record = json.loads(path.read_text())
        job, curve = record["job"], record["curve"]
        steps_per_epoch = record["steps"] / record["epochs"]
        learning_rate = record["budget"]["learning_rate"]
        panels.setdefault(job["dataset"], []).append({
            "label": f"{job['method']} lr {learning_rate:g} seed {job['seed']}",
            "method": job["method"],
            "learning_rate": learning_rate,
            "steps": [epoch * steps_per_epoch for epoch in curve["epochs"]],
            "valid_nll": [-value for value in curve["valid_log_p"]],
            "paper": record["paper"]["nll"],
        })
    return panels


def mnist_curves(results_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Per MNIST configuration (``table: group/method``): its curve from every ``*_full*.json`` report."""
    panels: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(results_dir.glob("*_full*.json")):
        report = json.loads(path.read_text())
        for row in report.get("rows", []):
            if not row.get("curve"):
                continue
            name = f"{report['table']}: {row['group']}/{row['method']}" if row["group"] else f"{report['table']}: {row['method']}"
            paper = row["paper"].get("log_p")
            panels.setdefault(name, []).append({
                "label": f"seed {report['seed']}",
                "steps": [point["step"] for point in row["curve"]],
                "valid_nll": [-point["valid_log_p"] for point in row["curve"]],
                "paper": None if paper is None else -paper["log_likelihood"],
                "test_nll": -row["metrics"]["log_p"],
                "test_step": row["steps"],
            })
    return panels


def linear_counterpart(name: str) -> str | None:
    """The panel of the same configuration with linear networks: ``"dvaepp1: nonlinear/joint"`` →
    ``"dvaepp1: linear/joint"`` (``None`` for a panel that is not a nonlinear one)."""
    table, _, configuration = name.partition(": ")
    group, _, method = configuration.rpartition("/")
    words = group.split()
    if "nonlinear" not in words:
        return None
    return f"{table}: {' '.join('linear' if word == 'nonlinear' else word for word in words)}/{method}"


def nonlinear_leads(panels: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    r"""How far each nonlinear configuration's validation curve is ahead of its linear counterpart's.

    Per nonlinear panel with a linear one, per seed that both ran, at the steps both curves
    measured: the lead :math:`-\log p_{\rm linear} - (-\log p_{\rm nonlinear})` in nats
    (positive: the nonlinear network is ahead, as in DVAE++ Table 1), the smallest lead and its
    step, and every step at which the nonlinear network is not ahead (issue 12's plateau
    criterion: ahead at every evaluation after the first epoch).
    """
    leads: dict[str, dict[str, dict[str, Any]]] = {}
    for name, curves in sorted(panels.items()):
        counterpart = linear_counterpart(name)
        if counterpart not in panels:
            continue
        linear_by_seed = {curve["label"]: dict(zip(curve["steps"], curve["valid_nll"])) for curve in panels[counterpart]}
        for curve in curves:
            linear = linear_by_seed.get(curve["label"])
            if linear is None:
                continue
            common = [(step, linear[step] - nll) for step, nll in zip(curve["steps"], curve["valid_nll"]) if step in linear]
            if not common:
                continue
            step, smallest = min(common, key=lambda pair: pair[1])
            leads.setdefault(name, {})[curve["label"]] = {
                "points": len(common),
                "smallest_lead": smallest,
                "smallest_lead_step": step,
                "not_ahead_steps": [step for step, lead in common if lead <= 0],
            }
    return leads


def lead_lines(leads: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """One line per nonlinear configuration and seed, for the terminal and the docs."""
    lines = []
    for name, seeds in leads.items():
        for label, lead in seeds.items():
            behind = lead["not_ahead_steps"]
            verdict = ("ahead of the linear network at every one" if not behind
                       else f"not ahead at {len(behind)} (steps {', '.join(map(str, behind))})")
            lines.append(f"{name} {label}: {verdict} of {lead['points']} validation points; smallest lead "
                         f"{lead['smallest_lead']:.2f} nats at step {lead['smallest_lead_step']}")
    return lines


def method_panels(panels: dict[str, list[dict[str, Any]]], table: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The panels of :func:`mnist_curves` of one table regrouped per network: ``"dvaesharp: 1 linear"``
    → method → its seeds' curves."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, curves in sorted(panels.items()):
        panel_table, _, configuration = name.partition(": ")
        if panel_table != table:
            continue
        group, _, method = configuration.rpartition("/")
        grouped.setdefault(f"{table}: {group}" if group else table, {})[method] = curves
    return grouped


def _mean_test_nll(curves: Sequence[dict[str, Any]]) -> float:
    return sum(curve["test_nll"] for curve in curves) / len(curves)


def _figure(num_panels: int):
    columns = min(3, num_panels)
    rows = -(-num_panels // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows), squeeze=False)
    for axis in axes.flat[num_panels:]:
        axis.set_visible(False)
    return figure, axes.flat


def _save(figure, output: Path) -> Path:
    """Write ``figure`` to ``output`` (its folder made if needed) and close it."""
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def plot_uci(panels: dict[str, list[dict[str, Any]]], output: Path) -> Path:
    """One panel per dataset; colour = method, line style = learning rate; the paper's test −log p dashed grey."""
    order = [name for name in uci_bihm.DATASETS if name in panels]
    figure, axes = _figure(len(order))
    for axis, dataset in zip(axes, order):
        papers = {}
        for curve in panels[dataset]:
            axis.plot(curve["steps"], curve["valid_nll"], LEARNING_RATE_STYLES.get(curve["learning_rate"], ":"),
                      color=METHOD_COLOURS.get(curve["method"], "grey"), linewidth=1, alpha=0.8, label=curve["label"])
            papers[curve["method"]] = curve["paper"]
        for method, value in papers.items():
            axis.axhline(value, color=METHOD_COLOURS.get(method, "grey"), linestyle=":", linewidth=1.5,
                         label=f"{method}: paper (test)")
        lowest = min(min(curve["valid_nll"]) for curve in panels[dataset])
        axis.set_ylim(min(lowest, *papers.values()) - 1, lowest + max(8.0, 0.1 * lowest))
        axis.set(title=f"{dataset} (BiHM Table 1)", xlabel="optimiser steps", ylabel="validation −log p(x), nats")
        axis.legend(fontsize=5, ncol=2)
    return _save(figure, output)


def plot_mnist(panels: dict[str, list[dict[str, Any]]], output: Path) -> Path:
    """One panel per configuration: validation −log p per seed, the test estimate as a dot, the paper dashed;
    a nonlinear configuration's panel also shows its linear counterpart's curves in grey."""
    figure, axes = _figure(len(panels))
    for axis, (name, curves) in zip(axes, sorted(panels.items())):
        for curve in panels.get(linear_counterpart(name) or "", []):
            axis.plot(curve["steps"], curve["valid_nll"], color="grey", linewidth=1, alpha=0.6,
                      label=f"linear {curve['label']} validation")
        for curve in curves:
            line, = axis.plot(curve["steps"], curve["valid_nll"], linewidth=1, label=f"{curve['label']} validation")
            axis.plot([curve["test_step"]], [curve["test_nll"]], "o", color=line.get_color(),
                      label=f"{curve['label']} test {curve['test_nll']:.2f}")
        paper = curves[0]["paper"]
        if paper is not None:
            axis.axhline(paper, color="black", linestyle="--", linewidth=1, label=f"paper (test) {paper:.2f}")
        lowest = min(min(curve["valid_nll"]) for curve in curves)
        axis.set_ylim((paper if paper is not None else lowest) - 3, lowest + 40)
        axis.set(title=name, xlabel="optimiser steps", ylabel="−log p(x), nats")
        axis.legend(fontsize=6)
    return _save(figure, output)


def plot_methods(grouped: dict[str, dict[str, list[dict[str, Any]]]], output: Path) -> Path:
    """One panel per network: each method's validation −log p of every seed in one colour (the same in
    every panel), its seeds' test estimates as dots; the legend lists the methods best first, with the
    mean test −log p."""
    figure, axes = _figure(len(grouped))
    names = sorted({method for methods in grouped.values() for method in methods})
    colours = {method: f"C{index}" for index, method in enumerate(names)}  # one colour per method in every panel
    for axis, (name, methods) in zip(axes, grouped.items()):
        ranked = sorted(methods.items(), key=lambda item: _mean_test_nll(item[1]))
        for method, curves in ranked:
            colour = colours[method]
            seeds = "1 seed" if len(curves) == 1 else f"{len(curves)} seeds"
            for number, curve in enumerate(curves):
                axis.plot(curve["steps"], curve["valid_nll"], color=colour, linewidth=1, alpha=0.8,
                          label=f"{method} ({seeds}): test {_mean_test_nll(curves):.2f}" if number == 0 else None)
                axis.plot([curve["test_step"]], [curve["test_nll"]], "o", color=colour)
        lowest = min(min(min(curve["valid_nll"]), curve["test_nll"]) for curves in methods.values() for curve in curves)
        axis.set_ylim(lowest - 3, lowest + 40)
        axis.set(xlabel="optimiser steps", ylabel="−log p(x), nats")
        axis.set_title(f"{name}: validation (lines), test (dots)", fontsize=9)
        axis.legend(fontsize=6)
    return _save(figure, output)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot_curves", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--image-dir", type=Path, default=IMAGE_DIR)
    args = parser.parse_args(argv)
    uci = uci_curves(args.results_dir / uci_bihm.TABLE)
    if uci:
        print(f"wrote {plot_uci(uci, args.image_dir / UCI_FIGURE)}", file=sys.stderr)
    mnist = mnist_curves(args.results_dir)
    if mnist:
        print(f"wrote {plot_mnist(mnist, args.image_dir / MNIST_FIGURE)}", file=sys.stderr)
        for table, figure_name in METHOD_COMPARISONS.items():
            grouped = method_panels(mnist, table)
            if grouped:
                print(f"wrote {plot_methods(grouped, args.image_dir / figure_name)}", file=sys.stderr)
        for line in lead_lines(nonlinear_leads(mnist)):
            print(line)
    if not uci and not mnist:
        print(f"no results with curves under {args.results_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The records and reports of :mod:`benchmarks.reproduce`: rows, rankings, JSON and Markdown.

A :class:`TableResult` holds a table run's rows (:class:`ResultRow`: what was trained, what
we measured, what the paper printed) and the context every report states (budget, data,
wall time, machine, provenance). :func:`write_report` writes it as JSON and as the Markdown
table that ``docs/benchmarks.md`` quotes; :func:`to_markdown` re-renders a JSON report
(``python -m benchmarks.reproduce --render``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.evaluation import standard_error
from benchmarks.paper_values import PaperValue
from pyro_dgm.data.registry import get_dataset_spec
TABLE_TITLES = {
    "bihm3": "BiHM Table 3 — sigmoid belief nets on MNIST (BiHM, RWS, VIMCO)",
    "dvaepp1": "DVAE++ Table 1 — 200 Bernoulli latents, directed prior",
    "dvaepp2": "DVAE++ Table 2 — RBM prior vs directed prior, 1 and 2 latent layers",
    "bvae1": "BVAE Table I — Gaussian VAEs and their bidirectional twins on MNIST",
    "dvaesharp": "DVAE# against DVAE++ and DVAE — RBM prior, 1 latent layer, equal budget",
}
"""The heading of each table's report."""


@dataclass
class ResultRow:
    """One trained configuration: what it is, what we measured, what the paper printed.

    :ivar group: the table row it belongs to (``"linear"``, ``"2 nonlinear"``; ``""`` if none).
    :ivar method: the column or method (``"BiHM"``, ``"joint"``, ``"Bidirectional VAE"``).
    :ivar metrics: measured numbers; ``log_p`` (nats per test image) and ``log_p_se``
        (its standard error over test images) always.
    :ivar paper: the published values this row is compared with, by metric key.
    :ivar parameters: trainable parameters (shared tensors counted once).
    :ivar steps: optimiser steps; ``train_seconds``/``eval_seconds``: wall time.
    :ivar train_losses: the objective per data point at the end of every epoch.
    :ivar curve: the learning curve, validation log p(x) against steps (:class:`Training`).
    :ivar per_image_log_p: the per-test-image estimates (not written to JSON), for paired
        differences between methods evaluated on the same images.
    """

    group: str
    method: str
    metrics: dict[str, float]
    paper: dict[str, PaperValue] = field(default_factory=dict)
    parameters: int = 0
    steps: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    train_losses: list[float] = field(default_factory=list)
    curve: list[dict[str, float]] = field(default_factory=list)
    per_image_log_p: torch.Tensor | None = field(default=None, repr=False)

    def gap(self, key: str = "log_p") -> float | None:
        """Ours − paper in nats for metric ``key`` (negative: ours is lower), or ``None``."""
        if key not in self.paper or key not in self.metrics:
            return None
        return self.metrics[key] - self.paper[key].log_likelihood


@dataclass
class TableResult:
    """Rows plus the context every report states: budget, data, wall time, machine."""

    table: str
    budget_name: str
    budget: Any
    dataset: str
    binarization: str
    num_train: int
    num_test: int
    rows: list[ResultRow]
    wall_seconds: float
    machine: dict[str, Any]
    seed: int
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ranked:
    """A method's place in its group: its log p(x) and its paired difference to the group's best.

    :ivar difference: mean over test images of (this method − best method), nats (<= 0).
    :ivar difference_se: standard error of that mean over the same images (paired).
    """

    method: str
    log_p: float
    difference: float
    difference_se: float | None


def ranking(rows: Sequence[ResultRow]) -> dict[str, list[Ranked]]:
    """Methods of each group, best measured log p(x) first (equal budget within a table)."""
    groups: dict[str, list[ResultRow]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    ranked = {}
    for group, members in groups.items():
        ordered = sorted(members, key=lambda r: r.metrics["log_p"], reverse=True)
        best = ordered[0]
        ranked[group] = [_ranked(row, best) for row in ordered]
    return ranked


def _ranked(row: ResultRow, best: ResultRow) -> Ranked:
    difference = row.metrics["log_p"] - best.metrics["log_p"]
    paired = row.per_image_log_p is not None and best.per_image_log_p is not None
    difference_se = standard_error(row.per_image_log_p - best.per_image_log_p) if paired and row is not best else None
    return Ranked(row.method, row.metrics["log_p"], difference, difference_se)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value):
        return {key: _jsonable(item) for key, item in asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


ROW_JSON_FIELDS = ("group", "method", "metrics", "paper", "parameters", "steps", "train_seconds", "eval_seconds",
                   "train_losses", "curve")
"""The fields of :class:`ResultRow` written to JSON (the per-image estimates are not)."""


def to_json(result: TableResult) -> dict[str, Any]:
    rows = []
    for row in result.rows:
        record = {key: _jsonable(getattr(row, key)) for key in ROW_JSON_FIELDS}
        record["gap_nats"] = {key: row.gap(key) for key in row.paper}
        rows.append(record)
    return {
        "table": result.table,
        "title": TABLE_TITLES[result.table],
        "budget_name": result.budget_name,
        "budget": _jsonable(result.budget),
        "dataset": result.dataset,
        "binarization": result.binarization,
        "num_train": result.num_train,
        "num_test": result.num_test,
        "wall_seconds": result.wall_seconds,
        "machine": result.machine,
        "notes": result.notes,
        "seed": result.seed,
        "provenance": result.provenance,
        "rows": rows,
        "ranking": _jsonable(ranking(result.rows)),
    }


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


EXTRA_COLUMNS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "bihm3": (("elbo", "ELBO", 2), ("bihm_bound", "log p̃*(x) (Eq. 4)", 2), ("log_z2", "log Z² (Eq. 7)", 2),
              ("log_z2_se", "± s.e.", 2), ("log_p_star", "log p*(x)", 2), ("ess", "ESS", 1)),
    "dvaepp1": (("elbo", "ELBO (binary limit)", 2), ("ess", "ESS", 1)),
    "dvaepp2": (("elbo", "ELBO (binary limit)", 2), ("log_z", "log Z (AIS)", 2), ("log_z_se", "± s.e.", 2),
                ("ess", "ESS", 1)),
    "dvaesharp": (("elbo", "ELBO (binary limit)", 2), ("log_z", "log Z (AIS)", 2), ("log_z_se", "± s.e.", 2),
                  ("ess", "ESS", 1)),
    "bvae1": (("active_units", "AU", 0), ("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 4), ("ess", "ESS", 1)),
}
"""Per table, further measured columns: (metric key, header, decimals)."""


def _budget_line(report: dict[str, Any]) -> str:
    budget = report["budget"]
    stages = budget.get("stages") or [budget["stage"]]
    stage_text = "; then ".join(
        f"{s['epochs']} epoch(s) at lr {s['learning_rate']:g}, batch {s['batch_size']}, K = {s['num_particles']}"
        for s in stages
    )
    whole_test_set = budget["data"].get("test_size") is None
    binary = get_dataset_spec(report["dataset"]).binary
    return (
        f"{report['num_train']} training images ({report['dataset']}, "
        f"{'binary as published' if binary else report['binarization'] + ' binarisation'}), "
        f"{stage_text}; test: {'all' if whole_test_set else 'first'} {report['num_test']} test images "
        f"({'as published' if binary else 'one fixed-seed binarisation'}), "
        f"importance samples K = {budget['eval_particles']}."
    )


def _machine_line(report: dict[str, Any]) -> str:
    machine = report["machine"]
    device = machine["gpu"] or machine["device"]
    return (
        f"{machine['cpu']} ({machine['cpu_count']} cores), torch {machine['torch']}, "
        f"{machine['torch_threads']} thread(s), device {device}; 1-minute load average "
        f"{_number(machine['load_average_start'], 1)} at start, {_number(machine['load_average_end'], 1)} at end."
    )


def short_source(source: str) -> str:
    """``"BiHM (Bornschein et al. 2016) Table 3"`` -> ``"BiHM Table 3"``."""
    paper, _, rest = source.partition(" (")
    return f"{paper} {rest.rsplit(') ', 1)[-1]}" if rest else paper


def _row_cells(row: dict[str, Any], extra: tuple[tuple[str, str, int], ...]) -> list[str]:
    paper = row["paper"].get("log_p")
    metrics = row["metrics"]
    return [
        row["group"] or "–",
        row["method"],
        _number(metrics["log_p"]),
        _number(metrics["log_p_se"]),
        _number(paper["log_likelihood"]) if paper else "–",
        short_source(paper["source"]) if paper else "–",
        _number(row["gap_nats"].get("log_p")),
        *(_number(metrics.get(key), digits) for key, _, digits in extra),
        f"{row['parameters']:,}",
        str(row["steps"]),
        f"{row['train_seconds']:.0f}",
        f"{row['eval_seconds']:.0f}",
    ]


def _ranking_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        "Ranking at equal budget (best measured log p(x) first; after each other method, its "
        "difference to the best in nats ± the paired standard error over the same test images):",
        "",
    ]
    for group, places in report["ranking"].items():
        best, others = places[0], places[1:]
        described = [f"{best['method']} ({_number(best['log_p'])})"] + [
            f"{place['method']} ({_number(place['difference'])} ± {_number(place['difference_se'])})"
            for place in others
        ]
        lines.append(f"- {group or 'all'}: " + " > ".join(described))
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    """The Markdown report of a JSON report (:func:`to_json`): budget, machine, table, ranking, choices."""
    extra = EXTRA_COLUMNS[report["table"]]
    headers = ["group", "method", "log p(x) ours", "± s.e.", "paper", "source", "gap (nats)",
               *(header for _, header, _ in extra), "params", "steps", "train s", "eval s"]
    lines = [
        f"### {report['title']} — budget `{report['budget_name']}`",
        "",
        f"*Budget:* {_budget_line(report)}",
        "",
        f"*Wall time:* {report['wall_seconds'] / 60:.1f} min. *Machine:* {_machine_line(report)}",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|",
        *("| " + " | ".join(_row_cells(row, extra)) + " |" for row in report["rows"]),
    ]
    further = [(row, key) for row in report["rows"] for key in row["paper"] if key != "log_p"]
    if further:
        lines += ["", "Further comparisons:", ""]
        for row, key in further:
            value = row["paper"][key]
            lines.append(
                f"- {row['method']}, {value['quantity']}: ours {_number(row['metrics'].get(key))}, paper "
                f"{_number(value['log_likelihood'])} ({value['source']}), gap {_number(row['gap_nats'][key])} nats."
            )
    lines += ["", *_ranking_lines(report)]
    if report["notes"]:
        lines += ["", "Choices and deviations from the paper:", ""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def write_report(result: TableResult, output: Path) -> tuple[Path, Path]:
    """Write ``output`` (JSON) and ``output`` with suffix ``.md``; returns both paths."""
    output.parent.mkdir(parents=True, exist_ok=True)
    report = to_json(result)
    output.write_text(json.dumps(report, indent=2) + "\n")
    markdown = output.with_suffix(".md")
    markdown.write_text(to_markdown(report))
    return output, markdown

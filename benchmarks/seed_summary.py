r"""The ``full``-budget MNIST rows of :mod:`benchmarks.reproduce`, gathered over seeds.

Each ``python -m benchmarks.reproduce --budget full --seed k --rows ...`` job writes one
report per seed. This module groups those reports by (table, row, epochs), so that runs of
different lengths are never averaged together, and renders one Markdown table:

* the mean and sample standard deviation over seeds of the test :math:`\log p(x)`, with
  each seed's value;
* the paper's value and the gap (ours − paper);
* the ELBO, the ESS, the steps, the training and evaluation time.

Below the table it lists each row group's methods in order of their means. For each
neighbouring pair of rows with at least two seeds it gives a Welch two-sample test over seeds
(single-seed rows follow, untested):

.. math::

    \Delta = \bar a - \bar b, \qquad
    \operatorname{se}(\Delta) = \sqrt{s_a^2/n_a + s_b^2/n_b}, \qquad
    \nu = \frac{\operatorname{se}^4}{\frac{(s_a^2/n_a)^2}{n_a-1} + \frac{(s_b^2/n_b)^2}{n_b-1}},

with a two-sided :math:`p` from Student's :math:`t_\nu`. A pair is ordered "beyond the
seeds' spread" when :math:`p < 0.05`. Only training seeds enter this test; the test-set
noise is already inside each seed's value. Both methods need at least two seeds.

    python -m benchmarks.seed_summary           # writes benchmarks/results/mnist_full.md, embeds it in docs/benchmarks.md
    python -m benchmarks.seed_summary --check   # exit 1 if docs/benchmarks.md does not show that rendering
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy import stats

from benchmarks.results_freshness import load_acknowledgements

RESULTS_DIR = Path("benchmarks/results")
SUMMARY_FILE = "mnist_full.md"
DOCUMENT = Path("docs/benchmarks.md")
BEGIN_MARKER = "<!-- mnist-full-table: begin (rendered by python -m benchmarks.seed_summary; do not edit) -->"
END_MARKER = "<!-- mnist-full-table: end -->"
MNIST_TABLES = ("bihm3", "dvaepp1", "dvaepp2", "dvaesharp", "bvae1")
SIGNIFICANCE = 0.05
"""Two-sided level of the Welch test that calls an ordering "beyond the seeds' spread"."""


@dataclass(frozen=True)
class SeedRun:
    """One trained row of one ``full`` report: a (table, group, method) at one seed."""

    table: str
    title: str
    group: str
    method: str
    epochs: int
    particles: int
    test_images: int
    steps: int
    seed: int
    log_p: float
    log_p_se: float
    elbo: float | None
    ess: float | None
    paper: float | None
    train_seconds: float
    eval_seconds: float
    commit: str
    source: str

    @property
    def key(self) -> RowKey:
        return RowKey(self.table, self.group, self.method, self.epochs, self.particles, self.test_images)


@dataclass(frozen=True, order=True)
class RowKey:
    """Runs with equal keys are seeds of one row: same table, group, method, length and test protocol."""

    table: str
    group: str
    method: str
    epochs: int
    particles: int
    test_images: int


@dataclass(frozen=True)
class RowSummary:
    """Mean and sample standard deviation over the seeds of one row (``sd`` NaN for one seed)."""

    key: RowKey
    runs: tuple[SeedRun, ...]

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def mean(self) -> float:
        return _mean([run.log_p for run in self.runs])

    @property
    def sd(self) -> float:
        return _sample_sd([run.log_p for run in self.runs])


@dataclass(frozen=True)
class Comparison:
    """Welch's two-sample test over seeds of ``ahead`` (the larger mean) against ``behind``."""

    ahead: RowSummary
    behind: RowSummary
    difference: float
    standard_error: float
    degrees_of_freedom: float
    p_value: float

    @property
    def beyond_spread(self) -> bool:
        return self.p_value < SIGNIFICANCE


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _sample_sd(values: Sequence[float]) -> float:
    if len(values) < 2:
        return math.nan
    centre = _mean(values)
    return math.sqrt(math.fsum((value - centre) ** 2 for value in values) / (len(values) - 1))


def trained_epochs(budget: dict[str, Any]) -> int:
    """The epochs a report's budget trains: its stage's, or the sum over BiHM's stages."""
    if "stages" in budget:
        return sum(stage["epochs"] for stage in budget["stages"])
    return budget["stage"]["epochs"]


def runs_of_report(record: dict[str, Any], source: str) -> list[SeedRun]:
    """The trained rows of one report of :mod:`benchmarks.reproduce`."""
    runs = []
    for row in record["rows"]:
        metrics = row["metrics"]
        paper = row.get("paper", {}).get("log_p")
        runs.append(SeedRun(
            table=record["table"],
            title=record["title"],
            group=row["group"],
            method=row["method"],
            epochs=trained_epochs(record["budget"]),
            particles=record["budget"]["eval_particles"],
            test_images=record["num_test"],
            steps=row["steps"],
            seed=record["seed"],
            log_p=metrics["log_p"],
            log_p_se=metrics["log_p_se"],
            elbo=metrics.get("elbo"),
            ess=metrics.get("ess"),
            paper=None if paper is None else paper["log_likelihood"],
            train_seconds=row["train_seconds"],
            eval_seconds=row["eval_seconds"],
            commit=record["provenance"]["commit"],
            source=source,
        ))
    return runs


def load_runs(results_dir: Path = RESULTS_DIR) -> list[SeedRun]:
    """Every trained row of the ``full`` MNIST reports in ``results_dir`` that is not marked superseded."""
    superseded = load_acknowledgements(results_dir / "acknowledged_changes.json")["superseded"]
    runs = []
    for path in sorted(results_dir.glob("*_full*.json")):
        record = json.loads(path.read_text())
        if path.name in superseded or record.get("table") not in MNIST_TABLES or record.get("budget_name") != "full":
            continue
        runs.extend(runs_of_report(record, path.name))
    return runs


def group_runs(runs: Iterable[SeedRun]) -> list[RowSummary]:
    """The rows, each with its seeds in order; two reports of one seed of one row are an error."""
    grouped: dict[RowKey, dict[int, SeedRun]] = {}
    for run in runs:
        seeds = grouped.setdefault(run.key, {})
        if run.seed in seeds:
            raise ValueError(
                f"{run.source} and {seeds[run.seed].source} both report seed {run.seed} of {run.table} "
                f"'{run.group}/{run.method}' at {run.epochs} epochs: mark one superseded in "
                "benchmarks/results/acknowledged_changes.json"
            )
        seeds[run.seed] = run
    return [RowSummary(key, tuple(seeds[seed] for seed in sorted(seeds))) for key, seeds in sorted(grouped.items())]


def welch(a: RowSummary, b: RowSummary) -> Comparison | None:
    """Welch's test of the two rows' means over seeds; ``None`` unless each has at least two seeds."""
    if a.seeds < 2 or b.seeds < 2:
        return None
    ahead, behind = (a, b) if a.mean >= b.mean else (b, a)
    va, vb = ahead.sd**2 / ahead.seeds, behind.sd**2 / behind.seeds
    standard_error = math.sqrt(va + vb)
    difference = ahead.mean - behind.mean
    if standard_error == 0.0:
        return Comparison(ahead, behind, difference, 0.0, math.inf, 0.0 if difference > 0 else 1.0)
    degrees = (va + vb) ** 2 / (va**2 / (ahead.seeds - 1) + vb**2 / (behind.seeds - 1))
    p_value = 2.0 * stats.t.sf(difference / standard_error, degrees)
    return Comparison(ahead, behind, difference, standard_error, degrees, float(p_value))


def rankings(rows: Sequence[RowSummary]) -> dict[tuple[str, str, int, int, int], list[RowSummary]]:
    """Per (table, group, epochs) at one test protocol, its rows from the highest mean log p(x) to the lowest."""
    ranked: dict[tuple[str, str, int, int, int], list[RowSummary]] = {}
    for row in rows:
        protocol = (row.key.particles, row.key.test_images)
        ranked.setdefault((row.key.table, row.key.group, row.key.epochs, *protocol), []).append(row)
    return {key: sorted(members, key=lambda row: -row.mean) for key, members in ranked.items()}


# --- rendering -------------------------------------------------------------------------


def _number(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}".replace("-", "−")


def _minutes(seconds: Sequence[float]) -> str:
    return ", ".join(f"{value / 60:.0f}" for value in seconds)


def table_line(row: RowSummary) -> str:
    """One Markdown row of the summary table."""
    runs = row.runs
    paper = runs[0].paper
    if row.seeds > 1:
        ours = f"**{_number(row.mean)} ± {_number(row.sd)}**"
    else:
        ours = f"**{_number(row.mean)}** (1 seed; s.e. {_number(runs[0].log_p_se)})"
    per_seed = ", ".join(f"{_number(run.log_p)} (s{run.seed})" for run in runs)
    steps_per_second = [run.steps / run.train_seconds for run in runs]
    elbos = [run.elbo for run in runs if run.elbo is not None]
    esses = [run.ess for run in runs if run.ess is not None]
    return (
        f"| {runs[0].table} | {row.key.group} / {row.key.method} | {row.key.epochs} ({runs[0].steps:,}) "
        f"| {row.key.particles:,} × {row.key.test_images:,} | {row.seeds} | {ours} | {per_seed} | {_number(paper)} "
        f"| {_number(None if paper is None else row.mean - paper)} "
        f"| {_number(_mean(elbos) if elbos else None)} | {_number(_mean(esses) if esses else None, 1)} "
        f"| {_minutes([run.train_seconds for run in runs])} ({_number(_mean(steps_per_second), 0)}) "
        f"| {_minutes([run.eval_seconds for run in runs])} |"
    )


def ranking_line(group: tuple[str, str, int, int, int], members: Sequence[RowSummary]) -> str:
    """The group's methods by mean: the rows with at least two seeds in one chain, each neighbouring
    pair with its Welch test, then the single-seed rows, untested (placed inside the chain, a
    single-seed row would stand between two rows that can be tested and hide their test)."""
    table, name, epochs, _, _ = group
    tested = [row for row in members if row.seeds >= 2]
    single = [row for row in members if row.seeds < 2]
    parts = [f"{tested[0].key.method} ({_number(tested[0].mean)})"] if tested else []
    for ahead, behind in zip(tested, tested[1:]):
        comparison = welch(ahead, behind)
        verdict = (
            f"Δ {_number(comparison.difference)} ± {_number(comparison.standard_error)}, "
            f"Welch p = {comparison.p_value:.2g} (ν = {comparison.degrees_of_freedom:.1f}): "
            + ("beyond the seeds' spread" if comparison.beyond_spread else "not beyond the seeds' spread")
        )
        parts.append(f"> {behind.key.method} ({_number(behind.mean)}) [{verdict}]")
    text = " ".join(parts)
    if single:
        listed = ", ".join(f"{row.key.method} ({_number(row.mean)})" for row in single)
        text += ("; " if text else "") + f"1 seed, not tested: {listed}"
    return f"- {table}, {name}, {epochs} epochs: {text}"


def render(rows: Sequence[RowSummary]) -> str:
    """The summary table and the rankings, as Markdown."""
    header = (
        "| table | row | epochs (steps) | K × test images | seeds | log p(x), mean ± sd over seeds | each seed | paper | gap "
        "| ELBO | ESS | train, min (steps/s) | test evaluation, min |\n"
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|"
    )
    lines = [header, *(table_line(row) for row in rows), ""]
    orders = [(group, members) for group, members in rankings(rows).items() if len(members) > 1]
    if orders:
        lines.append("Orderings within a row group (higher log p(x) first), Welch's test over seeds:")
        lines.append("")
        lines.extend(ranking_line(group, members) for group, members in orders)
    return "\n".join(lines).rstrip("\n") + "\n"


def embed(document: str, rendering: str) -> str:
    """``document`` with the text between the markers replaced by ``rendering``."""
    lines = document.split("\n")
    try:
        begin, end = lines.index(BEGIN_MARKER), lines.index(END_MARKER)
    except ValueError as error:
        raise ValueError(f"{DOCUMENT} lacks the markers {BEGIN_MARKER!r} and {END_MARKER!r}") from error
    return "\n".join([*lines[: begin + 1], *rendering.rstrip("\n").split("\n"), *lines[end:]])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--document", type=Path, default=DOCUMENT)
    parser.add_argument("--check", action="store_true",
                        help="only check that the document shows the current rendering (exit 1 if not)")
    args = parser.parse_args(argv)
    rendering = render(group_runs(load_runs(args.results_dir)))
    document = args.document.read_text()
    updated = embed(document, rendering)
    if args.check:
        if updated != document:
            print(f"{args.document} does not show the rendering of {args.results_dir}: run "
                  "python -m benchmarks.seed_summary", file=sys.stderr)
            return 1
        return 0
    (args.results_dir / SUMMARY_FILE).write_text(rendering)
    args.document.write_text(updated)
    print(rendering)
    return 0


if __name__ == "__main__":
    sys.exit(main())

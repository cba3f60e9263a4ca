r"""BiHM Table 1 on the UCI binary sets: BiHM and RWS sigmoid belief nets, trained to convergence.

One *job* is one (dataset, method, seed). It trains the paper's architecture (BiHM
Table 2) with Adam, evaluates the validation log-likelihood every few epochs, keeps the
best parameters, and stops when the validation estimate has not improved for
``patience`` evaluations (the paper's "until convergence"). The best parameters are then
evaluated on the whole test set:

* :math:`-\log p(x)` by importance sampling with K guide samples (BiHM Eq. 5);
* for BiHM, :math:`-\log p^*(x) = -(\log \tilde p^*(x) - \log Z^2)` with
  :math:`\log \tilde p^*(x) = 2 \log \frac1K \sum_k \sqrt{w_k}` (Eq. 4) from the same
  samples and :math:`\log Z^2` from Eq. 7 (:math:`K_\mathrm{inner} = 1`);
* ESS %: Kish's effective sample size of the BiHM weights :math:`\sqrt{w_k}` (Sec. 4.1)
  as a percentage of K, averaged over test examples (and the same for :math:`w_k`).

Jobs checkpoint at every evaluation into ``benchmarks/checkpoints/bihm1/<job>/`` (committed,
so a later session continues them) and resume from there; a finished job writes
``benchmarks/results/bihm1/<job>.json`` with
its provenance (:mod:`benchmarks.provenance`) and its validation curve. The table is
rendered from those files by :func:`render_table`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyro
import torch

from benchmarks import paper_values
from benchmarks.provenance import git, library_files_run_by, provenance
from pyro_dgm.cli.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from pyro_dgm.data import BinarizedBatches, load_dataset
from pyro_dgm.data.registry import DNA_SPLIT_NOTE, get_dataset_spec
from pyro_dgm.infer import BiHMELBO, ReweightedWakeSleep
from pyro_dgm.bihm.sbn_importance import sbn_importance_estimate
from pyro_dgm.bihm.sbn_partition import estimate_sbn_log_partition_squared
from pyro_dgm.infer.objectives.weight_penalty import PenalisedObjective
from pyro_dgm.models import BottomUpGuide, SigmoidBeliefNet
from pyro_dgm.models.sbn import BIHM_L1_STRENGTH

TABLE = "bihm1"
RUNS_DIR = Path("benchmarks/checkpoints") / TABLE
"""Job checkpoints, tracked by git (a few MB each) so that a job stopped by the end of a session, or one
that reached its step cap before converging, is continued by a later session instead of restarted."""
RESULTS_DIR = Path("benchmarks/results") / TABLE

DATASETS = ("dna", "mushrooms", "nips")
"""The three of BiHM Table 1's eight UCI sets whose files are at hand (see ``DATA_SOURCES.md``)."""

METHODS = ("BiHM", "RWS")

ARCHITECTURES: dict[tuple[str, str], tuple[int, ...]] = {
    ("dna", "BiHM"): (200, 150, 130, 100, 70, 50, 30, 20, 10),
    ("mushrooms", "BiHM"): (150, 100, 90, 60, 40, 20),
    ("nips", "BiHM"): (200, 100, 50, 25),
    ("dna", "RWS"): (150, 10),
    ("mushrooms", "RWS"): (150, 50, 10),
    ("nips", "RWS"): (150, 50, 10),
}
"""Latent layer sizes, bottom-up (BiHM Table 2: "our best UCI BiHM models compared to our best RWS models")."""

MAX_PLATE_NESTING = 1
"""The data plate only. Stated, not guessed: Pyro's guess runs model and guide once, drawing
random numbers, which would make a resumed run differ from a straight one."""


@dataclass(frozen=True)
class UCIBudget:
    r"""Training and evaluation settings shared by every job.

    :ivar learning_rate: Adam step size; BiHM Sec. 4 uses 1e-2 or 1e-3 on the UCI sets. We take
        1e-2: on DNA (BiHM, seed 0) it reached a validation log p(x) of -94.0 after 30 epochs
        where 1e-3 reached -100.0, and this CPU affords a few thousand steps per job.
    :ivar batch_size: BiHM Sec. 4 (and the authors' code): 100.
    :ivar num_particles: K during training; BiHM's code: 10.
    :ivar l1_strength: :math:`\lambda` of the L1 penalty on all weights (BiHM Sec. 4).
    :ivar max_steps: a cap on training (optimiser steps); a job that reaches it says so
        (``converged`` false in its result) and can be continued with a larger cap.
    :ivar eval_every: epochs between validation estimates (and checkpoints).
    :ivar patience: evaluations without a validation improvement before stopping.
    :ivar valid_particles: K of the validation estimate.
    :ivar test_particles: K of the test estimate (the issue's protocol: at least 10^4 on UCI).
    :ivar partition_samples: outer samples of BiHM's :math:`Z^2` (Eq. 7).
    """

    learning_rate: float = 1e-2
    batch_size: int = 100
    num_particles: int = 10
    l1_strength: float = BIHM_L1_STRENGTH
    max_steps: int = 6000
    eval_every: int = 10
    patience: int = 5
    valid_particles: int = 100
    test_particles: int = 10_000
    partition_samples: int = 10**6


BUDGETS = {
    "tiny": UCIBudget(max_steps=2, eval_every=1, patience=1, valid_particles=4, test_particles=8,
                      partition_samples=1000),
    "small": UCIBudget(max_steps=600, test_particles=1000, partition_samples=10**5),
    "full": UCIBudget(),
}


@dataclass(frozen=True)
class Job:
    """One (dataset, method, seed); ``learning_rate`` overrides the budget's (a diagnostic run, named apart)."""

    dataset: str
    method: str
    seed: int
    learning_rate: float | None = None

    @property
    def name(self) -> str:
        suffix = "" if self.learning_rate is None else f"-lr{self.learning_rate:g}"
        return f"{self.dataset}-{self.method}-seed{self.seed}{suffix}"

    def budget(self, budget: "UCIBudget") -> "UCIBudget":
        return budget if self.learning_rate is None else replace(budget, learning_rate=self.learning_rate)

    @property
    def layer_sizes(self) -> list[int]:
        return [get_dataset_spec(self.dataset).example_size, *ARCHITECTURES[self.dataset, self.method]]


@dataclass
class Curve:
    """Validation log-likelihood per evaluation, and the best so far."""

    epochs: list[int] = field(default_factory=list)
    valid_log_p: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_valid_log_p: float = -math.inf

    def evaluations_since_best(self) -> int:
        return sum(1 for epoch in self.epochs if epoch > self.best_epoch)


def build(job: Job, budget: UCIBudget) -> tuple[SigmoidBeliefNet, BottomUpGuide, pyro.infer.ELBO]:
    """Model (BiHM init: Glorot weights, biases -1), guide and objective with the L1 penalty on both."""
    pyro.set_rng_seed(job.seed)
    model = SigmoidBeliefNet(job.layer_sizes, l1_strength=budget.l1_strength)
    guide = BottomUpGuide(job.layer_sizes, l1_strength=budget.l1_strength)
    if job.method == "BiHM":
        objective = BiHMELBO(num_particles=budget.num_particles, max_plate_nesting=MAX_PLATE_NESTING)
    else:
        objective = ReweightedWakeSleep(num_particles=budget.num_particles, max_plate_nesting=MAX_PLATE_NESTING)
    return model, guide, PenalisedObjective(objective, (model, guide))


def data_files(dataset: str, root: Path) -> list[Path]:
    return [root / remote.name for remote in get_dataset_spec(dataset).files]


def validation_log_likelihood(model, guide, data: torch.Tensor, num_samples: int) -> float:
    """Mean importance-weighted :math:`\\log p(x)` over ``data`` (BiHM Eq. 5)."""
    return sbn_importance_estimate(model, guide, data, num_samples).log_likelihood.mean().item()


def test_estimates(model, guide, data: torch.Tensor, num_samples: int) -> dict[str, Any]:
    r"""Per test example from one set of K samples: :math:`\log p(x)` (Eq. 5), :math:`\log \tilde p^*(x)`
    (Eq. 4) and Kish's ESS of :math:`\sqrt w` (BiHM's weights) and of :math:`w`; means over examples."""
    estimate = sbn_importance_estimate(model, guide, data, num_samples)
    log_p = estimate.log_likelihood
    return {
        "log_p": log_p.mean().item(),
        "log_p_se": (log_p.std() / math.sqrt(log_p.numel())).item(),
        "log_p_tilde_star": estimate.log_p_tilde_star.mean().item(),
        "ess_percent": 100 * estimate.bihm_effective_sample_size.mean().item() / num_samples,
        "ess_percent_w": 100 * estimate.effective_sample_size.mean().item() / num_samples,
        "test_particles": num_samples,
        "num_test": log_p.numel(),
    }


def checkpoint_path(job: Job) -> Path:
    return RUNS_DIR / job.name / "checkpoint.pt"


def result_path(job: Job) -> Path:
    return RESULTS_DIR / f"{job.name}.json"


def train(job: Job, budget: UCIBudget, root: Path, *, log=print, argv: Sequence[str] | None = None) -> Path:
    """Train ``job`` to convergence (resuming from its checkpoint), evaluate the best parameters, write the result."""
    budget = job.budget(budget)
    model, guide, objective = build(job, budget)
    pyro.clear_param_store()
    optimiser = pyro.optim.Adam({"lr": budget.learning_rate})
    svi = pyro.infer.SVI(model, guide, optimiser, loss=objective)
    train_data = load_dataset(job.dataset, "train", root=root)
    valid_data = load_dataset(job.dataset, "valid", root=root)
    batches = BinarizedBatches(train_data, budget.batch_size, binarization="none", seed=job.seed)
    curve, best_state, seconds_before = Curve(), None, 0.0
    path = checkpoint_path(job)
    if path.is_file():
        payload = load_checkpoint(path)
        model.load_state_dict(payload["model"])
        guide.load_state_dict(payload["guide"])
        optimiser.set_state(payload["optimiser"])
        batches.load_state_dict(payload["batches"])
        restore_rng_state(payload["rng"])
        curve, best_state, seconds_before = Curve(**payload["curve"]), payload["best"], payload["seconds"]
        log(f"{job.name}: resumed at epoch {batches.epoch}")
    started = time.perf_counter()
    num_data = batches.num_examples
    while batches.epoch * len(batches) < budget.max_steps and curve.evaluations_since_best() < budget.patience:
        loss_sum = 0.0
        for _ in range(budget.eval_every):
            for x in batches:
                loss_sum += svi.step(x, num_data=num_data) * x.shape[0] / num_data
        epoch = batches.epoch
        valid = validation_log_likelihood(model, guide, valid_data, budget.valid_particles)
        curve.epochs.append(epoch)
        curve.valid_log_p.append(valid)
        curve.train_loss.append(loss_sum / (budget.eval_every * num_data))
        curve.seconds.append(seconds_before + time.perf_counter() - started)
        if valid > curve.best_valid_log_p:
            curve.best_epoch, curve.best_valid_log_p = epoch, valid
            best_state = {"model": model.state_dict(), "guide": guide.state_dict()}
            best_state = {name: {key: value.clone() for key, value in state.items()} for name, state in best_state.items()}
        save_checkpoint(path, {
            "model": model.state_dict(), "guide": guide.state_dict(), "optimiser": optimiser.get_state(),
            "batches": batches.state_dict(), "rng": capture_rng_state(), "curve": asdict(curve),
            "best": best_state, "seconds": curve.seconds[-1],
        })
        log(f"{job.name}: epoch {epoch} train loss {curve.train_loss[-1]:.3f} valid log p {valid:.3f} "
            f"(best {curve.best_valid_log_p:.3f} at {curve.best_epoch}) {curve.seconds[-1]:.0f} s")
    train_seconds = curve.seconds[-1] if curve.seconds else 0.0
    model.load_state_dict(best_state["model"])
    guide.load_state_dict(best_state["guide"])
    return evaluate_and_write(job, budget, root, model, guide, curve, train_seconds, batches, log=log, argv=argv)


def evaluate_and_write(job, budget, root, model, guide, curve, train_seconds, batches, *, log=print,
                       argv: Sequence[str] | None = None) -> Path:
    """Test-set estimates of the best parameters and, for BiHM, :math:`\\log Z^2`; write the result JSON."""
    pyro.set_rng_seed(job.seed)
    test_data = load_dataset(job.dataset, "test", root=root)
    started = time.perf_counter()
    metrics = test_estimates(model, guide, test_data, budget.test_particles)
    if job.method == "BiHM":
        partition = estimate_sbn_log_partition_squared(model, guide, num_outer=budget.partition_samples)
        metrics["log_z2"] = partition.log_partition_squared.item()  # Eq. 7
        metrics["log_z2_se"] = partition.standard_error.item()
        metrics["log_p_star"] = metrics["log_p_tilde_star"] - metrics["log_z2"]  # Eq. 1: p* = p~* / Z^2
    eval_seconds = time.perf_counter() - started
    steps = batches.epoch * len(batches)
    record = {
        "table": TABLE,
        "job": asdict(job),
        "layer_sizes": job.layer_sizes,
        "budget": asdict(budget),
        "metrics": metrics,
        "paper": paper_values.BIHM1.get((job.dataset, job.method), {}),
        "epochs": batches.epoch,
        "steps": steps,
        "best_epoch": curve.best_epoch,
        "converged": curve.evaluations_since_best() >= budget.patience,
        "train_seconds": train_seconds,
        "steps_per_second": steps / train_seconds if train_seconds > 0 else None,
        "eval_seconds": eval_seconds,
        "curve": asdict(curve),
        "notes": [DNA_SPLIT_NOTE] if job.dataset == "dna" else [],
        "provenance": provenance(data_files(job.dataset, root), argv, library_files=probe_library_files(job, budget, root)),
    }
    output = result_path(job)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=1) + "\n")
    log(f"{job.name}: test -log p(x) {-metrics['log_p']:.3f} ± {metrics['log_p_se']:.3f}; wrote {output}")
    return output


PROBE_EXAMPLES, PROBE_PARTICLES, PROBE_PARTITION_SAMPLES = 4, 2, 16
"""Size of the probe that finds the library files a job runs: one step, one estimate, one Z^2."""


def probe_library_files(job: Job, budget: UCIBudget, root: Path) -> dict[str, str]:
    """The library files (with blob hashes) that ``job``'s training step and evaluation run, traced on a
    tiny probe with fresh modules; the global RNG states are restored afterwards."""
    def probe() -> None:
        model, guide, objective = build(job, replace(budget, num_particles=PROBE_PARTICLES))
        pyro.clear_param_store()
        svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": budget.learning_rate}), loss=objective)
        x = load_dataset(job.dataset, "valid", root=root)[:PROBE_EXAMPLES]
        svi.step(x, num_data=PROBE_EXAMPLES)
        test_estimates(model, guide, x, PROBE_PARTICLES)
        if job.method == "BiHM":
            estimate_sbn_log_partition_squared(model, guide, num_outer=PROBE_PARTITION_SAMPLES)

    state = capture_rng_state()
    try:
        return library_files_run_by(probe)
    finally:
        restore_rng_state(state)


ABSENT_FILE = "absent"
"""The recorded hash of a library file the probe runs today that did not exist at the result's commit."""


def backfill_library_files(result: Path, root: Path) -> None:
    """Give a result written before results recorded their library files (commit 7a67c27) the files
    its job's probe runs today, with their blob hashes *at the result's own commit* (``git rev-parse
    <commit>:<path>``), so the freshness test compares against the code that produced the numbers."""
    record = json.loads(result.read_text())
    provenance_record = record["provenance"]
    if provenance_record.get("library_files"):
        return
    job = Job(**record["job"])
    probed = probe_library_files(job, BUDGETS["tiny"], root)
    commit = provenance_record["commit"]
    provenance_record["library_files"] = {
        path: git("rev-parse", f"{commit}:{path}") or ABSENT_FILE for path in probed  # a file added since
    }
    provenance_record["library_files_note"] = (
        "recorded after the run: the files the job's one-step probe runs, hashed as at the run's commit"
    )
    result.write_text(json.dumps(record, indent=1) + "\n")


def is_finished(record: dict[str, Any], budget: UCIBudget) -> bool:
    """A result stands if its job converged, or if it already had the step cap ``budget`` allows
    (a larger ``max_steps`` continues an unconverged job from its checkpoint)."""
    return record["converged"] or record["budget"]["max_steps"] >= budget.max_steps


def jobs(datasets: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
         learning_rate: float | None = None) -> list[Job]:
    return [Job(dataset, method, seed, learning_rate) for dataset in datasets for method in methods for seed in seeds]


def run(datasets: Sequence[str], methods: Sequence[str], seeds: Sequence[int], budget_name: str, root: Path,
        *, redo: bool = False, argv: Sequence[str] | None = None, learning_rate: float | None = None,
        max_steps: int | None = None) -> list[Path]:
    """Run every job not finished yet (``redo``: also the finished ones); returns the result files.

    ``argv``: the command line recorded in each result (default ``sys.argv``).
    """
    budget = with_overrides(BUDGETS[budget_name], max_steps=max_steps)
    outputs = []
    for job in jobs(datasets, methods, seeds, learning_rate):
        if result_path(job).is_file() and not redo and is_finished(json.loads(result_path(job).read_text()), budget):
            outputs.append(result_path(job))
            continue
        outputs.append(train(job, budget, root, argv=argv))
    return outputs


# --- the table -------------------------------------------------------------------------


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean and sample standard deviation over seeds of each reported quantity."""
    def mean_sd(values: list[float]) -> tuple[float, float]:
        tensor = torch.tensor(values, dtype=torch.float64)
        return tensor.mean().item(), (tensor.std().item() if len(values) > 1 else math.nan)

    summary: dict[str, float] = {"seeds": len(records)}
    for key in ("log_p", "log_p_star", "log_z2", "ess_percent", "log_p_se"):
        values = [record["metrics"][key] for record in records if key in record["metrics"]]
        if values:
            summary[key], summary[f"{key}_sd"] = mean_sd(values)
    summary["epochs"] = sum(record["epochs"] for record in records) / len(records)
    summary["steps_per_second"] = sum(record["steps_per_second"] or 0 for record in records) / len(records)
    return summary


def _cell(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def mean_best_validation(group: Sequence[dict[str, Any]]) -> float:
    """Mean over seeds of the best validation log p(x) (what model selection may look at)."""
    return sum(record["curve"]["best_valid_log_p"] for record in group) / len(group)


def selected_learning_rates(records: dict[tuple[str, str, float], list[dict[str, Any]]]) -> dict[tuple[str, str], float]:
    """Per (dataset, method), the learning rate with the best mean validation log p(x): BiHM Sec. 4 uses
    "a learning rate of 1e-2 or 1e-3", chosen per experiment; we choose on the validation set, never the test set."""
    best: dict[tuple[str, str], tuple[float, float]] = {}
    for (dataset, method, learning_rate), group in records.items():
        score = mean_best_validation(group)
        if (dataset, method) not in best or score > best[dataset, method][0]:
            best[dataset, method] = (score, learning_rate)
    return {key: learning_rate for key, (_, learning_rate) in best.items()}


def spread(value: float, summary: dict[str, float]) -> str:
    """``mean ± sd`` over seeds, or for a single seed the test set's standard error, marked as such."""
    if summary["seeds"] > 1:
        return f"{_cell(value)} ± {_cell(summary.get('log_p_sd'))}"
    return f"{_cell(value)} (1 seed; s.e. {_cell(summary.get('log_p_se'))})"


def table_row(dataset: str, method: str, learning_rate: float, group: Sequence[dict[str, Any]], selected: bool) -> str:
    """One Markdown row: ours (mean ± sd over the seeds in ``group``) beside the paper's values; the
    learning rate chosen on the validation set is in bold."""
    summary = summarise(group)
    paper = paper_values.BIHM1.get((dataset, method), {})
    ours = -summary["log_p"]
    gap = ours - paper["nll"] if "nll" in paper else None
    star = -summary["log_p_star"] if "log_p_star" in summary else None
    minus_2_log_z = -summary["log_z2"] if "log_z2" in summary else None
    star_cell = _cell(star) + (f" ± {_cell(summary.get('log_p_star_sd'))}" if summary["seeds"] > 1 else "") if star is not None else "–"
    ess_cell = _cell(summary.get("ess_percent"), 1) if method == "BiHM" else "–"
    converged = sum(record["converged"] for record in group)
    rate = f"**{learning_rate:g}**" if selected else f"{learning_rate:g}"
    return (
        f"| {dataset} | {method} | {'-'.join(map(str, group[0]['layer_sizes'][1:]))} | {rate} "
        f"| {summary['seeds']} | {_cell(-mean_best_validation(group))} "
        f"| {spread(ours, summary)} | {_cell(paper.get('nll'))} "
        f"| {_cell(gap)} | {star_cell} | {_cell(paper.get('nll_star'))} | {_cell(minus_2_log_z)} "
        f"| {_cell(paper.get('minus_2_log_z'))} | {ess_cell} | {_cell(paper.get('ess_percent'), 1)} "
        f"| {summary['epochs']:.0f} | {converged}/{len(group)} | {summary['steps_per_second']:.0f} |"
    )


def render_table(results_dir: Path | None = None) -> str:
    """Markdown: per dataset, method and learning rate, ours (mean ± sd over seeds) beside BiHM Table 1;
    the learning rate selected on the validation set in bold."""
    results_dir = RESULTS_DIR if results_dir is None else results_dir
    records: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for path in sorted(results_dir.glob("*.json")):
        record = json.loads(path.read_text())
        key = (record["job"]["dataset"], record["job"]["method"], record["budget"]["learning_rate"])
        records.setdefault(key, []).append(record)
    lines = [
        "| dataset | method | layers | lr | seeds | valid −log p(x) | −log p(x) ours (± sd over seeds) | paper | gap "
        "| −log p*(x) ours "
        "| paper | −2 log Z ours | paper | ESS % ours | paper | epochs | converged | steps/s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ordered = sorted(records.items(), key=lambda item: (DATASETS.index(item[0][0]), METHODS.index(item[0][1]), -item[0][2]))
    selected = selected_learning_rates(records)
    lines += [
        table_row(dataset, method, learning_rate, group, selected[dataset, method] == learning_rate)
        for (dataset, method, learning_rate), group in ordered
    ]
    return "\n".join(lines) + "\n"


def with_overrides(budget: UCIBudget, **overrides: Any) -> UCIBudget:
    return replace(budget, **{key: value for key, value in overrides.items() if value is not None})

"""Re-run the papers' likelihood tables with pyro_dgm and compare with the published numbers.

Four tables (``--table``), each at three budgets (``--budget``, see
:mod:`benchmarks.reproduce_configs`):

* ``bihm3`` — BiHM Table 3 (MNIST): BiHM's 12-layer sigmoid belief net trained by
  :class:`~pyro_dgm.infer.BiHMELBO`, :class:`~pyro_dgm.infer.ReweightedWakeSleep` and
  :class:`~pyro_dgm.infer.VIMCO`; test :math:`\\log p(x)` by importance sampling (Eq. 5),
  the ELBO and BiHM's bound :math:`\\log \\tilde p^*(x)` (Eq. 4) from the same samples, and
  for the BiHM-trained model :math:`\\log p^*(x)` with :math:`Z^2` from Eq. 7.
* ``dvaepp1`` — DVAE++ Table 1: 200 Bernoulli latents, linear and nonlinear networks,
  the joint (Eq. 4) and marginal (Eq. 5) ELBO with the overlapping transformation, plus
  pyro_dgm's other smoothers under the joint ELBO; :math:`\\log p(x)` in the binary limit.
* ``dvaepp2`` — DVAE++ Table 2: RBM prior (overlapping transformation, and Rolfe's
  spike-and-exponential with DVAE's gradient) against directed priors, 1 and 2 latent
  layers; the RBM's :math:`\\log Z` by AIS for evaluation.
* ``bvae1`` — BVAE Table I: Gaussian VAEs and their bidirectional twins: test NLL,
  parameter counts, active units, PSNR and SSIM of reconstructions.
* ``dvaesharp`` — DVAE# (power smoother, K-sample IW bound, K = 1 and 5) against DVAE++ and
  DVAE on the 1-layer RBM-prior models of DVAE++ Table 2, linear and nonlinear, at equal
  budget: the ranking DVAE# > DVAE++ > DVAE that DVAE# reports (no published numbers to compare).

Every table is written as JSON and Markdown (``--output x.json`` also writes ``x.md``):
the paper's value with its table number, ours, the gap in nats (ours − paper; negative
means ours is lower), the ranking of the methods at equal budget, the budget itself,
the wall time and the machine (CPU, threads, load average before and after).

Run from the repository root::

    python -m benchmarks.reproduce --table bihm3 --budget small \\
        --data-root ../shared/data/binarized_mnist --output benchmarks/results/bihm3_small.json
    python -m benchmarks.reproduce --table bihm1 --budget full --data-root ../shared/data/uci
    python -m benchmarks.reproduce --table dvaepp1 --budget full --device cuda --data-root ...

The ``small`` and ``full`` budgets read the papers' data, Larochelle's statically
binarised MNIST (``--data-root`` holds ``binarized_mnist_{train,valid,test}.mat`` or the
``.amat`` files), and score the whole test set; ``tiny`` binarises the embedded grey
subset with one fixed-seed draw. ``--table bihm1`` is BiHM Table 1 on the UCI sets
(:mod:`benchmarks.uci_bihm`; ``--data-root`` holds ``<name>.{train,valid,test}.data``).

This module trains each table's configurations and runs the command line; the test
evaluation is :mod:`benchmarks.evaluation`, the records and reports
:mod:`benchmarks.reproduce_report`, the budgets :mod:`benchmarks.reproduce_configs`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import RenyiELBO, Trace_ELBO, TraceMeanField_ELBO
from torch import nn

from benchmarks import paper_values, uci_bihm
from benchmarks.evaluation import (
    EvaluationProgress,
    curve_log_likelihood,
    evaluation_log_partition,
    evaluated_once,
    importance_estimates,
    normalised_binary_limit_pair,
    renormalised_evaluation,
    save_evaluation,
    smoothed_curve_log_likelihood,
)
from benchmarks.paper_values import PaperValue
from benchmarks.provenance import load_average, machine, provenance
from benchmarks.reproduce_configs import (
    BUDGETS,
    BVAE_NETWORK_NOTES,
    NETWORKS,
    NUM_BERNOULLI_LATENTS,
    TABLES,
    BiHMBudget,
    BVAEBudget,
    BVAERow,
    DataBudget,
    DVAEPPTable1Budget,
    DVAEPPTable2Budget,
    SmoothedColumn,
    Stage,
    budget_for,
)
from benchmarks.reproduce_report import ResultRow, TableResult, to_markdown, write_report
from benchmarks.resumable_evaluation import EvaluationInterrupted
from pyro_dgm.cli.main import EXIT_INTERRUPTED, EXIT_NON_FINITE_LOSS, resolve_device
from pyro_dgm.cli.run_directory import RunDirectory
from pyro_dgm.cli.trainer import Experiment, NonFiniteLoss, Schedule, Trainer, TrainingInterrupted
from pyro_dgm.data import BinarizedBatches, load_dataset, static_binarize
from pyro_dgm.data.registry import get_dataset_spec
from pyro_dgm.diagnostics.bvae_metrics import active_units, posterior_means, psnr, reconstruct, ssim
from pyro_dgm.infer import VIMCO, BiHMELBO, DVAEELBO, DVAEPlusPlusELBO, ReweightedWakeSleep
from pyro_dgm.infer.objectives.dvae_sharp import DVAESharpELBO
from pyro_dgm.bihm.sbn_partition import estimate_sbn_log_partition_squared
from pyro_dgm.infer.objectives.tcvae import TCVAE_ELBO
from pyro_dgm.models import BidirectionalVAE, BottomUpGuide, SigmoidBeliefNet, UnidirectionalVAE
from pyro_dgm.models.annealing import DVAESchedule
from pyro_dgm.models.dvae import build_dvae_pp
from pyro_dgm.models.dvae_sharp import build_dvae_sharp
from pyro_dgm.models.dvae_smoothing import is_tempered
from pyro_dgm.models.directed_prior import build_directed_dvae
from pyro_dgm.nn.bidirectional_networks import MNIST_IMAGE_SHAPE, bidirectional_mlp, bidirectional_resnet

SEED = 0
"""Default seed of every configuration's initialisation and training batches (the same for all,
so methods at equal budget start from the same draw where their parameters coincide);
``--seed`` picks another, for the mean ± sd over seeds of the headline rows."""


@dataclass(frozen=True)
class RunContext:
    """Where one table run keeps its state, and its seed.

    :ivar seed: the training seed of every configuration.
    :ivar folder: a persistent folder for checkpoints and finished evaluations, one
        sub-folder per configuration; rerunning the same command resumes each
        configuration's training from its checkpoint and reuses its finished evaluation.
        ``None``: a temporary folder (nothing survives the run).
    """

    seed: int = SEED
    folder: Path | None = None
    rows: frozenset[str] | None = None

    def selects(self, group: str, method: str) -> bool:
        """Whether ``--rows`` asks for this configuration (``"group/method"``, or ``method`` in an ungrouped table)."""
        return self.rows is None or row_label(group, method) in self.rows

    def configuration(self, *names: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder.joinpath(*(name.replace(" ", "_").replace(",", "").replace("/", "-") for name in names))


def row_label(group: str, method: str) -> str:
    """How ``--rows`` names a configuration: ``"linear/joint"``, or ``"BiHM"`` where the table has no groups."""
    return f"{group}/{method}" if group else method


TEST_BINARIZATION_SEED = 12345
"""The fixed-seed Bernoulli draw of the test images (distinct from the training draw)."""

DEFAULT_THREADS = 1
"""CPU threads by default: on a loaded 2-core machine two threads ran a BiHM step ~10x slower
than one (the threads spin against other jobs); pass ``--threads 0`` on an idle machine."""

DEFAULT_RESULTS_DIR = Path("benchmarks/results")
"""Where ``--output`` defaults to: ``<table>_<budget>.json`` there (``_seed<k>`` appended for other seeds)."""

DEFAULT_RUNS_DIR = Path("benchmarks/runs")
"""Checkpoints of the ``full`` budget's configurations (not committed: ``runs/`` is ignored)."""



# --- machine and data ------------------------------------------------------------------


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the timings depend on: CPU, threads, library versions (:func:`benchmarks.provenance.machine`), device."""
    described = {key: value for key, value in machine().items() if key != "load_average"}
    return {**described, "device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


CURVE_IMAGES = 1000
"""Validation images of the learning curve: a fixed random subset (not a prefix: the first MNIST
digits are easier ones), small enough that a curve point costs a few seconds."""

CURVE_PREFIX = "valid_"
"""What a learning-curve point records: every measurement whose name starts so (``valid_log_p``, and for
smoothed rows ``valid_log_z``, ``valid_active_units``, ``valid_units_on``)."""

CURVE_POINTS = 50
"""About this many curve points per training run (every ``ceil(epochs / CURVE_POINTS)`` epochs)."""

CURVE_SUBSET_SEED = 2024
"""Seed of the validation subset and of its binarisation (when the data are grey)."""


@dataclass(frozen=True)
class Images:
    """The data of one table run, on its device.

    :ivar train: training pixels (grey or binary; binarised per batch later).
    :ivar test: binary test images (the whole test set on the papers' protocol).
    :ivar curve: :data:`CURVE_IMAGES` binary validation images for the learning curve, or
        ``None`` when the dataset has no validation split (the embedded subset).
    """

    train: torch.Tensor
    test: torch.Tensor
    curve: torch.Tensor | None = None


def load_images(data: DataBudget, data_root: str | None, device: torch.device) -> Images:
    """Training pixels, binary test images and the learning curve's validation subset, on ``device``."""
    train = load_dataset(data.dataset, "train", root=data_root)
    test = load_dataset(data.dataset, "test", root=data_root)
    train = train if data.train_size is None else train[: data.train_size]
    test = test if data.test_size is None else test[: data.test_size]
    curve = None
    if "valid" in get_dataset_spec(data.dataset).splits:
        valid = load_dataset(data.dataset, "valid", root=data_root)
        chosen = torch.randperm(valid.size(0), generator=torch.Generator().manual_seed(CURVE_SUBSET_SEED))
        curve = static_binarize(valid[chosen[:CURVE_IMAGES]].to(device), CURVE_SUBSET_SEED)
    return Images(train.to(device), static_binarize(test.to(device), TEST_BINARIZATION_SEED), curve)


def count_parameters(*modules: nn.Module) -> int:
    """Trainable parameters of ``modules``, each tensor once (tied weights are shared tensors)."""
    unique = {id(p): p for module in modules for p in module.parameters() if p.requires_grad}
    return sum(p.numel() for p in unique.values())


# --- training --------------------------------------------------------------------------


@dataclass
class Training:
    """What :func:`train` reports: steps, training time, the per-epoch objective and the learning curve.

    :ivar seconds: time spent in optimiser steps, summed over epochs (from the run's metrics, so a
        resumed run counts its earlier sessions too; curve evaluations are not included).
    :ivar curve: ``{"epoch", "step", "valid_log_p"}`` at the epochs where the curve was measured.
    """

    steps: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    curve: list[dict[str, float]] = field(default_factory=list)


CurvePoint = Callable[[], dict[str, float]]
"""Measures the learning curve once (e.g. ``{"valid_log_p": ...}``) on the current parameters."""


def curve_interval(epochs: int) -> int:
    """Epochs between curve points: about :data:`CURVE_POINTS` per run."""
    return max(1, math.ceil(epochs / CURVE_POINTS))


def train(
    experiment: Experiment,
    pixels: torch.Tensor,
    stage: Stage,
    binarization: str,
    seed: int,
    record: Training | None = None,
    folder: Path | None = None,
    curve_point: CurvePoint | None = None,
) -> Training:
    """Run one stage with :class:`~pyro_dgm.cli.trainer.Trainer`.

    ``folder``: the stage's persistent run folder; a checkpoint found there is resumed
    (exactly: the trainer restores every random state), so an interrupted table run
    continues where it stopped. ``None``: a temporary folder. ``curve_point``: measured after
    the first and last epoch and every :func:`curve_interval` epochs, from its own seeded
    random stream (training draws the same numbers with or without a curve); one line per
    epoch goes to stderr (a long run's log).
    """
    record = record or Training()
    batches = BinarizedBatches(pixels, stage.batch_size, binarization=binarization, seed=seed)
    schedule = Schedule(num_epochs=stage.epochs, learning_rate=stage.learning_rate, adam_eps=stage.adam_eps)
    every = curve_interval(stage.epochs)
    trainer: Trainer | None = None

    def evaluate() -> dict[str, float]:
        finished = trainer.step // len(batches)
        if curve_point is None or not (finished == 1 or finished % every == 0 or finished == stage.epochs):
            return {}
        modules = list(experiment.modules.values())
        for module in modules:
            module.eval()
        with torch.random.fork_rng(), torch.no_grad():  # training's random stream is left as it was
            torch.manual_seed(CURVE_SUBSET_SEED)  # and the curve is a function of the parameters alone
            point = curve_point()
        for module in modules:
            module.train()
        return point

    def report(epoch: dict[str, Any]) -> None:
        valid = f", valid log p {epoch['valid_log_p']:.2f}" if "valid_log_p" in epoch else ""
        print(f"  epoch {epoch['epoch']}/{stage.epochs} step {epoch['step']}: loss {epoch['train_loss']:.2f}"
              f"{valid}, {epoch['seconds']:.1f} s", file=sys.stderr, flush=True)

    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reproduce_")))
        run = RunDirectory(folder)
        trainer = Trainer(experiment, batches, schedule, run, evaluate=evaluate, progress=False, report_epoch=report)
        metrics = trainer.fit(resume=run.has_checkpoint())
    record.steps += trainer.step
    record.seconds += sum(epoch["seconds"] for epoch in metrics)
    record.losses += [epoch["train_loss"] for epoch in metrics]
    offset = record.steps - trainer.step  # earlier stages' steps
    record.curve += [
        {"epoch": epoch["epoch"], "step": epoch["step"] + offset,
         **{name: value for name, value in epoch.items() if name.startswith(CURVE_PREFIX)}}
        for epoch in metrics if "valid_log_p" in epoch
    ]
    return record


def result_row(
    group: str,
    method: str,
    evaluation: tuple[dict[str, float], torch.Tensor],
    eval_seconds: float,
    paper: dict[str, PaperValue],
    modules: Sequence[nn.Module],
    record: Training,
) -> ResultRow:
    """A :class:`ResultRow` from an evaluation ``(metrics, per-image log p)`` and a training record."""
    metrics, per_image = evaluation
    return ResultRow(
        group=group,
        method=method,
        metrics=metrics,
        paper=paper,
        parameters=count_parameters(*modules),
        steps=record.steps,
        train_seconds=record.seconds,
        eval_seconds=eval_seconds,
        train_losses=record.losses,
        curve=record.curve,
        per_image_log_p=per_image,
    )


# --- BiHM Table 3 ----------------------------------------------------------------------

SBN_OBJECTIVES: dict[str, type] = {"BiHM": BiHMELBO, "RWS": ReweightedWakeSleep, "VIMCO": VIMCO}


def evaluate_sbn(
    model: SigmoidBeliefNet, guide: BottomUpGuide, test: torch.Tensor, num_samples: int, partition_samples: int,
    saved: EvaluationProgress | None = None,
) -> tuple[dict[str, float], torch.Tensor]:
    """:func:`importance_estimates` (resumed from ``saved``), plus :math:`\\log Z^2` (Eq. 7) and
    :math:`\\log p^*(x)` when ``partition_samples`` > 0."""
    metrics, per_image = importance_estimates(model, guide, test, num_samples, progress=True, saved=saved)
    if partition_samples > 0:
        estimate = estimate_sbn_log_partition_squared(model, guide, num_outer=partition_samples)
        metrics["log_z2"] = estimate.log_partition_squared.item()  # Eq. 7
        metrics["log_z2_se"] = estimate.standard_error.item()
        metrics["log_p_star"] = metrics["bihm_bound"] - metrics["log_z2"]  # Eq. 1: p* = p~* / Z^2
    return metrics, per_image


def run_bihm3(
    budget: BiHMBudget, images: Images, binarization: str, context: RunContext
) -> list[ResultRow]:
    """Train the SBN by each objective (same seed, same stages); evaluate on the test images."""
    rows = []
    train_pixels, test = images.train, images.test
    for method in budget.methods:
        if not context.selects("", method):
            continue
        pyro.set_rng_seed(context.seed)
        folder = context.configuration(method)
        model = SigmoidBeliefNet(budget.layer_sizes).to(test)
        guide = BottomUpGuide(budget.layer_sizes).to(test)
        record = Training()
        for index, stage in enumerate(budget.stages):  # one seed: a static binarisation stays the same draw
            objective = SBN_OBJECTIVES[method](num_particles=stage.num_particles)
            experiment = Experiment(model, guide, objective, {"model": model, "guide": guide})
            stage_folder = None if folder is None else folder / f"stage{index + 1}"
            curve_point = None if images.curve is None else functools.partial(
                curve_log_likelihood, model, guide, images.curve)
            train(experiment, train_pixels, stage, binarization, context.seed, record, stage_folder, curve_point)
        with_partition = method == "BiHM" and budget.partition_samples > 0
        (metrics, per_image), seconds = evaluated_once(
            folder,
            functools.partial(evaluate_sbn, model, guide, test, budget.eval_particles,
                              budget.partition_samples if with_partition else 0),
            record.steps, budget.eval_particles, test,
        )
        paper = paper_values.BIHM3.get(method, {})
        compared = {key: paper[key] for key in ("log_p", "log_p_star") if key in paper}
        rows.append(result_row("", method, (metrics, per_image), seconds, compared, (model, guide), record))
    return rows


# --- DVAE++ Tables 1 and 2 -------------------------------------------------------------


def dvae_objective(column: SmoothedColumn, num_chains: int, num_sweeps: int) -> pyro.infer.ELBO:
    """Joint ELBO: closed-form KL (DVAE++ Eq. 4/6-7); marginal: ``Trace_ELBO`` (Eq. 5); Rolfe: DVAE's gradient;
    iw: DVAE#'s K-sample importance-weighted bound of the relaxed model."""
    if column.elbo == "marginal":
        return Trace_ELBO()
    if column.elbo == "iw":
        return DVAESharpELBO(num_particles=column.num_particles, num_chains=num_chains, num_sweeps=num_sweeps)
    objective = DVAEELBO if column.elbo == "rolfe" else DVAEPlusPlusELBO
    return objective(num_chains=num_chains, num_sweeps=num_sweeps)


def dvae_schedule(
    column: SmoothedColumn, beta_start: float, beta_end: float, warmup: float, network: str = "linear"
) -> DVAESchedule:
    """β annealed linearly (tempered smoothers only; a column's fixed β instead if it has one) and KL
    warm-up over ``warmup`` of the steps."""
    fixed = column.fixed_beta(network)
    if fixed is not None:
        return DVAESchedule(beta_start=fixed, beta_end=fixed, warmup_fraction=warmup)
    if is_tempered(column.smoother):
        return DVAESchedule(beta_start=beta_start, beta_end=beta_end, warmup_fraction=warmup)
    return DVAESchedule(warmup_fraction=warmup)


def build_smoothed_vae(
    column: SmoothedColumn, data_dim: int, num_layers: int, units_per_layer: int, network: str, beta: float
) -> tuple[nn.Module, nn.Module]:
    """A directed-prior (DVAE++ Fig. 2c-f), RBM-prior (Fig. 2g) or relaxed-RBM-prior (DVAE#) model and its guide."""
    fixed = column.fixed_beta(network)
    beta = fixed if fixed is not None else beta if is_tempered(column.smoother) else None
    hidden = NETWORKS[network]
    if column.prior == "directed":
        return build_directed_dvae(
            data_dim, (units_per_layer,) * num_layers, elbo=column.elbo, smoother=column.smoother,
            beta=beta, hidden_sizes=hidden,
        )
    if num_layers == 1:  # one layer: the RBM's units in two halves, a factorial posterior
        side, groups, guide = units_per_layer // 2, 1, "factorial"
    else:  # two layers: one per side, q(z1 | x) q(z2 | x, zeta1) (Fig. 2d)
        side, groups, guide = units_per_layer, 2, "hierarchical"
    if column.prior == "relaxed":
        return build_dvae_sharp(
            data_dim, side, side, relaxation="overlapping", smoother=column.smoother, beta=beta, num_groups=groups,
            hidden_sizes=hidden, guide=guide,
        )
    return build_dvae_pp(
        data_dim, side, side, smoother=column.smoother, beta=beta, num_groups=groups,
        hidden_sizes=hidden, guide=guide,
    )


@dataclass(frozen=True)
class SmoothedRun:
    """One DVAE++ configuration to train and evaluate."""

    group: str
    column: SmoothedColumn
    num_layers: int
    network: str
    paper: PaperValue | None


def run_smoothed(
    runs: Sequence[SmoothedRun],
    budget: DVAEPPTable1Budget | DVAEPPTable2Budget,
    images: Images,
    binarization: str,
    units_per_layer: int,
    pcd: tuple[int, int],
    ais: tuple[int, int],
    test_temperatures: int,
    context: RunContext,
) -> list[ResultRow]:
    """Train each smoothed-latent configuration (β annealing, KL warm-up); evaluate in the binary limit.

    ``pcd`` is (chains, sweeps) of the RBM's persistent chains, ``ais`` (chains,
    temperatures) of its log Z at each curve point, ``test_temperatures`` the AIS
    temperatures of the test's log Z; all unused by directed priors. A finished test
    evaluation is reused, renormalised if its log Z had another schedule
    (:func:`renormalised_evaluation`).
    """
    rows = []
    train_pixels, test = images.train, images.test
    for run in runs:
        if not context.selects(run.group, run.column.name):
            continue
        pyro.set_rng_seed(context.seed)
        folder = context.configuration(run.group or "all", run.column.name)
        model, guide = build_smoothed_vae(
            run.column, train_pixels.size(-1), run.num_layers, units_per_layer, run.network, budget.beta_start
        )
        model.decoder.init_marginals_(train_pixels.mean(dim=0))  # start at the pixel-marginal model
        model, guide = model.to(test), guide.to(test)
        schedule = dvae_schedule(run.column, budget.beta_start, budget.beta_end, budget.kl_warmup_fraction,
                                 run.network)
        objective = dvae_objective(run.column, *pcd)
        experiment = Experiment(model, guide, objective, {"model": model, "guide": guide}, step_kwargs=schedule)
        curve_point = None if images.curve is None else functools.partial(
            smoothed_curve_log_likelihood, model, guide, images.curve, ais)
        record = train(experiment, train_pixels, budget.stage, binarization, context.seed, folder=folder,
                       curve_point=curve_point)

        test_ais = (ais[0], test_temperatures)

        def evaluate(saved: EvaluationProgress) -> tuple[dict[str, float], torch.Tensor]:
            partition = saved.constant("log_partition", lambda: evaluation_log_partition(model, *test_ais))
            model_fn, guide_fn = normalised_binary_limit_pair(model, guide, partition)
            summary, per_image = importance_estimates(model_fn, guide_fn, test, budget.eval_particles, progress=True,
                                                      saved=saved)
            return {**summary, **partition}, per_image

        evaluation, seconds = evaluated_once(folder, evaluate, record.steps, budget.eval_particles, test)
        evaluation, seconds, renormalised = renormalised_evaluation(evaluation, seconds, model, guide, test_ais,
                                                                    ais[1])
        if renormalised:
            save_evaluation(folder, evaluation, seconds, record.steps)
        paper = {"log_p": run.paper} if run.paper is not None else {}
        rows.append(result_row(run.group, run.column.name, evaluation, seconds, paper, (model, guide), record))
    return rows


def run_dvaepp1(
    budget: DVAEPPTable1Budget, images: Images, binarization: str, context: RunContext
) -> list[ResultRow]:
    """Every (network, column) pair of DVAE++ Table 1, plus the smoothing variants."""
    runs = [
        SmoothedRun(network, column, 1, network, paper_values.DVAEPP1[network].get(column.name))
        for network in budget.networks
        for column in (*budget.columns, *(budget.variants if network in budget.variant_networks else ()))
    ]
    no_chains = (1, 1)  # a directed prior has no log Z: no persistent chains, no AIS
    return run_smoothed(
        runs, budget, images, binarization, NUM_BERNOULLI_LATENTS, no_chains, no_chains, 1, context
    )


def evaluation_log_z_temperatures(budget: DVAEPPTable2Budget) -> int:
    """AIS temperatures of the test's log Z (the curve's unless the budget sets its own)."""
    return budget.ais_temperatures if budget.test_ais_temperatures is None else budget.test_ais_temperatures


def run_dvaepp2(
    budget: DVAEPPTable2Budget, images: Images, binarization: str, context: RunContext
) -> list[ResultRow]:
    """Every (layers, network) row of DVAE++ Table 2 under each column (prior and objective)."""
    runs = []
    for num_layers, network in budget.rows:
        group = f"{num_layers} {network}"
        for column in budget.columns:
            runs.append(SmoothedRun(group, column, num_layers, network, paper_values.DVAEPP2[group].get(column.name)))
    return run_smoothed(
        runs,
        budget,
        images,
        binarization,
        budget.units_per_layer,
        (budget.pcd_chains, budget.pcd_sweeps),
        (budget.ais_chains, budget.ais_temperatures),
        evaluation_log_z_temperatures(budget),
        context,
    )


def run_dvaesharp(
    budget: DVAEPPTable2Budget, images: Images, binarization: str, context: RunContext
) -> list[ResultRow]:
    """DVAE, DVAE++ and DVAE# (K = 1, 5) on each row's RBM-prior model, at equal budget (no paper values:
    DVAE#'s table is not in our copy of the paper)."""
    runs = [
        SmoothedRun(f"{num_layers} {network}", column, num_layers, network, None)
        for num_layers, network in budget.rows
        for column in budget.columns
    ]
    return run_smoothed(
        runs, budget, images, binarization, budget.units_per_layer, (budget.pcd_chains, budget.pcd_sweeps),
        (budget.ais_chains, budget.ais_temperatures), evaluation_log_z_temperatures(budget), context,
    )


# --- BVAE Table I ----------------------------------------------------------------------


def bvae_network(budget: BVAEBudget, row: BVAERow | None = None) -> nn.Module:
    """The bidirectional network N_theta (a template only, for the unidirectional twin); a row's own
    ``mlp_sizes`` replace the budget's."""
    if row is not None and row.mlp_sizes is not None:
        if budget.network != "mlp":
            raise ValueError(f"row {row.label!r} sets MLP widths, but this budget's network is {budget.network!r}")
        return bidirectional_mlp(list(row.mlp_sizes))
    if budget.network == "mlp":
        return bidirectional_mlp(list(budget.mlp_sizes))
    return bidirectional_resnet(
        MNIST_IMAGE_SHAPE, budget.resnet_channels, budget.resnet_hidden_channels, budget.resnet_blocks
    )


def bvae_objective(row: BVAERow, num_data: int) -> pyro.infer.ELBO:
    """ELBO (analytic Gaussian KL; β via the models' ``beta`` argument), β-TCVAE or IWAE."""
    if row.objective == "iwae":  # one importance weight per data point (models/bvae.py docstring)
        return RenyiELBO(alpha=0, num_particles=row.num_particles, vectorize_particles=True, max_plate_nesting=1)
    if row.objective == "tcvae":
        return TCVAE_ELBO(dataset_size=num_data, beta=row.beta)
    return TraceMeanField_ELBO()


def bvae_metrics(
    vae: nn.Module, test: torch.Tensor, num_samples: int, saved: EvaluationProgress | None = None
) -> tuple[dict[str, float], torch.Tensor]:
    """IW log p(x) (resumed from ``saved``), active units (Eq. 41), PSNR and SSIM of reconstructions
    against the test images."""
    metrics, per_image = importance_estimates(vae.model, vae.guide, test, num_samples, progress=True, saved=saved)
    images = test.view(-1, *MNIST_IMAGE_SHAPE)
    reconstructions = reconstruct(vae, test).view_as(images)
    metrics["active_units"] = float(active_units(posterior_means(vae, test)))
    metrics["psnr"] = psnr(reconstructions, images).mean().item()
    metrics["ssim"] = ssim(reconstructions, images).mean().item()
    return metrics, per_image


BIDIRECTIONAL_PREFIX = "Bidirectional "
"""BVAE Table I names a twin's row by prefixing its VAE's: the group is the common part."""


def run_bvae1(
    budget: BVAEBudget, images: Images, binarization: str, context: RunContext
) -> list[ResultRow]:
    """Each row of BVAE Table I in the budget; each VAE and its twin from the same seed."""
    rows = []
    train_pixels, test = images.train, images.test
    for row in budget.rows:
        if not context.selects(row.label.removeprefix(BIDIRECTIONAL_PREFIX), row.label):
            continue
        pyro.set_rng_seed(context.seed)
        folder = context.configuration(row.label)
        vae_class = BidirectionalVAE if row.bidirectional else UnidirectionalVAE
        vae = vae_class(bvae_network(budget, row), budget.latent_dim).to(test)
        step_kwargs = (lambda step, total: {"beta": row.beta}) if row.objective == "elbo" and row.beta != 1 else None
        objective = bvae_objective(row, train_pixels.size(0))
        curve_point = None if images.curve is None else functools.partial(
            curve_log_likelihood, vae.model, vae.guide, images.curve)
        record = train(Experiment(vae.model, vae.guide, objective, {"vae": vae}, step_kwargs), train_pixels,
                       budget.stage, binarization, context.seed, folder=folder, curve_point=curve_point)
        vae.eval()
        evaluation, seconds = evaluated_once(
            folder, lambda saved: bvae_metrics(vae, test, budget.eval_particles, saved), record.steps,
            budget.eval_particles, test)
        paper = paper_values.BVAE1.get(row.label)
        group = row.label.removeprefix(BIDIRECTIONAL_PREFIX)
        compared = {"log_p": paper} if paper is not None else {}
        rows.append(result_row(group, row.label, evaluation, seconds, compared, (vae,), record))
    return rows


RUNNERS: dict[str, Callable[..., list[ResultRow]]] = {
    "bihm3": run_bihm3,
    "dvaepp1": run_dvaepp1,
    "dvaepp2": run_dvaepp2,
    "dvaesharp": run_dvaesharp,
    "bvae1": run_bvae1,
}


def table_row_labels(table: str, budget: Any) -> list[str]:
    """The ``--rows`` names of ``table``'s configurations at ``budget`` (:func:`row_label`)."""
    if table == "bihm3":
        return list(budget.methods)
    if table == "dvaepp1":
        return [
            row_label(network, column.name)
            for network in budget.networks
            for column in (*budget.columns, *(budget.variants if network in budget.variant_networks else ()))
        ]
    if table in ("dvaepp2", "dvaesharp"):
        return [row_label(f"{layers} {network}", column.name) for layers, network in budget.rows for column in budget.columns]
    return [row_label(row.label.removeprefix(BIDIRECTIONAL_PREFIX), row.label) for row in budget.rows]


def with_epochs(budget: Any, epochs: int) -> Any:
    """``budget`` trained for ``epochs`` (the first stage, for BiHM's two stages), the change listed in its choices."""
    note = f"{epochs} epochs (--epochs; the budget's own: {_first_stage(budget).epochs})"
    if hasattr(budget, "stages"):
        stages = (replace(budget.stages[0], epochs=epochs), *budget.stages[1:])
        return replace(budget, stages=stages, choices=(*budget.choices, note))
    return replace(budget, stage=replace(budget.stage, epochs=epochs), choices=(*budget.choices, note))


def with_fine_tune_epochs(budget: Any, epochs: int) -> Any:
    """BiHM Table 3's ``budget`` with its second stage (fine-tuning at K = 100, BiHM Sec. 4) trained
    ``epochs`` epochs, or without it for 0; the change listed in its choices."""
    if not isinstance(budget, BiHMBudget) or len(budget.stages) < 2:
        raise ValueError("--fine-tune-epochs: only bihm3's full budget has a fine-tuning stage")
    fine_tuning = budget.stages[1]
    note = (f"fine-tuning stage (K = {fine_tuning.num_particles}, lr {fine_tuning.learning_rate:g}): {epochs} epochs "
            f"(--fine-tune-epochs; the budget's own: {fine_tuning.epochs})")
    stages = budget.stages[:1] if epochs == 0 else (budget.stages[0], replace(fine_tuning, epochs=epochs), *budget.stages[2:])
    return replace(budget, stages=stages, choices=(*budget.choices, note))


def with_eval_particles(budget: Any, particles: int) -> Any:
    """``budget`` with K = ``particles`` importance samples per test image, the change listed in its choices.

    The papers' protocol asks K >= 5,000 on MNIST; BiHM Table 3's budget has the paper's 10^4, which
    costs about 3 h per trained net on one CPU core (12 layers, 10^8 samples)."""
    if particles < 1:
        raise ValueError(f"--eval-particles must be a positive number of importance samples, got {particles}")
    note = f"K = {particles:,} importance samples per test image (--eval-particles; the budget's own: {budget.eval_particles:,})"
    return replace(budget, eval_particles=particles, choices=(*budget.choices, note))


def with_partition_samples(budget: Any, samples: int) -> Any:
    """BiHM Table 3's ``budget`` with ``samples`` outer samples of Z^2 (BiHM Eq. 7; 0 skips log p*(x))."""
    if not isinstance(budget, BiHMBudget):
        raise ValueError("--partition-samples: only bihm3 estimates Z^2")
    if samples < 0:
        raise ValueError(f"--partition-samples must be 0 or more samples, got {samples}")
    note = f"Z^2 from {samples:,} samples (--partition-samples; the budget's own: {budget.partition_samples:,})"
    return replace(budget, partition_samples=samples, choices=(*budget.choices, note))


def with_network(budget: Any, network: str) -> Any:
    """BVAE Table I's ``budget`` with ``network`` (``"mlp"`` or ``"resnet"``) in place of its own, the
    change listed in its choices (the budget's note on its network replaced)."""
    if not isinstance(budget, BVAEBudget):
        raise ValueError("--network: only bvae1 has a choice of networks")
    if network not in BVAE_NETWORK_NOTES:
        raise ValueError(f"--network {network!r}: choose one of {', '.join(BVAE_NETWORK_NOTES)}")
    notes = [note for note in budget.choices if note not in BVAE_NETWORK_NOTES.values()]
    note = f"{BVAE_NETWORK_NOTES[network]} (--network {network}; the budget's own: {budget.network})"
    return replace(budget, network=network, choices=(*notes, note))


def _first_stage(budget: Any) -> Stage:
    return budget.stages[0] if hasattr(budget, "stages") else budget.stage


def run_table(
    table: str,
    budget_name: str,
    data_root: str | None = None,
    device: str = "cpu",
    binarization: str = "static",
    dataset: str | None = None,
    context: RunContext = RunContext(),
    epochs: int | None = None,
    fine_tune_epochs: int | None = None,
    network: str | None = None,
    eval_particles: int | None = None,
    partition_samples: int | None = None,
) -> TableResult:
    """Train and evaluate every configuration of ``table`` at ``budget_name`` (those of ``context.rows``
    if given; see :class:`RunContext`), for ``epochs`` instead of the budget's if given, BiHM's
    fine-tuning for ``fine_tune_epochs`` (:func:`with_fine_tune_epochs`), BVAE's ``network``
    (:func:`with_network`), the test's K (:func:`with_eval_particles`) and BiHM's Z^2 samples
    (:func:`with_partition_samples`) if given."""
    budget = budget_for(table, budget_name)
    changes = ((dataset, _with_dataset), (epochs, with_epochs), (fine_tune_epochs, with_fine_tune_epochs),
               (network, with_network), (eval_particles, with_eval_particles),
               (partition_samples, with_partition_samples))
    for value, change in changes:
        if value is not None:
            budget = change(budget, value)
    unknown = sorted((context.rows or frozenset()) - set(table_row_labels(table, budget)))
    if unknown:
        raise ValueError(f"--rows {', '.join(unknown)}: not a configuration of {table} at budget {budget_name}; "
                         f"its rows are: {', '.join(map(repr, table_row_labels(table, budget)))}")
    torch_device = resolve_device(device)
    load_before = load_average()
    started = time.perf_counter()
    images = load_images(budget.data, data_root, torch_device)
    rows = RUNNERS[table](budget, images, binarization, context)
    wall = time.perf_counter() - started
    machine = {**machine_info(torch_device), "load_average_start": load_before, "load_average_end": load_average()}
    return TableResult(
        table, budget_name, budget, budget.data.dataset, binarization, images.train.size(0), images.test.size(0),
        rows, wall, machine, notes=list(budget.choices), seed=context.seed,
        provenance=provenance(data_files_read(budget.data.dataset, data_root)),
    )


def data_files_read(dataset: str, data_root: str | None) -> list[Path]:
    """The files of ``dataset`` that :func:`load_images` reads from ``data_root`` (none for embedded data)."""
    if data_root is None:
        return []
    spec = get_dataset_spec(dataset)
    forms = {remote.name for split in ("train", "test") for remote in spec.form_in_folder(split, Path(data_root)).files_for_split(split)}
    return [Path(data_root) / name for name in sorted(forms) if (Path(data_root) / name).is_file()]


def _with_dataset(budget: Any, dataset: str) -> Any:
    return replace(budget, data=replace(budget.data, dataset=dataset))


# --- command line ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=(*TABLES, uci_bihm.TABLE), help="required unless --render is given")
    parser.add_argument("--budget", default="tiny", choices=BUDGETS)
    parser.add_argument("--data-root", default=None,
                        help="small, full: the folder with binarized_mnist_{train,valid,test}.mat (or .amat); "
                             "bihm1: the folder with <name>.{train,valid,test}.data")
    parser.add_argument("--dataset", default=None, help="override the budget's dataset (mnist, embedded_mnist)")
    parser.add_argument("--binarization", default="static", choices=("static", "dynamic"))
    parser.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="torch CPU threads (0: torch's default); 1 on a shared machine, where more only contend")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON report path, a .md next to it (default: benchmarks/results/<table>_<budget>.json)")
    parser.add_argument("--datasets", nargs="+", default=list(uci_bihm.DATASETS), choices=uci_bihm.DATASETS,
                        help="bihm1 only: UCI sets to run")
    parser.add_argument("--methods", nargs="+", default=list(uci_bihm.METHODS), choices=uci_bihm.METHODS,
                        help="bihm1 only: objectives to run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="bihm1 only: training seeds")
    parser.add_argument("--redo", action="store_true", help="bihm1 only: rerun jobs that have a result file")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="bihm1 only: raise the step cap; jobs that stopped at a lower cap unconverged continue")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="bihm1 only: override the budget's Adam step size (the jobs are named apart)")
    parser.add_argument("--seed", type=int, default=SEED, help="MNIST tables: the training seed (output names carry it)")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="MNIST tables: keep checkpoints and finished evaluations here and resume from them "
                             "(default for --budget full: benchmarks/runs/<table>_full_seed<seed>)")
    parser.add_argument("--rows", nargs="+", default=None, metavar="ROW",
                        help="MNIST tables: train and report only these configurations, named group/method "
                             "(dvaepp1: linear/joint; dvaepp2: '1 linear/rbm_overlapping'; bihm3: BiHM; "
                             "bvae1: VAE/VAE); the output name carries them")
    parser.add_argument("--epochs", type=int, default=None,
                        help="MNIST tables: train this many epochs instead of the budget's (BiHM: its first stage); "
                             "a resumed run continues to the new count")
    parser.add_argument("--fine-tune-epochs", type=int, default=None,
                        help="bihm3 only: epochs of BiHM's second stage (K = 100 at lr 3e-4) instead of the "
                             "budget's; 0 skips it")
    parser.add_argument("--network", choices=tuple(BVAE_NETWORK_NOTES), default=None,
                        help="bvae1 only: the networks instead of the budget's (full: resnet, 15 min an epoch "
                             "on one CPU core; mlp: the small budget's 784-512-256 MLPs); the output name carries it")
    parser.add_argument("--eval-particles", type=int, default=None, metavar="K",
                        help="MNIST tables: importance samples per test image instead of the budget's "
                             "(the papers' protocol: K >= 5,000)")
    parser.add_argument("--partition-samples", type=int, default=None, metavar="N",
                        help="bihm3 only: outer samples of BiHM's Z^2 (Eq. 7) instead of the budget's; 0 skips log p*(x)")
    parser.add_argument("--render", type=Path, default=None,
                        help="only rewrite the Markdown next to this JSON report (no training)")
    return parser


def run_uci_table(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """BiHM Table 1: one resumable job per (dataset, method, seed); then the table from every finished job."""
    if args.data_root is None:
        raise SystemExit("--table bihm1 needs --data-root: the folder with <dataset>.{train,valid,test}.data")
    uci_bihm.run(args.datasets, args.methods, args.seeds, args.budget, Path(args.data_root), redo=args.redo,
                 argv=["-m", "benchmarks.reproduce", *argv], learning_rate=args.learning_rate,
                 max_steps=args.max_steps)
    table = uci_bihm.render_table()
    output = uci_bihm.RESULTS_DIR.with_suffix(".md")
    output.write_text(table)
    print(table)
    print(f"wrote {output}", file=sys.stderr)
    return 0


def default_output_name(
    table: str, budget: str, seed: int, rows: Sequence[str] | None, network: str | None = None
) -> str:
    """``<table>_<budget>[_<network>][_<rows>][_seed<k>].json`` (the seed only when it is not the default,
    the network only when ``--network`` chose one)."""
    parts = [table, budget]
    if network:
        parts.append(network)
    if rows:
        parts.append("+".join(sorted(row.replace(" ", "-").replace("/", "-") for row in rows)))
    if seed != SEED:
        parts.append(f"seed{seed}")
    return "_".join(parts) + ".json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.render is not None:
        markdown = args.render.with_suffix(".md")
        markdown.write_text(to_markdown(json.loads(args.render.read_text())))
        print(f"wrote {markdown}", file=sys.stderr)
        return 0
    if args.table is None:
        parser.error("--table is required (or --render a JSON report)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    logging.getLogger("pyro").setLevel(logging.WARNING)  # Pyro logs every max_plate_nesting guess at INFO
    if args.table == uci_bihm.TABLE:
        return run_uci_table(args, sys.argv[1:] if argv is None else argv)
    runs_dir = args.runs_dir
    if runs_dir is None and args.budget == "full":
        runs_dir = DEFAULT_RUNS_DIR / f"{args.table}_{args.budget}_seed{args.seed}"
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be a positive number of epochs, got {args.epochs}")
    if args.fine_tune_epochs is not None and args.fine_tune_epochs < 0:
        parser.error(f"--fine-tune-epochs must be 0 or more epochs, got {args.fine_tune_epochs}")
    rows = None if args.rows is None else frozenset(args.rows)
    context = RunContext(seed=args.seed, folder=runs_dir, rows=rows)
    try:
        result = run_table(args.table, args.budget, args.data_root, args.device, args.binarization, args.dataset,
                           context, epochs=args.epochs, fine_tune_epochs=args.fine_tune_epochs, network=args.network,
                           eval_particles=args.eval_particles, partition_samples=args.partition_samples)
    except TrainingInterrupted as interrupted:
        print(f"benchmarks.reproduce: interrupted at step {interrupted.step}; checkpoint written to "
              f"{interrupted.checkpoint_path}: rerun the same command to continue from it", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EvaluationInterrupted as interrupted:
        print(f"benchmarks.reproduce: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except NonFiniteLoss as error:
        print(f"benchmarks.reproduce: {error}", file=sys.stderr)
        return EXIT_NON_FINITE_LOSS
    except ValueError as error:
        parser.error(str(error))
    output = args.output or DEFAULT_RESULTS_DIR / default_output_name(args.table, args.budget, args.seed, args.rows, args.network)
    _, markdown = write_report(result, output)
    print(markdown.read_text())
    print(f"wrote {output} and {markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

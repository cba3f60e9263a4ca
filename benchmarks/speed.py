"""Training-step time and peak memory of pyro_dgm's objectives against plain PyTorch.

For every configuration of :mod:`benchmarks.speed_cases` (objective, K particles,
batch size B, depth: SBN layers or DVAE++ guide groups) this script

1. checks that the Pyro path and the plain path compute the *same gradient*: equal
   seeds (and, for DVAE++, equal persistent-chain states), one step each, every
   parameter's gradient equal to float32 rounding
   (:func:`check_same_gradient` raises otherwise — a ratio of two different
   computations would mean nothing);
2. times the two training steps in the same process and thread count, excluding
   warm-up, *interleaved* (pyro, plain, then plain, pyro, ...) so that load drift on
   a shared machine hits both alike; each repeat times a block of steps long enough
   for the clock, and the ratio is the median over repeats of the paired ratios
   pyro / plain, reported with its min-max spread;
3. measures each step's peak memory: the peak, during one step, of the bytes of
   live tensors allocated through the CPU allocator above the level at the step's
   start, from the allocation records of ``torch.profiler`` (``profile_memory=True``),
   gradients included. Python objects (traces, dicts) are not counted; the CPU
   allocator caches nothing, so live bytes are what the step holds.

Run from the repository root::

    python -m benchmarks.speed --budget small --output benchmarks/results/speed.json

It writes the JSON and a Markdown table next to it (``.md``) and prints the table.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyro
import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.speed_cases import OBJECTIVES, Config, StepPair, step_pair, zero_grads

GRADIENT_RELATIVE_TOLERANCE = 1e-4
"""Gradients must agree to this fraction of each tensor's largest entry: float32 sums
of ~10^3-10^5 terms in different orders differ by ~10^-6 relative; 1e-4 leaves room
and still catches any real difference (a wrong weight or scale is O(1))."""

CHECK_SEED = 0
"""Seed of both runs of the gradient check."""

TIMING_SEED = 1
"""Seed set once before timing a configuration."""

HEADLINE = dict(num_particles=10, batch_size=100, depth=2)
"""The issue's reference point: 784-200-200 SBN, B = 100, K = 10 (DVAE++: two guide groups)."""

LARGE_K = 1000
LARGE_K_BATCH_SIZE = 10
"""K = 1000 runs at B = 10: at B = 100 one step of plain PyTorch holds ~2 GB."""


@dataclass(frozen=True)
class Budget:
    """How much to measure: the grid around the headline and the repeat counts."""

    repeats: int
    warmup_steps: int
    min_block_seconds: float
    """Each timed block runs enough steps to last at least this long."""
    particle_counts: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    depths: tuple[int, ...]
    headline_batch_size: int = HEADLINE["batch_size"]


BUDGETS = {
    "tiny": Budget(repeats=3, warmup_steps=1, min_block_seconds=0.0, particle_counts=(10,),
                   batch_sizes=(), depths=(), headline_batch_size=10),
    "small": Budget(repeats=5, warmup_steps=2, min_block_seconds=0.05, particle_counts=(1, 10, 100),
                    batch_sizes=(10, 100), depths=(1, 2, 4)),
    "full": Budget(repeats=11, warmup_steps=3, min_block_seconds=0.2,
                   particle_counts=(1, 10, 100, LARGE_K), batch_sizes=(10, 100, 1000), depths=(1, 2, 4)),
}


@dataclass
class Result:
    """Measurements of one configuration (times in milliseconds per step, memory in MiB)."""

    objective: str
    num_particles: int
    batch_size: int
    depth: int
    pyro_ms: float
    plain_ms: float
    ratio: float
    ratio_min: float
    ratio_max: float
    steps_per_block: int
    repeats: int
    pyro_peak_mib: float
    plain_peak_mib: float
    max_gradient_difference: float
    """Largest |pyro - plain| gradient entry over the largest |plain| entry, in the check."""


def configurations(budget: Budget, objectives: tuple[str, ...]) -> list[Config]:
    """The headline, then one-factor sweeps around it: K, B and depth (not for IWAE)."""
    configs: list[Config] = []
    for objective in objectives:
        depth = 1 if objective == "iwae" else HEADLINE["depth"]
        headline = Config(objective, HEADLINE["num_particles"], budget.headline_batch_size, depth)
        candidates = [headline]
        for k in budget.particle_counts:
            batch = LARGE_K_BATCH_SIZE if k >= LARGE_K else headline.batch_size
            candidates.append(Config(objective, k, batch, depth))
        candidates += [Config(objective, headline.num_particles, b, depth) for b in budget.batch_sizes]
        if objective != "iwae":
            candidates += [Config(objective, headline.num_particles, headline.batch_size, d) for d in budget.depths]
        for config in candidates:
            if config.is_supported() and config not in configs:
                configs.append(config)
    return configs


def _gradients(parameters: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.grad.detach().clone() if p.grad is not None else None for p in parameters]


def check_same_gradient(pair: StepPair, tolerance: float = GRADIENT_RELATIVE_TOLERANCE) -> float:
    """Run both steps from the same seed; raise ``AssertionError`` unless the gradients agree.

    Each run starts from the same persistent state (``pair.restore_state``: DVAE++'s
    Gibbs chains) and the plain path runs ``pair.plain_check_step`` when it has one.
    Returns the largest relative difference (see :attr:`Result.max_gradient_difference`).
    """
    pair.pyro_step()  # the first call guesses max_plate_nesting, drawing extra samples
    pair.restore_state()
    pyro.set_rng_seed(CHECK_SEED)
    pair.pyro_step()
    pyro_grads = _gradients(pair.parameters)
    pair.restore_state()
    pyro.set_rng_seed(CHECK_SEED)
    (pair.plain_check_step or pair.plain_step)()
    plain_grads = _gradients(pair.parameters)
    worst = 0.0
    for index, (from_pyro, from_plain) in enumerate(zip(pyro_grads, plain_grads)):
        if from_pyro is None or from_plain is None:
            assert from_pyro is None and from_plain is None, (
                f"parameter {index} has a gradient in one path only "
                f"(pyro: {from_pyro is not None}, plain: {from_plain is not None})"
            )
            continue
        magnitude = from_plain.abs().max().item()
        difference = (from_pyro - from_plain).abs().max().item()
        relative = difference / magnitude if magnitude > 0 else difference
        assert relative <= tolerance, (
            f"parameter {index} {tuple(from_plain.shape)}: the gradients differ by {difference:.3g} "
            f"(largest entry {magnitude:.3g}): the two paths do not compute the same estimator"
        )
        worst = max(worst, relative)
    assert any(g is not None for g in pyro_grads), "no parameter received a gradient"
    return worst


def _time_block(step: Callable[[], None], num_steps: int) -> float:
    start = time.perf_counter()
    for _ in range(num_steps):
        step()
    return (time.perf_counter() - start) / num_steps


def time_interleaved(pair: StepPair, budget: Budget) -> tuple[list[float], list[float], int]:
    """Seconds per step of each path, ``budget.repeats`` paired blocks, order alternating."""
    plain_step = pair.plain_step
    warmup = [_time_block(step, 1) for _ in range(budget.warmup_steps) for step in (pair.pyro_step, plain_step)]
    fastest = min(warmup[-2:]) if warmup else 0.0
    steps_per_block = max(1, math.ceil(budget.min_block_seconds / fastest)) if fastest > 0 else 1
    pyro_times, plain_times = [], []
    for repeat in range(budget.repeats):
        gc.collect()
        if repeat % 2 == 0:
            pyro_times.append(_time_block(pair.pyro_step, steps_per_block))
            plain_times.append(_time_block(plain_step, steps_per_block))
        else:
            plain_times.append(_time_block(plain_step, steps_per_block))
            pyro_times.append(_time_block(pair.pyro_step, steps_per_block))
    return pyro_times, plain_times, steps_per_block


def peak_step_memory(step: Callable[[], None], parameters: list[torch.nn.Parameter]) -> int:
    """Peak bytes of live tensors allocated during one ``step()``, above the level at its start.

    Accumulates the allocation (+) and free (-) records of ``torch.profiler`` in time
    order and takes the maximum of the running sum. The gradients are set to ``None``
    first, outside the profile: freeing the previous step's gradients inside it would
    lower the baseline and hide the new ones.
    """
    zero_grads(parameters)
    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    records = sorted(
        (event.start_ns(), event.nbytes())
        for event in profiler.profiler.kineto_results.events()
        if event.name() == "[memory]"
    )
    return max(itertools.accumulate((nbytes for _, nbytes in records), initial=0))


def measure(config: Config, budget: Budget) -> Result:
    """Gradient check, interleaved timing and peak memory of one configuration."""
    pair = step_pair(config)
    gradient_difference = check_same_gradient(pair)
    pyro.set_rng_seed(TIMING_SEED)
    pyro_times, plain_times, steps_per_block = time_interleaved(pair, budget)
    ratios = [p / q for p, q in zip(pyro_times, plain_times)]
    mebibyte = 2**20
    return Result(
        objective=config.objective,
        num_particles=config.num_particles,
        batch_size=config.batch_size,
        depth=config.depth,
        pyro_ms=1e3 * statistics.median(pyro_times),
        plain_ms=1e3 * statistics.median(plain_times),
        ratio=statistics.median(ratios),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
        steps_per_block=steps_per_block,
        repeats=budget.repeats,
        pyro_peak_mib=peak_step_memory(pair.pyro_step, pair.parameters) / mebibyte,
        plain_peak_mib=peak_step_memory(pair.plain_step, pair.parameters) / mebibyte,
        max_gradient_difference=gradient_difference,
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_description(num_threads: int) -> dict:
    """What the numbers were measured on (load average: other work on the machine)."""
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": num_threads,
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "platform": platform.platform(),
        "pyro_validation": pyro.infer.util.is_validation_enabled(),
    }


def markdown_table(results: list[Result]) -> str:
    """One row per configuration: times, ratio (median, min-max), peak memory."""
    lines = [
        "| objective | K | B | depth | pyro ms | plain ms | ratio (min–max) | pyro MiB | plain MiB |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.objective} | {r.num_particles} | {r.batch_size} | {r.depth} | {r.pyro_ms:.2f} | "
            f"{r.plain_ms:.2f} | {r.ratio:.2f} ({r.ratio_min:.2f}–{r.ratio_max:.2f}) | "
            f"{r.pyro_peak_mib:.1f} | {r.plain_peak_mib:.1f} |"
        )
    return "\n".join(lines)


def run(budget_name: str, objectives: tuple[str, ...], num_threads: int, validation: bool) -> dict:
    """Measure every configuration of the budget; return the JSON-ready report."""
    torch.set_num_threads(num_threads)
    pyro.enable_validation(validation)
    budget = BUDGETS[budget_name]
    machine_at_start = machine_description(num_threads)
    results = []
    for config in configurations(budget, objectives):
        result = measure(config, budget)
        print(
            f"{config.objective:>9} K={config.num_particles:<5} B={config.batch_size:<5} "
            f"depth={config.depth}: ratio {result.ratio:.2f} "
            f"({result.pyro_ms:.2f} / {result.plain_ms:.2f} ms)",
            file=sys.stderr,
        )
        results.append(result)
    return {
        "budget": budget_name,
        "budget_settings": asdict(budget),
        "machine": machine_at_start,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        # torch.compile switches torch's default distribution validation off for the process,
        # while Pyro's flag (machine["pyro_validation"]) still reads True
        "torch_distribution_validation_at_end": bool(torch.distributions.Distribution._validate_args),
        "method": {
            "step": "grads set to None + objective.loss_and_grads (Pyro) / surrogate.backward() (plain); no optimiser step",
            "time": "median over repeats of per-step time; blocks interleaved pyro/plain with alternating order",
            "ratio": "median over repeats of paired (pyro / plain) block times; min-max over repeats",
            "memory": "peak live tensor bytes during one step above the start level, torch.profiler allocation records",
            "gradient_check": f"same seed, relative max-abs difference <= {GRADIENT_RELATIVE_TOLERANCE}",
        },
        "results": [asdict(r) for r in results],
    }


def publish(report: dict, table: str, output: Path | None) -> None:
    """Print the Markdown ``table``; with ``output``, write the JSON there and the table as ``.md``."""
    print(table)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2) + "\n")
        output.with_suffix(".md").write_text(table + "\n")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    parser.add_argument("--output", type=Path, default=None, help="JSON path; the Markdown table goes next to it (.md)")
    parser.add_argument("--objectives", nargs="+", choices=OBJECTIVES, default=list(OBJECTIVES))
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both paths (default 1)")
    parser.add_argument("--no-validation", action="store_true", help="pyro.enable_validation(False)")
    args = parser.parse_args(argv)
    report = run(args.budget, tuple(args.objectives), args.threads, validation=not args.no_validation)
    table = markdown_table([Result(**r) for r in report["results"]])
    publish(report, table, args.output)
    return report


if __name__ == "__main__":
    main()

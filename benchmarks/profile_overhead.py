"""Where the Pyro path's extra time goes, and what removing each cost would save.

Two measurements for one configuration (default: BiHM, 784-200-200, B = 100, K = 10):

1. **Attribution** (``cProfile``): the internal time of every function of one Pyro
   step and one plain step, summed into categories (:data:`CATEGORIES`: tensor
   kernels, the unused subsample draw, argument/sample validation, poutine
   messengers and traces, distribution objects, pyro_dgm's objective code, ...),
   per step. cProfile slows Python-heavy code more than kernels, so these are
   shares, not savings.
2. **Savings** (no profiler): the Pyro step with one overhead removed at a time —
   each a benchmark-only patch, undone afterwards — timed interleaved against the
   unpatched step as in :mod:`benchmarks.speed`, and checked to give the same
   gradient as the plain path. The patches say what a change in ``pyro_dgm`` would
   buy; they do not change ``pyro_dgm``.

Run from the repository root::

    python -m benchmarks.profile_overhead --objective bihm --batch-size 100 --particles 10
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F

import pyro_dgm.infer.importance as importance
from benchmarks.speed import check_same_gradient, publish
from benchmarks.speed_cases import OBJECTIVES, Config, StepPair, step_pair
from pyro_dgm.nn.bernoulli_layer import BernoulliLayer, FactorialBernoulli

PROFILED_STEPS = 50
"""Steps under cProfile per path."""

TIMING_REPEATS = 21
STEPS_PER_BLOCK = 5
"""Interleaved timing of each variant against the baseline: repeats of blocks of steps."""

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (category, substrings of "file:function" that put a function in it; first match wins)
    ("subsample randperm (unused indices)", ("torch.randperm",)),
    ("validation (constraints, shape/NaN/guide checks)", (
        "_is_all_true", "constraints.py", "_validate_sample", "check_site_shape",
        "check_model_guide_match", "warn_if_nan", "pyro_dgm/infer/validation.py", "_check_finite",
        "check_latent_value", "check_data", "_refs/__init__.py",
    )),
    ("autograd backward (kernels)", ("run_backward",)),
    ("tensor kernels (forward)", ("<built-in method torch", "<method '", "torch._C")),
    ("pyro poutine (messengers, traces)", ("pyro/poutine/",)),
    ("distribution objects (torch/pyro Python)", ("torch/distributions/", "pyro/distributions/")),
    ("pyro ELBO / importance trace", ("pyro/infer/",)),
    ("pyro_dgm objective (importance.py, bihm/rws/vimco)", ("pyro_dgm/infer/",)),
    ("pyro.module / param store", ("pyro/params/", "pyro/primitives.py", "register_module")),
    ("model & guide code, nn.Module calls", ("pyro_dgm/models/", "pyro_dgm/nn/", "torch/nn/", "benchmarks/")),
)
OTHER = "other Python (contextlib, functools, builtins)"


def categorise(stats: pstats.Stats, num_steps: int) -> dict[str, float]:
    """Milliseconds per step of internal (self) time, by category."""
    totals: dict[str, float] = defaultdict(float)
    for (filename, _, function), (_, _, self_time, _, _) in stats.stats.items():
        key = f"{filename}:{function}"
        category = next(
            (name for name, needles in CATEGORIES if any(n in key for n in needles)), OTHER
        )
        totals[category] += 1e3 * self_time / num_steps
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def profile_step(step: Callable[[], None], num_steps: int = PROFILED_STEPS) -> pstats.Stats:
    """cProfile ``num_steps`` calls of ``step`` (after one warm-up call)."""
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(num_steps):
        step()
    profiler.disable()
    return pstats.Stats(profiler)


# ---- benchmark-only patches: each removes one overhead of the Pyro path -------------


@contextlib.contextmanager
def validation_disabled() -> Iterator[None]:
    """``pyro.enable_validation(False)``: no constraint checks on arguments and samples."""
    was_enabled = pyro.infer.util.is_validation_enabled()
    pyro.enable_validation(False)
    try:
        yield
    finally:
        pyro.enable_validation(was_enabled)


@contextlib.contextmanager
def guide_check_skipped() -> Iterator[None]:
    """``check_guide_covers_model`` not run every step (e.g. only on the first)."""
    original = importance.check_guide_covers_model
    importance.check_guide_covers_model = lambda model_trace, guide_trace: None
    try:
        yield
    finally:
        importance.check_guide_covers_model = original


@contextlib.contextmanager
def bernoulli_layers_unvalidated() -> Iterator[None]:
    """SBN layers build ``Bernoulli(logits, validate_args=False)``: no NaN check of the
    (K, B, D) logits (``value == value`` plus ``all``) nor support check of the samples;
    every other Pyro check stays on."""
    originals = BernoulliLayer.forward, FactorialBernoulli.forward
    BernoulliLayer.forward = lambda self, context: dist.Bernoulli(
        logits=self.logits(context), validate_args=False
    ).to_event(1)
    FactorialBernoulli.forward = lambda self: dist.Bernoulli(
        logits=self.bias, validate_args=False
    ).to_event(1)
    try:
        yield
    finally:
        BernoulliLayer.forward, FactorialBernoulli.forward = originals


class _SummedBernoulli(dist.Independent):
    """``Bernoulli(logits).to_event(1)`` whose log-density sums the units *before* negating.

    ``torch``'s ``Bernoulli.log_prob`` returns ``-bce(logits, value)`` per unit and
    ``Independent`` then sums: one full pass over (K, B, D) for the negation that a
    sum-then-negate order avoids.
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self.base_dist._validate_sample(value)
        logits, value = torch.broadcast_tensors(self.base_dist.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)


@contextlib.contextmanager
def bernoulli_summed_before_negation() -> Iterator[None]:
    """SBN layers return :class:`_SummedBernoulli` (validation unchanged)."""
    originals = BernoulliLayer.forward, FactorialBernoulli.forward
    BernoulliLayer.forward = lambda self, context: _SummedBernoulli(
        dist.Bernoulli(logits=self.logits(context)), 1
    )
    FactorialBernoulli.forward = lambda self: _SummedBernoulli(dist.Bernoulli(logits=self.bias), 1)
    try:
        yield
    finally:
        BernoulliLayer.forward, FactorialBernoulli.forward = originals


@contextlib.contextmanager
def all_patches() -> Iterator[None]:
    """Every patch above at once (validation off globally covers the layer patch)."""
    with validation_disabled(), guide_check_skipped(), bernoulli_summed_before_negation():
        yield


PATCHES: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
    "validation off": validation_disabled,
    "guide check skipped": guide_check_skipped,
    "Bernoulli layers unvalidated": bernoulli_layers_unvalidated,
    "Bernoulli summed before negation": bernoulli_summed_before_negation,
    "all of the above": all_patches,
}

def _time(step: Callable[[], None]) -> float:
    """Seconds per step over a block of :data:`STEPS_PER_BLOCK` steps."""
    start = time.perf_counter()
    for _ in range(STEPS_PER_BLOCK):
        step()
    return (time.perf_counter() - start) / STEPS_PER_BLOCK


def patched_saving(pair: StepPair, patch: Callable[[], contextlib.AbstractContextManager]) -> dict:
    """Median baseline and patched step times (ms) and the saving (ms and % of the
    baseline, medians of the paired differences), timed interleaved."""
    def patched_step() -> None:
        with patch():
            pair.pyro_step()

    for _ in range(2):  # warm-up
        pair.pyro_step()
        patched_step()
    baseline, patched = [], []
    for repeat in range(TIMING_REPEATS):
        order = (pair.pyro_step, patched_step) if repeat % 2 == 0 else (patched_step, pair.pyro_step)
        times = {step: _time(step) for step in order}
        baseline.append(times[pair.pyro_step])
        patched.append(times[patched_step])
    savings = [b - p for b, p in zip(baseline, patched)]
    relative = [(b - p) / b for b, p in zip(baseline, patched)]
    return {
        "saving_percent": 100 * statistics.median(relative),
        "baseline_ms": 1e3 * statistics.median(baseline),
        "patched_ms": 1e3 * statistics.median(patched),
        "saving_ms": 1e3 * statistics.median(savings),
        "saving_ms_min": 1e3 * min(savings),
        "saving_ms_max": 1e3 * max(savings),
    }


def check_patched_gradient(pair: StepPair, name: str) -> float:
    """The patched Pyro step still computes the plain path's gradient."""
    patch = PATCHES[name]
    patched = StepPair(
        pyro_step=lambda: _run_patched(pair.pyro_step, patch),
        plain_step=pair.plain_step,
        parameters=pair.parameters,
    )
    return check_same_gradient(patched)


def _run_patched(step: Callable[[], None], patch: Callable[[], contextlib.AbstractContextManager]) -> None:
    with patch():
        step()


def run(config: Config, num_threads: int) -> dict:
    """Attribution and savings for one configuration."""
    torch.set_num_threads(num_threads)
    pair = step_pair(config)
    check_same_gradient(pair)
    attribution = {
        "pyro": categorise(profile_step(pair.pyro_step), PROFILED_STEPS),
        "plain": categorise(profile_step(pair.plain_step), PROFILED_STEPS),
    }
    savings = {}
    for name, patch in PATCHES.items():
        if config.objective == "iwae" and name != "validation off":
            continue  # the other patches touch the SBN only
        check_patched_gradient(pair, name)
        savings[name] = patched_saving(pair, patch)
        print(f"{name:>22}: saves {savings[name]['saving_ms']:.2f} ms of "
              f"{savings[name]['baseline_ms']:.2f} ms", file=sys.stderr)
    return {"config": config.__dict__, "threads": num_threads, "attribution_ms_per_step": attribution,
            "savings": savings}


def markdown(report: dict) -> str:
    """The attribution (pyro vs plain, ms/step under cProfile) and the savings as tables."""
    pyro_ms, plain_ms = report["attribution_ms_per_step"]["pyro"], report["attribution_ms_per_step"]["plain"]
    lines = ["| category (cProfile self time) | pyro ms/step | plain ms/step |", "|---|---:|---:|"]
    for category in pyro_ms:
        lines.append(f"| {category} | {pyro_ms[category]:.2f} | {plain_ms.get(category, 0.0):.2f} |")
    lines.append(f"| **total** | {sum(pyro_ms.values()):.2f} | {sum(plain_ms.values()):.2f} |")
    lines += ["", "| patch (benchmark-only) | baseline ms | patched ms | saving ms (min–max) | saving % |",
              "|---|---:|---:|---|---:|"]
    for name, s in report["savings"].items():
        lines.append(f"| {name} | {s['baseline_ms']:.2f} | {s['patched_ms']:.2f} | "
                     f"{s['saving_ms']:.2f} ({s['saving_ms_min']:.2f}–{s['saving_ms_max']:.2f}) | "
                     f"{s['saving_percent']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--objective", choices=OBJECTIVES, default="bihm")
    parser.add_argument("--particles", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="JSON path (Markdown next to it)")
    args = parser.parse_args(argv)
    depth = 1 if args.objective == "iwae" else args.depth
    report = run(Config(args.objective, args.particles, args.batch_size, depth), args.threads)
    table = markdown(report)
    publish(report, table, args.output)
    return report


if __name__ == "__main__":
    main()

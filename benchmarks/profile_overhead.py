"""Where the Pyro path's extra time goes, and what removing each cost would save.

Two measurements for one configuration (default: BiHM, 784-200-200, B = 100, K = 10;
``--objective dvae_pp`` profiles DVAE++, with patches of its own, :func:`patches_for`):

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

With ``--op-sites`` it measures instead (:func:`op_time_by_call_site`) the kernel time
of each path by the library line that issued it, backward kernels included: the
direct way to find a cost that grows with the tensor sizes.

Run from the repository root::

    python -m benchmarks.profile_overhead --objective bihm --batch-size 100 --particles 10
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import pstats
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pyro
import torch
from torch.profiler import ProfilerActivity, profile

import pyro_dgm.infer.importance as importance
from benchmarks.speed import check_same_gradient, publish
from benchmarks.speed_cases import OBJECTIVES, Config, StepPair, step_pair
from pyro_dgm.distributions.independent_bernoulli import IndependentBernoulli
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
        "check_latent_value", "check_data", "_refs/__init__.py", "_check_binary", "_check_block",
        "_checked", "_validate_rho",
    )),
    ("autograd backward (kernels)", ("run_backward",)),
    ("tensor kernels (forward)", ("<built-in method torch", "<method '", "torch._C")),
    ("pyro poutine (messengers, traces)", ("pyro/poutine/",)),
    ("distribution objects (torch/pyro Python)", ("torch/distributions/", "pyro/distributions/")),
    ("pyro_dgm distributions (smoothers, RBM, Gibbs)", ("pyro_dgm/distributions/",)),
    ("pyro ELBO / importance trace", ("pyro/infer/",)),
    ("pyro_dgm objective code (pyro_dgm/infer/)", ("pyro_dgm/infer/",)),
    ("pyro.module / param store", ("pyro/params/", "pyro/primitives.py", "register_module")),
    ("model & guide code, nn.Module calls", ("pyro_dgm/models/", "pyro_dgm/nn/", "torch/nn/", "benchmarks/")),
)
OTHER = "other Python (contextlib, functools, builtins)"

OP_PROFILED_STEPS = 3
"""Steps under ``torch.profiler`` per path for :func:`op_time_by_call_site` (after two warm-up steps)."""

CALL_SITE_FRAMES = (
    "pyro_dgm/", "site-packages/pyro/", "torch/distributions/", "torch/nn/functional", "benchmarks/plain_",
)
"""Substrings of the Python frames an op is attributed to: the innermost frame holding one is its call site."""

REPOSITORY_ROOT = f"{Path(__file__).resolve().parents[1]}/"
"""Stripped from call sites, which then read ``pyro_dgm/...`` or ``benchmarks/...``."""

STACK_DEPTH = 12
"""Python frames kept per op; enough to reach a library frame from any kernel of a step."""


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


def _short_frame(frame: str) -> str:
    """A profiler frame ``/path/to/file.py(line): function`` relative to site-packages or this repository."""
    return frame.split("site-packages/")[-1].replace(REPOSITORY_ROOT, "")


def op_time_by_call_site(step: Callable[[], None], num_steps: int = OP_PROFILED_STEPS) -> dict[str, float]:
    """Milliseconds per step of ATen self time, by the innermost library frame that issued the op.

    ``torch.profiler`` with Python stacks; a kernel of the backward pass is listed under the
    frame of the forward call that recorded it (e.g. the zero-filled gradient of an
    indexed, expanded tensor under the indexing line). Self times: nested ops are not
    counted twice. Kernels with no library frame are reported as ``"(no library frame)"``.
    """
    for _ in range(2):  # warm-up
        step()
    verbose = torch._C._profiler._ExperimentalConfig(verbose=True)  # keeps Python frames of every op
    with profile(activities=[ProfilerActivity.CPU], with_stack=True, experimental_config=verbose) as profiler:
        for _ in range(num_steps):
            step()
    totals: dict[str, float] = defaultdict(float)
    for event in profiler.key_averages(group_by_stack_n=STACK_DEPTH):
        if not event.key.startswith("aten::"):
            continue
        frames = [frame for frame in event.stack if any(needle in frame for needle in CALL_SITE_FRAMES)]
        site = _short_frame(frames[0]) if frames else "(no library frame)"
        totals[site] += 1e-3 * event.self_cpu_time_total / num_steps
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def op_sites_markdown(report: dict, num_rows: int) -> str:
    """The ``num_rows`` costliest call sites of each path, and each path's total."""
    lines = []
    for path, sites in report["op_ms_per_step_by_call_site"].items():
        lines += [f"| {path}: call site (ATen self time) | ms/step |", "|---|---:|"]
        lines += [f"| `{site}` | {ms:.2f} |" for site, ms in list(sites.items())[:num_rows]]
        lines += [f"| **total** | {sum(sites.values()):.2f} |", ""]
    return "\n".join(lines).rstrip()


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
    """SBN layers build ``IndependentBernoulli(logits, validate_args=False)``: no NaN
    check of the logits nor {0, 1} check of the values; every other Pyro check stays on."""
    originals = BernoulliLayer.forward, FactorialBernoulli.forward
    BernoulliLayer.forward = lambda self, context: IndependentBernoulli(self.logits(context), validate_args=False)
    FactorialBernoulli.forward = lambda self: IndependentBernoulli(self.bias, validate_args=False)
    try:
        yield
    finally:
        BernoulliLayer.forward, FactorialBernoulli.forward = originals


@contextlib.contextmanager
def all_patches() -> Iterator[None]:
    """Every patch above at once (validation off globally covers the layer patch)."""
    with validation_disabled(), guide_check_skipped():
        yield


PATCHES: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
    "validation off": validation_disabled,
    "guide check skipped": guide_check_skipped,
    "Bernoulli layers unvalidated": bernoulli_layers_unvalidated,
    "all of the above": all_patches,
}
"""The patches of the SBN objectives. (Two earlier ones are now in the library and gone
from here: the log-density summed before negating, ``IndependentBernoulli``, and the
DVAE++ KL reading the RBM before the plates expanded it, ``RBM.unexpanded``.)"""

DVAE_PP_PATCHES: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
    "validation off": validation_disabled,
}
"""The patches of DVAE++ (the guide check and the SBN layers' validation are not on its path)."""


def patches_for(objective: str) -> dict[str, Callable[[], contextlib.AbstractContextManager]]:
    """The benchmark-only patches that apply to ``objective``'s Pyro path."""
    if objective == "dvae_pp":
        return DVAE_PP_PATCHES
    if objective == "iwae":
        return {"validation off": validation_disabled}  # the other patches touch the SBN only
    return PATCHES


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


def check_patched_gradient(
    pair: StepPair, patch: Callable[[], contextlib.AbstractContextManager]
) -> float:
    """The patched Pyro step still computes the plain path's gradient."""
    patched = dataclasses.replace(pair, pyro_step=lambda: _run_patched(pair.pyro_step, patch))
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
    for name, patch in patches_for(config.objective).items():
        check_patched_gradient(pair, patch)
        savings[name] = patched_saving(pair, patch)
        print(f"{name:>22}: saves {savings[name]['saving_ms']:.2f} ms of "
              f"{savings[name]['baseline_ms']:.2f} ms", file=sys.stderr)
    return {"config": config.__dict__, "threads": num_threads, "attribution_ms_per_step": attribution,
            "savings": savings}


def run_op_sites(config: Config, num_threads: int) -> dict:
    """Kernel time by call site of both paths of one configuration (gradient checked first)."""
    torch.set_num_threads(num_threads)
    pair = step_pair(config)
    check_same_gradient(pair)
    return {
        "config": config.__dict__,
        "threads": num_threads,
        "op_ms_per_step_by_call_site": {
            "pyro": op_time_by_call_site(pair.pyro_step),
            "plain": op_time_by_call_site(pair.plain_step),
        },
    }


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
    parser.add_argument("--op-sites", type=int, default=0, metavar="ROWS",
                        help="only the kernel time by call site (torch.profiler), ROWS rows per path")
    args = parser.parse_args(argv)
    depth = 1 if args.objective == "iwae" else args.depth
    config = Config(args.objective, args.particles, args.batch_size, depth)
    if args.op_sites:
        report = run_op_sites(config, args.threads)
        publish(report, op_sites_markdown(report, args.op_sites), args.output)
        return report
    report = run(config, args.threads)
    table = markdown(report)
    publish(report, table, args.output)
    return report


if __name__ == "__main__":
    main()

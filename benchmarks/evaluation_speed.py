"""What the full protocol's evaluation pass costs, and what the two shortcuts save.

The MNIST tables' test log-likelihood (K = 5,000 on all 10,000 test images,
:func:`benchmarks.evaluation.importance_estimates`) is 5,000 passes of 10^4 particles
through the binary-limit pair of a DVAE++ model; at ~0.4 s a pass it was 35 minutes of
each 1.9-hour row. Two changes cut it, and this benchmark times each against the old pass,
interleaved, in one process, and checks that the per-image estimates stay bit-identical:

* **closed forms** — ``BinaryLimit`` scores its sites with :math:`\\log q` / :math:`\\log(1-q)`
  and :math:`\\pm\\infty` directly instead of through the generic mixture's point-mass
  tensors and ``logaddexp`` (the old path is restored here by a benchmark-only patch);
* **no validation** — Pyro's argument and sample checks off during the passes
  (``pyro.validation_enabled(False)``, as the harness now evaluates).

Run from the repository root (one torch thread)::

    python -m benchmarks.evaluation_speed --output benchmarks/results/evaluation_speed.json
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pyro
import torch

from benchmarks import evaluation, reproduce
from benchmarks.provenance import load_average, machine, provenance
from benchmarks.reproduce_configs import DVAEPP_BETA_START, JOINT, NUM_BERNOULLI_LATENTS, RBM_OVERLAPPING, SmoothedColumn
from benchmarks.speed import publish
from pyro_dgm.distributions.binary_limit import BinaryLimit
from pyro_dgm.distributions.smoothing import SmoothingTransformation

CONFIGURATIONS: dict[str, SmoothedColumn] = {"directed joint": JOINT, "rbm overlapping": RBM_OVERLAPPING}
"""The DVAE++ Table 1 row and the Table 2 RBM row, 1 latent layer of 200 units, linear networks."""

IMAGES_PER_PASS = evaluation.DATA_BLOCK_SIZE
PARTICLES_PER_PASS = evaluation.SAMPLE_CHUNK_SIZE
PASSES_PER_TIMING = 5
"""Each timing: one ``importance_estimates`` call of this many 10^4-particle passes."""

AIS_FOR_TIMING = (64, 100)
"""(chains, temperatures) of the RBM's log Z: computed once per model, outside the timings."""

MNIST_PIXEL_DENSITY = 0.13
"""Fraction of ones in static binarised MNIST: the random test images' pixel rate."""

MNIST_PIXELS = 28 * 28


@contextlib.contextmanager
def generic_mixture_scoring() -> Iterator[None]:
    """Benchmark-only patch: ``BinaryLimit`` scored by the generic mixture (the code before the closed forms)."""
    saved = BinaryLimit._log_marginal_density, BinaryLimit._log_density_ratio
    BinaryLimit._log_marginal_density = SmoothingTransformation._log_marginal_density
    BinaryLimit._log_density_ratio = SmoothingTransformation._log_density_ratio
    try:
        yield
    finally:
        BinaryLimit._log_marginal_density, BinaryLimit._log_density_ratio = saved


VARIANTS: dict[str, tuple[bool, bool]] = {
    # name: (closed forms, validation)
    "before (generic mixture, validation on)": (False, True),
    "closed forms, validation on": (True, True),
    "closed forms, validation off (the harness now)": (True, False),
}


def _pass_seconds(model, guide, images: torch.Tensor, closed_forms: bool, validation: bool, seed: int):
    scoring = contextlib.nullcontext() if closed_forms else generic_mixture_scoring()
    with scoring, pyro.validation_enabled(validation):
        torch.manual_seed(seed)
        started = time.perf_counter()
        with torch.no_grad():
            log_p = [
                evaluation.log_likelihood(model, guide, images, num_samples=PARTICLES_PER_PASS,
                                         chunk_size=PARTICLES_PER_PASS).log_likelihood
                for _ in range(PASSES_PER_TIMING)
            ]
        return (time.perf_counter() - started) / PASSES_PER_TIMING, torch.cat(log_p)


def time_configuration(column: SmoothedColumn, repeats: int, seed: int) -> dict:
    """Seconds per 10^4-particle pass of each variant (medians over ``repeats`` interleaved rounds)."""
    torch.manual_seed(seed)
    model, guide = reproduce.build_smoothed_vae(
        column, MNIST_PIXELS, 1, NUM_BERNOULLI_LATENTS, "linear", DVAEPP_BETA_START
    )  # one latent layer; beta only matters in training, the evaluation is at beta = infinity
    images = (torch.rand(IMAGES_PER_PASS, MNIST_PIXELS) < MNIST_PIXEL_DENSITY).float()
    model_fn, guide_fn, _ = evaluation.binary_limit_evaluation_pair(model, guide, *AIS_FOR_TIMING)
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    identical = True
    for repeat in range(repeats):
        estimates = {}
        for name, (closed_forms, validation) in VARIANTS.items():
            elapsed, estimates[name] = _pass_seconds(model_fn, guide_fn, images, closed_forms, validation,
                                                     seed + repeat)
            seconds[name].append(elapsed)
        reference = next(iter(estimates.values()))
        identical &= all(torch.equal(reference, value) for value in estimates.values())
    baseline = statistics.median(next(iter(seconds.values())))
    return {
        "identical_estimates": identical,
        "variants": {
            name: {"median_seconds": statistics.median(values), "ratio_to_before": statistics.median(values) / baseline,
                   "seconds": values}
            for name, values in seconds.items()
        },
    }


def markdown(report: dict) -> str:
    lines = [
        f"Seconds per pass of {IMAGES_PER_PASS} images x {PARTICLES_PER_PASS} particles (median of "
        f"{report['repeats']} interleaved rounds, {report['threads']} torch thread; load average "
        f"{report['load_average_start']:.2f} at start, {report['load_average_end']:.2f} at end).",
        "",
        "| configuration | variant | s / pass | ratio to before | estimates identical |",
        "|---|---|---:|---:|---|",
    ]
    for configuration, result in report["results"].items():
        for name, variant in result["variants"].items():
            lines.append(f"| {configuration} | {name} | {variant['median_seconds']:.3f} | "
                         f"{variant['ratio_to_before']:.3f} | {'yes' if result['identical_estimates'] else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds of every variant")
    parser.add_argument("--configurations", nargs="+", choices=sorted(CONFIGURATIONS), default=list(CONFIGURATIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="JSON path; the Markdown table goes next to it (.md)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    torch.set_num_threads(1)
    logging.getLogger("pyro").setLevel(logging.WARNING)  # no "Guessed max_plate_nesting" per timing
    report = {"repeats": args.repeats, "threads": torch.get_num_threads(), "load_average_start": load_average(),
              "machine": machine(), "provenance": provenance([], argv)}
    report["results"] = {name: time_configuration(CONFIGURATIONS[name], args.repeats, args.seed)
                         for name in args.configurations}
    report["load_average_end"] = load_average()
    publish(report, markdown(report), args.output)
    return report


if __name__ == "__main__":
    main()

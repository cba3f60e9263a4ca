r"""Throughput of the BiHM :math:`Z^2` estimator (Eq. 7) on BiHM's 12-layer MNIST net.

Measured in one run, so every number shares the machine's state at that moment:

* the machine's float32 matrix-product rate (GFLOP/s, 2 flops per multiply-add),
  from square products — the limit no implementation of Eq. 7 can beat;
* the flops per outer sample of the fast path
  (:func:`~pyro_dgm.bihm.sbn_partition.multiply_adds_per_outer_sample`), hence the
  floor on time per sample and the ceiling on samples/s;
* samples/s of the fast path (:func:`estimate_sbn_log_partition_squared`), of the
  same path with its fused element-wise kernels run eagerly (not compiled), of a
  naive plain-torch per-layer loop (no buffer reuse, no shared first layer), and
  of the generic Pyro path (:func:`estimate_log_partition_squared`) on a smaller
  budget; the fast path's fraction of the ceiling;
* the time for :math:`10^7` samples (BiHM Sec. 4.1), measured with ``--full``,
  otherwise extrapolated from the median rate (and said so).

Every timing is repeated; best and median are printed, with the load average,
because the machine may be shared. Run::

    python benchmarks/z_squared_throughput.py            # about a minute
    python benchmarks/z_squared_throughput.py --full     # plus 10^7 samples
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from pyro_dgm import compilation
from pyro_dgm.bihm.sbn_partition import (
    DEFAULT_CHUNK_SIZE,
    estimate_sbn_log_partition_squared,
    multiply_adds_per_outer_sample,
)
from pyro_dgm.infer.estimators.bihm_partition import estimate_log_partition_squared
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide

BIHM_MNIST_LAYER_SIZES = [784, 300, 200, 100, 75, 50, 35, 30, 25, 20, 15, 10, 10]
"""BiHM's best MNIST model (Sec. 4)."""

MATMUL_SIZE = 2048
"""Square float32 products of this size run at the BLAS peak and take ~0.1 s each."""

PAPER_NUM_SAMPLES = 10**7
"""BiHM Sec. 4.1: about 10^7 samples give 2 log Z to well below 0.1 nats."""

FLOPS_PER_MULTIPLY_ADD = 2


def timings(run: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``run``, after one warm-up call."""
    run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return seconds


def matmul_gflops(repeats: int) -> tuple[float, float]:
    """Best and median float32 GFLOP/s of a square product."""
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    out = torch.empty(MATMUL_SIZE, MATMUL_SIZE)
    flops = FLOPS_PER_MULTIPLY_ADD * MATMUL_SIZE**3
    seconds = timings(lambda: torch.mm(a, b, out=out), repeats)
    return flops / min(seconds) / 1e9, flops / statistics.median(seconds) / 1e9


def naive_log_partition_squared(
    model: SigmoidBeliefNet, guide: BottomUpGuide, num_outer: int
) -> torch.Tensor:
    """The straightforward per-layer loop: fresh tensors, torch.bernoulli, no shared layer."""

    def log_prob(logits: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)

    with torch.inference_mode():
        h = torch.bernoulli(torch.sigmoid(model.prior.bias).expand(num_outer, -1))
        latents, log_p = [h], log_prob(model.prior.bias.expand_as(h), h)
        for conditional in reversed(model.conditionals):
            logits = conditional.logits(latents[-1])
            latents.append(torch.bernoulli(torch.sigmoid(logits)))
            log_p = log_p + log_prob(logits, latents[-1])
        x, outer = latents[-1], list(reversed(latents[:-1]))
        log_q = 0.0
        context = x
        for conditional, value in zip(guide.conditionals, outer):
            log_q = log_q + log_prob(conditional.logits(context), value)
            context = value
        inner, inner_log_q, context = [], 0.0, x
        for conditional in guide.conditionals:
            logits = conditional.logits(context)
            context = torch.bernoulli(torch.sigmoid(logits))
            inner.append(context)
            inner_log_q = inner_log_q + log_prob(logits, context)
        inner_log_p = log_prob(model.prior.bias.expand_as(inner[-1]), inner[-1])
        for layer in range(len(inner) - 1, -1, -1):
            below = x if layer == 0 else inner[layer - 1]
            inner_log_p = inner_log_p + log_prob(model.conditionals[layer].logits(inner[layer]), below)
        return 0.5 * (log_q - log_p + inner_log_p - inner_log_q)


def rates(seconds: list[float], samples: int) -> tuple[float, float]:
    return samples / min(seconds), samples / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-samples", type=int, default=2**17, help="outer samples per fast-path timing")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--num-inner", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--generic-samples", type=int, default=4096, help="outer samples per Pyro-path timing"
    )
    parser.add_argument("--full", action="store_true", help=f"also time {PAPER_NUM_SAMPLES:.0e} samples")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each result as soon as it is measured

    torch.manual_seed(0)
    model, guide = SigmoidBeliefNet(BIHM_MNIST_LAYER_SIZES), BottomUpGuide(BIHM_MNIST_LAYER_SIZES)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} (the machine may be shared: best and median reported)"
    )

    best_gflops, median_gflops = matmul_gflops(args.repeats)
    multiply_adds = multiply_adds_per_outer_sample(BIHM_MNIST_LAYER_SIZES, args.num_inner)
    flops = FLOPS_PER_MULTIPLY_ADD * multiply_adds
    ceiling = best_gflops * 1e9 / flops
    print(f"float32 matmul ({MATMUL_SIZE}^3): best {best_gflops:.1f} GFLOP/s, median {median_gflops:.1f}")
    print(
        f"per outer sample (K_inner={args.num_inner}): {multiply_adds:,} multiply-adds = {flops / 1e6:.3f} MFLOP"
    )
    print(f"ceiling (best matmul rate / flops per sample): {ceiling:,.0f} samples/s")

    def fast() -> object:
        return estimate_sbn_log_partition_squared(
            model, guide, num_outer=args.num_samples, num_inner=args.num_inner, chunk_size=args.chunk_size
        )

    best, median = rates(timings(fast, args.repeats), args.num_samples)
    print(
        f"fast path (chunk {args.chunk_size}): best {best:,.0f} samples/s, median {median:,.0f}; "
        f"fraction of ceiling: best {best / ceiling:.2f}, median {median / ceiling:.2f}"
    )

    compilation.set_compilation(False)
    try:
        eager_best, eager_median = rates(timings(fast, args.repeats), args.num_samples)
    finally:
        compilation.set_compilation(True)
    print(
        f"fast path with the fused kernels run eagerly (PYRO_DGM_COMPILE=0): best {eager_best:,.0f} "
        f"samples/s, median {eager_median:,.0f}; fraction of ceiling: best {eager_best / ceiling:.2f}"
    )

    naive_samples = args.chunk_size
    naive_best, naive_median = rates(
        timings(lambda: naive_log_partition_squared(model, guide, naive_samples), args.repeats), naive_samples
    )
    print(
        f"naive plain-torch loop (K_inner=1, {naive_samples} rows): best {naive_best:,.0f} samples/s, "
        f"median {naive_median:,.0f}"
    )

    data_like = torch.zeros(1, BIHM_MNIST_LAYER_SIZES[0])

    def generic() -> object:
        return estimate_log_partition_squared(
            model,
            guide,
            data_like,
            num_outer=args.generic_samples,
            num_inner=args.num_inner,
            chunk_size=min(args.generic_samples, 1024),
        )

    generic_best, generic_median = rates(timings(generic, max(args.repeats // 2, 1)), args.generic_samples)
    print(
        f"generic Pyro path ({args.generic_samples} samples): best {generic_best:,.0f} samples/s, "
        f"median {generic_median:,.0f}"
    )

    if args.full:
        start = time.perf_counter()
        estimate = estimate_sbn_log_partition_squared(
            model, guide, num_outer=PAPER_NUM_SAMPLES, num_inner=args.num_inner, chunk_size=args.chunk_size
        )
        seconds = time.perf_counter() - start
        print(
            f"{PAPER_NUM_SAMPLES:.0e} samples: {seconds:.1f} s measured ({PAPER_NUM_SAMPLES / seconds:,.0f} "
            f"samples/s); log Z^2 = {estimate.log_partition_squared:.4f} +- {estimate.standard_error:.4f}"
        )
    else:
        print(
            f"{PAPER_NUM_SAMPLES:.0e} samples: about {PAPER_NUM_SAMPLES / median:.0f} s, extrapolated from "
            "the median rate (run with --full to measure)"
        )


if __name__ == "__main__":
    main()

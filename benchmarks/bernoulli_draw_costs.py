"""Nanoseconds per element of the ways to draw Bernoulli(sigmoid(a)) on the CPU, one thread.

The element-wise half of a block-Gibbs sweep (``docs/benchmarks.md``, "Block Gibbs"):
``torch.bernoulli`` of the probabilities against a uniform compared with them, eager
and compiled into one kernel by ``torch.compile``. Run from the repository root::

    OMP_NUM_THREADS=1 python -m benchmarks.bernoulli_draw_costs
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch

ROWS, COLUMNS = 1000, 200
"""A 392 + 200 RBM's second block for 1000 chains: 2e5 draws per call."""

CALLS_PER_REPEAT = 100
REPEATS = 7


def uniform_comparison(logits: torch.Tensor) -> torch.Tensor:
    """pyro_dgm's draw: 1[u < sigmoid(a)] (``bipartite_fields.draw_bernoulli_``, out of place here)."""
    probs = torch.sigmoid(logits)
    return torch.rand_like(probs).lt_(probs)


def nanoseconds_per_element(function: Callable[[], object], elements: int) -> float:
    function()  # warm-up (and compilation)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(CALLS_PER_REPEAT):
            function()
        times.append((time.perf_counter() - start) / CALLS_PER_REPEAT)
    return 1e9 * statistics.median(times) / elements


def main() -> dict[str, float]:
    torch.set_num_threads(1)
    logits = torch.randn(ROWS, COLUMNS)
    probs = torch.sigmoid(logits)
    compiled = torch.compile(uniform_comparison, dynamic=True, fullgraph=True)
    cases = {
        "torch.bernoulli(probs)": lambda: torch.bernoulli(probs),
        "torch.rand_like": lambda: torch.rand_like(probs),
        "torch.sigmoid": lambda: torch.sigmoid(logits),
        "1[u < sigmoid(a)], eager": lambda: uniform_comparison(logits),
        "1[u < sigmoid(a)], torch.compile": lambda: compiled(logits),
    }
    results = {name: nanoseconds_per_element(case, logits.numel()) for name, case in cases.items()}
    print(f"load average {os.getloadavg()}")
    for name, value in results.items():
        print(f"{name:>34}: {value:6.2f} ns per element")
    return results


if __name__ == "__main__":
    main()

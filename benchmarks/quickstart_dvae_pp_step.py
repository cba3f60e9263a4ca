"""Median time of one SVI step of the quickstart DVAE++ (``examples/dvae_pp_rbm.py``: 16 + 16 RBM).

Random binary data (batch 100), the example's model, objective settings (100 chains x 20
sweeps when chains run) and optimiser, one torch thread. To compare two versions, run it
from each checkout (the current directory's ``pyro_dgm`` is imported)::

    OMP_NUM_THREADS=1 python -m benchmarks.quickstart_dvae_pp_step
"""

from __future__ import annotations

import statistics
import time

import pyro
import torch
from pyro.infer import SVI
from pyro.optim import Adam

from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.models.dvae import build_dvae_pp

NUM_UNITS, HIDDEN_SIZES, BETA = 16, (200,), 5.0
"""The example's RBM side, networks and initial smoothing beta."""

NUM_CHAINS, NUM_SWEEPS = 100, 20
"""The example's persistent chains (used only when the objective runs them)."""

BATCH_SIZE, PIXELS, PIXEL_PROBABILITY = 100, 784, 0.3
WARMUP_STEPS, TIMED_STEPS = 3, 30


def main() -> None:
    torch.set_num_threads(1)
    pyro.set_rng_seed(0)
    model, guide = build_dvae_pp(PIXELS, NUM_UNITS, NUM_UNITS, beta=BETA, hidden_sizes=HIDDEN_SIZES)
    objective = DVAEPlusPlusELBO(num_chains=NUM_CHAINS, num_sweeps=NUM_SWEEPS)
    svi = SVI(model, guide, Adam({"lr": 1e-3}), objective)
    x = torch.bernoulli(torch.full((BATCH_SIZE, PIXELS), PIXEL_PROBABILITY))
    for _ in range(WARMUP_STEPS):
        svi.step(x)
    times = []
    for _ in range(TIMED_STEPS):
        start = time.perf_counter()
        svi.step(x)
        times.append(time.perf_counter() - start)
    print(
        f"median step {1e3 * statistics.median(times):.1f} ms (min {1e3 * min(times):.1f}); "
        f"sites with persistent chains: {sorted(objective.chains)}"
    )


if __name__ == "__main__":
    main()

"""Train a sigmoid belief net as a bidirectional Helmholtz machine (BiHM) on MNIST digits.

The BiHM bound log p~*(x) = 2 log E_q[sqrt(p(x, h) / q(h | x))] (Bornschein et al. 2016,
Eq. 4) with K = 10 importance samples and its gradient (Eq. 6), on a 784-200-100 SBN with
the bottom-up recognition network. At the end it prints, on statically binarised test
digits: the bound log p~*(x), the IW estimate of the top-down model's log p(x) (Eq. 5),
the estimate of Z^2 (Eq. 7) and BiHM's log p*(x) = log p~*(x) - log Z^2 (Eq. 1).

    OMP_NUM_THREADS=1 python examples/bihm_mnist.py            # about a minute on 2 cores
    python examples/bihm_mnist.py --dataset mnist --epochs 100  # full MNIST (downloads)
"""

from __future__ import annotations

import time

import pyro
import torch
from pyro.infer import SVI
from pyro.optim import Adam

from example_utils import load_data, parser, report_log_likelihood, train
from pyro_dgm.infer import BiHMELBO, bihm_log_likelihood, estimate_log_partition_squared
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide

LAYER_SIZES = [784, 200, 100]
"""Data size, then the latent layers bottom-up: a small version of BiHM's MNIST model."""

NUM_PARTICLES = 10
"""K of the training bound, as in BiHM's MNIST runs (Sec. 4)."""

NUM_PARTITION_SAMPLES = 10_000
"""Outer samples (x, h) ~ p of the Z^2 estimate (Eq. 7), one inner sample each (Fig. 3)."""


def main() -> None:
    args = parser(__doc__.splitlines()[0], epochs=20).parse_args()
    pyro.set_rng_seed(args.seed)
    batches, test = load_data(args)
    layer_sizes = [test.size(1), *LAYER_SIZES[1:]]
    model, guide = SigmoidBeliefNet(layer_sizes), BottomUpGuide(layer_sizes)
    objective = BiHMELBO(num_particles=NUM_PARTICLES)
    svi = SVI(model, guide, Adam({"lr": args.lr}), objective)
    train(svi, batches, args.epochs)

    start = time.time()
    with torch.no_grad():
        partition = estimate_log_partition_squared(
            model, guide, test, num_outer=NUM_PARTITION_SAMPLES, chunk_size=1000
        )
        results = [
            bihm_log_likelihood(model, guide, batch, partition=partition, num_samples=args.num_samples, chunk_size=100)
            for batch in test.split(100)
        ]
    log_bound = torch.cat([result.log_bound for result in results])
    log_p_star = torch.cat([result.log_p_star for result in results])
    print(
        f"log Z^2 = {partition.log_partition_squared:.3f} +- {partition.standard_error:.3f} "
        f"({NUM_PARTITION_SAMPLES} samples, {time.time() - start:.1f} s)"
    )
    print(f"test log p~*(x) bound (K={args.num_samples}): {log_bound.mean():.2f} nats")
    print(f"test log p*(x) = log p~*(x) - log Z^2:   {log_p_star.mean():.2f} nats")
    report_log_likelihood(model, guide, test, args.num_samples, label=" of the top-down model p")


if __name__ == "__main__":
    main()

"""Train a sigmoid belief net with reweighted wake-sleep (Bornschein & Bengio 2015) on MNIST digits.

Wake-theta, wake-phi and sleep-phi updates with K = 10 samples and per-data-point
importance weights (pyro_dgm's ReweightedWakeSleep) on a 784-200-100 SBN with the
bottom-up recognition network; prints the importance-weighted test log p(x) at the end.

    OMP_NUM_THREADS=1 python examples/rws_mnist.py            # about a minute on 2 cores
"""

from __future__ import annotations

import pyro
from pyro.infer import SVI
from pyro.optim import Adam

from example_utils import load_data, parser, report_log_likelihood, train
from pyro_dgm.infer import ReweightedWakeSleep
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide

LATENT_SIZES = [200, 100]
"""Latent layers bottom-up."""

NUM_PARTICLES = 10
"""K, importance samples per data point for the wake phases."""


def main() -> None:
    args = parser(__doc__.splitlines()[0], epochs=20).parse_args()
    pyro.set_rng_seed(args.seed)
    batches, test = load_data(args)
    layer_sizes = [test.size(1), *LATENT_SIZES]
    model, guide = SigmoidBeliefNet(layer_sizes), BottomUpGuide(layer_sizes)
    svi = SVI(model, guide, Adam({"lr": args.lr}), ReweightedWakeSleep(num_particles=NUM_PARTICLES))
    train(svi, batches, args.epochs)
    report_log_likelihood(model, guide, test, args.num_samples)


if __name__ == "__main__":
    main()

"""Train DVAE# (Vahdat, Andriyash & Macready 2018) with an RBM prior on MNIST digits, K-sample IW bound.

A 16 + 16 unit RBM prior relaxed by the power-function smoother (beta = 40, DVAE#'s MNIST
value) with the mean-field evaluation of the relaxed log density; a two-group hierarchical
posterior; one-hidden-layer networks; trained with DVAESharpELBO (the importance-weighted
bound with K particles, KL warm-up inside the weights over the first 30% of training, the
gradient of log Z from persistent block-Gibbs chains). Evaluated in the discrete model
(binary limit, zeta = z) with the exact log Z of the RBM (2^16 states enumerated).

    OMP_NUM_THREADS=1 python examples/dvae_sharp_rbm.py                   # K = 5
    python examples/dvae_sharp_rbm.py --smoother uniform_exponential -k 1
    python examples/dvae_sharp_rbm.py --relaxation gumbolt                 # GumBolt, tau = 0.5
"""

from __future__ import annotations

import pyro
from pyro.infer import SVI
from pyro.optim import Adam

from example_utils import load_data, parser, report_binary_limit, train
from pyro_dgm.infer.objectives.dvae_sharp import DVAESharpELBO, GumBoltELBO
from pyro_dgm.models.annealing import DVAESchedule
from pyro_dgm.models.dvae_sharp import RELAXATIONS, build_dvae_sharp

NUM_UNITS = 16
"""Units per side of the RBM: small enough for the exact log Z at evaluation."""

HIDDEN_SIZES = (200,)
"""One tanh hidden layer in the decoder and in each encoder network."""

NUM_CHAINS, NUM_SWEEPS = 100, 20
"""Persistent block-Gibbs chains for the gradient of log Z, and sweeps per step (DVAE# uses 40)."""


def main() -> None:
    arguments = parser(__doc__.splitlines()[0], epochs=10)
    arguments.add_argument("--relaxation", choices=RELAXATIONS, default="overlapping")
    arguments.add_argument("--smoother", choices=("power", "uniform_exponential", "overlapping_exponential"), default="power")
    arguments.add_argument("-k", "--num-particles", type=int, default=5, help="K of the training bound")
    args = arguments.parse_args()
    pyro.set_rng_seed(args.seed)
    batches, test = load_data(args)
    model, guide = build_dvae_sharp(
        test.size(1), NUM_UNITS, NUM_UNITS, relaxation=args.relaxation, smoother=args.smoother, hidden_sizes=HIDDEN_SIZES
    )
    objective_class = GumBoltELBO if args.relaxation == "gumbolt" else DVAESharpELBO
    objective = objective_class(num_particles=args.num_particles, num_chains=NUM_CHAINS, num_sweeps=NUM_SWEEPS)
    svi = SVI(model, guide, Adam({"lr": args.lr}), objective)
    print(f"{type(objective).__name__} (K = {args.num_particles}), {args.relaxation} relaxation, RBM {NUM_UNITS} + {NUM_UNITS} units")
    train(svi, batches, args.epochs, step_kwargs=DVAESchedule())

    report_binary_limit(model, guide, test, args.num_samples)


if __name__ == "__main__":
    main()

"""Train a fully connected DVAE++ with an RBM prior (Vahdat et al. 2018, Sec. 5) on MNIST digits.

A 16 + 16 unit RBM prior over binary z with overlapping-exponential smoothing, a
two-group hierarchical posterior q(z1 | x) q(z2 | x, zeta1) (DVAE++ Fig. 2d, g), a
one-hidden-layer decoder; trained with DVAEPlusPlusELBO (the closed-form KL of Eq. 6-7,
the gradient of log Z from persistent block-Gibbs chains), beta annealed linearly and
the KL warmed up over the first 30% of training (Sec. 7.1). Evaluated in the binary limit
(beta = inf, zeta = z) with the exact log Z of the RBM (2^16 states enumerated).

    OMP_NUM_THREADS=1 python examples/dvae_pp_rbm.py            # about two minutes on 2 cores
    python examples/dvae_pp_rbm.py --smoother spike_and_exponential   # Rolfe's DVAE (DVAEELBO)
"""

from __future__ import annotations

import pyro
from pyro.infer import SVI
from pyro.optim import Adam

from example_utils import load_data, parser, report_binary_limit, train
from pyro_dgm.infer.objectives.dvae import DVAEELBO
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.models.annealing import DVAESchedule
from pyro_dgm.models.dvae import build_dvae_pp
from pyro_dgm.models.dvae_smoothing import SMOOTHERS, is_spike, is_tempered

NUM_UNITS = 16
"""Units per side of the RBM: small enough for the exact log Z at evaluation."""

HIDDEN_SIZES = (200,)
"""One tanh hidden layer in the decoder and in each encoder network."""

BETA_START, BETA_END = 5.0, 12.0
"""Linear beta annealing from the smallest initial to the smallest final value of DVAE++ Sec. 7.1."""

NUM_CHAINS, NUM_SWEEPS = 100, 20
"""Persistent block-Gibbs chains for the gradient of log Z, and sweeps per step (DVAE uses 100)."""


def main() -> None:
    arguments = parser(__doc__.splitlines()[0], epochs=25)
    arguments.add_argument("--smoother", choices=sorted(set(SMOOTHERS) - {"binary_limit"}), default="overlapping_exponential")
    args = arguments.parse_args()
    pyro.set_rng_seed(args.seed)
    batches, test = load_data(args)
    model, guide = build_dvae_pp(
        test.size(1), NUM_UNITS, NUM_UNITS, smoother=args.smoother, beta=BETA_START, hidden_sizes=HIDDEN_SIZES
    )
    objective_class = DVAEELBO if is_spike(args.smoother) else DVAEPlusPlusELBO
    objective = objective_class(num_chains=NUM_CHAINS, num_sweeps=NUM_SWEEPS)
    schedule = DVAESchedule(BETA_START, BETA_END) if is_tempered(args.smoother) else DVAESchedule()
    svi = SVI(model, guide, Adam({"lr": args.lr}), objective)
    print(f"{type(objective).__name__}, {args.smoother} smoothing, RBM {NUM_UNITS} + {NUM_UNITS} units")
    train(svi, batches, args.epochs, step_kwargs=schedule)

    report_binary_limit(model, guide, test, args.num_samples)


if __name__ == "__main__":
    main()

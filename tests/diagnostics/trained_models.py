r"""Tiny models trained with the library, so the plot tests draw what a real model gives.

Three trainings on the embedded MNIST subset (3000 training digits, dynamically
binarised), each with a fixed seed and a few seconds on one CPU thread:

- :func:`train_bihm`: a sigmoid belief net 784-32-16 with its bottom-up guide, trained
  as a bidirectional Helmholtz machine (:class:`~pyro_dgm.infer.BiHMELBO`, K = 10)
  through :class:`pyro.infer.SVI`;
- :func:`train_dvae_pp`: a DVAE++ with an 8 + 8 unit RBM prior and one tanh layer of 64
  units in its networks, trained with :class:`~pyro_dgm.infer.DVAEPlusPlusELBO` (its
  persistent block-Gibbs chains are kept for the chain-evolution figure);
- :func:`train_with_cli`: a ``pyro-dgm train`` run (a 784-16 BiHM, 4 epochs), whose
  ``metrics.jsonl`` drives the learning curves.

The session fixtures of ``conftest.py`` call each once. The helpers that turn a trained
model into plot inputs (:func:`decode_rbm_states`, :func:`block_log_partition_squared`)
live here too, so tests read as "train, compute, plot, check".
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import pyro
import torch
from pyro import poutine
from pyro.infer import SVI
from pyro.optim import Adam

from pyro_dgm.cli.main import main as pyro_dgm_main
from pyro_dgm.data import BinarizedBatches, embedded_mnist, static_binarize
from pyro_dgm.distributions.gibbs import PersistentChains
from pyro_dgm.infer import BiHMELBO, DVAEPlusPlusELBO, estimate_log_partition_squared
from pyro_dgm.models import BottomUpGuide, SigmoidBeliefNet
from pyro_dgm.models.annealing import DVAESchedule
from pyro_dgm.models.dvae import DiscreteVAE, build_dvae_pp

SEED = 0
BATCH_SIZE = 100
"""Training digits per SVI step: 30 steps per epoch of the 3000 embedded digits."""

BIHM_LAYER_SIZES = (784, 32, 16)
BIHM_NUM_PARTICLES = 10
"""K of the BiHM bound during training, as in BiHM's MNIST runs (Sec. 4)."""
BIHM_EPOCHS = 4
BIHM_LEARNING_RATE = 1e-2
"""Large for Adam, so that 120 steps move a 784-32-16 net well away from its initialisation."""

DVAE_PP_RBM_UNITS = 8
"""Units per RBM side: 2^8 states enumerated for the exact log Z."""
DVAE_PP_HIDDEN_SIZES = (64,)
DVAE_PP_EPOCHS = 4
DVAE_PP_LEARNING_RATE = 1e-2
DVAE_PP_BETA_START, DVAE_PP_BETA_END = 5.0, 10.0
"""Linear beta annealing (DVAE++ Sec. 7.1 starts in {5..8}; a short run ends lower than its 12..18)."""
DVAE_PP_NUM_CHAINS, DVAE_PP_NUM_SWEEPS = 50, 5
"""Persistent chains for the gradient of log Z and block-Gibbs sweeps per step."""

CLI_EPOCHS = 4
CLI_TRAIN_ARGUMENTS = (
    "--model", "sbn", "--layers", "16", "--objective", "bihm", "-k", "5", "--batch-size", "250",
    "--lr", "1e-2", "--valid-particles", "20", "--no-progress", "--device", "cpu",
)
"""A 784-16 BiHM, 12 steps per epoch, validation log-likelihood with K = 20 after each epoch."""


@dataclass
class TrainedBiHM:
    """A trained sigmoid belief net and its guide, with the mean training loss (nats/digit) per epoch."""

    model: SigmoidBeliefNet
    guide: BottomUpGuide
    epoch_losses: list[float] = field(default_factory=list)


@dataclass
class TrainedDVAEPlusPlus:
    """A trained DVAE++, its guide, the objective (with its persistent chains) and the final beta."""

    model: DiscreteVAE
    guide: torch.nn.Module
    objective: DVAEPlusPlusELBO
    final_beta: float
    epoch_losses: list[float] = field(default_factory=list)

    @property
    def chains(self) -> PersistentChains:
        """The persistent block-Gibbs chains of the RBM prior, as training left them."""
        return self.objective.chains["z"]


def binarized_test_digits(num_digits: int) -> torch.Tensor:
    """The first ``num_digits`` embedded test digits, binarised once with :data:`SEED`, shape (n, 784)."""
    return static_binarize(embedded_mnist("test")[:num_digits], seed=SEED)


def _training_batches() -> BinarizedBatches:
    return BinarizedBatches(embedded_mnist("train"), batch_size=BATCH_SIZE, seed=SEED)


def train_bihm(num_epochs: int = BIHM_EPOCHS) -> TrainedBiHM:
    """Train a 784-32-16 BiHM with :class:`BiHMELBO` through SVI; seeded, param store left empty."""
    pyro.clear_param_store()
    pyro.set_rng_seed(SEED)
    model, guide = SigmoidBeliefNet(list(BIHM_LAYER_SIZES)), BottomUpGuide(list(BIHM_LAYER_SIZES))
    svi = SVI(model, guide, Adam({"lr": BIHM_LEARNING_RATE}), BiHMELBO(num_particles=BIHM_NUM_PARTICLES))
    batches = _training_batches()
    trained = TrainedBiHM(model, guide)
    for _ in range(num_epochs):
        total = sum(svi.step(x, num_data=batches.num_examples) for x in batches)
        trained.epoch_losses.append(total / len(batches) / batches.num_examples)
    pyro.clear_param_store()
    return trained


def train_dvae_pp(num_epochs: int = DVAE_PP_EPOCHS) -> TrainedDVAEPlusPlus:
    """Train an 8+8 RBM DVAE++ with :class:`DVAEPlusPlusELBO`, beta annealed, no KL warm-up."""
    pyro.clear_param_store()
    pyro.set_rng_seed(SEED)
    model, guide = build_dvae_pp(
        784, DVAE_PP_RBM_UNITS, DVAE_PP_RBM_UNITS, beta=DVAE_PP_BETA_START, hidden_sizes=DVAE_PP_HIDDEN_SIZES
    )
    objective = DVAEPlusPlusELBO(
        num_chains=DVAE_PP_NUM_CHAINS, num_sweeps=DVAE_PP_NUM_SWEEPS, log_partition_gradient="persistent"
    )  # the diagnostics read the trained chains
    svi = SVI(model, guide, Adam({"lr": DVAE_PP_LEARNING_RATE}), objective)
    schedule = DVAESchedule(DVAE_PP_BETA_START, DVAE_PP_BETA_END, warmup_fraction=0.0)
    batches = _training_batches()
    total_steps = num_epochs * len(batches)
    trained = TrainedDVAEPlusPlus(model, guide, objective, final_beta=DVAE_PP_BETA_END)
    step = 0
    for _ in range(num_epochs):
        total = 0.0
        for x in batches:
            total += svi.step(x, num_data=batches.num_examples, **schedule(step, total_steps))
            step += 1
        trained.epoch_losses.append(total / len(batches) / batches.num_examples)
    pyro.clear_param_store()
    return trained


def train_with_cli(run_dir: Path, num_epochs: int = CLI_EPOCHS) -> Path:
    """Run ``pyro-dgm train`` in-process into ``run_dir`` (which must not hold a run); returns it."""
    arguments = ["train", "--run-dir", str(run_dir), "--epochs", str(num_epochs), "--seed", str(SEED)]
    status = pyro_dgm_main([*arguments, *CLI_TRAIN_ARGUMENTS])
    pyro.clear_param_store()
    if status != 0:
        raise RuntimeError(f"pyro-dgm train exited with status {status}")
    return run_dir


def decode_rbm_states(model: DiscreteVAE, z: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Pixel means :math:`\mathbb E[x \mid \zeta]` with the RBM site clamped to ``z`` (M, n1 + n2).

    The model runs with ``"z"`` conditioned, so :math:`\zeta \sim r(\zeta \mid z)` at
    ``beta`` is drawn afresh for every row: repeated rows of one state decode to
    different images, the variation DVAE Fig. 5 shows along a row.
    """
    conditioned = poutine.condition(model, data={"z": z})
    model_trace = poutine.trace(conditioned).get_trace(num_samples=len(z), beta=beta)
    return model_trace.nodes["x"]["fn"].mean


def record_chain_states(trained: TrainedDVAEPlusPlus, num_steps: int, sweeps_per_step: int) -> torch.Tensor:
    """Continue the persistent chains for ``num_steps`` steps of ``sweeps_per_step`` block-Gibbs sweeps.

    Runs a copy, so the trained objective's chains are left as training left them.
    Returns the states after each step, shape (num_steps, num_chains, n1 + n2).
    """
    chains, rbm = copy.deepcopy(trained.chains), trained.model.prior()
    return torch.stack([chains.step(rbm, sweeps_per_step) for _ in range(num_steps)])


def block_log_partition_squared(
    model: SigmoidBeliefNet, guide: BottomUpGuide, num_blocks: int, block_size: int
) -> torch.Tensor:
    r""":math:`\log \hat Z^2` (BiHM Eq. 7) of ``num_blocks`` independent blocks of ``block_size`` outer samples.

    Each entry is :func:`~pyro_dgm.infer.estimate_log_partition_squared` on a block of its
    own (one inner sample per outer one), so :math:`\exp` of an entry is the mean of
    ``block_size`` unbiased terms :math:`t_j`: the running log-mean-exp over the blocks
    is the running estimate over all samples, read every ``block_size`` samples
    (``samples_per_weight=block_size`` in the plot). Uses torch's global RNG.
    """
    data_like = torch.zeros(1, model.layer_sizes[0])
    return torch.stack(
        [
            estimate_log_partition_squared(
                model, guide, data_like, num_outer=block_size, chunk_size=block_size
            ).log_partition_squared
            for _ in range(num_blocks)
        ]
    )

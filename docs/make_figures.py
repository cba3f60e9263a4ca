"""Regenerate the figures of ``docs/evaluation.md`` into ``docs/img/`` from tiny models trained here.

Run ``OMP_NUM_THREADS=1 python docs/make_figures.py`` (about 1.5 minutes on one CPU
thread, offline: only the library and the embedded MNIST subset, 3000 training digits
binarised afresh every epoch, 1000 test digits binarised once). Everything is seeded,
and the script prints every number the captions quote. It trains three models:

- a BiHM: a sigmoid belief net 784-64-32 with its bottom-up recognition net, trained on
  the BiHM bound (``BiHMELBO``, K = 10) through ``pyro.infer.SVI``; it gives the
  inpainting, the estimates against K and the running 2 log Z;
- a DVAE++: an 8 + 8 unit RBM prior, overlapping-exponential smoothing, one tanh layer
  of 128 units in decoder and encoders, trained with ``DVAEPlusPlusELBO`` (beta annealed
  from 5 to 12, persistent block-Gibbs chains for the gradient of log Z); it gives the
  sample grid and the chain evolution;
- a ``pyro-dgm train`` run (a 784-32-16 BiHM), whose ``metrics.jsonl`` gives the
  learning curves.

The test suite trains smaller versions of the same models (``tests/diagnostics/
trained_models.py``); the two are kept apart so that the documentation does not import
the tests.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path

import pyro
import torch
from pyro import poutine
from pyro.infer import SVI
from pyro.optim import Adam

from pyro_dgm.bihm.gibbs_sampling import inpaint
from pyro_dgm.bihm.sbn_partition import estimate_sbn_log_partition_squared
from pyro_dgm.cli.main import main as pyro_dgm_main
from pyro_dgm.data import BinarizedBatches, embedded_mnist, embedded_mnist_labels, static_binarize
from pyro_dgm.diagnostics import (
    importance_summary,
    kish_ess,
    plot_estimates_vs_num_samples,
    plot_learning_curves,
    plot_running_log_mean_exp,
    read_metrics,
    running_log_mean_exp,
    save_chain_evolution,
    save_image_grid,
    save_inpainting_grid,
)
from pyro_dgm.infer import BiHMELBO, DVAEPlusPlusELBO, log_likelihood, log_mean_exp
from pyro_dgm.models import BottomUpGuide, SigmoidBeliefNet
from pyro_dgm.models.annealing import DVAESchedule
from pyro_dgm.models.dvae import DiscreteVAE, binary_limit_pair, build_dvae_pp, sample_images

IMAGE_FOLDER = Path(__file__).resolve().parent / "img"
SEED = 0
BATCH_SIZE = 100
DIGIT_SIDE = 28

BIHM_LAYER_SIZES = [784, 64, 32]
BIHM_NUM_PARTICLES = 10
"""K of the training bound, as in BiHM's MNIST runs (Sec. 4)."""
BIHM_EPOCHS = 20
BIHM_LEARNING_RATE = 3e-3

DVAE_PP_RBM_UNITS = 8
"""Units per RBM side: 2^8 states enumerated for the exact log Z."""
DVAE_PP_HIDDEN_SIZES = (128,)
DVAE_PP_EPOCHS = 20
DVAE_PP_LEARNING_RATE = 3e-3
DVAE_PP_BETA_START, DVAE_PP_BETA_END = 5.0, 12.0
"""Linear beta annealing from the smallest initial to the smallest final value of DVAE++ Sec. 7.1."""
DVAE_PP_NUM_CHAINS, DVAE_PP_NUM_SWEEPS = 100, 10
"""Persistent chains for the gradient of log Z and block-Gibbs sweeps of them per step."""

CLI_ARGUMENTS = [
    "--model", "sbn", "--layers", "32,16", "--objective", "bihm", "-k", "10", "--epochs", "15",
    "--batch-size", "100", "--lr", "3e-3", "--valid-particles", "100", "--seed", str(SEED),
    "--no-progress", "--device", "cpu",
]
"""The ``pyro-dgm train`` run of the learning curves: validation log-likelihood (K = 100) every epoch."""

NUM_TEST_DIGITS = 200
NUM_SAMPLES = [1, 3, 10, 30, 100, 300, 1000]
"""K of the estimates against K: prefixes of the same 1000 importance weights per test digit."""
NUM_PARTITION_SAMPLES = 10**6
"""Outer samples of the log Z^2 that turns log p~*(x) into log p*(x) (BiHM Sec. 4.1 uses 10^6-10^7)."""
NUM_PARTITION_RUNS, NUM_PARTITION_BLOCKS, PARTITION_BLOCK_SIZE = 10, 1000, 100
"""Running 2 log Z: independent runs of 1000 blocks of 100 outer samples each (10^5 per run)."""

INPAINTING_IMAGES, INPAINTING_COMPLETIONS, INPAINTING_SWEEPS = 5, 4, 100
"""Test digits, independent completions of each, Gibbs sweeps (BiHM Fig. 2 uses 100)."""

CHAIN_STEPS, CHAINS_SHOWN, SWEEPS_PER_STEP, DECODES_PER_STATE = 8, 4, 10, 5
"""Chain evolution: recorded states, chains shown, block-Gibbs sweeps between two recorded states,
decodings per state (5 in DVAE Fig. 5)."""


def training_batches() -> BinarizedBatches:
    """Minibatches of 100 embedded training digits, binarised afresh every epoch."""
    return BinarizedBatches(embedded_mnist("train"), batch_size=BATCH_SIZE, seed=SEED)


def train_bihm() -> tuple[SigmoidBeliefNet, BottomUpGuide]:
    """The 784-64-32 BiHM trained with ``BiHMELBO`` through SVI; prints the loss per epoch."""
    pyro.clear_param_store()
    model, guide = SigmoidBeliefNet(BIHM_LAYER_SIZES), BottomUpGuide(BIHM_LAYER_SIZES)
    svi = SVI(model, guide, Adam({"lr": BIHM_LEARNING_RATE}), BiHMELBO(num_particles=BIHM_NUM_PARTICLES))
    batches = training_batches()
    for epoch in range(1, BIHM_EPOCHS + 1):
        total = sum(svi.step(x, num_data=batches.num_examples) for x in batches)
        print(f"BiHM epoch {epoch}: loss {total / len(batches) / batches.num_examples:.2f} nats/digit", flush=True)
    print(f"BiHM: {BIHM_EPOCHS * len(batches)} steps of {BATCH_SIZE} digits")
    return model, guide


def train_dvae_pp() -> tuple[DiscreteVAE, torch.nn.Module, DVAEPlusPlusELBO]:
    """The 8+8 RBM DVAE++ trained with ``DVAEPlusPlusELBO``; the objective keeps its persistent chains."""
    pyro.clear_param_store()
    model, guide = build_dvae_pp(
        784, DVAE_PP_RBM_UNITS, DVAE_PP_RBM_UNITS, beta=DVAE_PP_BETA_START, hidden_sizes=DVAE_PP_HIDDEN_SIZES
    )
    objective = DVAEPlusPlusELBO(  # persistent chains although log Z is enumerable: the plots show them
        num_chains=DVAE_PP_NUM_CHAINS, num_sweeps=DVAE_PP_NUM_SWEEPS, log_partition_gradient="persistent"
    )
    svi = SVI(model, guide, Adam({"lr": DVAE_PP_LEARNING_RATE}), objective)
    schedule = DVAESchedule(DVAE_PP_BETA_START, DVAE_PP_BETA_END)  # KL warm-up over the first 30%
    batches = training_batches()
    total_steps, step = DVAE_PP_EPOCHS * len(batches), 0
    for epoch in range(1, DVAE_PP_EPOCHS + 1):
        total = 0.0
        for x in batches:
            total += svi.step(x, num_data=batches.num_examples, **schedule(step, total_steps))
            step += 1
        print(f"DVAE++ epoch {epoch}: loss {total / len(batches) / batches.num_examples:.2f} nats/digit", flush=True)
    print(f"DVAE++: {total_steps} steps of {BATCH_SIZE} digits")
    return model, guide, objective


def binarized_test_digits(num_digits: int) -> torch.Tensor:
    """The first test digits, binarised once with :data:`SEED`."""
    return static_binarize(embedded_mnist("test")[:num_digits], seed=SEED)


def first_test_digit_of_each_class(num_classes: int) -> torch.Tensor:
    """The first binarised test digit of each of the first ``num_classes`` classes met, in test order."""
    labels = embedded_mnist_labels("test")
    firsts = {}
    for index, label in enumerate(labels.tolist()):
        firsts.setdefault(label, index)
        if len(firsts) == num_classes:
            break
    return static_binarize(embedded_mnist("test"), seed=SEED)[list(firsts.values())]


def sample_grid(model: DiscreteVAE) -> Path:
    """36 samples of the DVAE++ (pixel means given z, binary limit)."""
    return save_image_grid(sample_images(model, 36), IMAGE_FOLDER / "sample_grid.png", num_columns=12, scale=1)


def inpainting(model: SigmoidBeliefNet, guide: BottomUpGuide) -> Path:
    """Bottom halves of test digits filled in by Gibbs sampling from the BiHM's p* (BiHM Fig. 2)."""
    originals = first_test_digit_of_each_class(INPAINTING_IMAGES)
    observed = torch.zeros(DIGIT_SIDE, DIGIT_SIDE, dtype=torch.bool)
    observed[: DIGIT_SIDE // 2] = True  # the model sees the top half
    observed = observed.flatten()
    starts = originals.repeat_interleave(INPAINTING_COMPLETIONS, dim=0) * observed  # hidden pixels start at 0
    state = inpaint(model, guide, starts, observed, num_sweeps=INPAINTING_SWEEPS)
    completions = state.x.reshape(INPAINTING_IMAGES, INPAINTING_COMPLETIONS, -1)
    return save_inpainting_grid(originals, observed, completions, IMAGE_FOLDER / "inpainting.png", scale=2)


def decode_rbm_states(model: DiscreteVAE, z: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Pixel means :math:`\mathbb E[x \mid \zeta]` with ``"z"`` clamped to ``z``.

    :math:`\zeta \sim r(\zeta \mid z)` at ``beta`` is drawn afresh for every row, so repeated
    rows of one RBM state decode to slightly different images.
    """
    model_trace = poutine.trace(poutine.condition(model, data={"z": z})).get_trace(num_samples=len(z), beta=beta)
    return model_trace.nodes["x"]["fn"].mean


def chain_evolution(model: DiscreteVAE, objective: DVAEPlusPlusELBO) -> Path:
    """The DVAE++'s persistent chains continued after training, decoded 5 times per RBM state (DVAE Fig. 5)."""
    chains, rbm = copy.deepcopy(objective.chains["z"]), model.prior()
    states = torch.stack([chains.step(rbm, SWEEPS_PER_STEP) for _ in range(CHAIN_STEPS)])
    return save_chain_evolution(
        states[:, :CHAINS_SHOWN],
        lambda z: decode_rbm_states(model, z, DVAE_PP_BETA_END),
        IMAGE_FOLDER / "chain_evolution.png",
        step_numbers=range(SWEEPS_PER_STEP, (CHAIN_STEPS + 1) * SWEEPS_PER_STEP, SWEEPS_PER_STEP),
        decodes_per_state=DECODES_PER_STATE,
        time_along="rows",
        scale=1,
    )


def learning_curves() -> Path:
    """Train with the ``pyro-dgm`` command into a temporary run folder and plot its ``metrics.jsonl``."""
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        status = pyro_dgm_main(["train", "--run-dir", str(run), *CLI_ARGUMENTS])
        pyro.clear_param_store()
        if status != 0:
            raise RuntimeError(f"pyro-dgm train exited with status {status}")
        last = read_metrics(run)[-1]
        print(f"pyro-dgm train {' '.join(CLI_ARGUMENTS)}: last epoch {last}")
        return plot_learning_curves(run, IMAGE_FOLDER / "learning_curves.png")


def estimates_vs_num_samples(
    model: SigmoidBeliefNet, guide: BottomUpGuide, log_partition_squared: torch.Tensor
) -> Path:
    """BiHM Fig. 1C: log p(x) (Eq. 5) and log p*(x) (Eq. 1) of test digits and their ESS against K."""
    x = binarized_test_digits(NUM_TEST_DIGITS)
    log_weights = log_likelihood(
        model, guide, x, num_samples=max(NUM_SAMPLES), chunk_size=250, keep_log_weights=True
    ).log_weights  # (K, B): log p(x, h) - log q(h | x)
    estimates = {
        "log p(x), weights w = p/q": {k: log_mean_exp(log_weights[:k]) for k in NUM_SAMPLES},
        "log p*(x), weights √w": {
            k: 2 * log_mean_exp(log_weights[:k] / 2) - log_partition_squared for k in NUM_SAMPLES
        },
    }
    ess = {
        "w = p/q": {k: kish_ess(log_weights[:k]) for k in NUM_SAMPLES},
        "√w (BiHM)": {k: kish_ess(log_weights[:k] / 2) for k in NUM_SAMPLES},
    }
    for label, per_k in estimates.items():
        values = per_k[max(NUM_SAMPLES)]
        print(f"{label} at K={max(NUM_SAMPLES)}: {values.mean():.2f} +- {values.std() / math.sqrt(len(values)):.2f}")
    for label, weights in (("w", log_weights), ("sqrt w", log_weights / 2)):
        print(f"importance summary of {label}:", importance_summary(weights))
    return plot_estimates_vs_num_samples(estimates, IMAGE_FOLDER / "estimates_vs_k.png", ess=ess)


def running_log_partition(model: SigmoidBeliefNet, guide: BottomUpGuide) -> Path:
    """BiHM Fig. 3: running 2 log Z over 10 runs, each from blocks of the fast Eq. 7 estimator."""
    generator = torch.Generator().manual_seed(SEED)
    runs = torch.stack(
        [
            torch.stack(
                [
                    estimate_sbn_log_partition_squared(
                        model, guide, num_outer=PARTITION_BLOCK_SIZE, generator=generator
                    ).log_partition_squared
                    for _ in range(NUM_PARTITION_BLOCKS)
                ]
            )
            for _ in range(NUM_PARTITION_RUNS)
        ]
    )  # (runs, blocks): exp of each entry is the mean of PARTITION_BLOCK_SIZE terms t_j
    final, _ = running_log_mean_exp(runs)
    print(f"running 2 log Z after {NUM_PARTITION_BLOCKS * PARTITION_BLOCK_SIZE} samples: runs {final[:, -1]}")
    return plot_running_log_mean_exp(
        runs, IMAGE_FOLDER / "running_log_z.png", samples_per_weight=PARTITION_BLOCK_SIZE
    )


def main() -> None:
    start = time.time()
    pyro.set_rng_seed(SEED)
    IMAGE_FOLDER.mkdir(parents=True, exist_ok=True)
    bihm_model, bihm_guide = train_bihm()
    partition = estimate_sbn_log_partition_squared(
        bihm_model, bihm_guide, num_outer=NUM_PARTITION_SAMPLES, generator=torch.Generator().manual_seed(SEED)
    )
    print(f"log Z^2 = {partition.log_partition_squared:.3f} +- {partition.standard_error:.3f}")
    dvae_model, dvae_guide, dvae_objective = train_dvae_pp()
    dvae_log_p = log_likelihood(*binary_limit_pair(dvae_model, dvae_guide), binarized_test_digits(NUM_TEST_DIGITS),
                                num_samples=1000, chunk_size=250).log_likelihood
    print(f"DVAE++ test log p(x) (binary limit, K=1000): {dvae_log_p.mean():.2f} +- "
          f"{dvae_log_p.std() / math.sqrt(len(dvae_log_p)):.2f}")
    written = [
        sample_grid(dvae_model),
        inpainting(bihm_model, bihm_guide),
        chain_evolution(dvae_model, dvae_objective),
        learning_curves(),
        estimates_vs_num_samples(bihm_model, bihm_guide, partition.log_partition_squared),
        running_log_partition(bihm_model, bihm_guide),
    ]
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()

"""Regenerate the figures of ``docs/evaluation.md`` into ``docs/img/``.

Run ``python docs/make_figures.py``. Uses only the library and the embedded MNIST
subset, so it works offline in a few seconds. Until trained models are plugged in,
every figure is driven by a stand-in whose answer is known:

- samples: MNIST test images;
- inpainting: nearest-neighbour completion (bottom halves of the training images
  closest on the observed top half);
- chain evolution: a sticky binary Markov chain whose first four units select a digit
  class, decoded by drawing a random training image of that class (the decoder's own
  randomness, as the continuous latents of a DVAE);
- estimates against K and running log Z: importance sampling in the linear-Gaussian
  model h ~ N(0, 1), x | h ~ N(h, 1), whose log p(x) = log N(x; 0, 2) is exact.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.distributions import Normal

from pyro_dgm.data import embedded_mnist, embedded_mnist_labels
from pyro_dgm.diagnostics import (
    importance_summary,
    kish_ess,
    plot_estimates_vs_num_samples,
    plot_learning_curves,
    plot_running_log_mean_exp,
    save_chain_evolution,
    save_image_grid,
    save_inpainting_grid,
)

IMAGE_FOLDER = Path(__file__).resolve().parent / "img"
SEED = 0
NUM_DIGIT_CLASSES = 10
CLASS_BITS = 4
"""Units of the toy chain state that encode the digit class (2^4 >= 10 codes)."""
FLIP_PROBABILITY = 0.01
"""Per-unit flip probability of one step of the toy chain: sticky modes, as in DVAE Fig. 5."""


def sample_grid(test_images: torch.Tensor) -> Path:
    return save_image_grid(test_images[:36], IMAGE_FOLDER / "sample_grid.png", num_columns=12, scale=1)


def inpainting(train_images: torch.Tensor, test_images: torch.Tensor) -> Path:
    observed = torch.zeros(28, 28, dtype=torch.bool)
    observed[:14] = True  # the model sees the top half
    observed = observed.reshape(-1)
    originals = test_images[:5]
    distances = torch.cdist(originals[:, observed], train_images[:, observed])
    neighbours = distances.topk(3, largest=False).indices  # (5, 3)
    completions = originals[:, None].repeat(1, 3, 1)
    completions[..., ~observed] = train_images[neighbours][..., ~observed]
    return save_inpainting_grid(originals, observed, completions, IMAGE_FOLDER / "inpainting.png", scale=2)


def chain_evolution(train_images: torch.Tensor, train_labels: torch.Tensor) -> Path:
    num_steps, num_chains, num_units = 600, 4, 8
    state = torch.bernoulli(torch.full((num_chains, num_units), 0.5))
    states = []
    for _ in range(num_steps):
        flips = torch.bernoulli(torch.full_like(state, FLIP_PROBABILITY))
        state = (state + flips) % 2
        states.append(state)
    states = torch.stack(states)  # (num_steps, num_chains, num_units)
    powers = 2 ** torch.arange(CLASS_BITS)
    images_by_class = [train_images[train_labels == digit] for digit in range(NUM_DIGIT_CLASSES)]

    def decode(z: torch.Tensor) -> torch.Tensor:
        digits = (z[:, :CLASS_BITS] * powers).sum(-1).long() % NUM_DIGIT_CLASSES
        return torch.stack(
            [images_by_class[d][torch.randint(len(images_by_class[d]), ())] for d in digits.tolist()]
        )

    recorded = states[::100]  # every 100th step, as in the paper
    return save_chain_evolution(
        recorded,
        decode,
        IMAGE_FOLDER / "chain_evolution.png",
        step_numbers=range(0, num_steps, 100),
        decodes_per_state=3,
        scale=1,
    )


def learning_curves() -> Path:
    records = [
        {
            "epoch": epoch,
            "step": 500 * epoch,
            "seconds": 12.0,
            "train_loss": 88.0 + 30.0 * math.exp(-epoch / 6),
            **({"valid_log_likelihood": -90.0 - 30.0 * math.exp(-epoch / 6)} if epoch % 5 == 0 else {}),
        }
        for epoch in range(41)
    ]
    return plot_learning_curves(records, IMAGE_FOLDER / "learning_curves.png")


def gaussian_log_weights(x: torch.Tensor, num_samples: int, proposal_scale: float) -> torch.Tensor:
    """(K, B) log p(x, h) - log q(h | x) with q = N(x/2, proposal_scale^2); exact posterior N(x/2, 1/2)."""
    h = x / 2 + proposal_scale * torch.randn(num_samples, len(x), dtype=torch.float64)
    log_joint = Normal(0.0, 1.0).log_prob(h) + Normal(h, 1.0).log_prob(x)
    return log_joint - Normal(x / 2, proposal_scale).log_prob(h)


def estimates_vs_num_samples() -> Path:
    x = math.sqrt(2) * torch.randn(200, dtype=torch.float64)
    exact = Normal(0.0, math.sqrt(2)).log_prob(x)
    proposals = {"q = N(x/2, 0.5²)": 0.5, "q = N(x/2, 1.5²)": 1.5}
    num_samples = [1, 4, 16, 64, 256, 1024]
    gaps, ess = {}, {}
    for label, scale in proposals.items():
        log_weights = {k: gaussian_log_weights(x, k, scale) for k in num_samples}
        gaps[label] = {k: torch.logsumexp(w, 0) - math.log(k) - exact for k, w in log_weights.items()}
        ess[label] = {k: kish_ess(w) for k, w in log_weights.items()}
        print(label, importance_summary(gaussian_log_weights(x, 1024, scale)))
    return plot_estimates_vs_num_samples(
        gaps, IMAGE_FOLDER / "estimates_vs_k.png", ess=ess, ylabel=r"$\log \hat p_K(x) - \log p(x)$"
    )


def running_log_partition() -> Path:
    x = torch.tensor([1.0], dtype=torch.float64)
    runs = torch.stack([gaussian_log_weights(x, 100_000, 0.8)[:, 0] for _ in range(10)])
    runs = runs - Normal(0.0, math.sqrt(2)).log_prob(x)  # E[w] = 1: the estimate converges to 0
    return plot_running_log_mean_exp(runs, IMAGE_FOLDER / "running_log_z.png", ylabel=r"$\log \hat Z_n$ (exact: 0)")


def main() -> None:
    torch.manual_seed(SEED)
    IMAGE_FOLDER.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = embedded_mnist("train"), embedded_mnist_labels("train")
    test_images = embedded_mnist("test")
    written = [
        sample_grid(test_images),
        inpainting(train_images, test_images),
        chain_evolution(train_images, train_labels),
        learning_curves(),
        estimates_vs_num_samples(),
        running_log_partition(),
    ]
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()

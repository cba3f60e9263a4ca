"""What the example scripts share: command-line options, data, the SVI loop, the test log-likelihood.

Each example imports this file from its own folder (``python examples/<name>.py`` puts
``examples/`` on the path); everything else they use is the library's public API.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from pyro.infer import SVI

from pyro_dgm.data import BinarizedBatches, load_dataset, static_binarize
from pyro_dgm.infer.estimators.log_likelihood import log_likelihood
from pyro_dgm.models.dvae_base import binary_limit_pair, sample_images

TEST_SEED = 1234
"""Seed of the static binarisation of the test images (the same for every example)."""

EVALUATION_BATCH = 100
"""Test images per call of ``log_likelihood``: K particles x 100 images x D pixels per chunk."""

EVALUATION_CHUNK = 100
"""Importance samples per vectorised pass."""


def parser(description: str, epochs: int, num_test: int = 300, num_samples: int = 500) -> argparse.ArgumentParser:
    """Options every example takes; defaults sized to finish in 1-3 minutes on 2 CPU cores."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--epochs", type=int, default=epochs)
    result.add_argument("--dataset", default="embedded_mnist", help="a name of pyro_dgm.data.available_datasets()")
    result.add_argument("--batch-size", type=int, default=100)
    result.add_argument("--lr", type=float, default=1e-3)
    result.add_argument("--num-test", type=int, default=num_test, help="test images for the IW log-likelihood")
    result.add_argument("--num-samples", type=int, default=num_samples, help="K, importance samples per test image")
    result.add_argument("--seed", type=int, default=0)
    return result


def load_data(args: argparse.Namespace) -> tuple[BinarizedBatches, torch.Tensor]:
    """Dynamically binarised training batches and ``--num-test`` statically binarised test images."""
    train = load_dataset(args.dataset, "train")
    batches = BinarizedBatches(train.flatten(1), batch_size=args.batch_size, seed=args.seed)
    test = load_dataset(args.dataset, "test").flatten(1)[: args.num_test]
    return batches, static_binarize(test, seed=TEST_SEED)


def train(
    svi: SVI,
    batches: BinarizedBatches,
    epochs: int,
    step_kwargs: Callable[[int, int], dict] | None = None,
) -> float:
    """Run ``epochs`` epochs of ``svi.step(x, num_data=N, **step_kwargs(step, total))``; print the loss per image."""
    num_data = batches.num_examples
    total_steps = epochs * len(batches)
    step = 0
    loss_per_image = float("nan")
    for epoch in range(1, epochs + 1):
        start, total = time.time(), 0.0
        for x in batches:
            extra = step_kwargs(step, total_steps) if step_kwargs is not None else {}
            total += svi.step(x, num_data=num_data, **extra) * x.size(0) / num_data
            step += 1
        loss_per_image = total / num_data
        print(f"epoch {epoch:3d}: loss {loss_per_image:8.2f} nats/image ({time.time() - start:.1f} s)", flush=True)
    return loss_per_image


def report_log_likelihood(model: Callable, guide: Callable, test: torch.Tensor, num_samples: int, label: str = "") -> torch.Tensor:
    """Print and return the mean importance-weighted test log p(x) (BiHM Eq. 5) with its standard error."""
    start = time.time()
    with torch.no_grad():
        values = torch.cat(
            [
                log_likelihood(model, guide, batch, num_samples=num_samples, chunk_size=EVALUATION_CHUNK).log_likelihood
                for batch in test.split(EVALUATION_BATCH)
            ]
        )
    print(
        f"test IW log p(x){label} (K={num_samples}, {test.size(0)} images): "
        f"{values.mean():.2f} +- {values.std() / values.numel() ** 0.5:.2f} nats ({time.time() - start:.1f} s)",
        flush=True,
    )
    return values


def report_binary_limit(model, guide, test: torch.Tensor, num_samples: int) -> torch.Tensor:
    """For an RBM-prior model: its exact log Z, the IW test log p(x) in the binary limit, the mean of 16 samples."""
    model_fn, guide_fn = binary_limit_pair(model, guide)
    print(f"exact log Z of the RBM: {model.prior().log_partition.item():.3f}")
    values = report_log_likelihood(model_fn, guide_fn, test, num_samples, label=" in the binary limit")
    images = sample_images(model, 16)
    print(f"16 samples from the model: mean pixel intensity {images.mean():.3f} (data: {test.mean():.3f})")
    return values

"""The importance-weighted evaluation that ``pyro-dgm evaluate`` and per-epoch validation print.

Data points are processed in blocks and importance samples in chunks, so each
vectorised pass holds ``DATA_BLOCK_SIZE x SAMPLE_CHUNK_SIZE`` particles whatever K is;
the K x N log-weights themselves are kept (4 bytes each) for PSIS. Next to
the mean log-likelihood it reports the Kish ESS and the PSIS Pareto k-hat of every
data point's weights: an estimate whose k-hat exceeds the threshold is unreliable.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from pyro_dgm.cli.registry import BuiltModel
from pyro_dgm.diagnostics import importance_summary
from pyro_dgm.diagnostics.importance_diagnostics import MIN_PSIS_NUM_SAMPLES
from pyro_dgm.infer.importance import effective_sample_size
from pyro_dgm.infer.log_likelihood import log_likelihood
from pyro_dgm.infer.validation import check_observed_data

DATA_BLOCK_SIZE = 100
"""Data points per vectorised pass."""
SAMPLE_CHUNK_SIZE = 100
"""Importance samples per vectorised pass (with DATA_BLOCK_SIZE: 10^4 particles, ~30 MB for MNIST)."""


def evaluate_log_likelihood(
    built: BuiltModel, data: torch.Tensor, num_particles: int, progress: bool = True
) -> dict[str, Any]:
    """Mean IW log-likelihood (nats per data point), its standard error, ESS and k-hat summary."""
    check_observed_data(data, batch="evaluation data")
    model, guide = built.evaluation_pair()
    estimates, log_weight_blocks = [], []
    blocks = data.split(DATA_BLOCK_SIZE)
    for block in tqdm(blocks, desc=f"log-likelihood (K={num_particles})", disable=not progress, leave=False):
        result = log_likelihood(
            model,
            guide,
            block,
            num_samples=num_particles,
            chunk_size=min(SAMPLE_CHUNK_SIZE, num_particles),
            keep_log_weights=True,
        )
        estimates.append(result.log_likelihood)
        log_weight_blocks.append(result.log_weights)
    per_point = torch.cat(estimates)
    log_weights = torch.cat(log_weight_blocks, dim=1)
    standard_error = per_point.std() / per_point.numel() ** 0.5 if per_point.numel() > 1 else torch.tensor(float("nan"))
    if num_particles >= MIN_PSIS_NUM_SAMPLES:
        summary = importance_summary(log_weights)
    else:  # too few weights to fit a Pareto tail: ESS only
        summary = {"ess_mean": effective_sample_size(log_weights, dim=0).mean().item()}
    return {
        **summary,
        "log_likelihood": per_point.mean().item(),
        "log_likelihood_standard_error": standard_error.item(),
    }

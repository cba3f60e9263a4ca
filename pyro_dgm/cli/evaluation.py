r"""The importance-weighted evaluation that ``pyro-dgm evaluate`` and per-epoch validation print.

Data points are processed in blocks and importance samples in chunks, so each
vectorised pass holds ``DATA_BLOCK_SIZE x SAMPLE_CHUNK_SIZE`` particles whatever K is;
the K x N log-weights themselves are kept (4 bytes each) for PSIS. Next to
the mean log-likelihood it reports the Kish ESS and the PSIS Pareto k-hat of every
data point's weights, and how much the estimate still rises from K/10 to K samples
(:func:`gain_over_last_decade`); :func:`reliability_verdict` says in words what they imply.

The importance-weighted estimate :math:`\log \frac1K \sum_k w_k` is a stochastic lower
bound: :math:`\mathbb E[\log \hat p_K(x)] \le \log p(x)`, rising with K (Burda et al.
2016, Theorem 1). Where :math:`\hat k > 0.7` the weights have (practically) infinite
variance, the bound converges only slowly in K and the number can lie far below
:math:`\log p(x)`: it is a *loose* lower bound, not an estimate.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from pyro_dgm.cli.registry import BuiltModel
from pyro_dgm.diagnostics import importance_summary
from pyro_dgm.diagnostics.importance_diagnostics import MIN_PSIS_NUM_SAMPLES
from pyro_dgm.infer.estimators.log_likelihood import log_likelihood
from pyro_dgm.infer.importance import effective_sample_size, log_mean_exp
from pyro_dgm.infer.validation import check_observed_data

DATA_BLOCK_SIZE = 100
"""Data points per vectorised pass."""
SAMPLE_CHUNK_SIZE = 100
"""Importance samples per vectorised pass (with DATA_BLOCK_SIZE: 10^4 particles, ~30 MB for MNIST)."""
DECADE = 10
"""The convergence check compares the estimate at K with the mean estimate at K / DECADE."""
RELIABLE_FRACTION = 0.05
"""The verdict calls an estimate reliable when at most this share of data points has k-hat above 0.7
(one data point in twenty: their log-likelihoods move the mean by a twentieth of their own bias)."""


def gain_over_last_decade(log_weights: torch.Tensor) -> tuple[float, float]:
    r"""How much the mean IW estimate rises from K/10 to K samples, and the standard error of that rise.

    The K weights of each data point are split into 10 disjoint groups of K/10; the
    mean over groups of :math:`\log \frac{10}{K} \sum_{k \in g} w_k` is an unbiased
    estimate of :math:`\mathbb E[\log \hat p_{K/10}(x)]`, so the difference to the
    K-sample estimate estimates the last decade's gain of the bound (0 once it has
    converged). The standard error is over data points (the differences are paired).
    """
    num_samples, num_data = log_weights.shape
    group_size = num_samples // DECADE
    groups = log_weights[: group_size * DECADE].reshape(DECADE, group_size, num_data)
    gains = log_mean_exp(log_weights, dim=0) - log_mean_exp(groups, dim=1).mean(dim=0)
    standard_error = gains.std() / num_data**0.5 if num_data > 1 else torch.tensor(float("nan"))
    return gains.mean().item(), standard_error.item()


def reliability_verdict(result: dict[str, Any]) -> str:
    """One sentence on whether ``result`` of :func:`evaluate_log_likelihood` can be trusted, and what to do if not."""
    if "fraction_khat_above_threshold" not in result:
        return f"(K={result['num_particles']} is too few for PSIS k-hat: use -k 1000 or more to judge the estimate)"
    fraction, threshold = result["fraction_khat_above_threshold"], result["khat_threshold"]
    gain = (
        f"; it rose {result['gain_over_last_decade']:.2f} ± {result['gain_over_last_decade_standard_error']:.2f} "
        f"nats from K={result['num_particles'] // DECADE} to K={result['num_particles']}"
        if "gain_over_last_decade" in result
        else ""
    )
    if fraction <= RELIABLE_FRACTION:
        return f"reliable: PSIS k-hat <= {threshold} for {100 * (1 - fraction):.0f}% of data points{gain}"
    return (
        f"LOOSE BOUND: PSIS k-hat > {threshold} for {100 * fraction:.0f}% of data points, so their weights have "
        f"(practically) infinite variance and the number is a lower bound that may lie far below log p(x){gain}. "
        "Re-run with 10x the -k and see whether it still rises; a guide trained to cover the posterior "
        "(--objective rws for sbn) gives tighter estimates"
    )


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
        gain, gain_standard_error = gain_over_last_decade(log_weights)
        summary.update(gain_over_last_decade=gain, gain_over_last_decade_standard_error=gain_standard_error)
    else:  # too few weights to fit a Pareto tail: ESS only
        summary = {"ess_mean": effective_sample_size(log_weights, dim=0).mean().item()}
    return {
        **summary,
        "log_likelihood": per_point.mean().item(),
        "log_likelihood_standard_error": standard_error.item(),
    }

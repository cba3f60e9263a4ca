"""The test evaluation of a trained configuration: importance-sampled log p(x) per image.

What :mod:`benchmarks.reproduce` measures once a configuration is trained:

* :func:`importance_estimates` — per test image, from one set of K guide samples, the IW
  :math:`\\log p(x)` (BiHM Eq. 5), the ELBO, BiHM's bound (Eq. 4) and Kish's ESS, in blocks
  of :data:`DATA_BLOCK_SIZE` images that an interrupted run resumes
  (:mod:`benchmarks.resumable_evaluation`);
* :func:`evaluated_once` — an evaluation kept in the configuration's run folder, so a rerun
  of the table does not redo it;
* the binary limit of a smoothed model, with an RBM prior's :math:`\\log Z` estimated once
  (:func:`evaluation_log_partition`) and, when a finished evaluation's :math:`\\log Z` came
  from another AIS schedule, a shift instead of a new evaluation
  (:func:`renormalised_evaluation`);
* :func:`curve_log_likelihood` — one cheap point of a learning curve.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyro
import torch
from torch import nn

from benchmarks.latent_code import posterior_logits, usage
from benchmarks.resumable_evaluation import EvaluationProgress, images_digest
from pyro_dgm.cli.run_directory import write_atomically
from pyro_dgm.infer import log_likelihood
from pyro_dgm.infer.estimators.rbm_partition import estimate_log_partition
from pyro_dgm.infer.importance import log_mean_exp
from pyro_dgm.models.dvae_base import binary_limit_pair

DATA_BLOCK_SIZE = 100
"""Test images per vectorised evaluation pass."""

SAMPLE_CHUNK_SIZE = 100
"""Importance samples per vectorised pass (with DATA_BLOCK_SIZE: 10^4 particles)."""

CURVE_PARTICLES = 50
"""Importance samples per validation image at a curve point (the curve shows the trend; the test
evaluation uses the budget's K)."""

EVALUATION_VALIDATION = False
"""Pyro validation during the test and curve evaluations: off. The models were trained with it
on, and the estimator itself warns (naming the sites) when a data point's weights are all zero."""

EVALUATION_PROGRESS_STEPS = 10
"""A long test evaluation reports on stderr after each tenth of the test images."""


def importance_estimates(
    model: Callable[..., Any], guide: Callable[..., Any], data: torch.Tensor, num_samples: int,
    progress: bool = False, saved: EvaluationProgress | None = None,
) -> tuple[dict[str, float], torch.Tensor]:
    r"""Per test image, from one set of K guide samples: IW :math:`\log p(x)` (BiHM Eq. 5),
    the ELBO (mean :math:`\log w`), BiHM's :math:`\log \tilde p^*(x) = 2 \log \frac1K \sum_k
    \sqrt{w_k}` (Eq. 4) and Kish's ESS.

    Pyro's argument and sample checks are off for the passes (:data:`EVALUATION_VALIDATION`):
    the values are bit-identical with them on, and a pass is cheaper without them
    (``benchmarks/evaluation_speed.py``; measured in ``benchmarks/results/evaluation_speed.md``).

    ``progress``: one stderr line after each tenth of the images (done, elapsed, left): the
    full protocol's evaluation takes half an hour on a CPU core.

    ``saved``: the blocks of :data:`DATA_BLOCK_SIZE` images already estimated by an
    interrupted run of this evaluation are skipped, and each new one is kept as it finishes
    (:class:`~benchmarks.resumable_evaluation.EvaluationProgress`).

    :returns: their means with the standard error of :math:`\log p(x)` over images, and
        the per-image :math:`\log p(x)` (for paired comparisons on the same images).
    """
    saved = EvaluationProgress(None, {}) if saved is None else saved
    started, skipped = time.perf_counter(), saved.images_done
    next_report = skipped * EVALUATION_PROGRESS_STEPS // data.size(0) + 1
    for index, block in enumerate(data.split(DATA_BLOCK_SIZE)):
        if index < len(saved.blocks):
            continue
        with pyro.validation_enabled(EVALUATION_VALIDATION):
            estimate = log_likelihood(
                model, guide, block, num_samples=num_samples, chunk_size=min(SAMPLE_CHUNK_SIZE, num_samples),
                keep_log_weights=True,
            )
        log_weights = estimate.log_weights
        saved.record({
            "log_p": estimate.log_likelihood,
            "elbo": log_weights.mean(dim=0),
            "bihm_bound": 2 * log_mean_exp(0.5 * log_weights, dim=0),  # BiHM Eq. 4
            "ess": estimate.effective_sample_size,
        })
        done = saved.images_done
        if progress and done * EVALUATION_PROGRESS_STEPS >= next_report * data.size(0):
            next_report = done * EVALUATION_PROGRESS_STEPS // data.size(0) + 1
            elapsed = time.perf_counter() - started
            left = elapsed * (data.size(0) - done) / (done - skipped)
            print(f"  test evaluation (K = {num_samples:,}): {done:,} of {data.size(0):,} images, "
                  f"{elapsed / 60:.1f} min, about {left / 60:.1f} min left", file=sys.stderr, flush=True)
    per_image = saved.concatenated("log_p")
    summary = {
        "log_p": per_image.mean().item(),
        "log_p_se": standard_error(per_image),
        "elbo": saved.concatenated("elbo").mean().item(),
        "bihm_bound": saved.concatenated("bihm_bound").mean().item(),
        "ess": saved.concatenated("ess").mean().item(),
    }
    return summary, per_image


def curve_log_likelihood(
    model: Callable[..., Any], guide: Callable[..., Any], images: torch.Tensor
) -> dict[str, float]:
    r"""One learning-curve point: IW :math:`\log p(x)` with K = :data:`CURVE_PARTICLES` on ``images``."""
    summary, _ = importance_estimates(model, guide, images, CURVE_PARTICLES)
    return {"valid_log_p": summary["log_p"]}


def standard_error(values: torch.Tensor) -> float:
    """Standard error of the mean of ``values`` (NaN for fewer than two)."""
    return (values.std() / math.sqrt(values.numel())).item() if values.numel() > 1 else math.nan


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """``function()`` without autograd, and its wall time in seconds."""
    started = time.perf_counter()
    with torch.no_grad():
        result = function()
    return result, time.perf_counter() - started


EVALUATION_FILE = "evaluation.pt"


def evaluated_once(
    folder: Path | None,
    function: Callable[[EvaluationProgress], tuple[dict[str, float], torch.Tensor]],
    steps: int,
    num_samples: int,
    test: torch.Tensor,
) -> tuple[tuple[dict[str, float], torch.Tensor], float]:
    """:func:`timed` ``function(progress)``, whose ``(metrics, per-image log p)`` is kept in ``folder`` and
    reused by a rerun of the same training (same ``steps``): the test evaluation of the full protocol takes
    half an hour, and a resumed table must not redo it.

    An evaluation stopped part-way continues from its finished blocks: ``function`` gets the
    :class:`~benchmarks.resumable_evaluation.EvaluationProgress` of this evaluation (the
    training ``steps``, ``num_samples`` importance samples, the ``test`` images) to pass on to
    :func:`importance_estimates`, and the seconds returned include the earlier runs'. A stop
    (Ctrl-C, or ``kill -INT`` also of a background job) raises
    :class:`~benchmarks.resumable_evaluation.EvaluationInterrupted`.
    """
    path = None if folder is None else folder / EVALUATION_FILE
    if path is not None and path.is_file():
        saved = torch.load(path, weights_only=True)
        if saved["steps"] == steps:
            return (saved["metrics"], saved["per_image_log_p"]), saved["seconds"]
    progress = EvaluationProgress(folder, {"steps": steps, "num_samples": num_samples,
                                           "images": images_digest(test), "block_size": DATA_BLOCK_SIZE})
    with progress.stoppable(test.size(0)):
        evaluation, seconds = timed(lambda: function(progress))
    seconds += progress.earlier_seconds
    save_evaluation(folder, evaluation, seconds, steps)
    progress.discard()
    return evaluation, seconds


def save_evaluation(
    folder: Path | None, evaluation: tuple[dict[str, float], torch.Tensor], seconds: float, steps: int
) -> None:
    """Keep ``evaluation`` (metrics, per-image log p) of the training at ``steps`` in ``folder`` (if any),
    written atomically (a stop while writing leaves the previous file)."""
    if folder is None:
        return
    metrics, per_image = evaluation
    payload = {"metrics": metrics, "per_image_log_p": per_image, "seconds": seconds, "steps": steps}
    write_atomically(folder / EVALUATION_FILE, lambda stream: torch.save(payload, stream))


def evaluation_log_partition(model: nn.Module, ais_chains: int, ais_temperatures: int) -> dict[str, float]:
    r"""The :math:`\log Z` of ``model``'s RBM prior (exact if enumerable, else AIS with ``ais_chains``
    chains over ``ais_temperatures`` temperatures) with its standard error; ``{}`` for a directed
    (normalised) prior."""
    prior = getattr(model, "prior", None)
    if not callable(prior):
        return {}
    rbm = prior()
    method = "exact" if rbm.is_enumerable else "ais"
    options = {} if method == "exact" else {"num_chains": ais_chains, "betas": ais_temperatures}
    estimate = estimate_log_partition(rbm, method=method, **options)
    partition = {"log_z": estimate.value.item(), "log_z_se": estimate.standard_error.item()}
    if method == "ais":
        partition["log_z_temperatures"] = float(ais_temperatures)
    return partition


def normalised_binary_limit_pair(
    model: nn.Module, guide: nn.Module, partition: dict[str, float]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    r"""The pair at :math:`\beta = \infty`, an RBM prior normalised by ``partition["log_z"]``
    (:func:`evaluation_log_partition`; ``{}`` for a directed prior)."""
    if "log_z" not in partition:
        return binary_limit_pair(model, guide)
    weight = model.prior().weight  # the estimate's dtype: a float32 log Z survives the trip through float exactly
    log_partition = torch.tensor(partition["log_z"], dtype=weight.dtype, device=weight.device)
    return (functools.partial(model, binary_limit=True, log_partition=log_partition),
            functools.partial(guide, binary_limit=True))


def binary_limit_evaluation_pair(
    model: nn.Module, guide: nn.Module, ais_chains: int, ais_temperatures: int
) -> tuple[Callable[..., Any], Callable[..., Any], dict[str, float]]:
    r"""The pair at :math:`\beta = \infty`; an RBM prior gets its :math:`\log Z` (exact or AIS) fixed."""
    partition = evaluation_log_partition(model, ais_chains, ais_temperatures)
    return (*normalised_binary_limit_pair(model, guide, partition), partition)


LOG_Z_SHIFTED_METRICS = ("log_p", "elbo", "bihm_bound")
r"""Test metrics of a model with an RBM prior that contain :math:`-\log Z` once: every importance
weight is :math:`\tilde p(x, z) / (Z\, q(z \mid x))`, so the IW :math:`\log p(x)`, the ELBO (mean
:math:`\log w`) and BiHM's :math:`2 \log \frac1K \sum_k \sqrt{w_k}` each move by
:math:`\log Z_{\rm old} - \log Z_{\rm new}`; the standard error and the ESS do not move."""


def renormalised_evaluation(
    evaluation: tuple[dict[str, float], torch.Tensor],
    seconds: float,
    model: nn.Module,
    guide: nn.Module,
    ais: tuple[int, int],
    recorded_temperatures: int,
) -> tuple[tuple[dict[str, float], torch.Tensor], float, bool]:
    r"""A finished test evaluation normalised with a log Z from ``ais`` = (chains, temperatures).

    An evaluation whose RBM log Z came from another AIS schedule (older evaluations record
    none: theirs was ``recorded_temperatures``) is not redone: only log Z is re-estimated
    (minutes, against the evaluation's half hour) and the metrics of
    :data:`LOG_Z_SHIFTED_METRICS` and each image's log p(x) move by the difference. The
    replaced value and its schedule stay in the metrics (``log_z_replaced``,
    ``log_z_replaced_temperatures``). Directed priors and enumerable RBMs pass unchanged.

    :returns: the evaluation, its seconds (plus the re-estimate's) and whether it changed.
    """
    metrics, per_image = evaluation
    if "log_z" not in metrics or model.prior().is_enumerable:  # a normalised prior, or log Z exact
        return evaluation, seconds, False
    if metrics.get("log_z_temperatures", float(recorded_temperatures)) == float(ais[1]):
        return evaluation, seconds, False
    (_, _, partition), extra_seconds = timed(lambda: binary_limit_evaluation_pair(model, guide, *ais))
    shift = metrics["log_z"] - partition["log_z"]
    renormalised = {
        **metrics,
        **{name: metrics[name] + shift for name in LOG_Z_SHIFTED_METRICS},
        **partition,
        "log_z_replaced": metrics["log_z"],
        "log_z_replaced_temperatures": metrics.get("log_z_temperatures", float(recorded_temperatures)),
    }
    return (renormalised, per_image + shift), seconds + extra_seconds, True


def smoothed_curve_log_likelihood(
    model: nn.Module, guide: nn.Module, images: torch.Tensor, ais: tuple[int, int]
) -> dict[str, float]:
    """:func:`curve_log_likelihood` of a smoothed model in its binary limit (an RBM prior's log Z as at test),
    with the RBM's log Z (``valid_log_z``) and how much of the code the guide uses on the same images
    (``valid_active_units``, ``valid_units_on``: :mod:`benchmarks.latent_code`), so that a curve that
    turns down can be read against its prior and its code."""
    model_fn, guide_fn, partition = binary_limit_evaluation_pair(model, guide, *ais)
    point = curve_log_likelihood(model_fn, guide_fn, images)
    if "log_z" in partition:
        point["valid_log_z"] = partition["log_z"]
    code = usage(posterior_logits(guide, images))
    point.update(valid_active_units=code["active_units"], valid_units_on=code["units_on"])
    return point

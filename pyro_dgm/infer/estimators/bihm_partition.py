r"""The BiHM normaliser :math:`Z^2` (Eq. 7) and the likelihood :math:`\log p^*(x)` it gives.

BiHM's model is :math:`p^*(x,h) = \sqrt{p(x,h)\,q(x,h)}/Z` with :math:`q(x) = p^*(x)`,
so :math:`p^*(x) = \tilde p^*(x) / Z^2` (BiHM Eq. 1 and Sec. 3) and, summing Eq. 1
over x, :math:`Z^2 = \sum_x \tilde p^*(x)`. The unbiased estimator of Eq. 7 samples
the *model*:

.. math::

    Z^2 = \mathbb E_{(x,h) \sim p(x,h)}\Big[\sqrt{\tfrac{q(h \mid x)}{p(x,h)}}\;
          \mathbb E_{h' \sim q(h' \mid x)} \sqrt{\tfrac{p(x,h')}{q(h' \mid x)}}\Big]
    \simeq \frac{1}{K_o}\sum_{j=1}^{K_o} t_j, \quad
    t_j = \sqrt{\tfrac{q(h_j \mid x_j)}{p(x_j,h_j)}}\;\frac{1}{K_i}\sum_{i=1}^{K_i}
          \sqrt{\tfrac{p(x_j,h'_{ij})}{q(h'_{ij} \mid x_j)}} ,

unbiased for every :math:`K_i` because the inner mean is an unbiased estimate of
:math:`\sqrt{\tilde p^*(x_j)}`, independent of the outer factor given :math:`x_j`.
:math:`\log \hat Z^2` is biased low by the concavity of the log (Sec. 3); its
standard error is the delta-method :math:`\mathrm{sd}(t)/(\sqrt{K_o}\,\hat Z^2)`.

Sampling :math:`(x, h) \sim p` needs the model to run without data: the model is
run under :func:`pyro.poutine.uncondition` with a placeholder batch of zeros shaped
like ``data_like``, so **the model may use its data argument only as the ``obs`` of
its observed site and for its leading size** (the plate size), and model and guide
take the data as their first positional argument: ``model(x, *args, **kwargs)``.
Every sigmoid belief net in :mod:`pyro_dgm.models` and the tests' ``TinySBN`` do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from pyro_dgm.infer.estimators.log_likelihood import (
    DEFAULT_CHUNK_SIZE,
    accumulate_log_weights,
    StreamingLogPowerSums,
    iter_chunks,
)
from pyro_dgm.infer.importance import (
    PARTICLE_PLATE_NAME,
    ImportanceWeightedObjective,
    WeightedParticles,
    log_mean_exp,
)
from pyro_dgm.infer.objectives.bihm import BHATTACHARYYA_POWER


@dataclass
class PartitionEstimate:
    r"""An estimate of :math:`\log Z^2` with its delta-method standard error.

    :ivar log_partition_squared: :math:`\log \hat Z^2`, a scalar tensor.
    :ivar standard_error: standard error of :math:`\log \hat Z^2` (delta method).
    :ivar num_outer: :math:`K_o`, samples (x, h) from the model.
    :ivar num_inner: :math:`K_i`, samples h' from the guide per outer sample.
    """

    log_partition_squared: torch.Tensor
    standard_error: torch.Tensor
    num_outer: int
    num_inner: int

    @classmethod
    def from_sums(cls, sums: StreamingLogPowerSums, num_inner: int) -> "PartitionEstimate":
        r"""From running :math:`\log \sum_j t_j^a`, :math:`a \in \{1, 2\}`, of the Eq. 7 terms.

        :math:`\log \hat Z^2 = \log \frac{1}{K_o} \sum_j t_j`; the standard error is the
        delta-method :math:`\mathrm{sd}(t) / (\sqrt{K_o}\,\hat Z^2)`, with the unbiased
        sample variance of :math:`t_j / \hat Z^2`.
        """
        num_outer = sums.count
        log_partition_squared = sums.log_mean(1.0)
        sum_squared_ratios = torch.exp(sums.log_sum(2.0) - 2 * log_partition_squared)
        relative_variance = (sum_squared_ratios - num_outer).clamp(min=0.0) / max(num_outer - 1, 1)
        return cls(
            log_partition_squared=log_partition_squared,
            standard_error=torch.sqrt(relative_variance / num_outer),
            num_outer=num_outer,
            num_inner=num_inner,
        )

    @property
    def partition_squared(self) -> torch.Tensor:
        r""":math:`\hat Z^2`, an unbiased estimate of :math:`Z^2` (Eq. 7)."""
        return self.log_partition_squared.exp()

    @property
    def partition_squared_standard_error(self) -> torch.Tensor:
        r"""Standard error of :math:`\hat Z^2`: :math:`\mathrm{sd}(t)/\sqrt{K_o}`."""
        return self.standard_error * self.partition_squared


def _observed_site_name(trace: pyro.poutine.Trace, observed_site: str | None) -> str:
    unconditioned = [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and site["infer"].get("was_observed")
    ]
    if observed_site is not None:
        if observed_site not in unconditioned:
            raise ValueError(
                f"'{observed_site}' is not an observed site of the model "
                f"(observed sites: {unconditioned})"
            )
        return observed_site
    if len(unconditioned) != 1:
        raise ValueError(
            f"the model has observed sites {unconditioned}: pass observed_site= to name "
            "the one whose value is the data argument"
        )
    return unconditioned[0]


def _sample_model(
    model: Callable,
    guide: Callable,
    placeholder: torch.Tensor,
    args: tuple,
    kwargs: dict,
    max_plate_nesting: int,
    observed_site: str | None,
    data_plate: str | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw :math:`(x_j, h_j) \sim p` for each placeholder row; return them as data and
    :math:`\tfrac12[\log q(h_j \mid x_j) - \log p(x_j, h_j)]`, shape (n,).

    Both traces run inside a particle plate of size one, so that
    :meth:`WeightedParticles.from_traces` reduces them per data point exactly as it
    does for guide samples.
    """
    single_particle = pyro.plate(PARTICLE_PLATE_NAME, 1, dim=-max_plate_nesting)
    model_trace = poutine.trace(single_particle(poutine.uncondition(model))).get_trace(
        placeholder, *args, **kwargs
    )
    site = _observed_site_name(model_trace, observed_site)
    data = model_trace.nodes[site]["value"].reshape(placeholder.shape)
    guide_trace = poutine.trace(
        poutine.replay(single_particle(guide), trace=model_trace)
    ).get_trace(data, *args, **kwargs)
    model_trace = prune_subsample_sites(model_trace)
    guide_trace = prune_subsample_sites(guide_trace)
    model_trace.compute_log_prob()
    guide_trace.compute_log_prob()
    particles = WeightedParticles.from_traces(
        model_trace, guide_trace, max_plate_nesting, data_plate
    )
    return data, -BHATTACHARYYA_POWER * particles.log_weights[0]


def estimate_log_partition_squared(
    model: Callable,
    guide: Callable,
    data_like: torch.Tensor,
    *args,
    num_outer: int,
    num_inner: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    observed_site: str | None = None,
    data_plate: str | None = None,
    max_plate_nesting: float = float("inf"),
    progress: bool = False,
    **kwargs,
) -> PartitionEstimate:
    r"""Estimate :math:`\log Z^2` of a BiHM by Eq. 7, chunked over outer samples.

    :param data_like: a data batch (leading dim = data points) whose per-point shape,
        dtype and device the model samples take; its values are not used.
    :param int num_outer: :math:`K_o`, samples (x, h) from the model p.
    :param int num_inner: :math:`K_i`, samples h' from q(h'|x) per outer sample;
        BiHM Fig. 3 finds :math:`K_i = 1` the most efficient per sample.
    :param int chunk_size: outer samples per vectorised pass (each with
        :math:`K_i` inner particles).
    :param str observed_site: the model's site whose value is the data argument;
        needed only if the model has several observed sites.
    :param args, kwargs: further arguments of model and guide (after the data).

    Runs without autograd. Example::

        partition = estimate_log_partition_squared(
            model, guide, x_test, num_outer=10**6, chunk_size=10**4
        )
        partition.log_partition_squared, partition.standard_error
    """
    inner = ImportanceWeightedObjective(
        num_particles=num_inner, max_plate_nesting=max_plate_nesting, data_plate=data_plate
    )
    sums = StreamingLogPowerSums(powers=(1.0, 2.0))
    with torch.no_grad():
        for size in iter_chunks(num_outer, chunk_size, progress, "partition samples"):
            placeholder = data_like.new_zeros((size,) + tuple(data_like.shape[1:]))
            if inner.max_plate_nesting == float("inf"):
                inner._guess_max_plate_nesting(model, guide, (placeholder,) + args, kwargs)
            data, log_outer = _sample_model(  # log sqrt(q(h|x) / p(x,h)), Eq. 7
                model,
                guide,
                placeholder,
                args,
                kwargs,
                int(inner.max_plate_nesting),
                observed_site,
                data_plate,
            )
            inner_particles = inner.weighted_particles(model, guide, data, *args, **kwargs)
            inner_log_weights = BHATTACHARYYA_POWER * inner_particles.log_weights
            log_inner = log_mean_exp(inner_log_weights, dim=0)  # log mean sqrt(p/q), Eq. 7
            sums.update(log_outer + log_inner)
    return PartitionEstimate.from_sums(sums, num_inner)


@dataclass
class BiHMLogLikelihoodEstimate:
    r"""Per-data-point likelihood estimates of a BiHM from one set of guide samples.

    :ivar log_p_star: :math:`\log \hat p^*(x_b) = \log \hat{\tilde p}{}^*(x_b) - \log \hat Z^2`.
    :ivar log_bound: :math:`\log \hat{\tilde p}{}^*(x_b) = 2 \log \frac1K \sum_k \omega_k` (Eq. 4).
    :ivar log_p: :math:`\log \hat p(x_b)` of the top-down model alone (Eq. 5).
    :ivar effective_sample_size: ESS of the BiHM weights :math:`\omega = \sqrt{p/q}`.
    :ivar partition: the :math:`Z^2` estimate used.
    :ivar num_samples: K.
    """

    log_p_star: torch.Tensor
    log_bound: torch.Tensor
    log_p: torch.Tensor
    effective_sample_size: torch.Tensor
    partition: PartitionEstimate
    num_samples: int


def bihm_log_likelihood(
    model: Callable,
    guide: Callable,
    *args,
    partition: PartitionEstimate,
    num_samples: int = 1000,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    data_plate: str | None = None,
    max_plate_nesting: float = float("inf"),
    progress: bool = False,
    **kwargs,
) -> BiHMLogLikelihoodEstimate:
    r"""Estimate :math:`\log p^*(x_b)`, :math:`\log \tilde p^*(x_b)` and :math:`\log p(x_b)`.

    One set of K guide samples per data point gives Eq. 4 and Eq. 5 together; then
    :math:`\log p^*(x) = \log \tilde p^*(x) - \log Z^2` (Eq. 1) with ``partition``
    from :func:`estimate_log_partition_squared` (the same for every data point, so
    estimate it once). Runs without autograd, chunked like
    :func:`~pyro_dgm.infer.estimators.log_likelihood.log_likelihood`.
    """
    sums, _ = accumulate_log_weights(
        model,
        guide,
        *args,
        powers=(BHATTACHARYYA_POWER, 1.0),
        num_samples=num_samples,
        chunk_size=chunk_size,
        data_plate=data_plate,
        max_plate_nesting=max_plate_nesting,
        progress=progress,
        **kwargs,
    )
    log_bound = sums.log_mean(BHATTACHARYYA_POWER) / BHATTACHARYYA_POWER  # Eq. 4
    return BiHMLogLikelihoodEstimate(
        log_p_star=log_bound - partition.log_partition_squared,  # Eq. 1: p* = p~* / Z^2
        log_bound=log_bound,
        log_p=sums.log_mean(1.0),  # Eq. 5
        effective_sample_size=sums.effective_sample_size(BHATTACHARYYA_POWER),
        partition=partition,
        num_samples=num_samples,
    )


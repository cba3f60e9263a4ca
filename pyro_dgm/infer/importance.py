r"""Per-data-point importance weights from one vectorised model/guide trace pair.

Every importance-weighted objective in :mod:`pyro_dgm.infer` (BiHM, reweighted
wake-sleep, VIMCO, the IW log-likelihood) needs, for each particle
:math:`h_k \sim q(h \mid x_b)` and each data point :math:`x_b` of the minibatch,

.. math::

    \log p(x_b, h_{k,b}) \quad\text{and}\quad \log q(h_{k,b} \mid x_b),

i.e. the site log-densities summed over every dimension *except* the particle
dimension and the data plate. Pyro 1.9.2's :class:`~pyro.infer.ReweightedWakeSleep`
reshapes each site's log-density to ``(num_particles, -1)`` and sums the rest, data
plate included, which forms one weight per minibatch instead of one per data point
(Pyro issue #2220): the wrong estimator as soon as a minibatch holds more than one
data point. (:class:`~pyro.infer.RenyiELBO` keeps plates that every site shares, so
it does weigh data points separately; its problem for discrete guides is another:
``alpha=0`` gives non-reparameterised sites no gradient, issue #3289.)

:class:`ImportanceWeightedObjective` is the shared mechanism: it reuses Pyro's
particle vectorisation (:meth:`pyro.infer.ELBO._get_vectorized_trace`, an outermost
``pyro.plate`` over particles) and Pyro's trace machinery
(:func:`pyro.infer.enum.get_importance_trace`), and adds only the per-data-point
reduction (:class:`WeightedParticles`). Subclasses say what is different about them.

Minibatches: under ``pyro.plate("data", N, subsample_size=B)`` Pyro scales each
site's log-density by N/B. Weights are formed from the *unscaled* log-densities of
each data point, and the objective (a sum over data points) is multiplied by the
scale once, so the loss is an unbiased estimate of the full-data objective.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import pyro
import torch
from pyro.distributions.util import scale_and_mask
from pyro.infer import ELBO
from pyro.infer.enum import get_importance_trace
from pyro.infer.util import torch_item
from pyro.poutine import Trace

from pyro_dgm.infer.validation import check_guide_covers_model

PARTICLE_PLATE_NAME = "num_particles_vectorized"
"""Name of Pyro's particle plate (:meth:`pyro.infer.ELBO._vectorized_num_particles`)."""


def log_mean_exp(log_values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""Stable :math:`\log \frac{1}{K}\sum_k e^{a_k}` along ``dim`` (K = its size)."""
    return torch.logsumexp(log_values, dim=dim) - math.log(log_values.size(dim))


def effective_sample_size(log_weights: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""Kish's effective sample size :math:`(\sum_k w_k)^2 / \sum_k w_k^2` (BiHM Sec. 4.1).

    Computed in log space, :math:`\exp(2\,\mathrm{lse}(\log w) - \mathrm{lse}(2\log w))`,
    so it is exact for weights spanning hundreds of nats.
    """
    return torch.exp(
        2 * torch.logsumexp(log_weights, dim=dim) - torch.logsumexp(2 * log_weights, dim=dim)
    )


def _data_plate_frame(trace: Trace, guide_trace: Trace, data_plate: str | None):
    """The plate frame that indexes data points: named, or the one plate every site shares."""
    sites = [
        (name, site)
        for tr in (trace, guide_trace)
        for name, site in tr.nodes.items()
        if site["type"] == "sample"
    ]
    frames_per_site = [
        (
            name,
            {
                frame.name: frame
                for frame in site["cond_indep_stack"]
                if frame.vectorized and frame.name != PARTICLE_PLATE_NAME
            },
        )
        for name, site in sites
    ]
    if data_plate is not None:
        for name, frames in frames_per_site:
            if data_plate not in frames:
                raise ValueError(
                    f"site '{name}' lies outside the data plate '{data_plate}': "
                    "per-data-point importance weights need every sample site of "
                    "model and guide inside it (a global latent couples data points)"
                )
        return frames_per_site[0][1][data_plate]
    if not frames_per_site:
        return None
    shared = set(frames_per_site[0][1])
    for _, frames in frames_per_site[1:]:
        shared &= set(frames)
    if not shared:
        return None
    if len(shared) > 1:
        raise ValueError(
            f"every site lies in the plates {sorted(shared)}: pass data_plate= to say "
            "which one indexes data points"
        )
    return frames_per_site[0][1][shared.pop()]


def _per_datapoint_sum(
    site_log_prob: torch.Tensor, num_dims: int, data_dim: int | None
) -> torch.Tensor:
    """Sum a site's log-density over every batch dim but particles (first) and data."""
    padded = site_log_prob.reshape((1,) * (num_dims - site_log_prob.dim()) + site_log_prob.shape)
    keep = {0} if data_dim is None else {0, num_dims + data_dim}
    reduce = [d for d in range(num_dims) if d not in keep]
    summed = padded.sum(dim=reduce, keepdim=True) if reduce else padded  # sum(dim=[]) sums all
    return summed.reshape(summed.size(0), -1)


def _common_scale(traces: tuple[Trace, ...]):
    scales = [
        (name, site["scale"])
        for tr in traces
        for name, site in tr.nodes.items()
        if site["type"] == "sample"
    ]
    first_name, first = scales[0]
    for name, scale in scales[1:]:
        same = (
            scale == first
            if isinstance(scale, numbers.Number) and isinstance(first, numbers.Number)
            else torch.equal(torch.as_tensor(scale), torch.as_tensor(first))
        )
        if not same:
            raise ValueError(
                f"sites '{first_name}' and '{name}' carry different scales ({first} vs "
                f"{scale}): importance weights need one scale for the whole data "
                "point (subsample scaling is fine; poutine.scale on single sites is not)"
            )
    return first


@dataclass
class WeightedParticles:
    r"""Log-densities of K particles for each of B data points.

    ``model_log_prob[k, b]`` is :math:`\log p(x_b, h_{k,b})` and
    ``guide_log_prob[k, b]`` is :math:`\log q(h_{k,b} \mid x_b)`, both unscaled
    and differentiable w.r.t. the parameters; ``scale`` is the subsample scale N/B
    (1 without subsampling) that multiplies a sum over data points.
    """

    model_log_prob: torch.Tensor
    guide_log_prob: torch.Tensor
    scale: float | torch.Tensor
    model_trace: Trace
    guide_trace: Trace

    @property
    def log_weights(self) -> torch.Tensor:
        r"""log w[k, b] = log p(x_b, h_k) - log q(h_k | x_b), shape (K, B)."""
        return self.model_log_prob - self.guide_log_prob

    @classmethod
    def from_traces(
        cls,
        model_trace: Trace,
        guide_trace: Trace,
        max_plate_nesting: int,
        data_plate: str | None = None,
    ) -> "WeightedParticles":
        """Reduce traces (log-probs already computed) to per-particle, per-data-point sums.

        ``max_plate_nesting`` counts the particle plate, which sits at dim
        ``-max_plate_nesting``.
        """
        frame = _data_plate_frame(model_trace, guide_trace, data_plate)
        data_dim = None if frame is None else frame.dim
        totals = []
        for trace in (model_trace, guide_trace):
            total = 0.0
            for site in trace.nodes.values():
                if site["type"] != "sample":
                    continue
                log_prob = scale_and_mask(site["unscaled_log_prob"], 1.0, site["mask"])
                total = total + _per_datapoint_sum(log_prob, max_plate_nesting, data_dim)
            totals.append(total)
        model_log_prob, guide_log_prob = totals
        if not torch.is_tensor(guide_log_prob):  # a guide with no sample sites
            guide_log_prob = torch.zeros_like(model_log_prob)
        model_log_prob, guide_log_prob = torch.broadcast_tensors(model_log_prob, guide_log_prob)
        particles = cls(
            model_log_prob=model_log_prob,
            guide_log_prob=guide_log_prob,
            scale=_common_scale((model_trace, guide_trace)),
            model_trace=model_trace,
            guide_trace=guide_trace,
        )
        particles._check_finite()
        return particles

    def zero_density_sites(self) -> list[str]:
        """``side site 'name'`` for each site whose log-density is -inf for some particle and data point."""
        return [
            f"{side} site '{name}'"
            for trace, side in ((self.model_trace, "model"), (self.guide_trace, "guide"))
            for name, site in trace.nodes.items()
            if site["type"] == "sample" and torch.isneginf(site["unscaled_log_prob"]).any()
        ]

    def _check_finite(self) -> None:
        if not torch.isnan(self.log_weights).any():
            return
        for trace, side in ((self.model_trace, "model"), (self.guide_trace, "guide")):
            for name, site in trace.nodes.items():
                if site["type"] == "sample" and torch.isnan(site["unscaled_log_prob"]).any():
                    raise ValueError(f"NaN log-density at {side} site '{name}'")
        raise ValueError("NaN importance weight")


class ImportanceWeightedObjective(ELBO):
    """Base class of the objectives built on per-data-point importance weights.

    :param int num_particles: K, samples from the guide per data point.
    :param max_plate_nesting: as in :class:`pyro.infer.ELBO` (guessed if omitted).
    :param str data_plate: name of the plate that indexes data points; by default
        the one plate shared by every sample site (no shared plate: the whole
        model is one data point).
    :param bool detach_samples: treat the guide's samples as observed (no gradient
        through the sampler), as BiHM and RWS do; reparameterised objectives pass
        ``False``.

    Particles are always vectorised in a plate at dim ``-max_plate_nesting``, also
    for K = 1, so weights always have shape (K, B).
    """

    def __init__(
        self,
        num_particles: int = 10,
        max_plate_nesting: float = float("inf"),
        data_plate: str | None = None,
        detach_samples: bool = True,
    ) -> None:
        if not isinstance(num_particles, int) or num_particles < 1:
            raise ValueError(f"num_particles must be a positive integer, got {num_particles!r}")
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            vectorize_particles=True,
        )
        if num_particles == 1:  # pyro only reserves the particle dim for K > 1
            self.max_plate_nesting += 1
        self.data_plate = data_plate
        self.detach_samples = detach_samples

    def _guess_max_plate_nesting(self, model, guide, args, kwargs) -> None:
        super()._guess_max_plate_nesting(model, guide, args, kwargs)
        if self.num_particles == 1:
            self.max_plate_nesting += 1

    def _vectorized_num_particles(self, fn):
        return pyro.plate(PARTICLE_PLATE_NAME, self.num_particles, dim=-self.max_plate_nesting)(
            fn
        )

    def _get_trace(self, model, guide, args, kwargs):
        model_trace, guide_trace = get_importance_trace(
            "flat", self.max_plate_nesting, model, guide, args, kwargs, detach=self.detach_samples
        )
        check_guide_covers_model(model_trace, guide_trace)
        return model_trace, guide_trace

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The loss as a tensor whose gradient is minus the objective's estimator.

        Each objective defines this one method; :meth:`loss` and :meth:`loss_and_grads`
        follow from it.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no differentiable_loss")

    def loss(self, model, guide, *args, **kwargs) -> float:
        """The value of :meth:`differentiable_loss`, computed without a graph."""
        with torch.no_grad():
            return torch_item(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """Accumulate the estimator into ``.grad`` (as minus a gradient, like Pyro's ELBOs); return the loss."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward()
        return torch_item(loss)

    def weighted_particles(self, model, guide, *args, **kwargs) -> WeightedParticles:
        """Run guide then model once, K particles vectorised; reduce per data point."""
        if self.max_plate_nesting == float("inf"):
            self._guess_max_plate_nesting(model, guide, args, kwargs)
        model_trace, guide_trace = self._get_vectorized_trace(model, guide, args, kwargs)
        return WeightedParticles.from_traces(
            model_trace, guide_trace, int(self.max_plate_nesting), self.data_plate
        )

r"""The importance-weighted bound with relaxed Boltzmann priors: DVAE# and GumBolt.

DVAE# (Vahdat, Andriyash & Macready, NeurIPS 2018) and GumBolt (Khoshaman & Amin, NeurIPS
2018) replace the binary latent :math:`z` of an RBM-prior VAE by a continuous :math:`\zeta` with a
density on both sides, so that the K-sample importance-weighted bound (Burda et al. 2016) can be
trained by reparameterisation:

.. math::

    \mathcal L_K(x) = \mathbb E_{\zeta_{1:K} \sim q(\zeta \mid x)}
        \log \frac1K \sum_{k=1}^K w_k, \qquad
    \log w_k = \log p(x \mid \zeta_k) + \kappa\bigl[\log p(\zeta_k) - \log q(\zeta_k \mid x)\bigr],
    \tag{1}

with :math:`\kappa = 1` the bound (:math:`\mathcal L_K \le \log p(x)` of the relaxed model,
increasing in K) and :math:`\kappa < 1` the KL warm-up that the DVAE# experiments apply inside the
weights. The gradient is the reparameterisation gradient of the Monte Carlo estimate of (1),
:math:`\sum_k \tilde w_k \nabla \log w_k` with :math:`\tilde w = \mathrm{softmax}_k \log w`, where
:math:`\nabla \zeta_k` is the implicit gradient of the DVAE# smoothers
(:mod:`~pyro_dgm.distributions.implicit_smoothing`) or the pathwise one of the Gumbel relaxation.

:math:`\log Z`: the prior site is a
:class:`~pyro_dgm.distributions.relaxed_boltzmann.RelaxedBoltzmannPrior`, whose
``unnormalized_log_prob`` enters the weights; :math:`-\kappa\log Z` is the same in every weight,
so it leaves :math:`\tilde w` unchanged and is added once per data point, by
:class:`~pyro_dgm.infer.objectives.rbm_log_partition_term.RBMLogPartitionTerm`: value exact when the RBM is
enumerable (or the estimate it was built with; else omitted, i.e. 0, with a warning), gradient
from persistent chains (or exact).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.infer.util import is_validation_enabled
from pyro.poutine import Trace
from pyro.poutine.util import prune_subsample_sites
from pyro.util import check_model_guide_match, check_site_shape, warn_if_nan

from pyro_dgm.distributions.relaxed_boltzmann import RelaxedBoltzmannPrior
from pyro_dgm.infer.importance import ImportanceWeightedObjective, _data_plate_frame, _per_datapoint_sum, log_mean_exp
from pyro_dgm.infer.objectives.dvae_pp import plate_nesting_without_log_prob
from pyro_dgm.infer.objectives.rbm_log_partition_term import (
    DEFAULT_NUM_CHAINS,
    DEFAULT_NUM_SWEEPS,
    LogPartitionGradient,
    RBMLogPartitionTerm,
    WithRBMLogPartitions,
)
from pyro_dgm.infer.objectives.smoothed_latents import unwrap
from pyro_dgm.infer.validation import check_guide_covers_model

__all__ = ["DVAESharpELBO", "GumBoltELBO", "RelaxedWeights"]


@dataclass
class RelaxedWeights:
    r"""The warmed-up log-weights of (1) without :math:`\log Z`, and the :math:`\log Z` term.

    :ivar log_weights: :math:`\log w_{k,b} + \kappa \log Z`, shape (K, B), unscaled.
    :ivar log_partition: :math:`\sum_{\text{sites}} \kappa_s \log Z_s`, one number shared by
        every data point (value and gradient estimator of :class:`RBMLogPartitionTerm`).
    :ivar scale: the subsample scale N/B of the data plate.
    """

    log_weights: torch.Tensor
    log_partition: torch.Tensor | float
    scale: float | torch.Tensor

    def bound(self) -> torch.Tensor:
        r""":math:`\hat{\mathcal L}_K` per data point, shape (B,): :math:`\log \frac1K \sum_k w_k`."""
        return log_mean_exp(self.log_weights, dim=0) - self.log_partition


def _relative_scale(site: dict, data_scale: float | torch.Tensor) -> float | torch.Tensor:
    r""":math:`\kappa` of a site: its scale over the data sites' (KL warm-up multiplies latent sites only)."""
    scale = site["scale"]
    if isinstance(scale, numbers.Number) and isinstance(data_scale, numbers.Number):
        return scale / data_scale
    return torch.as_tensor(scale) / torch.as_tensor(data_scale)


def _data_scale(model_trace: Trace) -> float | torch.Tensor:
    """The scale of the observed sites (the subsample scale N/B); they must agree."""
    scales = [(name, site["scale"]) for name, site in model_trace.nodes.items() if site["type"] == "sample" and site["is_observed"]]
    if not scales:
        raise ValueError("the model has no observed site: the importance weights need log p(x | zeta)")
    first_name, first = scales[0]
    for name, scale in scales[1:]:
        if not torch.equal(torch.as_tensor(scale), torch.as_tensor(first)):
            raise ValueError(f"observed sites '{first_name}' and '{name}' carry different scales ({first} vs {scale})")
    return first


class DVAESharpELBO(WithRBMLogPartitions, ImportanceWeightedObjective):
    r"""The K-sample importance-weighted bound (1) of a model with a relaxed Boltzmann prior (DVAE#).

    **Model**: a :class:`~pyro_dgm.distributions.relaxed_boltzmann.RelaxedBoltzmannPrior` site
    over all of :math:`\zeta` (the overlapping relaxation with mean-field or exact
    :math:`\log Z(\zeta)`, or the Gaussian integral one), then sites that depend on
    :math:`\zeta`, then the observations. **Guide**: reparameterised sites only (the DVAE#
    smoothers' implicit gradients, Pyro's ``Normal``, ``Delta`` to assemble groups into the
    prior's site, ...). Every site inside one data plate (per-data-point weights, as in
    :mod:`pyro_dgm.infer.importance`).

    **KL warm-up** (DVAE#): latent sites scaled by :math:`\kappa` relative to the observed ones
    (``poutine.scale``; the models' ``kl_weight``) enter the weights multiplied by
    :math:`\kappa`, as in (1). At :math:`\kappa = 1` the loss is :math:`-\hat{\mathcal L}_K`.

    **K = 1** is the single-sample ELBO of the relaxed model, which DVAE# trains for K = 1.

    **Reported value**: :math:`-\sum_b \hat{\mathcal L}_K(x_b)`, times N/B under subsampling,
    with :math:`\log Z` exact, supplied or omitted (:attr:`log_partition_source`).

    :param int num_particles: K.
    :param max_plate_nesting: as in :class:`pyro.infer.ELBO`.
    :param str data_plate: the plate of data points (default: the one plate every site shares).
    :param int num_chains: persistent chains per RBM prior site.
    :param int num_sweeps: block-Gibbs sweeps of the chains per gradient step (DVAE# used 40
        sweeps of 1000 chains, or population annealing).
    :param str log_partition_gradient: ``"persistent"`` (PCD, any RBM) or ``"exact"``.

    Example::

        svi = SVI(model, guide, Adam({"lr": 3e-3}), DVAESharpELBO(num_particles=5))

    References: A. Vahdat, E. Andriyash, W. G. Macready, "DVAE#: Discrete Variational
    Autoencoders with Relaxed Boltzmann Priors", NeurIPS 2018; Y. Burda, R. Grosse,
    R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
    """

    def __init__(
        self,
        num_particles: int = 1,
        max_plate_nesting: float = float("inf"),
        data_plate: str | None = None,
        *,
        num_chains: int = DEFAULT_NUM_CHAINS,
        num_sweeps: int = DEFAULT_NUM_SWEEPS,
        log_partition_gradient: LogPartitionGradient = "persistent",
    ) -> None:
        super().__init__(num_particles, max_plate_nesting, data_plate, detach_samples=False)
        self.log_partitions = RBMLogPartitionTerm(num_chains, num_sweeps, log_partition_gradient)

    # ----- traces ---------------------------------------------------------------------

    def _guess_max_plate_nesting(self, model, guide, args, kwargs) -> None:
        # the particle plate is always vectorised (ImportanceWeightedObjective), also for K = 1
        self.max_plate_nesting = plate_nesting_without_log_prob(model, guide, args, kwargs) + 1

    def _get_trace(self, model: Callable, guide: Callable, args, kwargs) -> tuple[Trace, Trace]:
        """Guide trace and replayed model trace; relaxed prior sites get ``unnormalized_log_prob``."""
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        if is_validation_enabled():
            check_model_guide_match(model_trace, guide_trace, self.max_plate_nesting)
        guide_trace, model_trace = prune_subsample_sites(guide_trace), prune_subsample_sites(model_trace)
        check_guide_covers_model(model_trace, guide_trace)
        for name, site in guide_trace.nodes.items():
            if site["type"] == "sample" and not site["fn"].has_rsample:
                raise NotImplementedError(
                    f"guide site '{name}' ({type(unwrap(site['fn'])).__name__}) is not reparameterised: "
                    f"{type(self).__name__} trains by the reparameterisation gradient only"
                )
        relaxed = self._relaxed_sites(model_trace)
        model_trace.compute_log_prob(site_filter=lambda name, site: name not in relaxed)
        for name in relaxed:
            site = model_trace.nodes[name]
            unnormalized = unwrap(site["fn"]).unnormalized_log_prob(site["value"])
            site["unscaled_log_prob"] = unnormalized.expand(site["fn"].batch_shape)
        guide_trace.compute_log_prob()
        if is_validation_enabled():
            for trace in (model_trace, guide_trace):
                for name, site in trace.nodes.items():
                    if site["type"] == "sample" and name not in relaxed:
                        check_site_shape(site, self.max_plate_nesting)
        return model_trace, guide_trace

    @staticmethod
    def _relaxed_sites(model_trace: Trace) -> list[str]:
        return [
            name
            for name, site in model_trace.nodes.items()
            if site["type"] == "sample" and not site["is_observed"] and isinstance(unwrap(site["fn"]), RelaxedBoltzmannPrior)
        ]

    # ----- weights and loss -----------------------------------------------------------

    def relaxed_weights(self, model: Callable, guide: Callable, *args, **kwargs) -> RelaxedWeights:
        r"""One vectorised pass: the (K, B) log-weights of (1) and the :math:`\log Z` term.

        Steps the persistent chains (for the gradient of :math:`\log Z`) only when autograd is on.
        """
        if self.max_plate_nesting == float("inf"):
            self._guess_max_plate_nesting(model, guide, args, kwargs)
        model_trace, guide_trace = self._get_vectorized_trace(model, guide, args, kwargs)
        max_plate_nesting = int(self.max_plate_nesting)
        frame = _data_plate_frame(model_trace, guide_trace, self.data_plate)
        data_dim = None if frame is None else frame.dim
        data_scale = _data_scale(model_trace)
        totals = []
        for trace in (model_trace, guide_trace):
            total = 0.0
            for name, site in trace.nodes.items():
                if site["type"] != "sample":
                    continue
                log_prob = scale_and_mask(site["unscaled_log_prob"], 1.0, site["mask"])
                kappa = _relative_scale(site, data_scale)
                total = total + kappa * _per_datapoint_sum(log_prob, max_plate_nesting, data_dim)
            totals.append(total)
        log_partition = 0.0
        for name in self._relaxed_sites(model_trace):
            site = model_trace.nodes[name]
            term = self.log_partitions(name, unwrap(site["fn"]).rbm, sample_chains=torch.is_grad_enabled())
            log_partition = log_partition + _relative_scale(site, data_scale) * term
        log_weights = totals[0] - totals[1]
        if torch.isnan(log_weights).any():
            for trace, side in ((model_trace, "model"), (guide_trace, "guide")):
                for name, site in trace.nodes.items():
                    if site["type"] == "sample" and torch.isnan(site["unscaled_log_prob"]).any():
                        raise ValueError(f"NaN log-density at {side} site '{name}'")
        return RelaxedWeights(log_weights, log_partition, data_scale)

    def differentiable_loss(self, model: Callable, guide: Callable, *args, **kwargs) -> torch.Tensor:
        r""":math:`-\frac{N}{B}\sum_b \hat{\mathcal L}_K(x_b)`; its gradient is minus the estimator of (1)."""
        weights = self.relaxed_weights(model, guide, *args, **kwargs)
        loss = -weights.scale * weights.bound().sum()
        warn_if_nan(loss, "loss")
        return loss


class GumBoltELBO(DVAESharpELBO):
    r"""GumBolt's importance-weighted objective (Khoshaman & Amin 2018): (1) with GumBolt's proxy densities.

    The model's prior site is a :class:`~pyro_dgm.distributions.gumbolt.GumBoltPrior`,
    :math:`\log\tilde p(\zeta) = -E(\zeta) - \log Z`, and the guide draws binary-Concrete
    :math:`\zeta` scored by :class:`~pyro_dgm.distributions.gumbolt.GumBoltPosterior`,
    :math:`\log\tilde q(\zeta \mid x) = \sum_i \zeta_i\log q_i + (1 - \zeta_i)\log(1 - q_i)`:

    .. math::

        \mathcal L_K^{\mathrm{GB}}(x) = \mathbb E \log \frac1K \sum_k
            \exp\bigl(\log p(x \mid \zeta_k) - E(\zeta_k) - \log Z - \log \tilde q(\zeta_k \mid x)\bigr).

    Everything else (warm-up, :math:`\log Z`, gradient) is :class:`DVAESharpELBO`'s. Neither
    proxy is normalised, so this is not a bound on the relaxed model's likelihood; it tends to the
    discrete K-sample bound as the temperature goes to 0 (``docs/objectives/dvae_sharp.md``).

    Reference: A. H. Khoshaman, M. H. Amin, "GumBolt: Extending Gumbel trick to Boltzmann
    priors", NeurIPS 2018.
    """

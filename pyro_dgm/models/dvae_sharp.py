r"""DVAE# and GumBolt: an RBM prior relaxed to a density over :math:`\zeta`, trained with importance weights.

The generative model is the DVAE++ one (:class:`~pyro_dgm.models.dvae.DiscreteVAE`) with the binary
:math:`z` integrated out (DVAE# Sec. 3):

.. math::

    p(\zeta)\, p(x \mid \zeta), \qquad p(\zeta) = \text{a relaxation of } p(z) = e^{-E(z)}/Z,

one site ``"z"`` holding :math:`\zeta` over all :math:`n_1 + n_2` units (:data:`RELAXATIONS`):

* ``"overlapping"`` — :math:`\sum_z p(z)\, r(\zeta \mid z)` with a DVAE# smoother (``power`` by
  default, :math:`\beta = 40`), its :math:`\log Z(\zeta)` by mean field
  (:class:`~pyro_dgm.distributions.relaxed_boltzmann.OverlappingRelaxedRBM`);
* ``"gaussian_integral"`` — the Gaussian integral trick
  (:class:`~pyro_dgm.distributions.relaxed_boltzmann.GaussianIntegralRelaxedRBM`), :math:`\lambda =
  \max(\lambda_0, \sigma_{\max}(W) + 5)`; the guide's smoother is the overlapping logistic (support
  :math:`\mathbb R`, tails heavier than the prior's Gaussians, so the weights stay bounded);
* ``"gumbolt"`` — GumBolt's proxy :math:`-E(\zeta) - \log Z`
  (:class:`~pyro_dgm.distributions.gumbolt.GumBoltPrior`), guide
  :class:`~pyro_dgm.distributions.gumbolt.GumBoltPosterior` at temperature :math:`1/\beta`.

The guide draws each group :math:`\zeta_j` from :math:`q(\zeta_j \mid x, \zeta_{<j})` (hierarchical, DVAE
Eq. 10, or factorial) and assembles them at ``"z"`` with a ``Delta`` site, so the pair's weights
are :math:`p(x \mid \zeta)\, p(\zeta) / \prod_j q(\zeta_j \mid \cdot)`. Train with
:class:`~pyro_dgm.infer.objectives.dvae_sharp.DVAESharpELBO` (``GumBoltELBO`` for ``"gumbolt"``); evaluate in
the binary limit (:func:`~pyro_dgm.models.dvae_base.binary_limit_pair`): there ``"z"`` is the RBM
itself and the guide's groups are Bernoulli, DVAE#'s evaluation in the discrete model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_dgm.distributions import RBM
from pyro_dgm.distributions.gumbolt import GumBoltPosterior, GumBoltPrior
from pyro_dgm.distributions.relaxed_boltzmann import (
    DEFAULT_MEAN_FIELD_ITERATIONS,
    GaussianIntegralRelaxedRBM,
    OverlappingRelaxedRBM,
    RelaxedBoltzmannPrior,
    minimum_gaussian_shift,
)
from pyro_dgm.models.dvae import DEFAULT_NUM_UNITS, PRIOR_SITE, DiscreteVAE
from pyro_dgm.models.dvae_guides import FactorialSmoothedGuide, HierarchicalSmoothedGuide, SmoothedGuide
from pyro_dgm.models.dvae_layout import LatentLayout, broadcast_cat
from pyro_dgm.models.dvae_smoothing import BINARY_LIMIT, DEFAULT_BETA, Smoothing
from pyro_dgm.models.plates import check_latent_value

__all__ = [
    "GumbelRelaxation",
    "RELAXATIONS",
    "RelaxedBoltzmannVAE",
    "build_dvae_sharp",
    "build_gumbolt",
]

RELAXATIONS = ("overlapping", "gaussian_integral", "gumbolt")
"""The relaxations of the RBM prior (module docstring)."""

PAPER_BETAS = {"power": 40.0, "uniform_exponential": 40.0, "overlapping_exponential": 12.0}
r"""DVAE#'s :math:`\beta` per smoother for the MNIST one-layer linear model (its code's defaults)."""

GAUSSIAN_INTEGRAL_GUIDE_BETA = 10.0
r"""Inverse scale of the logistic guide for the Gaussian integral relaxation: a logistic of scale
:math:`1/\beta` has standard deviation :math:`\pi/(\sqrt3\beta) \approx 0.18`, that of
:math:`\mathcal N(z, A^{-1})` at :math:`\lambda = 30` (our choice; DVAE#'s shifted-Gaussian posterior is
not implemented)."""

GAUSSIAN_SHIFT_FLOOR = 40.0
r""":math:`\lambda_0`, the floor of the shift :math:`\lambda` (DVAE#'s MNIST one-layer linear setting)."""

GAUSSIAN_SHIFT_MARGIN = 5.0
r"""Smallest eigenvalue kept for :math:`A = \mathbf W + \lambda I` (DVAE#'s margin)."""

GUMBOLT_BETA = 2.0
r"""Default inverse temperature :math:`1/\tau` of GumBolt's relaxation: :math:`\tau = 0.5`. Our choice: the
paper's value was not available to us (``docs/objectives/dvae_sharp.md``)."""


@dataclass(frozen=True)
class GumbelRelaxation:
    r"""GumBolt's posterior family at inverse temperature :math:`\beta = 1/\tau`; the ``Smoothing`` interface of the guides.

    ``GumbelRelaxation(beta)(logits)`` is :class:`~pyro_dgm.distributions.gumbolt.GumBoltPosterior`;
    ``.at(beta, binary_limit)`` as :meth:`~pyro_dgm.models.dvae_smoothing.Smoothing.at`.
    """

    beta: float = GUMBOLT_BETA
    name: str = "gumbel"

    def __post_init__(self) -> None:
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not 0 < self.beta < math.inf:
            raise ValueError(f"beta (GumBolt's inverse temperature) must be a positive finite number, got {self.beta!r}")

    def at(self, beta: float | None = None, binary_limit: bool = False) -> GumbelRelaxation | Smoothing:
        if binary_limit:
            return Smoothing(BINARY_LIMIT)
        return self if beta is None else replace(self, beta=float(beta))

    def __call__(self, logits: torch.Tensor) -> GumBoltPosterior:
        return GumBoltPosterior(torch.as_tensor(1 / self.beta, dtype=logits.dtype, device=logits.device), logits=logits)


def _without_binary_sites(layout: LatentLayout) -> LatentLayout:
    """The layout with :math:`z` integrated out: the groups smooth no binary site."""
    return replace(layout, groups=tuple(replace(group, binary_site=None) for group in layout.groups))


class RelaxedBoltzmannVAE(DiscreteVAE):
    r"""A VAE whose RBM prior is relaxed to a density over :math:`\zeta` (DVAE#, GumBolt); site ``"z"`` holds :math:`\zeta`.

    Args:
        data_dim, num_units1, num_units2, num_groups, group_sizes, hidden_sizes, name: as
            :class:`~pyro_dgm.models.dvae.DiscreteVAE` (no continuous layers).
        relaxation: one of :data:`RELAXATIONS`.
        smoother: the smoothing family of ``"overlapping"`` (and of its guide); ignored otherwise.
        beta: the smoother's :math:`\beta` (``"overlapping"``; default :data:`PAPER_BETAS`), the
            logistic guide's (``"gaussian_integral"``) or :math:`1/\tau` (``"gumbolt"``).
        mean_field_iterations: mean-field sweeps of ``"overlapping"``.
        gaussian_shift: :math:`\lambda_0` of ``"gaussian_integral"``.

    Example:
        >>> model = RelaxedBoltzmannVAE(784, 8, 8)
        >>> model.relaxation, model.smoothing.name, model.smoothing.beta
        ('overlapping', 'power', 40.0)
    """

    def __init__(
        self,
        data_dim: int,
        num_units1: int = DEFAULT_NUM_UNITS,
        num_units2: int = DEFAULT_NUM_UNITS,
        *,
        relaxation: str = "overlapping",
        smoother: str = "power",
        beta: float | None = None,
        num_groups: int = 2,
        group_sizes: Sequence[int] | None = None,
        hidden_sizes: Sequence[int] = (),
        mean_field_iterations: int = DEFAULT_MEAN_FIELD_ITERATIONS,
        gaussian_shift: float = GAUSSIAN_SHIFT_FLOOR,
        name: str = "dvae_sharp",
    ) -> None:
        if relaxation not in RELAXATIONS:
            raise ValueError(f"unknown relaxation {relaxation!r}; choose one of: {', '.join(RELAXATIONS)}")
        family, family_beta = guide_smoothing(relaxation, smoother, beta)
        super().__init__(
            data_dim, num_units1, num_units2, smoother=family, beta=family_beta, num_groups=num_groups,
            group_sizes=group_sizes, hidden_sizes=hidden_sizes, name=name,
        )
        self.layout = _without_binary_sites(self.layout)
        if relaxation == "gumbolt":
            self.smoothing = GumbelRelaxation(GUMBOLT_BETA if beta is None else beta)
        self.relaxation = relaxation
        self.mean_field_iterations = mean_field_iterations
        self.gaussian_shift = gaussian_shift

    def relaxed_prior(self, smoothing: Smoothing | GumbelRelaxation, rbm: RBM) -> RelaxedBoltzmannPrior:
        r""":math:`p(\zeta)` of this step (``smoothing`` carries the step's :math:`\beta`)."""
        if self.relaxation == "overlapping":
            smoother = smoothing(torch.zeros(rbm.num_units1 + rbm.num_units2, dtype=rbm.bias1.dtype, device=rbm.bias1.device))
            return OverlappingRelaxedRBM(rbm, smoother, num_iterations=self.mean_field_iterations)
        if self.relaxation == "gaussian_integral":
            shift = torch.clamp(minimum_gaussian_shift(rbm.weight, GAUSSIAN_SHIFT_MARGIN), min=self.gaussian_shift)
            return GaussianIntegralRelaxedRBM(rbm, shift)
        return GumBoltPrior(rbm)

    def sample_smoothed(self, smoothing, batch_size: int, log_partition: torch.Tensor | float | None) -> list[torch.Tensor]:
        rbm = self.prior(log_partition)
        is_binary = isinstance(smoothing, Smoothing) and smoothing.name == BINARY_LIMIT
        zeta = pyro.sample(PRIOR_SITE, rbm if is_binary else self.relaxed_prior(smoothing, rbm))
        check_latent_value(PRIOR_SITE, zeta, batch_size, self.num_units1 + self.num_units2)
        return [zeta]


def guide_smoothing(relaxation: str, smoother: str, beta: float | None) -> tuple[str, float | None]:
    """The smoothing family and beta that the guide's groups use (GumBolt's is set on the modules afterwards)."""
    if relaxation == "overlapping":
        return smoother, PAPER_BETAS.get(smoother, DEFAULT_BETA) if beta is None else beta
    if relaxation == "gaussian_integral":
        return "overlapping_logistic", GAUSSIAN_INTEGRAL_GUIDE_BETA if beta is None else beta
    return BINARY_LIMIT, None  # placeholder family without beta; replaced by GumbelRelaxation


class _AssembledRelaxedGuide(SmoothedGuide):
    r"""Mixin before a guide class that provides ``group_logits``. Draw each group :math:`\zeta_j \sim q(\zeta_j \mid \cdot)`, then put :math:`[\zeta_1, \dots, \zeta_k]` at the prior's site by a ``Delta``."""

    def _sample_latents(self, x: torch.Tensor, smoothing, batch_size: int) -> dict[str, torch.Tensor]:
        latents: dict[str, torch.Tensor] = {}
        zetas: list[torch.Tensor] = []
        for group, logits in zip(self.layout.groups, self.group_logits(x, zetas)):
            # guide-only sites: Pyro's auxiliary convention (their log q enters the weights)
            zeta = latents[group.site] = pyro.sample(group.site, smoothing(logits).to_event(1), infer={"is_auxiliary": True})
            check_latent_value(group.site, zeta, batch_size, group.size)
            zetas.append(zeta)
        latents[PRIOR_SITE] = pyro.sample(PRIOR_SITE, dist.Delta(broadcast_cat(zetas), event_dim=1))
        return latents


class RelaxedHierarchicalGuide(_AssembledRelaxedGuide, HierarchicalSmoothedGuide):
    r"""Group :math:`j` from :math:`(x, \zeta_{<j})` (DVAE Eq. 10), assembled at ``"z"``."""


class RelaxedFactorialGuide(_AssembledRelaxedGuide, FactorialSmoothedGuide):
    r"""All groups from :math:`x`, assembled at ``"z"``."""


RELAXED_GUIDES = {"hierarchical": RelaxedHierarchicalGuide, "factorial": RelaxedFactorialGuide}
"""The guides by name (the CLI's ``--guide``)."""


def build_dvae_sharp(
    data_dim: int,
    num_units1: int = DEFAULT_NUM_UNITS,
    num_units2: int = DEFAULT_NUM_UNITS,
    *,
    relaxation: str = "overlapping",
    smoother: str = "power",
    beta: float | None = None,
    num_groups: int = 2,
    hidden_sizes: Sequence[int] = (),
    guide: str = "hierarchical",
    guide_hidden_sizes: Sequence[int] | None = None,
    **model_options,
) -> tuple[RelaxedBoltzmannVAE, nn.Module]:
    r"""A DVAE# (power smoother, mean-field relaxed RBM by default) and its guide, sharing one relaxation.

    :returns: ``(model, guide)``; train with :class:`~pyro_dgm.infer.objectives.dvae_sharp.DVAESharpELBO`,
        evaluate with :func:`~pyro_dgm.models.dvae_base.binary_limit_pair`.

    Example::

        model, guide = build_dvae_sharp(784, 100, 100)
        svi = SVI(model, guide, Adam({"lr": 3e-3}), DVAESharpELBO(num_particles=5))
    """
    if guide not in RELAXED_GUIDES:
        raise ValueError(f"unknown guide {guide!r}; choose one of: {', '.join(RELAXED_GUIDES)}")
    model = RelaxedBoltzmannVAE(
        data_dim, num_units1, num_units2, relaxation=relaxation, smoother=smoother, beta=beta,
        num_groups=num_groups, hidden_sizes=hidden_sizes, **model_options,
    )
    family, family_beta = guide_smoothing(relaxation, smoother, beta)
    guide_module = RELAXED_GUIDES[guide](
        model.layout, smoother=family, beta=family_beta,
        hidden_sizes=hidden_sizes if guide_hidden_sizes is None else guide_hidden_sizes,
        name=f"{model.name}_guide",
    )
    guide_module.smoothing = model.smoothing  # one relaxation for both programs
    return model, guide_module


def build_gumbolt(data_dim: int, num_units1: int = DEFAULT_NUM_UNITS, num_units2: int = DEFAULT_NUM_UNITS, **kwargs) -> tuple[RelaxedBoltzmannVAE, nn.Module]:
    r"""GumBolt: :func:`build_dvae_sharp` with ``relaxation="gumbolt"``; train with :class:`~pyro_dgm.infer.objectives.dvae_sharp.GumBoltELBO`."""
    kwargs.setdefault("name", "gumbolt")
    return build_dvae_sharp(data_dim, num_units1, num_units2, relaxation="gumbolt", **kwargs)

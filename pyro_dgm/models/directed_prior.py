r"""DVAE++ with a directed factorial Bernoulli prior: the joint and marginal pairs of Fig. 2(c-f).

With :math:`L` layers of binary units (DVAE++ Sec. 4 shows :math:`L = 1, 2`), each
conditioned on the *smoothed* earlier layers,

.. math::

    p(z, \zeta) = \prod_{l=1}^{L} p(z_l \mid \zeta_{<l})\, r(\zeta_l \mid z_l), \qquad
    p(z_l \mid \zeta_{<l}) = \prod_i \mathcal B\bigl(z_{l,i} \mid \sigma(f_l(\zeta_{<l}))_i\bigr),

(:math:`f_1` a learned bias), followed by the continuous layers and decoder of
:class:`~pyro_dgm.models.dvae_base.SmoothedVAE`. Two ways to write it, chosen by ``elbo``:

* ``"joint"`` — the :math:`(z, \zeta)` model of Fig. 2(c), sites ``"z1"``, ``"zeta1"``
  (marked ``infer=smooths("z1")``), ``"z2"``, ``"zeta2"``, ...; with the guide of Fig. 2(d)
  its ELBO is DVAE++ Eq. (4). Train with
  :class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO` (closed-form Bernoulli KLs) or
  :class:`~pyro.infer.Trace_ELBO` (same bound, score-function term for :math:`z`).
* ``"marginal"`` — :math:`z` summed out of both programs (Fig. 2e-f):
  :math:`\zeta_l \sim p(\zeta_l \mid \zeta_{<l}) = \sum_{z_l} r(\zeta_l \mid z_l)\,
  p(z_l \mid \zeta_{<l})`, the smoother's marginal with the prior's logits, sites
  ``"zeta1"``, ``"zeta2"``, ... only. Its ELBO is Eq. (5), which is tighter than Eq. (4)
  (DVAE++ App. D); :class:`~pyro.infer.Trace_ELBO` estimates it (Monte Carlo KL, all
  sites reparameterised).

Both describe the same :math:`p(x)`; the same guide classes serve both (they read
:attr:`layout`, which has binary sites only for ``"joint"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_dgm.distributions.smoothing_marks import smooths
from pyro_dgm.models.dvae_base import SmoothedVAE
from pyro_dgm.models.dvae_guides import with_guide
from pyro_dgm.models.dvae_layout import GroupSpec, LatentLayout, broadcast_cat, check_sizes, smoothed_site_name
from pyro_dgm.models.dvae_smoothing import DEFAULT_BETA, Smoothing
from pyro_dgm.models.plates import check_latent_value
from pyro_dgm.nn.bernoulli_layer import BernoulliLayer, FactorialBernoulli

ELBOS = ("joint", "marginal")
"""``"joint"``: DVAE++ Eq. (4), Fig. 2(c-d); ``"marginal"``: Eq. (5), Fig. 2(e-f)."""

DEFAULT_LAYER_SIZES = (16, 16)
"""Two layers of 16 units: DVAE++ Table 2's two-layer directed model, scaled down."""


def binary_site_name(layer: int) -> str:
    """Site of the binary layer :math:`z_l` (1-based) of a directed prior: ``z1``, ``z2``, ..."""
    return f"z{layer}"


def directed_layout(
    data_dim: int, layer_sizes: Sequence[int], elbo: str = "joint", continuous_sizes: Sequence[int] = ()
) -> LatentLayout:
    """Sites of a directed prior: group ``zeta{l}`` smooths all of ``z{l}`` (no binary sites if ``"marginal"``)."""
    if elbo not in ELBOS:
        raise ValueError(f"elbo must be one of {ELBOS}, got {elbo!r}")
    check_sizes("data_dim", (data_dim,))
    sizes = check_sizes("layer_sizes", layer_sizes, allow_empty=False)
    groups = tuple(
        GroupSpec(smoothed_site_name(l), size, binary_site_name(l) if elbo == "joint" else None)
        for l, size in enumerate(sizes, start=1)
    )
    return LatentLayout(data_dim, groups, check_sizes("continuous_sizes", continuous_sizes))


class DirectedDiscreteVAE(SmoothedVAE):
    r"""A VAE with a directed factorial Bernoulli prior over smoothed binary layers (DVAE++ Sec. 4).

    Args:
        data_dim: :math:`D`.
        layer_sizes: :math:`(n_1, \dots, n_L)`, the binary layers top-down.
        elbo: ``"joint"`` (Eq. 4) or ``"marginal"`` (Eq. 5): which pair the model writes.
        smoother, beta: the smoothing family and default :math:`\beta`.
        hidden_sizes: tanh hidden layers of the prior's conditionals :math:`f_l`, the
            continuous layers and the decoder.
        continuous_sizes: Gaussian layers below the binary ones (none by default).
        name: prefix of the parameters in Pyro's param store.

    Example:
        >>> DirectedDiscreteVAE(784, (8, 8), elbo="marginal").layout.binary_sites
        {}
    """

    def __init__(
        self,
        data_dim: int,
        layer_sizes: Sequence[int] = DEFAULT_LAYER_SIZES,
        *,
        elbo: str = "joint",
        smoother: str = "overlapping_exponential",
        beta: float | None = DEFAULT_BETA,
        hidden_sizes: Sequence[int] = (),
        continuous_sizes: Sequence[int] = (),
        name: str = "directed_dvae",
    ) -> None:
        layout = directed_layout(data_dim, layer_sizes, elbo, continuous_sizes)
        super().__init__(layout, Smoothing.named(smoother, beta), hidden_sizes, name)
        self.elbo = elbo
        sizes = layout.group_sizes
        self.top_prior = FactorialBernoulli(sizes[0])  # p(z_1)
        # conditional_priors[l - 2] is p(z_l | zeta_<l), l >= 2
        self.conditional_priors = nn.ModuleList(
            BernoulliLayer(sum(sizes[:l]), size, self.hidden_sizes) for l, size in enumerate(sizes[1:], start=1)
        )

    def prior_logits(self, zetas: list[torch.Tensor]) -> torch.Tensor:
        r""":math:`f_l(\zeta_{<l})`, the logits of :math:`p(z_l = 1 \mid \zeta_{<l})` for :math:`l = ` ``len(zetas) + 1``."""
        if not zetas:
            return self.top_prior.bias
        return self.conditional_priors[len(zetas) - 1].logits(broadcast_cat(zetas))

    def sample_smoothed(
        self, smoothing: Smoothing, batch_size: int, log_partition: torch.Tensor | float | None
    ) -> list[torch.Tensor]:
        if log_partition is not None:
            raise ValueError("log_partition is for RBM priors; a directed prior is normalised")
        zetas: list[torch.Tensor] = []
        for group in self.layout.groups:
            logits = self.prior_logits(zetas)
            if group.binary_site is None:  # Fig. 2(e): zeta_l ~ sum_z r(zeta_l | z) p(z | zeta_<l)
                zeta = pyro.sample(group.site, smoothing(logits).to_event(1))
            else:  # Fig. 2(c): z_l ~ p(z_l | zeta_<l), zeta_l ~ r(zeta_l | z_l)
                z = pyro.sample(group.binary_site, dist.Bernoulli(logits=logits).to_event(1))
                check_latent_value(group.binary_site, z, batch_size, group.size)
                zeta = pyro.sample(
                    group.site, smoothing.conditional(z).to_event(1), infer=smooths(group.binary_site)
                )
            check_latent_value(group.site, zeta, batch_size, group.size)
            zetas.append(zeta)
        return zetas


def build_directed_dvae(
    data_dim: int,
    layer_sizes: Sequence[int] = DEFAULT_LAYER_SIZES,
    *,
    elbo: str = "joint",
    smoother: str = "overlapping_exponential",
    beta: float | None = DEFAULT_BETA,
    hidden_sizes: Sequence[int] = (),
    continuous_sizes: Sequence[int] = (),
    guide: str = "hierarchical",
    guide_hidden_sizes: Sequence[int] | None = None,
) -> tuple[DirectedDiscreteVAE, nn.Module]:
    r"""A directed-prior model (DVAE++ Fig. 2c-f) and its guide.

    :param elbo: ``"joint"`` — train with ``DVAEPlusPlusELBO`` (Eq. 4, closed-form KL) or
        ``Trace_ELBO``; ``"marginal"`` — train with ``Trace_ELBO`` (Eq. 5).
    :param guide: ``"hierarchical"`` (Fig. 2d/f: :math:`q(z_2 \mid x, \zeta_1)`) or ``"factorial"``.
    :returns: ``(model, guide)``.
    """
    model = DirectedDiscreteVAE(
        data_dim,
        layer_sizes,
        elbo=elbo,
        smoother=smoother,
        beta=beta,
        hidden_sizes=hidden_sizes,
        continuous_sizes=continuous_sizes,
    )
    return with_guide(model, guide, smoother, beta, hidden_sizes, guide_hidden_sizes)

r"""Guides for the DVAE/DVAE++ models: swappable approximating posteriors built from a layout.

Every guide samples, in this order, the sites of a
:class:`~pyro_dgm.models.dvae_layout.LatentLayout`:

1. each group's :math:`\zeta_j` from the *marginal* smoother (DVAE++ Eq. 2),
   :math:`q(\zeta_j \mid \cdot) = \sum_{z_j} q(z_j \mid \cdot)\, r(\zeta_j \mid z_j)`,
   reparameterised through its inverse CDF (DVAE Eq. 8);
2. each binary site from the smoothers' posteriors :math:`\nu_j = q(z_j = 1 \mid \cdot,
   \zeta_j)` (DVAE++ Sec. 5), concatenated in unit order, so that the pair's joint density
   is :math:`\prod_j q(z_j \mid \cdot)\, r(\zeta_j \mid z_j)` (DVAE Eq. 10); none when the
   model sums :math:`z` out;
3. each Gaussian layer :math:`q(\mathfrak z_m \mid x, \zeta, \mathfrak z_{<m})`, in the
   prior's order (DVAE Sec. 4, Eq. 13).

They differ only in the logits of :math:`q(z_j = 1 \mid \cdot)`:

* :class:`FactorialSmoothedGuide` — all groups from :math:`x` by one network;
* :class:`HierarchicalSmoothedGuide` — group :math:`j` from :math:`(x, \zeta_{<j})`,
  DVAE Eq. (10) / DVAE++ Fig. 2d.

Any function that samples the same sites with the model's smoother and :math:`\beta` and
takes the model's arguments drops in; the DVAE objectives name the site of a mismatch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_dgm.models.dvae_layout import LatentLayout, broadcast_cat, check_sizes, continuous_site_name, kl_scale
from pyro_dgm.models.dvae_smoothing import DEFAULT_BETA, Smoothing
from pyro_dgm.models.param_store import register_module
from pyro_dgm.models.plates import check_data, check_latent_value, data_plate
from pyro_dgm.nn.bernoulli_layer import BernoulliLayer
from pyro_dgm.nn.encoders import NormalLayer


class SmoothedGuide(nn.Module):
    r"""Shared plumbing: data check, plate, KL scale, the smoothed, binary and Gaussian sites.

    Subclasses implement :meth:`group_logits`.

    Args:
        layout: the model's ``layout``.
        smoother, beta: the model's smoothing family and default :math:`\beta` (they must match).
        hidden_sizes: tanh hidden layers of every network of the guide.
        name: prefix of the parameters in Pyro's param store.
    """

    def __init__(
        self,
        layout: LatentLayout,
        smoother: str = "overlapping_exponential",
        beta: float | None = DEFAULT_BETA,
        hidden_sizes: Sequence[int] = (),
        name: str = "dvae_guide",
    ) -> None:
        super().__init__()
        self.layout = layout
        self.smoothing = Smoothing.named(smoother, beta)
        self.hidden_sizes = check_sizes("hidden_sizes", hidden_sizes)
        self.name = name
        context = layout.data_dim + layout.num_smoothed_units
        sizes = layout.continuous_sizes
        # continuous_posteriors[m] is q(frak z_{m+1} | x, zeta, frak z_{<=m})
        self.continuous_posteriors = nn.ModuleList(
            NormalLayer(context + sum(sizes[:m]), size, self.hidden_sizes) for m, size in enumerate(sizes)
        )

    def group_logits(self, x: torch.Tensor, zetas: list[torch.Tensor]) -> Iterator[torch.Tensor]:
        r"""Yield :math:`\mathrm{logit}\, q(z_j = 1 \mid \cdot)` for :math:`j = 1, 2, \dots`.

        When group :math:`j`'s logits are requested, ``zetas`` holds :math:`\zeta_{<j}`.
        """
        raise NotImplementedError

    def forward(
        self,
        x: torch.Tensor,
        num_data: int | None = None,
        *,
        beta: float | None = None,
        kl_weight: float = 1.0,
        binary_limit: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Sample every latent site given ``x`` (shape (B, D)); returns them by site name."""
        batch_size = check_data(x, self.layout.data_dim, self)
        register_module(self.name, self)
        smoothing = self.smoothing.at(beta, binary_limit)
        with data_plate(batch_size, num_data, x.device), kl_scale(kl_weight):
            return self._sample_latents(x, smoothing, batch_size)

    def _sample_latents(self, x: torch.Tensor, smoothing: Smoothing, batch_size: int) -> dict[str, torch.Tensor]:
        latents: dict[str, torch.Tensor] = {}
        zetas: list[torch.Tensor] = []
        posterior_probs: list[torch.Tensor] = []
        for group, logits in zip(self.layout.groups, self.group_logits(x, zetas)):
            q = smoothing(logits)  # q(zeta_j | x, zeta_<j), DVAE++ Eq. (2)
            zeta = latents[group.site] = pyro.sample(group.site, q.to_event(1))
            check_latent_value(group.site, zeta, batch_size, group.size)
            zetas.append(zeta)
            posterior_probs.append(q.posterior_probs(zeta))  # nu_j, DVAE++ Sec. 5
        for site, indices in self.layout.binary_sites.items():
            nu = broadcast_cat([posterior_probs[index] for index in indices])
            latents[site] = pyro.sample(site, dist.Bernoulli(probs=nu).to_event(1))
        continuous: list[torch.Tensor] = []
        for m, posterior in enumerate(self.continuous_posteriors, start=1):
            name = continuous_site_name(m)
            value = latents[name] = pyro.sample(name, posterior(broadcast_cat([x, *zetas, *continuous])))
            continuous.append(value)
        return latents


class FactorialSmoothedGuide(SmoothedGuide):
    r"""All groups read off :math:`x` by one network: :math:`\prod_j q(z_j \mid x)\, r(\zeta_j \mid z_j)`.

    Example:
        >>> from pyro_dgm.models.dvae import DiscreteVAE
        >>> guide = FactorialSmoothedGuide(DiscreteVAE(784, 8, 8).layout)
        >>> guide(torch.zeros(3, 784))["z"].shape
        torch.Size([3, 16])
    """

    def __init__(
        self,
        layout: LatentLayout,
        smoother: str = "overlapping_exponential",
        beta: float | None = DEFAULT_BETA,
        hidden_sizes: Sequence[int] = (),
        name: str = "dvae_factorial_guide",
    ) -> None:
        super().__init__(layout, smoother, beta, hidden_sizes, name)
        self.network = BernoulliLayer(layout.data_dim, layout.num_smoothed_units, self.hidden_sizes)

    def group_logits(self, x: torch.Tensor, zetas: list[torch.Tensor]) -> Iterator[torch.Tensor]:
        yield from self.network.logits(x).split(self.layout.group_sizes, dim=-1)


class HierarchicalSmoothedGuide(SmoothedGuide):
    r"""Group :math:`j` conditioned on :math:`\zeta_{<j}`: :math:`\prod_j q(z_j \mid x, \zeta_{<j})\, r(\zeta_j \mid z_j)` (DVAE Eq. 10).

    One network per group reads :math:`[x, \zeta_1, \dots, \zeta_{j-1}]`.

    Example:
        >>> from pyro_dgm.models.dvae import DiscreteVAE
        >>> guide = HierarchicalSmoothedGuide(DiscreteVAE(784, 8, 8).layout)
        >>> guide(torch.zeros(3, 784))["zeta2"].shape
        torch.Size([3, 8])
    """

    def __init__(
        self,
        layout: LatentLayout,
        smoother: str = "overlapping_exponential",
        beta: float | None = DEFAULT_BETA,
        hidden_sizes: Sequence[int] = (),
        name: str = "dvae_hierarchical_guide",
    ) -> None:
        super().__init__(layout, smoother, beta, hidden_sizes, name)
        sizes = layout.group_sizes
        self.networks = nn.ModuleList(
            BernoulliLayer(layout.data_dim + sum(sizes[:j]), size, self.hidden_sizes)
            for j, size in enumerate(sizes)
        )

    def group_logits(self, x: torch.Tensor, zetas: list[torch.Tensor]) -> Iterator[torch.Tensor]:
        for network in self.networks:
            yield network.logits(broadcast_cat([x, *zetas]))


GUIDES: dict[str, type[SmoothedGuide]] = {
    "hierarchical": HierarchicalSmoothedGuide,
    "factorial": FactorialSmoothedGuide,
}
"""The guides by name (the CLI's ``--guide``)."""


def build_guide(
    kind: str,
    layout: LatentLayout,
    smoother: str = "overlapping_exponential",
    beta: float | None = DEFAULT_BETA,
    hidden_sizes: Sequence[int] = (),
) -> SmoothedGuide:
    """The guide ``kind`` (``"hierarchical"`` or ``"factorial"``) for ``layout``."""
    if kind not in GUIDES:
        raise ValueError(f"unknown guide {kind!r}; choose one of: {', '.join(GUIDES)}")
    return GUIDES[kind](layout, smoother=smoother, beta=beta, hidden_sizes=hidden_sizes)


def with_guide(
    model: nn.Module,
    kind: str,
    smoother: str,
    beta: float | None,
    hidden_sizes: Sequence[int],
    guide_hidden_sizes: Sequence[int] | None = None,
) -> tuple[nn.Module, SmoothedGuide]:
    """``(model, guide)``: the guide ``kind`` for ``model.layout``, with the model's smoother and beta.

    The guide's hidden layers are ``guide_hidden_sizes``, by default the model's ``hidden_sizes``.
    """
    guide = build_guide(
        kind,
        model.layout,
        smoother=smoother,
        beta=beta,
        hidden_sizes=hidden_sizes if guide_hidden_sizes is None else guide_hidden_sizes,
    )
    return model, guide

r"""The latent sites a DVAE/DVAE++ model and its guides agree on.

A model with smoothed binary latents (DVAE Sec. 2-4, DVAE++ Sec. 4-5) has, in
generative order,

* binary sites :math:`z` (one RBM site ``"z"``, or one factorial site per layer of a
  directed prior, ``"z1"``, ``"z2"``; none when :math:`z` is summed out, DVAE++ Fig. 2e-f),
* smoothed sites :math:`\zeta_1, \dots, \zeta_k` (``"zeta1"`` ...), one per *group* of
  the hierarchical posterior (DVAE Eq. 10), each smoothing some units of one binary site,
* continuous Gaussian layers :math:`\mathfrak z_1, \dots, \mathfrak z_M`
  (``"continuous1"`` ...) below the smoothed ones (DVAE Sec. 4, Eq. 13),
* the observation ``"x"``,

all in the data plate :func:`~pyro_dgm.models.plates.data_plate` with their unit dimension
as the event dimension. :class:`LatentLayout` records these names and sizes; a model
exposes it as ``model.layout`` and the guides of :mod:`pyro_dgm.models.dvae_guides` are
built from it, so any guide built from the same layout drops in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from pyro import poutine

from pyro_dgm.nn.se_resnet import broadcast_cat as _broadcast_cat

OBSERVED_SITE = "x"
"""Name of the observed site."""


def smoothed_site_name(group: int) -> str:
    r"""Site of :math:`\zeta_j`, the ``group``-th group (1-based): ``zeta1``, ``zeta2``, ..."""
    return f"zeta{group}"


def continuous_site_name(layer: int) -> str:
    r"""Site of the ``layer``-th continuous Gaussian layer :math:`\mathfrak z_m` (1-based)."""
    return f"continuous{layer}"


def check_sizes(name: str, sizes: Sequence[int], allow_empty: bool = True) -> tuple[int, ...]:
    """Validate a sequence of positive ints; ``ValueError`` naming the argument otherwise."""
    values = tuple(sizes) if isinstance(sizes, Sequence) and not isinstance(sizes, str) else None
    if (
        values is None
        or (not values and not allow_empty)
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in values)
    ):
        raise ValueError(f"{name} must be a sequence of positive ints, got {sizes!r}")
    return values


@dataclass(frozen=True)
class GroupSpec:
    r"""One group :math:`j` of smoothed units: site ``site`` holds :math:`\zeta_j`.

    :ivar site: the smoothed site's name.
    :ivar size: :math:`n_j`, its number of units.
    :ivar binary_site: the binary site it smooths, or ``None`` when :math:`z` is summed out.
    :ivar start: position of its first unit in ``binary_site``'s last dimension.
    """

    site: str
    size: int
    binary_site: str | None
    start: int = 0

    @property
    def units(self) -> slice:
        """Its units in ``binary_site``'s last dimension."""
        return slice(self.start, self.start + self.size)


@dataclass(frozen=True)
class LatentLayout:
    r"""The sites a model/guide pair shares: data size, smoothed groups, continuous layers.

    :ivar data_dim: :math:`D`, the size of a flattened observation.
    :ivar groups: the smoothed groups in the guide's (hierarchical) order.
    :ivar continuous_sizes: sizes of the Gaussian layers :math:`\mathfrak z_1 \dots \mathfrak z_M`.
    """

    data_dim: int
    groups: tuple[GroupSpec, ...]
    continuous_sizes: tuple[int, ...] = ()

    @property
    def group_sizes(self) -> list[int]:
        return [group.size for group in self.groups]

    @property
    def num_smoothed_units(self) -> int:
        r""":math:`\sum_j n_j`."""
        return sum(self.group_sizes)

    @property
    def binary_sites(self) -> dict[str, list[int]]:
        """Each binary site and the indices of its groups, in unit order."""
        sites: dict[str, list[int]] = {}
        for index, group in enumerate(self.groups):
            if group.binary_site is not None:
                sites.setdefault(group.binary_site, []).append(index)
        for name, indices in sites.items():
            indices.sort(key=lambda index: self.groups[index].start)
        return sites

    def binary_site_size(self, name: str) -> int:
        return sum(self.groups[index].size for index in self.binary_sites[name])


def broadcast_cat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate along the last dim after broadcasting the leading (particle, data) dims.

    The data ``x`` has shape (B, D) while latents drawn under a particle plate have
    shape (P, B, n); networks read ``cat(x, zeta)`` with ``x`` expanded to (P, B, D).
    """
    return _broadcast_cat(tensors, event_dims=1)


def check_kl_weight(kl_weight: float) -> None:
    """``kl_weight`` must be in (0, 1]: ``poutine.scale`` needs a positive scale."""
    if isinstance(kl_weight, bool) or not isinstance(kl_weight, (int, float)) or not 0 < kl_weight <= 1:
        raise ValueError(
            f"kl_weight must be a number in (0, 1] (the KL warm-up factor), got {kl_weight!r}"
        )


def kl_scale(kl_weight: float) -> poutine.messenger.Messenger:
    r"""``poutine.scale(scale=kl_weight)``: KL warm-up as Pyro writes it (Sønderby et al. 2016).

    Wrapping every latent site of the model *and* the guide multiplies each
    :math:`\log p(h) - \log q(h)` by :math:`w`, so an ELBO becomes
    :math:`\mathbb E_q[\log p(x \mid h)] - w\,\mathrm{KL}(q \,\|\, p)`. The observed site stays
    outside. :class:`~pyro.infer.Trace_ELBO` honours it through the sites' scales and
    :class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO` through the prior site's scale.
    """
    check_kl_weight(kl_weight)
    return poutine.scale(scale=float(kl_weight))

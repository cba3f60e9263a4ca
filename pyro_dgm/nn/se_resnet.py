r"""Residual blocks with squeeze-and-excitation (SE-ResNet), the building block of DVAE++.

DVAE++ (Vahdat et al. 2018, Sec. 6.2) builds every conditional of Fig. 3 from
"residual blocks": residual connections (He et al. 2016) with squeeze-and-excitation
(Hu et al. 2017). A block maps :math:`x \mapsto \mathrm{skip}(x) + \mathrm{SE}(f(x))`,

.. math::

    f(x) = \mathrm{conv}_{3\times3}(\phi(\mathrm{conv}_{3\times3}(\phi(x)))), \qquad
    \mathrm{SE}(u)_c = u_c \cdot \underbrace{\sigma\bigl(W_2\, \phi(W_1\, \bar u)\bigr)_c}_{g_c \in (0, 1)},
    \qquad \bar u_c = \tfrac{1}{HW} \textstyle\sum_{ij} u_{c,ij},

with :math:`\phi` the ELU (Clevert et al. 2015). ``resample="down"`` halves the
spatial size (stride-2 first convolution, strided 1x1 skip), ``"up"`` doubles it
(nearest-neighbour upsampling first, then the convolutions; upsampled 1x1 skip).

There is no batch normalisation: its statistics would couple the data points of a
batch (and the particles of Pyro's vectorised plate), so a model's log-density of one
data point would depend on the others and importance-weighted estimates would be
biased. Every module accepts any number of leading batch dims
(``(..., C, H, W)``), so particle dims pass straight through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

Resample = Literal["none", "down", "up"]

SE_REDUCTION = 4
"""Channels of the excitation MLP's hidden layer are ``channels // SE_REDUCTION`` (Hu et al. use 16 for wide nets)."""

MIN_SE_HIDDEN = 1
"""The excitation MLP keeps at least one hidden unit for very narrow blocks."""

RESAMPLE_FACTOR = 2
"""Down- and up-sampling blocks halve or double the height and width."""


def apply_to_images(network: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """Run a 2-d convolutional ``network`` on ``(..., C, H, W)``, any number of leading dims."""
    if images.dim() < 3:
        raise ValueError(f"images must have shape (..., C, H, W), got {tuple(images.shape)}")
    batch_shape = images.shape[:-3]
    output = network(images.reshape((-1,) + images.shape[-3:]))
    return output.reshape(batch_shape + output.shape[-3:])


def broadcast_cat(tensors: Sequence[torch.Tensor], event_dims: int) -> torch.Tensor:
    """Concatenate along the feature dim, broadcasting the leading (batch, particle) dims.

    :param tensors: each of shape ``(*batch_i, F_i, *rest)`` with ``event_dims - 1``
        trailing dims ``rest`` shared by all (1 for vectors, 3 for ``(C, H, W)`` maps).
    :returns: shape ``(*broadcast(batch_i), sum F_i, *rest)``.
    """
    batch_shape = torch.broadcast_shapes(*(tensor.shape[:-event_dims] for tensor in tensors))
    expanded = [tensor.expand(batch_shape + tensor.shape[-event_dims:]) for tensor in tensors]
    return torch.cat(expanded, dim=-event_dims)


class SqueezeExcitation(nn.Module):
    r"""Channel gating :math:`u_c \mapsto g_c(u)\, u_c`, :math:`g = \sigma(W_2 \phi(W_1 \bar u)) \in (0, 1)^C` (Hu et al. 2017).

    :param channels: C.
    :param reduction: hidden size of the excitation MLP is ``max(C // reduction, 1)``.
    """

    def __init__(self, channels: int, reduction: int = SE_REDUCTION) -> None:
        super().__init__()
        hidden = max(channels // reduction, MIN_SE_HIDDEN)
        self.excitation = nn.Sequential(
            nn.Linear(channels, hidden), nn.ELU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def gate(self, images: torch.Tensor) -> torch.Tensor:
        """The gates :math:`g \\in (0, 1)^C`, shape (N, C)."""
        squeezed = images.mean(dim=(-2, -1))  # the "squeeze": global average pooling
        return self.excitation(squeezed)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.gate(images)[..., None, None]


class SEResidualBlock(nn.Module):
    r"""One SE-ResNet block :math:`x \mapsto \mathrm{skip}(x) + \mathrm{SE}(f(x))` (DVAE++ Sec. 6.2).

    :param in_channels: channels of the input.
    :param out_channels: channels of the output.
    :param resample: ``"none"``, ``"down"`` (half the size) or ``"up"`` (twice the size).

    Example::

        >>> block = SEResidualBlock(3, 8, resample="down")
        >>> block(torch.zeros(2, 5, 3, 8, 8)).shape
        torch.Size([2, 5, 8, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, resample: Resample = "none") -> None:
        super().__init__()
        if resample not in ("none", "down", "up"):
            raise ValueError(f"resample must be 'none', 'down' or 'up', got {resample!r}")
        stride = RESAMPLE_FACTOR if resample == "down" else 1
        upsample = [nn.Upsample(scale_factor=RESAMPLE_FACTOR, mode="nearest")] if resample == "up" else []
        self.resample = resample
        self.residual = nn.Sequential(
            nn.ELU(),
            *upsample,
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
            nn.ELU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            SqueezeExcitation(out_channels),
        )
        if in_channels == out_channels and resample == "none":
            self.skip: nn.Module = nn.Identity()
        else:
            self.skip = nn.Sequential(*upsample, nn.Conv2d(in_channels, out_channels, 1, stride=stride))

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.skip(images) + self.residual(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return apply_to_images(self._forward, images)


def se_resnet(
    in_channels: int, out_channels: int, num_blocks: int, resample: Resample = "none"
) -> nn.Sequential:
    """``num_blocks`` SE-ResNet blocks; the first changes channels and resamples, the rest keep both."""
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 1:
        raise ValueError(f"num_blocks must be a positive int, got {num_blocks!r}")
    blocks = [SEResidualBlock(in_channels, out_channels, resample)]
    blocks += [SEResidualBlock(out_channels, out_channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)

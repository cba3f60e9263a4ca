r"""Networks of the convolutional DVAE++'s conditionals (Vahdat et al. 2018, Sec. 6.2, Fig. 3).

The encoder of the inference model (Fig. 3b):

"The encoder uses a series of downsampling residual blocks to extract convolutional
features from an input image [...] at different scales. The output of this network at
the highest level is fed to fully-connected networks that define
:math:`q(z_i \mid x, \zeta_{<i})` successively for all the global latent variables.
The feature maps at an intermediate scale are fed to another set of residual networks
that define :math:`q(h_j \mid x, \zeta, h_{<j})`."

:class:`ImageFeatures` is that downsampling SE-ResNet; :class:`GlobalPosteriorHeads`
turn its top features into each global group's parameters. :class:`LocalConditionals`
(residual networks per local group) and :class:`GlobalToMap` ("an upsampling network
to scale-up the global latent variables to the intermediate scale") serve both the
generative model (Fig. 3a) and the guide, each with its own weights. The Pyro sample
statements that use them are in :mod:`pyro_dgm.models.conv_dvae_pp`. Every network
accepts leading particle dims.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pyro_dgm.models.conv_decoder import COARSEST_SIDE
from pyro_dgm.nn.se_resnet import RESAMPLE_FACTOR, apply_to_images, broadcast_cat, se_resnet


def num_resampling_steps(from_side: int, to_side: int) -> int:
    """How many factor-2 resampling blocks lead from ``from_side`` to ``to_side`` (powers of two apart)."""
    steps = math.log2(max(from_side, to_side) / min(from_side, to_side))
    if steps != int(steps):
        raise ValueError(f"sides {from_side} and {to_side} are not a power of {RESAMPLE_FACTOR} apart")
    return int(steps)


def resampling_stack(channels: int, num_blocks: int, steps: int, resample: str) -> nn.Sequential:
    """``steps`` SE-ResNet stages of ``num_blocks`` blocks, each halving (or doubling) the side."""
    return nn.Sequential(*(se_resnet(channels, channels, num_blocks, resample) for _ in range(steps)))


class ImageFeatures(nn.Module):
    r"""Padded image ``(..., C, G, G)`` -> local features ``(..., F, R, R)`` and global features ``(..., D)``.

    A 3x3 stem, :math:`\log_2(G/R)` downsampling SE-ResNet stages to the local scale,
    then :math:`\log_2(R/4)` more to 4x4, flattened through a fully connected layer.
    """

    def __init__(
        self, image_channels: int, side: int, local_side: int, channels: int, num_blocks: int, global_features: int
    ) -> None:
        super().__init__()
        self.stem = nn.Conv2d(image_channels, channels, 3, padding=1)
        self.to_local = resampling_stack(channels, num_blocks, num_resampling_steps(side, local_side), "down")
        self.to_top = resampling_stack(
            channels, num_blocks, num_resampling_steps(local_side, COARSEST_SIDE), "down"
        )
        self.to_global = nn.Sequential(
            nn.ELU(), nn.Linear(channels * COARSEST_SIDE**2, global_features), nn.ELU()
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        local = apply_to_images(lambda batch: self.to_local(self.stem(batch)), images)
        top = apply_to_images(self.to_top, local)
        return local, self.to_global(top.flatten(-3))


class GlobalPosteriorHeads(nn.Module):
    r"""Fully connected :math:`[\text{features}, \zeta_{<g}] \mapsto` parameters of :math:`q(\cdot_g \mid x, \zeta_{<g})`.

    :param global_features: D, the encoder's top feature size.
    :param group_sizes: units of each group.
    :param parameters_per_unit: 1 (binary logits) or 2 (normal loc and scale).
    """

    def __init__(self, global_features: int, group_sizes: list[int], parameters_per_unit: int) -> None:
        super().__init__()
        previous = [sum(group_sizes[:index]) for index in range(len(group_sizes))]
        self.heads = nn.ModuleList(
            nn.Linear(global_features + before, size * parameters_per_unit)
            for before, size in zip(previous, group_sizes)
        )

    def forward(self, index: int, features: torch.Tensor, previous: list[torch.Tensor]) -> torch.Tensor:
        """Parameters of group ``index`` given the features and :math:`\\zeta_{<g}` (a list)."""
        return self.heads[index](broadcast_cat([features, *previous], event_dims=1))


class LocalConditionals(nn.Module):
    r"""SE-ResNets :math:`[\text{context}, h_{<j}] \mapsto` parameters of a local group, one per group.

    Used for the prior :math:`p(h_j \mid \zeta, h_{<j})` (context: :math:`\zeta`'s map)
    and the posterior :math:`q(h_j \mid x, \zeta, h_{<j})` (context: :math:`\zeta`'s
    map and the encoder's local features).

    :param context_channels: channels of the context map.
    :param latent_channels: c, channels of each local group.
    :param num_groups: J.
    :param channels: width of the SE-ResNet.
    :param num_blocks: its blocks.
    :param parameters_per_unit: 1 or 2.
    """

    def __init__(
        self,
        context_channels: int,
        latent_channels: int,
        num_groups: int,
        channels: int,
        num_blocks: int,
        parameters_per_unit: int,
    ) -> None:
        super().__init__()
        self.networks = nn.ModuleList(
            nn.Sequential(
                se_resnet(context_channels + index * latent_channels, channels, num_blocks),
                nn.ELU(),
                nn.Conv2d(channels, latent_channels * parameters_per_unit, 1),
            )
            for index in range(num_groups)
        )

    def forward(self, index: int, context: list[torch.Tensor], previous: list[torch.Tensor]) -> torch.Tensor:
        """Parameter map ``(..., k c, R, R)`` of group ``index`` (0-based)."""
        return apply_to_images(self.networks[index], broadcast_cat([*context, *previous], event_dims=3))


class GlobalToMap(nn.Module):
    r""":math:`\zeta \in \mathbb R^n \mapsto` a ``(F, R, R)`` map: linear to 4x4, then upsampling SE-ResNets (Sec. 6.2)."""

    def __init__(self, num_units: int, channels: int, local_side: int, num_blocks: int) -> None:
        super().__init__()
        self.channels = channels
        self.linear = nn.Linear(num_units, channels * COARSEST_SIDE**2)
        self.upsample = resampling_stack(
            channels, num_blocks, num_resampling_steps(COARSEST_SIDE, local_side), "up"
        )

    def forward(self, zeta: torch.Tensor) -> torch.Tensor:
        top = self.linear(zeta).unflatten(-1, (self.channels, COARSEST_SIDE, COARSEST_SIDE))
        return apply_to_images(self.upsample, top)

r"""The multi-scale conditional decoder of DVAE++ (Vahdat et al. 2018, Sec. 6.1, Fig. 3a).

The image likelihood is factorised over scales (Reed et al. 2017; Denton et al. 2015),

.. math::

    p(x \mid \zeta, h) = p(x_0 \mid \zeta, h) \prod_{i \ge 1} p(x_i \mid \zeta, h, x_{<i}),

where :math:`x_0` is the image subsampled to 4x4 and :math:`x_i` holds the pixels that
appear at scale :math:`4 \cdot 2^i` but at no coarser scale (the three new pixels of
every 2x2 cell), up to the full image. Every pixel belongs to exactly one group, so the
product is a normalised distribution over images; each factor is factorial over its
pixels (Bernoulli for binary images, a mixture of discretised logistics for 8-bit
colour, :mod:`pyro_dgm.distributions.discretized_logistic`).

**Image sizes.** The scales double from 4x4, so images live on a square grid of side
:math:`G = 4 \cdot 2^S`. A smaller image (MNIST's 28x28) is zero-padded to the next
such side (32x32), centred; the padding pixels are known and appear in no
likelihood term, so :math:`\log p(x)` is a density over the 784 real pixels only.
(Our choice: DVAE++'s App. G is not reproduced here, and cropping would lose pixels.)

The pixel groups are :class:`PixelPyramid`; :class:`MultiScaleDecoder` maps latent
features at the local-latent scale to the parameters of each group, the head of
scale :math:`i` seeing the latent features resampled to that scale and the image of
scale :math:`i - 1` upsampled (DVAE++ Sec. 6.2: "another upsampling residual
network"). With ``conditional=False`` it is the unconditional (factorial) decoder
DVAE++ uses for MNIST (Sec. 7.3): one group holding all pixels, one head at full scale.
"""

from __future__ import annotations

import math
from typing import Literal

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from pyro_dgm.distributions.discretized_logistic import DiscretizedLogisticMixture
from pyro_dgm.nn.se_resnet import RESAMPLE_FACTOR, apply_to_images, broadcast_cat, se_resnet

Likelihood = Literal["bernoulli", "discretized_logistic"]

COARSEST_SIDE = 4
"""Side of the coarsest scale :math:`x_0` (DVAE++ Sec. 6.1: 4x4)."""

LOGISTIC_PARAMETERS = 3
"""A mixture component has a logit, a location and a log-scale."""

LOGISTIC_LOC_OFFSET = 0.5
"""Locations are ``0.5 + output``, so a zero network output is mid-grey on [0, 1]."""

MIN_LOGISTIC_LOG_SCALE = -8.0
"""Floor on :math:`\\log s`: a bin is 1/255 wide, and :math:`s = e^{-8} \\approx 0.09` bins
already puts all mass in one bin; lower only overflows the gradients (PixelCNN++ uses
the same floor, -7 on their [-1, 1] scale)."""


def grid_side(height: int, width: int) -> int:
    """The smallest side :math:`4 \\cdot 2^S \\ge \\max(H, W)` (at least 4)."""
    longest = max(height, width, COARSEST_SIDE)
    return COARSEST_SIDE * 2 ** math.ceil(math.log2(longest / COARSEST_SIDE))


def scale_sides(side: int) -> list[int]:
    """Sides of all scales from 4 to ``side``: 4, 8, ..., side."""
    sides = [COARSEST_SIDE]
    while sides[-1] < side:
        sides.append(sides[-1] * RESAMPLE_FACTOR)
    return sides


class PixelPyramid(nn.Module):
    r"""The partition of an image's pixels into groups :math:`x_0, x_1, \dots` by scale.

    Group :math:`i` (side :math:`s_i`, stride :math:`G / s_i` on the padded grid) holds
    the real (not padding) pixels at positions divisible by its stride and not by the
    previous group's. For ``conditional=False`` there is one group with every pixel.
    Values of a group are laid out channel-major: shape ``(..., C * n_i)``.

    :param image_shape: (C, H, W) of the real images.
    :param conditional: one group per scale, or a single group.
    """

    def __init__(self, image_shape: tuple[int, int, int], conditional: bool = True) -> None:
        super().__init__()
        self.channels, self.height, self.width = image_shape
        self.side = grid_side(self.height, self.width)
        self.pad_top = (self.side - self.height) // 2
        self.pad_left = (self.side - self.width) // 2
        self.sides = scale_sides(self.side) if conditional else [self.side]
        rows = torch.arange(self.side).unsqueeze(-1)
        columns = torch.arange(self.side).unsqueeze(0)
        real = (
            (rows >= self.pad_top)
            & (rows < self.pad_top + self.height)
            & (columns >= self.pad_left)
            & (columns < self.pad_left + self.width)
        )
        covered = torch.zeros(self.side, self.side, dtype=torch.bool)
        for index, side in enumerate(self.sides):
            stride = self.side // side
            on_scale = (rows % stride == 0) & (columns % stride == 0)
            new = on_scale & ~covered & real
            covered |= on_scale
            grid_positions = new.flatten().nonzero().squeeze(-1)  # into the G x G grid
            scale_positions = (grid_positions // self.side // stride) * side + (grid_positions % self.side) // stride
            self.register_buffer(f"grid_positions{index}", grid_positions, persistent=False)
            self.register_buffer(f"scale_positions{index}", scale_positions, persistent=False)

    @property
    def num_groups(self) -> int:
        return len(self.sides)

    def group_size(self, index: int) -> int:
        """Number of values (pixels x channels) in group ``index``."""
        return self.channels * self.grid_positions(index).numel()

    def grid_positions(self, index: int) -> torch.Tensor:
        """Flat positions of group ``index``'s pixels in the padded G x G grid."""
        return getattr(self, f"grid_positions{index}")

    def scale_positions(self, index: int) -> torch.Tensor:
        """Flat positions of group ``index``'s pixels in its own :math:`s_i \\times s_i` grid."""
        return getattr(self, f"scale_positions{index}")

    def pad(self, images: torch.Tensor) -> torch.Tensor:
        """``(..., C, H, W)`` -> ``(..., C, G, G)``, zeros around the image."""
        bottom = self.side - self.height - self.pad_top
        right = self.side - self.width - self.pad_left
        return F.pad(images, (self.pad_left, right, self.pad_top, bottom))

    def crop(self, canvas: torch.Tensor) -> torch.Tensor:
        """``(..., C, G, G)`` -> ``(..., C, H, W)``: the inverse of :meth:`pad`."""
        return canvas[..., self.pad_top : self.pad_top + self.height, self.pad_left : self.pad_left + self.width]

    def gather(self, canvas: torch.Tensor, index: int) -> torch.Tensor:
        """Group ``index``'s values in a padded ``(..., C, G, G)`` image, shape ``(..., C * n_i)``."""
        return canvas.flatten(-2)[..., self.grid_positions(index)].flatten(-2)

    def scatter(self, canvas: torch.Tensor, values: torch.Tensor, index: int) -> torch.Tensor:
        """Write group ``index``'s values ``(..., C * n_i)`` into a copy of ``canvas`` (..., C, G, G)."""
        batch_shape = torch.broadcast_shapes(canvas.shape[:-3], values.shape[:-1])
        flat = canvas.expand(batch_shape + canvas.shape[-3:]).flatten(-2).clone()
        positions = self.grid_positions(index)
        flat[..., positions] = values.expand(batch_shape + values.shape[-1:]).unflatten(-1, (self.channels, -1))
        return flat.unflatten(-1, (self.side, self.side))

    def gather_parameters(self, maps: torch.Tensor, index: int, num_parameters: int) -> torch.Tensor:
        """Per-value parameters of group ``index`` from a head's ``(..., C * P, s_i, s_i)`` output.

        :returns: shape ``(..., C * n_i, P)``, in the order of :meth:`gather`.
        """
        per_channel = maps.unflatten(-3, (self.channels, num_parameters)).flatten(-2)  # (..., C, P, s*s)
        selected = per_channel[..., self.scale_positions(index)]  # (..., C, P, n)
        return selected.transpose(-1, -2).flatten(-3, -2)

    def coarser_image(self, canvas: torch.Tensor, index: int) -> torch.Tensor:
        """The image at the scale before ``index``, upsampled to side :math:`s_i`, ``(..., C, s_i, s_i)``.

        Holds exactly the pixels of groups :math:`< i` (and padding zeros).
        """
        stride = self.side // self.sides[index - 1]
        coarse = canvas[..., ::stride, ::stride]
        return coarse.repeat_interleave(RESAMPLE_FACTOR, -2).repeat_interleave(RESAMPLE_FACTOR, -1)


def parameters_per_value(likelihood: Likelihood, num_mixtures: int) -> int:
    """Network outputs per pixel and channel: 1 logit, or 3 per mixture component."""
    return 1 if likelihood == "bernoulli" else LOGISTIC_PARAMETERS * num_mixtures


def pixel_distribution(parameters: torch.Tensor, likelihood: Likelihood) -> dist.TorchDistribution:
    """Factorial likelihood of a group's values from parameters ``(..., n, P)``; event shape (n,)."""
    if likelihood == "bernoulli":
        return dist.Bernoulli(logits=parameters.squeeze(-1)).to_event(1)
    logits, loc, log_scale = parameters.unflatten(-1, (LOGISTIC_PARAMETERS, -1)).unbind(-2)
    return DiscretizedLogisticMixture(
        logits, LOGISTIC_LOC_OFFSET + loc, log_scale.clamp(min=MIN_LOGISTIC_LOG_SCALE)
    ).to_event(1)


class MultiScaleDecoder(nn.Module):
    r"""Heads that give :math:`p(x_i \mid \zeta, h, x_{<i})` for every pixel group of a :class:`PixelPyramid`.

    From latent features at side :math:`R` (the local latents' scale): SE-ResNet
    upsampling blocks give features at :math:`2R, \dots, G`; average pooling gives
    those at sides below :math:`R`. The head of group :math:`i` is an SE-ResNet on
    [features at :math:`s_i`, coarser image upsampled] followed by a 1x1 convolution
    to the parameters.

    :param pyramid: the pixel groups.
    :param latent_side: R.
    :param channels: width of every feature map.
    :param num_blocks: SE-ResNet blocks per stage.
    :param likelihood: ``"bernoulli"`` or ``"discretized_logistic"``.
    :param num_mixtures: logistic components (ignored for Bernoulli).
    """

    def __init__(
        self,
        pyramid: PixelPyramid,
        latent_side: int,
        channels: int,
        num_blocks: int,
        likelihood: Likelihood,
        num_mixtures: int,
    ) -> None:
        super().__init__()
        self.pyramid = pyramid
        self.latent_side = latent_side
        self.likelihood = likelihood
        self.num_parameters = parameters_per_value(likelihood, num_mixtures)
        upsampling_steps = int(math.log2(pyramid.side // latent_side))
        self.upsampling = nn.ModuleList(
            se_resnet(channels, channels, num_blocks, resample="up") for _ in range(upsampling_steps)
        )
        image_channels = pyramid.channels
        self.heads = nn.ModuleList(
            nn.Sequential(
                se_resnet(channels + (image_channels if index > 0 else 0), channels, num_blocks),
                nn.ELU(),
                nn.Conv2d(channels, image_channels * self.num_parameters, 1),
            )
            for index in range(pyramid.num_groups)
        )

    def features_by_side(self, latent_features: torch.Tensor) -> dict[int, torch.Tensor]:
        """Latent features ``(..., F, R, R)`` resampled to every side the heads need."""
        features = {self.latent_side: latent_features}
        current = latent_features
        for block in self.upsampling:
            current = block(current)
            features[current.size(-1)] = current
        for side in self.pyramid.sides:
            if side < self.latent_side:
                pool = self.latent_side // side
                features[side] = apply_to_images(lambda maps: F.avg_pool2d(maps, pool), latent_features)
        return features

    def group_distribution(
        self, features: dict[int, torch.Tensor], canvas: torch.Tensor, index: int
    ) -> dist.TorchDistribution:
        r""":math:`p(x_i \mid \zeta, h, x_{<i})`, event shape (C * n_i,); ``canvas`` holds :math:`x_{<i}`."""
        inputs = features[self.pyramid.sides[index]]
        if index > 0:
            inputs = broadcast_cat([inputs, self.pyramid.coarser_image(canvas, index)], event_dims=3)
        maps = apply_to_images(self.heads[index], inputs)
        return pixel_distribution(self.pyramid.gather_parameters(maps, index, self.num_parameters), self.likelihood)

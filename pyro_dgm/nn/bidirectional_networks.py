r"""Ready-made bidirectional networks :math:`\mathbf N_\theta` (BVAE Algorithm 1) for flat images.

Each builder returns a :class:`~pyro_dgm.nn.bidirectional.BidirectionalSequential`
that maps flat pixels ``(N, data_dim)`` forward to hidden features
``(N, out_features)`` — ending in an activation, so the latent heads read
nonlinear features — and maps features back to flat pixel *pre-activations*
(logits) in reverse: the reverse pass ends in the transposed first layer with no
activation after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import nn

from pyro_dgm.nn.activations import GNoVa
from pyro_dgm.nn.bidirectional import (
    BidirectionalActivation,
    BidirectionalLinear,
    BidirectionalModule,
    BidirectionalReshape,
    BidirectionalSequential,
)
from pyro_dgm.nn.bidirectional_conv import BidirectionalConv2d, BidirectionalResBlock

MNIST_IMAGE_SHAPE = (1, 28, 28)
"""(channels, height, width) of an MNIST digit."""

DOWNSAMPLING_KERNEL = 4
DOWNSAMPLING_STRIDE = 2
DOWNSAMPLING_PADDING = 1
"""Kernel 4, stride 2, padding 1 halves an even side exactly and its transpose doubles it
back with no output padding (28 → 14 → 7 → 14 → 28)."""


def bidirectional_mlp(
    layer_sizes: Sequence[int], activation: Callable[[], nn.Module] = GNoVa
) -> BidirectionalSequential:
    """Fully connected bidirectional network ``layer_sizes[0] ↔ … ↔ layer_sizes[-1]``.

    Forward: ``a(W_L … a(W_1 x + b))``; reverse: ``W_1ᵀ a(… a(W_Lᵀ h + b'))``.

    :param layer_sizes: data dimension followed by the hidden widths (at least two sizes).
    :param activation: factory of the elementwise activation (default G-NoVa, BVAE Eq. 40).
    """
    sizes = list(layer_sizes)
    if len(sizes) < 2 or any(not isinstance(size, int) or size < 1 for size in sizes):
        raise ValueError(f"layer_sizes must hold at least two positive ints, got {layer_sizes!r}")
    layers: list[BidirectionalModule] = []
    for size_in, size_out in zip(sizes[:-1], sizes[1:]):
        layers += [BidirectionalLinear(size_in, size_out), BidirectionalActivation(activation())]
    return BidirectionalSequential(*layers)


def bidirectional_resnet(
    image_shape: Sequence[int] = MNIST_IMAGE_SHAPE,
    channels: Sequence[int] = (32, 64),
    hidden_channels: int = 32,
    num_blocks: int = 2,
    activation: Callable[[], nn.Module] = GNoVa,
) -> BidirectionalSequential:
    """Bidirectional residual network for flat images (BVAE Fig. 3c, scaled down).

    Forward: flat pixels → image → [Bi-Conv2d(k4, s2, p1), a] per entry of
    ``channels`` (each halves height and width) → ``num_blocks`` Bi-ResBlocks → a →
    flat features. The reverse pass runs it all back with transposed convolutions.

    :param image_shape: (C, H, W); H and W must be divisible by ``2 ** len(channels)``.
    :param channels: output channels of the downsampling Bi-Conv2d layers.
    :param hidden_channels: inner channels of each Bi-ResBlock.
    :param num_blocks: number of Bi-ResBlocks at the lowest resolution.
    :param activation: factory of the elementwise activation (default G-NoVa).
    """
    image_shape = tuple(image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    if not channels:
        raise ValueError("channels must name at least one convolution layer")
    in_channels, height, width = image_shape
    factor = DOWNSAMPLING_STRIDE ** len(channels)
    if height % factor or width % factor:
        raise ValueError(
            f"image_shape {image_shape}: height and width must be divisible by {factor} "
            f"for {len(channels)} stride-{DOWNSAMPLING_STRIDE} layers"
        )
    layers: list[BidirectionalModule] = [BidirectionalReshape((math.prod(image_shape),), image_shape)]
    for out_channels in channels:
        layers += [
            BidirectionalConv2d(
                in_channels,
                out_channels,
                DOWNSAMPLING_KERNEL,
                stride=DOWNSAMPLING_STRIDE,
                padding=DOWNSAMPLING_PADDING,
            ),
            BidirectionalActivation(activation()),
        ]
        in_channels = out_channels
    layers += [
        BidirectionalResBlock(in_channels, hidden_channels, activation=activation())
        for _ in range(num_blocks)
    ]
    feature_shape = (in_channels, height // factor, width // factor)
    layers += [
        BidirectionalActivation(activation()),
        BidirectionalReshape(feature_shape, (math.prod(feature_shape),)),
    ]
    return BidirectionalSequential(*layers)

r"""Bidirectional convolution (Bi-Conv2d) and the bidirectional residual block (Bi-ResBlock).

BVAE paper, Fig. 3a: "Convolution runs in the forward pass and convolution
transpose runs in reverse with the same set of convolution masks." With kernel
:math:`K` the forward pass is the linear map :math:`x \mapsto C_K x + b_f` and the
reverse pass is :math:`y \mapsto C_K^\top y + b_r`: ``conv_transpose2d`` with the
same weight tensor *is* the adjoint :math:`C_K^\top` of ``conv2d`` (it is the
gradient of the convolution with respect to its input), provided the transposed
convolution produces the forward input's size — which is what ``output_padding``
pins down when a stride maps several input sizes to one output size.

Fig. 3b: a residual block with bidirectional skip connections,

.. math::

    \text{forward: } y = x + C_2\,a(C_1\,a(x)), \qquad
    \text{reverse: } x = y + C_1^\top a(C_2^\top a(y)),

with a 3×3 convolution :math:`C_1` (channels → hidden) and a 1×1 convolution
:math:`C_2` (hidden → channels), the layout of the ResNet VAEs of Pythae that the
paper compares against. With identity activations and no biases the reverse pass
is :math:`I + C_1^\top C_2^\top = (I + C_2 C_1)^\top`, the adjoint of the forward pass.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from pyro_dgm.nn.activations import GNoVa
from pyro_dgm.nn.bidirectional import BidirectionalModule, init_like_torch

IMAGE_DIMS = 4
"""Bi-Conv2d takes batched images (N, C, H, W), like ``torch.nn.Conv2d``."""

RESBLOCK_KERNEL_SIZE = 3
"""Kernel of the Bi-ResBlock's first convolution (padding 1 keeps the spatial size)."""


def _as_pair(value: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


def _check_images(tensor: torch.Tensor, channels: int, argument: str, layer: str) -> None:
    if tensor.dim() != IMAGE_DIMS or tensor.size(1) != channels:
        raise ValueError(
            f"{layer}: {argument} must have shape (N, {channels}, H, W), got {tuple(tensor.shape)}"
        )


class BidirectionalConv2d(BidirectionalModule):
    r"""Bi-Conv2d (BVAE Fig. 3a): ``conv2d`` forward, ``conv_transpose2d`` with the same kernels in reverse.

    :param in_channels: channels of the forward input :math:`x`.
    :param out_channels: channels of the forward output :math:`y`.
    :param kernel_size, stride, padding: as in :class:`torch.nn.Conv2d`.
    :param output_padding: extra rows/columns the reverse pass adds on one side, as in
        :class:`torch.nn.ConvTranspose2d`; choose it so that ``reverse(forward(x))``
        has ``x``'s size (e.g. 1 for a 28×28 input with kernel 3, stride 2, padding 1).
    :param bias: learn the direction-specific biases ``forward_bias`` (out_channels)
        and ``reverse_bias`` (in_channels).

    ``weight`` has shape (out_channels, in_channels, kH, kW), which is the layout
    ``conv_transpose2d`` expects for a map from ``out_channels`` back to ``in_channels``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _as_pair(kernel_size)
        self.stride = _as_pair(stride)
        self.padding = _as_pair(padding)
        self.output_padding = _as_pair(output_padding)
        if any(extra >= step for extra, step in zip(self.output_padding, self.stride)):
            raise ValueError(
                f"output_padding {self.output_padding} must be smaller than stride {self.stride}"
            )
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.forward_bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reverse_bias = nn.Parameter(torch.empty(in_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        taps = self.kernel_size[0] * self.kernel_size[1]
        biases = (
            [
                (self.forward_bias, self.in_channels * taps),
                (self.reverse_bias, self.out_channels * taps),
            ]
            if self.forward_bias is not None
            else []
        )
        init_like_torch(self.weight, biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_channels, "x", type(self).__name__)
        return F.conv2d(x, self.weight, self.forward_bias, self.stride, self.padding)

    def reverse(self, y: torch.Tensor) -> torch.Tensor:
        _check_images(y, self.out_channels, "y", type(self).__name__)
        return F.conv_transpose2d(
            y, self.weight, self.reverse_bias, self.stride, self.padding, self.output_padding
        )

    def untie(self) -> tuple[nn.Conv2d, nn.ConvTranspose2d]:
        bias = self.forward_bias is not None
        shape = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        return (
            nn.Conv2d(self.in_channels, self.out_channels, bias=bias, **shape),
            nn.ConvTranspose2d(
                self.out_channels,
                self.in_channels,
                output_padding=self.output_padding,
                bias=bias,
                **shape,
            ),
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}, "
            f"bias={self.forward_bias is not None}"
        )


class Residual(nn.Module):
    """``x + body(x)``: the unidirectional residual block an untied Bi-ResBlock becomes."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class BidirectionalResBlock(BidirectionalModule):
    r"""Bi-ResBlock (BVAE Fig. 3b): :math:`y = x + C_2 a(C_1 a(x))`, reverse :math:`x = y + C_1^\top a(C_2^\top a(y))`.

    :param channels: channels in and out (the skip connection keeps them).
    :param hidden_channels: channels between the 3×3 and the 1×1 convolution.
    :param activation: elementwise activation ``a`` (default :class:`~pyro_dgm.nn.activations.GNoVa`).
    :param bias: biases in both convolutions.
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        activation: nn.Module | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.activation = GNoVa() if activation is None else activation
        self.conv_in = BidirectionalConv2d(
            channels, hidden_channels, RESBLOCK_KERNEL_SIZE, padding=RESBLOCK_KERNEL_SIZE // 2, bias=bias
        )
        self.conv_out = BidirectionalConv2d(hidden_channels, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels, "x", type(self).__name__)
        return x + self.conv_out(self.activation(self.conv_in(self.activation(x))))

    def reverse(self, y: torch.Tensor) -> torch.Tensor:
        _check_images(y, self.channels, "y", type(self).__name__)
        return y + self.conv_in.reverse(self.activation(self.conv_out.reverse(self.activation(y))))

    def untie(self) -> tuple[Residual, Residual]:
        conv_in_forward, conv_in_reverse = self.conv_in.untie()
        conv_out_forward, conv_out_reverse = self.conv_out.untie()
        act = self.activation
        return (
            Residual(nn.Sequential(copy.deepcopy(act), conv_in_forward, copy.deepcopy(act), conv_out_forward)),
            Residual(nn.Sequential(copy.deepcopy(act), conv_out_reverse, copy.deepcopy(act), conv_in_reverse)),
        )

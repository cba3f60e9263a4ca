r"""Bidirectional layers: one set of weights run forward (encode) and in reverse (decode).

Bidirectional backpropagation (Adigun & Kosko 2020; BVAE paper Sec. III, Fig. 2)
trains one network to map :math:`x \to y` on its *forward* pass and
:math:`y \to x` on its *backward* pass through the same synaptic web. A linear
layer with weight :math:`W` runs

.. math::

    \text{forward: } y = W x + b_f, \qquad \text{reverse: } x = W^\top y + b_r ,

with separate biases per direction (BVAE Fig. 3a; Algorithm 1 decodes with
:math:`\mathbf N_\theta^\top(\mathbf W_\theta^\top(z))`). Elementwise activations
act on the hidden layers in both directions; a stack runs its layers in order
forward and in the opposite order in reverse. Without biases and with identity
activations the reverse pass is therefore exactly the adjoint (transpose) of the
forward pass, :math:`\langle A x, y\rangle = \langle x, A^\top y\rangle`.

The reverse pass is called :meth:`BidirectionalModule.reverse` (not ``backward``,
which autograd owns). Every bidirectional module can also :meth:`~BidirectionalModule.untie`
itself into two ordinary, independently initialised modules of the same
architecture — the unidirectional twin used for comparison (BVAE Fig. 1a).

Layers take inputs with one leading batch dimension, like their ``torch.nn``
counterparts; the distribution-valued modules in :mod:`pyro_dgm.models.bvae`
flatten any extra particle/batch dimensions before calling them.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

KAIMING_UNIFORM_SLOPE = math.sqrt(5)
"""The ``a`` of ``torch.nn.Linear``/``Conv2d``'s default kaiming-uniform init, kept so that
a bidirectional layer and its untied twin start from the same weight distribution."""


def init_like_torch(weight: torch.Tensor, biases_and_fan_ins: Sequence[tuple[torch.Tensor, int]]) -> None:
    """Initialise as ``torch.nn.Linear``/``Conv2d`` do: kaiming-uniform weight, biases U(±1/√fan_in).

    Each bias gets the bound of the direction it belongs to (its own fan-in).
    """
    nn.init.kaiming_uniform_(weight, a=KAIMING_UNIFORM_SLOPE)
    for bias, fan_in in biases_and_fan_ins:
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(bias, -bound, bound)


class BidirectionalModule(nn.Module, ABC):
    """A map run forward (``forward(x) -> y``) and in reverse (``reverse(y) -> x``) with one set of weights."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The forward (encoding) pass."""

    @abstractmethod
    def reverse(self, y: torch.Tensor) -> torch.Tensor:
        """The backward (decoding) pass through the same weights."""

    @abstractmethod
    def untie(self) -> tuple[nn.Module, nn.Module]:
        """Two ordinary modules ``(forward_module, reverse_module)`` of the same architecture.

        They are freshly and independently initialised and share nothing with
        ``self`` or each other: the unidirectional twin (BVAE Fig. 1a).
        """


def _check_last_dim(tensor: torch.Tensor, size: int, argument: str, layer: str) -> None:
    if tensor.dim() < 1 or tensor.size(-1) != size:
        raise ValueError(
            f"{layer}: {argument} must have last dimension {size}, got shape {tuple(tensor.shape)}"
        )


class BidirectionalLinear(BidirectionalModule):
    r"""Linear layer with forward :math:`y = Wx + b_f` and reverse :math:`x = W^\top y + b_r`.

    :param in_features: size of :math:`x`.
    :param out_features: size of :math:`y`.
    :param bias: learn the two direction-specific biases :math:`b_f, b_r`.

    Parameters: ``weight`` (out, in), ``forward_bias`` (out), ``reverse_bias`` (in):
    ``in*out + in + out`` in total, against ``2*in*out + in + out`` for two
    ``nn.Linear`` layers.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.forward_bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reverse_bias = nn.Parameter(torch.empty(in_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        biases = (
            [(self.forward_bias, self.in_features), (self.reverse_bias, self.out_features)]
            if self.forward_bias is not None
            else []
        )
        init_like_torch(self.weight, biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_dim(x, self.in_features, "x", type(self).__name__)
        return F.linear(x, self.weight, self.forward_bias)

    def reverse(self, y: torch.Tensor) -> torch.Tensor:
        _check_last_dim(y, self.out_features, "y", type(self).__name__)
        return F.linear(y, self.weight.t(), self.reverse_bias)

    def untie(self) -> tuple[nn.Linear, nn.Linear]:
        bias = self.forward_bias is not None
        return (
            nn.Linear(self.in_features, self.out_features, bias=bias),
            nn.Linear(self.out_features, self.in_features, bias=bias),
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.forward_bias is not None}"
        )


class BidirectionalActivation(BidirectionalModule):
    """An elementwise activation applied to the hidden layer in both directions."""

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        if not isinstance(activation, nn.Module):
            raise TypeError(f"activation must be an nn.Module, got {type(activation).__name__}")
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x)

    def reverse(self, y: torch.Tensor) -> torch.Tensor:
        return self.activation(y)

    def untie(self) -> tuple[nn.Module, nn.Module]:
        return copy.deepcopy(self.activation), copy.deepcopy(self.activation)


class Reshape(nn.Module):
    """Reshape the trailing dimensions from ``in_shape`` to ``out_shape`` (leading dims kept)."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__()
        self.in_shape = torch.Size(in_shape)
        self.out_shape = torch.Size(out_shape)
        if self.in_shape.numel() != self.out_shape.numel():
            raise ValueError(
                f"in_shape {tuple(self.in_shape)} and out_shape {tuple(self.out_shape)} "
                "must hold the same number of elements"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trailing = len(self.in_shape)
        if x.dim() < trailing or x.shape[x.dim() - trailing :] != self.in_shape:
            raise ValueError(
                f"Reshape: x must end in shape {tuple(self.in_shape)}, got {tuple(x.shape)}"
            )
        return x.reshape(x.shape[: x.dim() - trailing] + self.out_shape)

    def extra_repr(self) -> str:
        return f"{tuple(self.in_shape)} -> {tuple(self.out_shape)}"


class BidirectionalReshape(BidirectionalModule):
    """Reshape ``in_shape -> out_shape`` forward and back in reverse (e.g. flat pixels ↔ images)."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__()
        self.forward_reshape = Reshape(in_shape, out_shape)
        self.reverse_reshape = Reshape(out_shape, in_shape)
        if len(self.forward_reshape.in_shape) == 1:
            self.in_features = self.forward_reshape.in_shape[0]
        if len(self.forward_reshape.out_shape) == 1:
            self.out_features = self.forward_reshape.out_shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_reshape(x)

    def reverse(self, y: torch.Tensor) -> torch.Tensor:
        return self.reverse_reshape(y)

    def untie(self) -> tuple[Reshape, Reshape]:
        return copy.deepcopy(self.forward_reshape), copy.deepcopy(self.reverse_reshape)


class BidirectionalSequential(BidirectionalModule):
    r"""Layers :math:`f_1, \dots, f_L` run as :math:`f_L \circ \dots \circ f_1` forward and
    :math:`f_1^{r} \circ \dots \circ f_L^{r}` in reverse.

    ``in_features``/``out_features`` are those of the first/last layer that
    declares them (linear layers, reshapes to or from a flat vector), if any.
    """

    def __init__(self, *layers: BidirectionalModule) -> None:
        super().__init__()
        for index, layer in enumerate(layers):
            if not isinstance(layer, BidirectionalModule):
                raise TypeError(
                    f"layer {index} must be a BidirectionalModule, got {type(layer).__name__}"
                )
        self.layers = nn.ModuleList(layers)
        in_sizes = [getattr(layer, "in_features", None) for layer in layers]
        out_sizes = [getattr(layer, "out_features", None) for layer in reversed(layers)]
        first_in = next((size for size in in_sizes if size is not None), None)
        last_out = next((size for size in out_sizes if size is not None), None)
        if first_in is not None:
            self.in_features = first_in
        if last_out is not None:
            self.out_features = last_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def reverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.reverse(y)
        return y

    def untie(self) -> tuple[nn.Sequential, nn.Sequential]:
        pairs = [layer.untie() for layer in self.layers]
        return (
            nn.Sequential(*(forward for forward, _ in pairs)),
            nn.Sequential(*(reverse for _, reverse in reversed(pairs))),
        )

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> BidirectionalModule:
        return self.layers[index]


class ReversePass(nn.Module):
    """View of a :class:`BidirectionalModule` whose ``forward`` is the module's reverse pass.

    Holds the module itself (no copy): parameters stay shared with every other
    user of that module, which is what makes the BVAE decoder the encoder's
    backward pass.
    """

    def __init__(self, module: BidirectionalModule) -> None:
        super().__init__()
        if not isinstance(module, BidirectionalModule):
            raise TypeError(f"module must be a BidirectionalModule, got {type(module).__name__}")
        self.module = module

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.module.reverse(y)

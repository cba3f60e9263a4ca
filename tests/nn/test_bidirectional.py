"""Bidirectional layers: exact directions, shared parameters, adjoint identities, shapes, G-NoVa."""

import math

import pytest
import torch
from torch import nn

from pyro_dgm.nn.activations import GNoVa
from pyro_dgm.nn.bidirectional import (
    BidirectionalActivation,
    BidirectionalLinear,
    BidirectionalReshape,
    BidirectionalSequential,
)
from pyro_dgm.nn.bidirectional_conv import BidirectionalConv2d, BidirectionalResBlock
from pyro_dgm.nn.bidirectional_networks import bidirectional_mlp, bidirectional_resnet

ADJOINT_RTOL = 1e-12
"""<Ax, y> = <x, Aᵀy> in float64: both sides sum ~10^3 products, rounding error ~1e-15 relative."""

FLOAT32_ATOL = 1e-5
"""Agreement of two float32 computations of the same small layer."""

SATURATION_INPUT = 40.0
"""|x| where σ(βx) is within e^-40 of 0 or 1, so G-NoVa's slope has reached its limit."""


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum()


def num_parameters(*modules: nn.Module) -> int:
    return sum(p.numel() for module in modules for p in module.parameters())


# --- G-NoVa ------------------------------------------------------------------------------


def test_gnova_is_eq40():
    alpha, beta = 0.3, 2.0
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    expected = alpha * x + x / (1 + torch.exp(-beta * x))  # Eq. (40), second form
    torch.testing.assert_close(GNoVa(alpha, beta)(x), expected, rtol=0, atol=1e-15)


def test_gnova_slope_is_nonvanishing():
    """a'(0) = α + 1/2; a'(x) → α as x → -∞ and → 1 + α as x → +∞."""
    alpha, beta = 0.3, 2.0
    x = torch.tensor([-SATURATION_INPUT, 0.0, SATURATION_INPUT], dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(GNoVa(alpha, beta)(x).sum(), x)
    torch.testing.assert_close(slope, torch.tensor([alpha, alpha + 0.5, 1 + alpha], dtype=torch.float64))


@pytest.mark.parametrize("name, kwargs", [("alpha", {"alpha": 0.0}), ("beta", {"beta": -1.0})])
def test_gnova_rejects_nonpositive_parameters(name, kwargs):
    with pytest.raises(ValueError, match=name):
        GNoVa(**kwargs)


# --- linear ------------------------------------------------------------------------------


def test_linear_directions_are_w_and_w_transpose_with_own_biases():
    layer = BidirectionalLinear(5, 3)
    x, y = torch.randn(4, 5), torch.randn(4, 3)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + layer.forward_bias)
    torch.testing.assert_close(layer.reverse(y), y @ layer.weight + layer.reverse_bias)


def test_linear_reverse_is_adjoint_without_bias():
    layer = BidirectionalLinear(7, 4, bias=False).double()
    x, y = torch.randn(7, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    torch.testing.assert_close(inner(layer(x), y), inner(x, layer.reverse(y)), rtol=ADJOINT_RTOL, atol=0)


def test_linear_parameter_counts_exact():
    layer = BidirectionalLinear(5, 3)
    assert num_parameters(layer) == 5 * 3 + 3 + 5
    assert num_parameters(*layer.untie()) == (5 * 3 + 3) + (3 * 5 + 5)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_one_step_in_one_direction_moves_the_other(direction):
    """The weight is shared: a step on a loss of one pass changes the other pass's output."""
    layer = BidirectionalLinear(5, 3)
    x, y = torch.randn(8, 5), torch.randn(8, 3)
    if direction == "forward":
        loss, watched = (lambda: layer(x).pow(2).sum()), (lambda: layer.reverse(y))
    else:
        loss, watched = (lambda: layer.reverse(y).pow(2).sum()), (lambda: layer(x))
    before = watched().detach().clone()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    loss().backward()
    optimizer.step()
    assert (watched() - before).abs().max() > 1e-3


def test_untied_linear_pair_matches_bidirectional_layer_given_its_weights():
    layer = BidirectionalLinear(5, 3)
    forward, reverse = layer.untie()
    with torch.no_grad():
        forward.weight.copy_(layer.weight), forward.bias.copy_(layer.forward_bias)
        reverse.weight.copy_(layer.weight.T), reverse.bias.copy_(layer.reverse_bias)
    x, y = torch.randn(4, 5), torch.randn(4, 3)
    torch.testing.assert_close(forward(x), layer(x))
    torch.testing.assert_close(reverse(y), layer.reverse(y))


def test_linear_rejects_wrong_width_naming_argument():
    layer = BidirectionalLinear(5, 3)
    with pytest.raises(ValueError, match="x must have last dimension 5"):
        layer(torch.randn(2, 4))
    with pytest.raises(ValueError, match="y must have last dimension 3"):
        layer.reverse(torch.randn(2, 5))


# --- convolution -------------------------------------------------------------------------

CONV_CASES = [
    # in, out, kernel, stride, padding, output_padding, input (H, W)
    (2, 3, 3, 1, 1, 0, (9, 9)),
    (1, 4, 4, 2, 1, 0, (28, 28)),
    (3, 2, 3, 2, 1, 1, (28, 28)),
    (2, 2, (3, 5), (2, 1), (0, 2), (1, 0), (12, 7)),
]


@pytest.mark.parametrize("in_ch, out_ch, kernel, stride, padding, output_padding, size", CONV_CASES)
def test_conv_reverse_is_adjoint_of_forward(in_ch, out_ch, kernel, stride, padding, output_padding, size):
    layer = BidirectionalConv2d(in_ch, out_ch, kernel, stride, padding, output_padding, bias=False).double()
    x = torch.randn(2, in_ch, *size, dtype=torch.float64)
    y = torch.randn_like(layer(x))
    reversed_y = layer.reverse(y)
    assert reversed_y.shape == x.shape  # shapes round-trip
    torch.testing.assert_close(inner(layer(x), y), inner(x, reversed_y), rtol=ADJOINT_RTOL, atol=0)


@pytest.mark.parametrize("in_ch, out_ch, kernel, stride, padding, output_padding, size", CONV_CASES)
def test_untied_conv_pair_matches_bidirectional_layer_given_its_weights(
    in_ch, out_ch, kernel, stride, padding, output_padding, size
):
    layer = BidirectionalConv2d(in_ch, out_ch, kernel, stride, padding, output_padding)
    forward, reverse = layer.untie()
    assert isinstance(forward, nn.Conv2d) and isinstance(reverse, nn.ConvTranspose2d)
    with torch.no_grad():
        forward.weight.copy_(layer.weight), forward.bias.copy_(layer.forward_bias)
        reverse.weight.copy_(layer.weight), reverse.bias.copy_(layer.reverse_bias)
    x = torch.randn(2, in_ch, *size)
    y = torch.randn_like(layer(x))
    torch.testing.assert_close(forward(x), layer(x), rtol=0, atol=FLOAT32_ATOL)
    torch.testing.assert_close(reverse(y), layer.reverse(y), rtol=0, atol=FLOAT32_ATOL)


def test_conv_parameter_counts_exact():
    layer = BidirectionalConv2d(2, 3, 3)
    kernels = 3 * 2 * 3 * 3
    assert num_parameters(layer) == kernels + 3 + 2
    assert num_parameters(*layer.untie()) == (kernels + 3) + (kernels + 2)


def test_conv_validates_shapes_and_output_padding():
    layer = BidirectionalConv2d(2, 3, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2, H, W\)"):
        layer(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"y must have shape \(N, 3, H, W\)"):
        layer.reverse(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match="output_padding"):
        BidirectionalConv2d(2, 3, 3, stride=2, output_padding=2)


# --- residual block and whole networks ---------------------------------------------------


def test_resblock_reverse_is_adjoint_when_linear():
    """Identity activation, no bias: forward I + C2 C1, reverse I + C1ᵀ C2ᵀ = its transpose."""
    block = BidirectionalResBlock(3, 2, activation=nn.Identity(), bias=False).double()
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    y = torch.randn_like(x)
    torch.testing.assert_close(inner(block(x), y), inner(x, block.reverse(y)), rtol=ADJOINT_RTOL, atol=0)


def test_resblock_has_bidirectional_skips():
    """With zero kernels both passes are the identity (only the skip remains)."""
    block = BidirectionalResBlock(3, 2)
    with torch.no_grad():
        for conv in (block.conv_in, block.conv_out):
            conv.weight.zero_(), conv.forward_bias.zero_(), conv.reverse_bias.zero_()
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    torch.testing.assert_close(block.reverse(x), x, rtol=0, atol=0)


def test_untied_resblock_matches_given_its_weights():
    block = BidirectionalResBlock(3, 2)
    forward, reverse = block.untie()
    conv_in_fwd, conv_out_fwd = forward.body[1], forward.body[3]
    conv_out_rev, conv_in_rev = reverse.body[1], reverse.body[3]
    with torch.no_grad():
        for fwd, rev, shared in ((conv_in_fwd, conv_in_rev, block.conv_in), (conv_out_fwd, conv_out_rev, block.conv_out)):
            fwd.weight.copy_(shared.weight), fwd.bias.copy_(shared.forward_bias)
            rev.weight.copy_(shared.weight), rev.bias.copy_(shared.reverse_bias)
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(forward(x), block(x), rtol=0, atol=FLOAT32_ATOL)
    torch.testing.assert_close(reverse(x), block.reverse(x), rtol=0, atol=FLOAT32_ATOL)


def test_linearised_network_reverse_is_adjoint_of_forward():
    """Flat pixels → image → Bi-Conv → Bi-ResBlock → flat → Bi-Linear, all linear: reverse = transpose."""
    identity = BidirectionalActivation(nn.Identity())
    network = BidirectionalSequential(
        BidirectionalReshape((64,), (1, 8, 8)),
        BidirectionalConv2d(1, 3, 4, stride=2, padding=1, bias=False),
        identity,
        BidirectionalResBlock(3, 2, activation=nn.Identity(), bias=False),
        BidirectionalReshape((3, 4, 4), (48,)),
        BidirectionalLinear(48, 5, bias=False),
    ).double()
    x, y = torch.randn(2, 64, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    torch.testing.assert_close(inner(network(x), y), inner(x, network.reverse(y)), rtol=ADJOINT_RTOL, atol=0)


@pytest.mark.parametrize(
    "network, data_dim, feature_dim",
    [
        (lambda: bidirectional_mlp([784, 32, 16]), 784, 16),
        (lambda: bidirectional_resnet(channels=(4, 8), hidden_channels=4), 784, 8 * 7 * 7),
    ],
)
def test_networks_round_trip_shapes_both_tied_and_untied(network, data_dim, feature_dim):
    net = network()
    assert (net.in_features, net.out_features) == (data_dim, feature_dim)
    x = torch.rand(3, data_dim)
    features = net(x)
    assert features.shape == (3, feature_dim)
    assert net.reverse(features).shape == x.shape
    forward, reverse = net.untie()
    assert reverse(forward(x)).shape == x.shape


def test_untied_network_has_exactly_the_extra_weights():
    """Untying duplicates every weight matrix/kernel and keeps each bias in its own direction."""
    net = bidirectional_resnet(channels=(4, 8), hidden_channels=4)
    weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, (BidirectionalLinear, BidirectionalConv2d)))
    assert num_parameters(*net.untie()) == num_parameters(net) + weights


def test_network_builders_validate_arguments():
    with pytest.raises(ValueError, match="layer_sizes"):
        bidirectional_mlp([784])
    with pytest.raises(ValueError, match="divisible by 8"):
        bidirectional_resnet(channels=(4, 8, 16))
    with pytest.raises(TypeError, match="layer 0"):
        BidirectionalSequential(nn.Linear(2, 2))


def test_gnova_default_and_mlp_use_it():
    net = bidirectional_mlp([6, 4])
    assert isinstance(net[1].activation, GNoVa)
    assert math.isclose(net[1].activation.alpha, GNoVa().alpha)

"""Initialisation of the nonlinear SBN conditionals: the data signal survives the tanh layers.

The collapse plateau of docs/plateau.md: with BiHM's bias of -1 inside the tanh hidden
layers, each layer multiplies the data-dependent part of its input by about
tanh'(-1) = 0.42, and training drives those units into saturation. These tests pin the
two parts of the fix: zero hidden biases and the decoder's output biases at the pixel
log-odds.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyro_dgm.data import embedded_mnist, static_binarize
from pyro_dgm.nn.bernoulli_layer import (
    BIHM_BIAS_INIT,
    HIDDEN_BIAS_INIT,
    MARGINAL_PROB_CLAMP,
    BernoulliLayer,
)

TUCKER_HIDDEN = (200, 200)  # DVAE++ Sec. 7.1: two tanh layers of 200
NUM_IMAGES = 500
SEEDS = range(3)
SIGNAL_KEPT_MIN = 0.5
"""Lower bound on (data std of the output logits) / (data std of the first pre-activation).

In tanh's linear regime a 200 -> 200 Glorot layer keeps the std (fan_in * Var(W) = 1)
and tanh' averages about 0.9 over pre-activations of std 0.37, so two layers keep about
0.75 (measured 0.74); with hidden biases -1 every layer scales it by tanh'(-1) = 0.42 and
the ratio is about 0.27. The bound sits between the two."""


def data_std(values: torch.Tensor) -> float:
    """Per-unit standard deviation over the images (dim 0), averaged over units."""
    return values.std(dim=0).mean().item()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return static_binarize(embedded_mnist("train")[:NUM_IMAGES], seed=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_tanh_hidden_layers_keep_the_data_signal(images: torch.Tensor, seed: int) -> None:
    torch.manual_seed(seed)
    layer = BernoulliLayer(784, 200, TUCKER_HIDDEN)
    first = layer.net[0]
    ratio = data_std(layer.logits(images)) / data_std(first(images))
    assert ratio > SIGNAL_KEPT_MIN


def test_hidden_biases_zero_output_biases_bihm() -> None:
    layer = BernoulliLayer(10, 4, (6, 5))
    linears = [module for module in layer.net if isinstance(module, nn.Linear)]
    assert len(linears) == 3
    for hidden in linears[:-1]:
        assert torch.all(hidden.bias == HIDDEN_BIAS_INIT)
    assert torch.all(linears[-1].bias == BIHM_BIAS_INIT)


def test_linear_layer_keeps_bihm_bias() -> None:
    assert torch.all(BernoulliLayer(10, 4).net[-1].bias == BIHM_BIAS_INIT)


@pytest.mark.parametrize("hidden", [(), TUCKER_HIDDEN])
def test_init_marginals_sets_output_log_odds(hidden: tuple[int, ...]) -> None:
    probs = torch.tensor([0.0, 0.25, 0.5, 0.9, 1.0])
    layer = BernoulliLayer(3, 5, hidden).init_marginals_(probs)
    clamped = probs.clamp(MARGINAL_PROB_CLAMP, 1 - MARGINAL_PROB_CLAMP)
    torch.testing.assert_close(layer.net[-1].bias.detach(), torch.logit(clamped), rtol=0, atol=1e-6)
    with torch.no_grad():  # without weights the layer is the factorial model of the marginals
        layer.net[-1].weight.zero_()
    torch.testing.assert_close(layer(torch.zeros(2, 3)).mean, clamped.expand(2, 5), rtol=0, atol=1e-6)


def test_init_marginals_rejects_bad_probs() -> None:
    layer = BernoulliLayer(3, 5)
    with pytest.raises(ValueError, match="shape"):
        layer.init_marginals_(torch.full((4,), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        layer.init_marginals_(torch.tensor([0.5, 0.5, 1.5, 0.5, 0.5]))

r"""Sigmoid belief network layers: modules that, given a context, return a Bernoulli distribution.

A sigmoid belief network (SBN) layer (Neal, 1992) is the factorial conditional

.. math::

    p(y \mid c) = \prod_{i} \mathcal{B}\bigl(y_i \mid \sigma(W_i c + b_i)\bigr),

where :math:`\mathcal{B}(y \mid \pi) = \pi^{y} (1 - \pi)^{1 - y}` and :math:`\sigma` is
the logistic sigmoid; every conditional of the BiHM and of the reweighted wake-sleep
Helmholtz machines is one of these (Bornschein et al., 2016, Sec. 3), and the top
prior is the context-free :math:`p(h_L) = \prod_i \mathcal{B}(h_{L,i} \mid \sigma(b_i))`.

Following the zuko habit, :class:`BernoulliLayer` and :class:`FactorialBernoulli`
are ``nn.Module`` s whose ``forward`` *returns a distribution*
(:class:`~pyro_dgm.distributions.independent_bernoulli.IndependentBernoulli`, i.e.
``Bernoulli(logits=...).to_event(1)`` with a fused log-density), so model and guide
code read as plain Pyro::

    h1 = pyro.sample("h1", layer(x))

The distribution is parametrised by logits, never by clipped probabilities, so
:math:`\log\sigma(a) = -\mathrm{softplus}(-a)` stays exact for saturated units.
Any leading batch dimensions of the context (data, particles) pass through.

Initialisation follows BiHM Sec. 4: weights uniform in :math:`\pm\sqrt{6/(n_{in} +
n_{out})}` (Glorot & Bengio, 2010) and biases :math:`-1` on the *stochastic* units,
which starts every unit mostly off, as binarised images and sparse codes are. The
deterministic hidden layers of a nonlinear conditional start with zero biases
(:data:`HIDDEN_BIAS_INIT`): Glorot's scaling assumes units in the linear regime of
tanh, and a bias of :math:`-1` scales the data signal by about 0.42 at every layer
(:math:`\tanh'(-1) = 0.42`) and leaves the units close to saturation, where the first
few hundred Adam steps drive them (docs/plateau.md). For a decoder,
:meth:`BernoulliLayer.init_marginals_` sets the output biases to the data's pixel
log-odds, so training starts at the pixel-marginal model instead of reaching it by
pushing the hidden units into saturation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from pyro_dgm.distributions.independent_bernoulli import IndependentBernoulli

BIHM_BIAS_INIT = -1.0
"""Initial bias of every SBN unit (BiHM Sec. 4 and the authors' ``create_layers``)."""

GLOROT_UNIFORM_GAIN = 6.0
r"""Numerator of the Glorot-uniform bound :math:`\sqrt{6 / (n_{in} + n_{out})}`: the
uniform variance :math:`a^2/3` then equals :math:`2 / (n_{in} + n_{out})`."""


def glorot_uniform_bound(fan_in: int, fan_out: int) -> float:
    r"""Half-width :math:`a = \sqrt{6 / (n_{in} + n_{out})}` of the Glorot-uniform weights."""
    return math.sqrt(GLOROT_UNIFORM_GAIN / (fan_in + fan_out))


HIDDEN_BIAS_INIT = 0.0
"""Initial bias of a deterministic (tanh) hidden unit: zero, the linear regime Glorot's scale assumes."""

MARGINAL_PROB_CLAMP = 1e-3
r"""Pixel probabilities are clamped to :math:`[c, 1 - c]` before the log-odds in
:meth:`BernoulliLayer.init_marginals_`: an always-off pixel of the training set would
otherwise get bias :math:`-\infty` (the same clamp bounds the bias by
:math:`\pm\log(1/c - 1) \approx \pm 6.9`)."""


def reset_linear_(linear: nn.Linear, bias: float = BIHM_BIAS_INIT) -> nn.Linear:
    """Glorot-uniform weights and constant biases, in place (BiHM Sec. 4); returns ``linear``."""
    bound = glorot_uniform_bound(linear.in_features, linear.out_features)
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)
        if linear.bias is not None:
            linear.bias.fill_(bias)
    return linear


def weight_l1_norm(module: nn.Module) -> torch.Tensor:
    r""":math:`\sum |W|` over the weight matrices of every ``nn.Linear`` in ``module``.

    Biases are excluded, as in BiHM's L1 regulariser (Sec. 4: "L1 regularization
    :math:`\lambda = 10^{-3}` on all the weights"). The result is a differentiable
    scalar on the parameters' device and dtype (zero for a module without weights).
    """
    norms = [layer.weight.abs().sum() for layer in module.modules() if isinstance(layer, nn.Linear)]
    if not norms:
        parameter = next(module.parameters(), None)
        return torch.zeros(()) if parameter is None else parameter.new_zeros(())
    return torch.stack(norms).sum()


def mlp(sizes: Sequence[int], activation: type[nn.Module]) -> nn.Sequential:
    """Affine maps between consecutive ``sizes``, ``activation`` between them.

    Glorot-uniform weights everywhere; biases :data:`HIDDEN_BIAS_INIT` on the hidden
    layers and :data:`BIHM_BIAS_INIT` on the output layer (the stochastic units).
    """
    modules: list[nn.Module] = []
    last = len(sizes) - 2
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if index > 0:
            modules.append(activation())
        bias = BIHM_BIAS_INIT if index == last else HIDDEN_BIAS_INIT
        modules.append(reset_linear_(nn.Linear(fan_in, fan_out), bias))
    return nn.Sequential(*modules)


def check_sizes(name: str, sizes: Sequence[int]) -> None:
    """Raise ``ValueError`` naming ``name`` unless every entry of ``sizes`` is a positive int."""
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{name} must hold positive ints, got {list(sizes)!r}")


class ConditionalLayer(nn.Module):
    r"""The network of a layer that, given a context :math:`c`, returns a distribution over units.

    An MLP (SBN init) from ``in_features`` to ``outputs_per_unit * out_features``
    numbers, with a check that the context has ``in_features`` features; subclasses
    (:class:`BernoulliLayer`, :class:`~pyro_dgm.nn.encoders.NormalLayer`) turn its
    output into their distribution's parameters.

    Args:
        in_features: size of the context :math:`c`.
        out_features: number of units of the distribution.
        hidden_sizes: widths of deterministic hidden layers (none by default).
        activation: the hidden layers' nonlinearity.
    """

    outputs_per_unit = 1
    """Numbers the network outputs per unit (e.g. 2 for a Gaussian's mean and log scale)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (),
        activation: type[nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__()
        check_sizes("in_features, out_features and hidden_sizes", (in_features, out_features, *hidden_sizes))
        self.in_features = in_features
        self.out_features = out_features
        self.net = mlp((in_features, *hidden_sizes, self.outputs_per_unit * out_features), activation)

    def network_output(self, context: torch.Tensor) -> torch.Tensor:
        """The MLP's output, shape ``context.shape[:-1] + (outputs_per_unit * out_features,)``."""
        if context.size(-1) != self.in_features:
            raise ValueError(
                f"context must have {self.in_features} features in its last dim, "
                f"got shape {tuple(context.shape)}"
            )
        return self.net(context)


class BernoulliLayer(ConditionalLayer):
    r"""The SBN conditional :math:`p(y \mid c) = \prod_i \mathcal{B}(y_i \mid \sigma(a_i(c)))`.

    With no hidden layers :math:`a(c) = W c + b` (the layer of BiHM Sec. 3); with
    ``hidden_sizes`` the logits come from an MLP whose deterministic hidden layers
    use ``activation`` (the authors' ``deterministic_layers`` option, tanh).

    Args:
        in_features: size of the context :math:`c`.
        out_features: number of binary units :math:`y`.
        hidden_sizes: widths of deterministic hidden layers (none by default).
        activation: the hidden layers' nonlinearity.

    Example:
        >>> layer = BernoulliLayer(784, 200)
        >>> layer(torch.zeros(10, 784)).sample().shape
        torch.Size([10, 200])
    """

    def logits(self, context: torch.Tensor) -> torch.Tensor:
        """Logits :math:`a(c)`, shape ``context.shape[:-1] + (out_features,)``."""
        return self.network_output(context)

    def forward(self, context: torch.Tensor) -> IndependentBernoulli:
        """The distribution of :math:`y` given ``context``, event shape ``(out_features,)``."""
        return IndependentBernoulli(self.logits(context))

    def init_marginals_(self, probs: torch.Tensor) -> BernoulliLayer:
        r"""Set the output biases to :math:`\log\frac{\bar p}{1 - \bar p}`, in place; returns ``self``.

        ``probs`` (shape ``(out_features,)``, values in [0, 1]) are the units' marginal
        probabilities, e.g. the training set's pixel means for a decoder; each is
        clamped to ``[MARGINAL_PROB_CLAMP, 1 - MARGINAL_PROB_CLAMP]``. A linear layer
        then starts at the factorial model of those marginals up to its weights'
        small, zero-mean contribution; a nonlinear one no longer has to learn 784
        very different biases through its hidden units, which saturates them
        (docs/plateau.md).
        """
        output = self.net[-1]
        if probs.shape != output.bias.shape:
            raise ValueError(f"probs must have shape ({self.out_features},), got {tuple(probs.shape)}")
        if not torch.all((probs >= 0) & (probs <= 1)):
            raise ValueError("probs must lie in [0, 1]")
        clamped = probs.to(output.bias).clamp(MARGINAL_PROB_CLAMP, 1 - MARGINAL_PROB_CLAMP)
        with torch.no_grad():
            output.bias.copy_(torch.logit(clamped))
        return self


class FactorialBernoulli(nn.Module):
    r"""A learned factorial prior :math:`p(h) = \prod_i \mathcal{B}(h_i \mid \sigma(b_i))`.

    The top layer of a sigmoid belief net (BiHM Sec. 3). ``forward()`` takes no
    context and returns a distribution with batch shape ``()`` and event shape
    ``(features,)``; enclosing ``pyro.plate`` s broadcast it over data and particles.

    Example:
        >>> FactorialBernoulli(10)().event_shape
        torch.Size([10])
    """

    def __init__(self, features: int, bias: float = BIHM_BIAS_INIT) -> None:
        super().__init__()
        check_sizes("features", (features,))
        self.features = features
        self.bias = nn.Parameter(torch.full((features,), bias))

    def forward(self) -> IndependentBernoulli:
        """The prior distribution, event shape ``(features,)``."""
        return IndependentBernoulli(self.bias)

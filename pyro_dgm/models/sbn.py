r"""A sigmoid belief net (the generative half of a Helmholtz machine) in plain Pyro.

The model over an observed binary vector :math:`x \in \{0,1\}^D` and binary latent
layers :math:`h_1, \dots, h_L` is top-down (BiHM Sec. 2, written there for
:math:`L = 2`):

.. math::

    p(x, h_1, \dots, h_L) = p(h_L) \prod_{l=1}^{L-1} p(h_l \mid h_{l+1})\; p(x \mid h_1),

with a learned factorial Bernoulli top prior :math:`p(h_L) = \prod_i
\mathcal{B}(h_{L,i} \mid \sigma(b_i))` and sigmoid belief net conditionals
:math:`p(h_l \mid h_{l+1}) = \prod_i \mathcal{B}(h_{l,i} \mid \sigma(W_i h_{l+1} +
b_i))` (BiHM Sec. 3). The sample sites are ``h1`` ... ``hL`` (latent) and ``x``
(observed), all inside one data plate ``pyro.plate("data", N, dim=-1)``, with the
unit dimension an event dimension (``.to_event(1)``); so any guide that samples the
same site names drops in, and Pyro's vectorised particle plate (one more batch dim
on the left) broadcasts through.

Guides for it live in :mod:`pyro_dgm.models.sbn_guides`. Every objective of
:mod:`pyro_dgm.infer` and Pyro's own ELBOs train the pair, e.g. BiHM's
:math:`\log \tilde p^*(x)` (Eq. 1) with :class:`~pyro_dgm.infer.objectives.bihm.BiHMELBO`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import torch
from pyro.poutine import trace
from pyro.poutine.util import prune_subsample_sites
from torch import nn

from pyro_dgm.models.param_store import register_module
from pyro_dgm.models.plates import check_data, check_latent_value, data_plate
from pyro_dgm.nn.bernoulli_layer import BernoulliLayer, FactorialBernoulli, weight_l1_norm

BIHM_L1_STRENGTH = 1e-3
r"""BiHM's L1 coefficient :math:`\lambda` on all weights (Sec. 4)."""

OBSERVED_SITE = "x"
"""Name of the observed sample site."""


def latent_site_name(layer: int) -> str:
    """Name of the sample site of latent layer ``layer`` (1-based, bottom-up): ``h1``, ``h2``, ..."""
    return f"h{layer}"


def check_layer_sizes(layer_sizes: Sequence[int]) -> list[int]:
    """Validate ``[D, H_1, ..., H_L]`` (data size first, at least one latent layer)."""
    sizes = list(layer_sizes) if isinstance(layer_sizes, Sequence) else None
    if (
        sizes is None
        or len(sizes) < 2
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)
    ):
        raise ValueError(
            "layer_sizes must be a sequence [D, H_1, ..., H_L] of at least two positive "
            f"ints (data size first, then the latent layers bottom-up), got {layer_sizes!r}"
        )
    return sizes


class SigmoidBeliefNet(nn.Module):
    r"""Deep sigmoid belief net :math:`p(h_L) \prod_l p(h_l \mid h_{l+1})\, p(x \mid h_1)`.

    Args:
        layer_sizes: ``[D, H_1, ..., H_L]``: the data size, then the latent layers
            bottom-up; BiHM's MNIST model is ``[784, 300, 200, 100, 75, 50, 35, 30,
            25, 20, 15, 10, 10]`` (Sec. 4).
        hidden_sizes: widths of deterministic (tanh) layers inside every conditional;
            none in BiHM's experiments.
        l1_strength: :math:`\lambda` of :meth:`penalty`; BiHM used
            :data:`BIHM_L1_STRENGTH`.
        name: the prefix of the parameters in Pyro's param store.

    Weights are Glorot-uniform and biases :math:`-1`, top prior included (BiHM Sec. 4).

    Calling ``model(x)`` with ``x`` of shape (B, D) scores ``x``; ``model(x,
    num_data=N)`` scales the batch up to a data set of N; ``model(num_samples=S)``
    draws S samples of ``x`` ancestrally (as does :meth:`sample`).

    Example:
        >>> model = SigmoidBeliefNet([784, 200, 200])
        >>> model.sample(5)["x"].shape
        torch.Size([5, 784])
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        hidden_sizes: Sequence[int] = (),
        l1_strength: float = 0.0,
        name: str = "sbn",
    ) -> None:
        super().__init__()
        self.layer_sizes = check_layer_sizes(layer_sizes)
        self.l1_strength = l1_strength
        self.name = name
        self.prior = FactorialBernoulli(self.layer_sizes[-1])
        # conditionals[l] is p(h_l | h_{l+1}), with h_0 = x: read top-down in forward().
        self.conditionals = nn.ModuleList(
            BernoulliLayer(upper, lower, hidden_sizes)
            for lower, upper in zip(self.layer_sizes[:-1], self.layer_sizes[1:])
        )

    @property
    def num_latent_layers(self) -> int:
        """L, the number of binary latent layers."""
        return len(self.layer_sizes) - 1

    def forward(
        self,
        x: torch.Tensor | None = None,
        num_data: int | None = None,
        *,
        num_samples: int | None = None,
    ) -> torch.Tensor:
        """Score ``x`` (shape (B, D)) or, with ``x=None``, sample ``num_samples`` data points.

        Returns the value of site ``x`` (the observation, or the sample).
        """
        if x is not None:
            batch_size = check_data(x, self.layer_sizes[0], self)
        elif isinstance(num_samples, int) and not isinstance(num_samples, bool) and num_samples > 0:
            batch_size = num_samples
        else:
            raise ValueError(f"pass data x of shape (batch, D) or num_samples > 0, got num_samples={num_samples!r}")
        register_module(self.name, self)
        with data_plate(batch_size, num_data, self.prior.bias.device):
            top = self.num_latent_layers
            h = pyro.sample(latent_site_name(top), self.prior())
            check_latent_value(latent_site_name(top), h, batch_size, self.layer_sizes[top])
            for layer in range(top - 1, 0, -1):
                name = latent_site_name(layer)
                h = pyro.sample(name, self.conditionals[layer](h))
                check_latent_value(name, h, batch_size, self.layer_sizes[layer])
            return pyro.sample(OBSERVED_SITE, self.conditionals[0](h), obs=x)

    def sample(self, num_samples: int) -> dict[str, torch.Tensor]:
        r"""Ancestral samples :math:`(h_L, \dots, h_1, x) \sim p`, keyed by site name."""
        model_trace = prune_subsample_sites(trace(self).get_trace(num_samples=num_samples))
        return {name: site["value"] for name, site in model_trace.nodes.items() if site["type"] == "sample"}

    def penalty(self) -> torch.Tensor:
        r""":math:`\lambda \sum |W|` over the model's weight matrices (biases excluded).

        Not part of the model's density: add it to the loss in the training loop,
        so per-data-point importance weights and log-likelihood estimates stay
        untouched (a ``pyro.factor`` outside the data plate would couple the data
        points' weights). BiHM adds :math:`\lambda \sum |W|` once per minibatch to
        a loss *summed* over the minibatch; with ``num_data=N`` the loss is scaled by
        :math:`N / B`, so scale :math:`\lambda` likewise to keep BiHM's balance.
        """
        return self.l1_strength * weight_l1_norm(self)

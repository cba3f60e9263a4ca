r"""Recognition models (guides) for :class:`~pyro_dgm.models.sbn.SigmoidBeliefNet`.

A guide samples the model's latent sites ``h1`` ... ``hL`` given ``x``, inside the
same data plate, and takes the model's arguments ``(x, num_data=None)``. Two are
provided; any function or module that does the same drops in without touching the
model:

* :class:`BottomUpGuide` — the Helmholtz machine's recognition network, a chain
  against the arrows of the model (BiHM Sec. 2 and Algorithm 1):

  .. math::  q(h_1, \dots, h_L \mid x) = q(h_1 \mid x) \prod_{l=2}^{L} q(h_l \mid h_{l-1});

* :class:`FactorialGuide` — every layer read off ``x`` by one network, the layers
  independent given ``x``:

  .. math::  q(h_1, \dots, h_L \mid x) = \prod_{l=1}^{L} q(h_l \mid x).

All conditionals are factorial Bernoulli (sigmoid belief net) layers with BiHM's
initialisation (Glorot-uniform weights, biases :math:`-1`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import torch
from torch import nn

from pyro_dgm.distributions.independent_bernoulli import IndependentBernoulli
from pyro_dgm.models.param_store import register_module
from pyro_dgm.models.plates import check_data, data_plate
from pyro_dgm.models.sbn import check_layer_sizes, latent_site_name
from pyro_dgm.nn.bernoulli_layer import BernoulliLayer, weight_l1_norm


class SBNGuide(nn.Module):
    """Shared plumbing of the SBN guides: registration, the data check, the data plate.

    Subclasses implement :meth:`sample_latents`, which runs inside the data plate.

    Args:
        layer_sizes: ``[D, H_1, ..., H_L]``, as for the model.
        l1_strength: :math:`\\lambda` of :meth:`penalty`.
        name: the prefix of the parameters in Pyro's param store.
    """

    def __init__(self, layer_sizes: Sequence[int], l1_strength: float, name: str) -> None:
        super().__init__()
        self.layer_sizes = check_layer_sizes(layer_sizes)
        self.l1_strength = l1_strength
        self.name = name

    def forward(self, x: torch.Tensor, num_data: int | None = None) -> dict[str, torch.Tensor]:
        """Sample every latent layer given ``x`` of shape (B, D); returns them by site name."""
        batch_size = check_data(x, self.layer_sizes[0], self)
        register_module(self.name, self)
        with data_plate(batch_size, num_data, x.device):
            return self.sample_latents(x)

    def sample_latents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def penalty(self) -> torch.Tensor:
        r""":math:`\lambda \sum |W|` over the guide's weight matrices (see ``SigmoidBeliefNet.penalty``)."""
        return self.l1_strength * weight_l1_norm(self)


class BottomUpGuide(SBNGuide):
    r"""The Helmholtz recognition network :math:`q(h_1 \mid x) \prod_{l \ge 2} q(h_l \mid h_{l-1})`.

    Each :math:`q(h_l \mid h_{l-1})` is a sigmoid belief net layer (``h_0 = x``),
    the proposal of BiHM Algorithm 1 and of reweighted wake-sleep.

    Example:
        >>> guide = BottomUpGuide([784, 200, 200])
        >>> guide(torch.zeros(3, 784))["h2"].shape
        torch.Size([3, 200])
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        hidden_sizes: Sequence[int] = (),
        l1_strength: float = 0.0,
        name: str = "bottom_up_guide",
    ) -> None:
        super().__init__(layer_sizes, l1_strength, name)
        # conditionals[l - 1] is q(h_l | h_{l-1}).
        self.conditionals = nn.ModuleList(
            BernoulliLayer(lower, upper, hidden_sizes)
            for lower, upper in zip(self.layer_sizes[:-1], self.layer_sizes[1:])
        )

    def sample_latents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        latents = {}
        h = x
        for layer, conditional in enumerate(self.conditionals, start=1):
            name = latent_site_name(layer)
            h = latents[name] = pyro.sample(name, conditional(h))
        return latents


class FactorialGuide(SBNGuide):
    r"""Layers independent given the data: :math:`\prod_l q(h_l \mid x)`, one network.

    A single :class:`~pyro_dgm.nn.bernoulli_layer.BernoulliLayer` maps ``x`` to the
    concatenated logits of all :math:`H_1 + \dots + H_L` units, split per layer; with
    ``hidden_sizes`` the layers share its deterministic hidden features. All layers are
    sampled in parallel, with no chain of samples.

    Example:
        >>> guide = FactorialGuide([784, 200, 200], hidden_sizes=[300])
        >>> guide(torch.zeros(3, 784))["h1"].shape
        torch.Size([3, 200])
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        hidden_sizes: Sequence[int] = (),
        l1_strength: float = 0.0,
        name: str = "factorial_guide",
    ) -> None:
        super().__init__(layer_sizes, l1_strength, name)
        self.latent_sizes = self.layer_sizes[1:]
        self.network = BernoulliLayer(self.layer_sizes[0], sum(self.latent_sizes), hidden_sizes)

    def sample_latents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits_per_layer = self.network.logits(x).split(self.latent_sizes, dim=-1)
        latents = {}
        for layer, logits in enumerate(logits_per_layer, start=1):
            name = latent_site_name(layer)
            latents[name] = pyro.sample(name, IndependentBernoulli(logits))
        return latents

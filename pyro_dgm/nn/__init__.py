"""Network building blocks; each layer's ``forward(context)`` returns a tensor or a Pyro distribution.

- :class:`BernoulliLayer`, :class:`FactorialBernoulli`: sigmoid belief net layers (BiHM Sec. 3);
- bidirectional layers (Kosko & Adigun): :class:`BidirectionalLinear`,
  :class:`BidirectionalConv2d`, :class:`BidirectionalResBlock`, the :class:`GNoVa`
  activation, and :func:`bidirectional_mlp` / :func:`bidirectional_resnet`.

May import: :mod:`pyro_dgm.distributions` (a layer may return one), torch and Pyro.
"""

from pyro_dgm.nn.activations import GNoVa
from pyro_dgm.nn.bernoulli_layer import BernoulliLayer, FactorialBernoulli
from pyro_dgm.nn.bidirectional import (
    BidirectionalActivation,
    BidirectionalLinear,
    BidirectionalModule,
    BidirectionalReshape,
    BidirectionalSequential,
)
from pyro_dgm.nn.bidirectional_conv import BidirectionalConv2d, BidirectionalResBlock
from pyro_dgm.nn.bidirectional_networks import bidirectional_mlp, bidirectional_resnet

__all__ = [
    "BernoulliLayer",
    "BidirectionalActivation",
    "BidirectionalConv2d",
    "BidirectionalLinear",
    "BidirectionalModule",
    "BidirectionalReshape",
    "BidirectionalResBlock",
    "BidirectionalSequential",
    "FactorialBernoulli",
    "GNoVa",
    "bidirectional_mlp",
    "bidirectional_resnet",
]

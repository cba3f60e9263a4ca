"""Ready-made model/guide pairs in plain Pyro syntax; guides are separate, swappable modules.

- :class:`SigmoidBeliefNet` with :class:`BottomUpGuide` / :class:`FactorialGuide`
  (Helmholtz machines for BiHM, RWS, VIMCO);
- :class:`BidirectionalVAE` and its :class:`UnidirectionalVAE` twin (Kosko & Adigun);
- :class:`TinySBN` (with :func:`distinct_binary_data`): a Helmholtz machine small enough
  to enumerate, for examples and exact checks.
"""

from pyro_dgm.models.bvae import BidirectionalVAE, UnidirectionalVAE
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide, FactorialGuide
from pyro_dgm.models.tiny_sbn import TinySBN, distinct_binary_data

__all__ = [
    "BidirectionalVAE",
    "BottomUpGuide",
    "FactorialGuide",
    "SigmoidBeliefNet",
    "TinySBN",
    "UnidirectionalVAE",
    "distinct_binary_data",
]

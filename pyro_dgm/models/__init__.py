"""Ready-made model/guide pairs in plain Pyro syntax; guides are separate, swappable modules.

- :class:`SigmoidBeliefNet` with :class:`BottomUpGuide` / :class:`FactorialGuide`
  (Helmholtz machines for BiHM, RWS, VIMCO);
- :class:`BidirectionalVAE` and its :class:`UnidirectionalVAE` twin (Kosko & Adigun).
"""

from pyro_dgm.models.bvae import BidirectionalVAE, UnidirectionalVAE
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide, FactorialGuide

__all__ = [
    "BidirectionalVAE",
    "BottomUpGuide",
    "FactorialGuide",
    "SigmoidBeliefNet",
    "UnidirectionalVAE",
]

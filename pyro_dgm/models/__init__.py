"""Ready-made model/guide pairs in plain Pyro syntax; guides are separate, swappable modules.

- :class:`SigmoidBeliefNet` with :class:`BottomUpGuide` / :class:`FactorialGuide`
  (Helmholtz machines for BiHM, RWS, VIMCO);
- :class:`BidirectionalVAE` and its :class:`UnidirectionalVAE` twin (Kosko & Adigun);
- :class:`RelaxedBoltzmannVAE` (DVAE#, GumBolt) via :func:`build_dvae_sharp` / :func:`build_gumbolt`.
"""

from pyro_dgm.models.bvae import BidirectionalVAE, UnidirectionalVAE
from pyro_dgm.models.dvae_sharp import RelaxedBoltzmannVAE, build_dvae_sharp, build_gumbolt
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide, FactorialGuide

__all__ = [
    "BidirectionalVAE",
    "BottomUpGuide",
    "FactorialGuide",
    "RelaxedBoltzmannVAE",
    "SigmoidBeliefNet",
    "UnidirectionalVAE",
    "build_dvae_sharp",
    "build_gumbolt",
]

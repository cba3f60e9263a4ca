"""Ready-made model/guide pairs in plain Pyro syntax; guides are separate, swappable modules.

- :class:`SigmoidBeliefNet` with :class:`BottomUpGuide` / :class:`FactorialGuide`
  (Helmholtz machines for BiHM, RWS, VIMCO);
- :class:`BidirectionalVAE` and its :class:`UnidirectionalVAE` twin (Kosko & Adigun);
- :class:`TinySBN` (with :func:`distinct_binary_data`): a Helmholtz machine small enough
  to enumerate, for examples and exact checks.
- :class:`RelaxedBoltzmannVAE` (DVAE#, GumBolt) via :func:`build_dvae_sharp` / :func:`build_gumbolt`.

May import: :mod:`pyro_dgm.nn`, :mod:`pyro_dgm.distributions`, Pyro and torch. Never
:mod:`pyro_dgm.infer`: a model knows nothing of the objective that trains it.
"""

from pyro_dgm.models.bvae import BidirectionalVAE, UnidirectionalVAE
from pyro_dgm.models.dvae_sharp import RelaxedBoltzmannVAE, build_dvae_sharp, build_gumbolt
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide, FactorialGuide
from pyro_dgm.models.tiny_sbn import TinySBN, distinct_binary_data

__all__ = [
    "BidirectionalVAE",
    "BottomUpGuide",
    "FactorialGuide",
    "RelaxedBoltzmannVAE",
    "SigmoidBeliefNet",
    "TinySBN",
    "UnidirectionalVAE",
    "distinct_binary_data",
    "build_dvae_sharp",
    "build_gumbolt",
]

"""Objectives: the ``pyro.infer.ELBO`` subclasses that train a model, one per module.

Each is used as ``SVI(model, guide, optim, loss=objective)``; each class docstring states
its bound, its gradient estimator and the paper's equations.

- :mod:`.bihm` — :class:`BiHMELBO`, the bidirectional Helmholtz machine bound (BiHM Eq. 4,
  gradient Eq. 6);
- :mod:`.rws` — :class:`ReweightedWakeSleep` (Bornschein & Bengio 2015);
- :mod:`.vimco` — :class:`VIMCO` (Mnih & Rezende 2016);
- :mod:`.dvae_pp` — :class:`DVAEPlusPlusELBO`, the analytic KL of smoothed binary latents
  (Vahdat et al. 2018); :mod:`.dvae` — :class:`DVAEELBO`, Rolfe's spike-and-X gradient;
- :mod:`.dvae_sharp` — :class:`DVAESharpELBO` and :class:`GumBoltELBO`, the
  importance-weighted bound with relaxed Boltzmann priors;
- :mod:`.tcvae` — :class:`TCVAE_ELBO` (β-TCVAE, Chen et al. 2018);
- :mod:`.weight_penalty` — :class:`PenalisedObjective`, BiHM's L1 penalty around any of them;
- shared by the DVAE family: :mod:`.smoothed_latents` (how a model marks a smoothed
  prior), :mod:`.smoothed_kl` (the KL in closed form), :mod:`.rbm_log_partition_term`
  (log Z of an RBM prior and its PCD gradient).

**May import:** :mod:`pyro_dgm.infer.importance`, :mod:`pyro_dgm.infer.validation`,
:mod:`pyro_dgm.distributions`, :mod:`pyro_dgm.nn`, :mod:`pyro_dgm.models`, Pyro and torch.
Never the estimators (:mod:`pyro_dgm.infer.estimators` builds on the objectives, not the
other way round) nor anything above :mod:`pyro_dgm.infer`.
"""

from pyro_dgm.infer.objectives.bihm import BiHMELBO
from pyro_dgm.infer.objectives.dvae import DVAEELBO
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.infer.objectives.dvae_sharp import DVAESharpELBO, GumBoltELBO
from pyro_dgm.infer.objectives.rws import ReweightedWakeSleep, WakeSleepLosses
from pyro_dgm.infer.objectives.tcvae import TCVAE_ELBO
from pyro_dgm.infer.objectives.vimco import VIMCO
from pyro_dgm.infer.objectives.weight_penalty import PenalisedObjective

__all__ = [
    "BiHMELBO",
    "DVAEELBO",
    "DVAEPlusPlusELBO",
    "DVAESharpELBO",
    "GumBoltELBO",
    "PenalisedObjective",
    "ReweightedWakeSleep",
    "TCVAE_ELBO",
    "VIMCO",
    "WakeSleepLosses",
]

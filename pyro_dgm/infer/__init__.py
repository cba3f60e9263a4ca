"""Objectives (``pyro.infer.ELBO`` subclasses) and estimators for discrete-latent models.

Objectives, one per module, all usable as ``SVI(model, guide, optim, loss=...)``:

- :class:`BiHMELBO` — the bidirectional Helmholtz machine bound 2 log E_q[√(p/q)]
  (BiHM Eq. 4) with its importance-sampled gradient (Eq. 6);
- :class:`ReweightedWakeSleep` — wake-θ, wake-φ, sleep-φ with per-data-point weights
  (minibatch-correct, unlike Pyro's own, issue #2220);
- :class:`VIMCO` — the K-sample IWAE bound with leave-one-out baselines, so discrete
  guides get gradients (unlike ``RenyiELBO(alpha=0)``, issue #3289);
- the DVAE/DVAE++ objectives for smoothed discrete latents (:mod:`.dvae_pp`, :mod:`.dvae`);
- :class:`DVAESharpELBO` / :class:`GumBoltELBO` — the K-sample importance-weighted bound
  with relaxed Boltzmann priors (DVAE#, GumBolt; :mod:`.dvae_sharp`).

Estimators: :func:`log_likelihood` (importance-weighted log p(x), chunked), BiHM's
:func:`estimate_log_partition_squared` (Eq. 7) and :func:`bihm_log_likelihood`
(log p*(x)), RBM log Z by :func:`annealed_importance_sampling` and :func:`parallel_tempering`
(:func:`estimate_log_partition` picks exact when enumerable). Ground truth for tests:
:func:`enumerate_latents`. See ``docs/objectives.md``.
"""

from pyro_dgm.infer.ais import AISEstimate, annealed_importance_sampling
from pyro_dgm.infer.bihm import BiHMELBO
from pyro_dgm.infer.dvae import DVAEELBO
from pyro_dgm.infer.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.infer.dvae_sharp import DVAESharpELBO, GumBoltELBO
from pyro_dgm.infer.exact import all_binary_configurations, enumerate_latents
from pyro_dgm.infer.importance import (
    ImportanceWeightedObjective,
    WeightedParticles,
    effective_sample_size,
    log_mean_exp,
)
from pyro_dgm.infer.log_likelihood import LogLikelihoodEstimate, log_likelihood
from pyro_dgm.infer.partition import (
    BiHMLogLikelihoodEstimate,
    PartitionEstimate,
    bihm_log_likelihood,
    estimate_log_partition_squared,
)
from pyro_dgm.infer.parallel_tempering import ParallelTemperingEstimate, parallel_tempering
from pyro_dgm.infer.rbm_partition import LogPartitionEstimate, estimate_log_partition
from pyro_dgm.infer.rws import ReweightedWakeSleep, WakeSleepLosses
from pyro_dgm.distributions.smoothing_marks import smooths
from pyro_dgm.infer.validation import check_guide_covers_model
from pyro_dgm.infer.vimco import VIMCO

__all__ = [
    "AISEstimate",
    "BiHMELBO",
    "BiHMLogLikelihoodEstimate",
    "DVAEELBO",
    "DVAEPlusPlusELBO",
    "DVAESharpELBO",
    "GumBoltELBO",
    "ImportanceWeightedObjective",
    "LogLikelihoodEstimate",
    "LogPartitionEstimate",
    "ParallelTemperingEstimate",
    "PartitionEstimate",
    "ReweightedWakeSleep",
    "VIMCO",
    "WakeSleepLosses",
    "WeightedParticles",
    "all_binary_configurations",
    "annealed_importance_sampling",
    "bihm_log_likelihood",
    "check_guide_covers_model",
    "effective_sample_size",
    "enumerate_latents",
    "estimate_log_partition",
    "estimate_log_partition_squared",
    "log_likelihood",
    "log_mean_exp",
    "parallel_tempering",
    "smooths",
]

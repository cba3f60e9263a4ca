"""Estimators: what is computed from a model after (or beside) training, never a training loss.

- :mod:`.log_likelihood` — :func:`log_likelihood`, the importance-weighted log p(x)
  (Burda et al. 2016; BiHM Eq. 5), chunked over samples;
- :mod:`.bihm_partition` — BiHM's normaliser Z² (:func:`estimate_log_partition_squared`,
  Eq. 7) and the likelihood log p*(x) it gives (:func:`bihm_log_likelihood`), for any
  model/guide pair through traces;
- log Z of an RBM prior: :mod:`.ais` (:func:`annealed_importance_sampling`),
  :mod:`.parallel_tempering` (:func:`parallel_tempering`, Bennett's acceptance ratio),
  both along the tempered path of :mod:`.tempered_rbm`; :mod:`.rbm_partition`
  (:func:`estimate_log_partition`) picks exact, AIS or parallel tempering;
- ground truth for the tests: :mod:`.exact` (:func:`enumerate_latents`, every binary
  configuration) and :mod:`.smoothed_exact` (enumeration plus quadrature for smoothed
  latents).

**May import:** :mod:`pyro_dgm.infer.objectives` (BiHM's estimators weigh as its bound
does), :mod:`pyro_dgm.infer.importance`, :mod:`pyro_dgm.infer.validation`,
:mod:`pyro_dgm.distributions`, :mod:`pyro_dgm.nn`, :mod:`pyro_dgm.models`, Pyro and torch;
nothing above :mod:`pyro_dgm.infer`.
"""

from pyro_dgm.infer.estimators.ais import AISEstimate, annealed_importance_sampling
from pyro_dgm.infer.estimators.bihm_partition import (
    BiHMLogLikelihoodEstimate,
    PartitionEstimate,
    bihm_log_likelihood,
    estimate_log_partition_squared,
)
from pyro_dgm.infer.estimators.exact import all_binary_configurations, enumerate_latents
from pyro_dgm.infer.estimators.log_likelihood import LogLikelihoodEstimate, log_likelihood
from pyro_dgm.infer.estimators.parallel_tempering import ParallelTemperingEstimate, parallel_tempering
from pyro_dgm.infer.estimators.rbm_partition import LogPartitionEstimate, estimate_log_partition

__all__ = [
    "AISEstimate",
    "BiHMLogLikelihoodEstimate",
    "LogLikelihoodEstimate",
    "LogPartitionEstimate",
    "ParallelTemperingEstimate",
    "PartitionEstimate",
    "all_binary_configurations",
    "annealed_importance_sampling",
    "bihm_log_likelihood",
    "enumerate_latents",
    "estimate_log_partition",
    "estimate_log_partition_squared",
    "log_likelihood",
    "parallel_tempering",
]

"""Inference: the objectives that train a model, and the estimators that evaluate it.

Two subpackages over a shared core, so that what trains and what measures stay apart:

- :mod:`pyro_dgm.infer.objectives` — ``pyro.infer.ELBO`` subclasses, one per module, all
  usable as ``SVI(model, guide, optim, loss=...)``: :class:`BiHMELBO` (BiHM Eq. 4 with the
  gradient of Eq. 6), :class:`ReweightedWakeSleep` (per-data-point weights, unlike Pyro's
  own, issue #2220), :class:`VIMCO` (the K-sample bound with leave-one-out baselines, so
  discrete guides get gradients, unlike ``RenyiELBO(alpha=0)``, issue #3289), the DVAE /
  DVAE++ objectives for smoothed binary latents (:class:`DVAEELBO`,
  :class:`DVAEPlusPlusELBO`), DVAE# and GumBolt (:class:`DVAESharpELBO`,
  :class:`GumBoltELBO`), β-TCVAE, and the machinery they share (smoothed latents, their
  analytic KL, the RBM's log Z term, the weight penalty);
- :mod:`pyro_dgm.infer.estimators` — what is computed after training:
  :func:`log_likelihood` (importance-weighted log p(x), chunked), BiHM's
  :func:`estimate_log_partition_squared` (Eq. 7) and :func:`bihm_log_likelihood`
  (log p*(x)), RBM log Z by :func:`annealed_importance_sampling` and
  :func:`parallel_tempering` (:func:`estimate_log_partition` picks exact when
  enumerable), and exact enumeration, the ground truth of the tests
  (:func:`enumerate_latents`);
- the core both build on: :mod:`~pyro_dgm.infer.importance` (per-data-point importance
  weights from one vectorised trace pair) and :mod:`~pyro_dgm.infer.validation` (strict
  model/guide checks that name the site).

This module re-exports the public names of all three, so ``from pyro_dgm.infer import
BiHMELBO, log_likelihood`` works as before. BiHM's fast tools for sigmoid belief nets
(Z², Gibbs sampling from p*, inpainting) know the models, so they live above, in
:mod:`pyro_dgm.bihm`.

**May import** (``docs/architecture.md``): the core imports :mod:`pyro_dgm.distributions`,
:mod:`pyro_dgm.nn`, :mod:`pyro_dgm.models` and Pyro; the objectives import the core and
those; the estimators import the objectives, the core and those. Never
:mod:`pyro_dgm.bihm`, :mod:`pyro_dgm.diagnostics`, :mod:`pyro_dgm.data` or
:mod:`pyro_dgm.cli`. The module paths from before this layout (``pyro_dgm.infer.bihm``,
``pyro_dgm.infer.sbn_partition``, ...) still import, with a ``DeprecationWarning``, for
one release (:mod:`~pyro_dgm.infer._moved_modules`).
"""

from pyro_dgm.distributions.smoothing_marks import smooths
from pyro_dgm.infer import _moved_modules
from pyro_dgm.infer.estimators import (
    AISEstimate,
    BiHMLogLikelihoodEstimate,
    LogLikelihoodEstimate,
    LogPartitionEstimate,
    ParallelTemperingEstimate,
    PartitionEstimate,
    all_binary_configurations,
    annealed_importance_sampling,
    bihm_log_likelihood,
    enumerate_latents,
    estimate_log_partition,
    estimate_log_partition_squared,
    log_likelihood,
    parallel_tempering,
)
from pyro_dgm.infer.importance import (
    ImportanceWeightedObjective,
    WeightedParticles,
    effective_sample_size,
    log_mean_exp,
)
from pyro_dgm.infer.objectives import (
    VIMCO,
    BiHMELBO,
    DVAEELBO,
    DVAEPlusPlusELBO,
    DVAESharpELBO,
    GumBoltELBO,
    ReweightedWakeSleep,
    WakeSleepLosses,
)
from pyro_dgm.infer.validation import check_guide_covers_model

_moved_modules.install()

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

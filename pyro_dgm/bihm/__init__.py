"""BiHM's tools for a sigmoid belief net and its bottom-up guide: Z² fast, sampling from p*, inpainting.

The bidirectional Helmholtz machine (Bornschein et al., 2016) is trained by
:class:`~pyro_dgm.infer.objectives.bihm.BiHMELBO` on any model/guide pair, and its
normaliser has a generic estimator (:mod:`pyro_dgm.infer.estimators.bihm_partition`). The
tools here are written for one pair, a :class:`~pyro_dgm.models.sbn.SigmoidBeliefNet` p and
a :class:`~pyro_dgm.models.sbn_guides.BottomUpGuide` q, on their weight matrices, so they
know the models; hence their own package above :mod:`pyro_dgm.infer`
(``docs/bihm_tools.md``):

- :mod:`.sbn_partition` — :func:`estimate_sbn_log_partition_squared`, BiHM's Z² (Eq. 7)
  with no tracing, and :func:`sbn_bihm_log_likelihood` (log p*(x), Sec. 3), on the
  kernels of :mod:`.fused_bernoulli` (bias, sampling and log-density in one pass) and the
  bulk random words of :mod:`.random_bits`;
- :mod:`.sbn_importance` — :func:`sbn_importance_estimate`, importance-weighted log p(x)
  and log p̃*(x) on the same weights (the UCI protocol's 10⁴ samples per example);
- :mod:`.gibbs_sampling` — Gibbs sampling from p*(x, h) (:func:`sample_p_star`) and
  inpainting (:func:`inpaint`), the paper's "Sampling and inpainting".

**May import:** :mod:`pyro_dgm.infer` (objectives, estimators, core),
:mod:`pyro_dgm.models`, :mod:`pyro_dgm.nn`, :mod:`pyro_dgm.distributions`,
:mod:`pyro_dgm.compilation`, Pyro and torch. Not :mod:`pyro_dgm.diagnostics`,
:mod:`pyro_dgm.data` or :mod:`pyro_dgm.cli`.
"""

from pyro_dgm.bihm.gibbs_sampling import inpaint, sample_p_star
from pyro_dgm.bihm.sbn_importance import SBNImportanceEstimate, sbn_importance_estimate
from pyro_dgm.bihm.sbn_partition import estimate_sbn_log_partition_squared, sbn_bihm_log_likelihood

__all__ = [
    "SBNImportanceEstimate",
    "estimate_sbn_log_partition_squared",
    "inpaint",
    "sample_p_star",
    "sbn_bihm_log_likelihood",
    "sbn_importance_estimate",
]

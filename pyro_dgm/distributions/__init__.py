"""Distributions over discrete latents and their smoothed relaxations.

- :class:`RBM`: restricted Boltzmann machine prior with exact log Z (enumerable side
  up to :data:`~pyro_dgm.distributions.rbm.MAX_ENUMERATED_UNITS` units), conditionals,
  exact or Gibbs sampling; :func:`block_gibbs`, :class:`PersistentChains` and
  :func:`log_partition_surrogate` for PCD (DVAE++ Sec. 5, App. E).
- Smoothing transformations, each the marginal q(ζ) = Σ_z q(z) r(ζ|z) with an
  inverse-CDF ``rsample``: :class:`OverlappingExponential` (DVAE++ Eq. 3),
  :class:`OverlappingLogistic`, :class:`SpikeAndExponential` (DVAE Eq. 9),
  :class:`SpikeAndSlab` (DVAE App. D.2), :class:`MixtureOfRamps` (DVAE Eq. 20), and
  :class:`BinaryLimit` (ζ = z, for evaluation); DVAE#'s :class:`PowerFunctionSmoothing` and
  :class:`UniformExponentialMixture`, sampled ancestrally with implicit gradients.
- Relaxed Boltzmann priors over ζ (DVAE#): :class:`OverlappingRelaxedRBM` (mean-field or
  exact log Z(ζ)), :class:`GaussianIntegralRelaxedRBM`; GumBolt's :class:`GumBoltPrior` and
  :class:`GumBoltPosterior`.
- :class:`DiscretizedLogisticMixture`: the colour-image likelihood of convolutional DVAE++.
- :class:`IndependentBernoulli`: ``Bernoulli(logits).to_event(1)`` with a fused
  log-density, the distribution of every sigmoid belief layer.
- Closed-form ``kl_divergence`` for IndependentBernoulli, BinaryLimit and same-family
  spike smoothers (:mod:`pyro_dgm.distributions.kl`).

See ``docs/distributions/``.

May import: torch, Pyro and :mod:`pyro_dgm.compilation`; nothing above (the bottom of the
model stack: distributions know nothing of networks, models or objectives).
"""

from pyro_dgm.distributions.binary_limit import BinaryLimit
from pyro_dgm.distributions.discretized_logistic import DiscretizedLogisticMixture
from pyro_dgm.distributions.gumbolt import GumBoltPosterior, GumBoltPrior
from pyro_dgm.distributions.gibbs import PersistentChains, block_gibbs, log_partition_surrogate
from pyro_dgm.distributions.independent_bernoulli import IndependentBernoulli
from pyro_dgm.distributions.kl import bernoulli_kl  # importing it registers the closed-form KLs
from pyro_dgm.distributions.mixture_of_ramps import MixtureOfRamps
from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.overlapping_logistic import OverlappingLogistic
from pyro_dgm.distributions.power_function import PowerFunctionSmoothing
from pyro_dgm.distributions.rbm import RBM, exact_log_partition
from pyro_dgm.distributions.relaxed_boltzmann import (
    GaussianIntegralRelaxedRBM,
    OverlappingRelaxedRBM,
    RelaxedBoltzmannPrior,
)
from pyro_dgm.distributions.smoothing import (
    SmoothingConditional,
    SmoothingTransformation,
    SpikeSmoothingTransformation,
    TemperedSmoothingTransformation,
)
from pyro_dgm.distributions.smoothing_marks import smooths
from pyro_dgm.distributions.spike_and_exponential import SpikeAndExponential
from pyro_dgm.distributions.spike_and_slab import SpikeAndSlab
from pyro_dgm.distributions.uniform_exponential import UniformExponentialMixture

__all__ = [
    "BinaryLimit",
    "DiscretizedLogisticMixture",
    "GaussianIntegralRelaxedRBM",
    "GumBoltPosterior",
    "GumBoltPrior",
    "IndependentBernoulli",
    "MixtureOfRamps",
    "OverlappingExponential",
    "OverlappingLogistic",
    "OverlappingRelaxedRBM",
    "PersistentChains",
    "PowerFunctionSmoothing",
    "RBM",
    "RelaxedBoltzmannPrior",
    "SmoothingConditional",
    "SmoothingTransformation",
    "SpikeAndExponential",
    "SpikeAndSlab",
    "SpikeSmoothingTransformation",
    "TemperedSmoothingTransformation",
    "bernoulli_kl",
    "UniformExponentialMixture",
    "block_gibbs",
    "exact_log_partition",
    "log_partition_surrogate",
    "smooths",
]

r"""Closed-form KL divergences of our distributions, registered with ``torch.distributions.kl``.

Importing :mod:`pyro_dgm.distributions` registers them, so ``kl_divergence(p, q)`` (and
Pyro's ``TraceMeanField_ELBO``) works for these pairs:

- :class:`IndependentBernoulli` against itself and against ``Bernoulli(logits).to_event(1)``
  (either way round): the sum over units of the Bernoulli KL.
- :class:`BinaryLimit` against itself: the Bernoulli KL.
- :class:`SpikeAndSlab` against itself, and :class:`SpikeAndExponential` against itself: with
  densities w.r.t. :math:`\delta_0 + \lambda` the spike identifies :math:`z` (:math:`\zeta = 0
  \Leftrightarrow z = 0`), so

  .. math::

      \mathrm{KL}(q \,\|\, p) = \mathrm{KL}(\mathcal B(q) \,\|\, \mathcal B(p))
          + q\, \mathrm{KL}\bigl(r_q(\zeta \mid 1) \,\|\, r_p(\zeta \mid 1)\bigr),

  the second term zero for equal slabs (spike-and-slab; spike-and-exponential with equal
  :math:`\beta`). The overlapping smoothers have no closed form (a mixture against a mixture).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, register_kl

from pyro_dgm.distributions.binary_limit import BinaryLimit
from pyro_dgm.distributions.independent_bernoulli import IndependentBernoulli
from pyro_dgm.distributions.overlapping_exponential import decaying_exponential_mean
from pyro_dgm.distributions.smoothing import log1mexp
from pyro_dgm.distributions.spike_and_exponential import SpikeAndExponential
from pyro_dgm.distributions.spike_and_slab import SpikeAndSlab

__all__ = ["bernoulli_kl", "rising_exponential_kl"]


def bernoulli_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{KL}(\mathcal B(\sigma(a)) \,\|\, \mathcal B(\sigma(b)))`, elementwise, from the logits.

    .. math::

        \sigma(a)\,[\log\sigma(a) - \log\sigma(b)] + \sigma(-a)\,[\log\sigma(-a) - \log\sigma(-b)],

    each log-probability a ``logsigmoid``: no :math:`\mathrm{softplus}(b) - \mathrm{softplus}(a)`
    cancellation, so a tiny KL between saturated logits (30 vs 29) keeps its relative accuracy.
    Between close logits the KL is second order in :math:`a - b` while its terms are first
    order: there only the absolute error is small (below :math:`\epsilon`), as in torch's.
    """
    return torch.sigmoid(logits_p) * (F.logsigmoid(logits_p) - F.logsigmoid(logits_q)) + torch.sigmoid(-logits_p) * (
        F.logsigmoid(-logits_p) - F.logsigmoid(-logits_q)
    )


def _bernoulli_logits_of(distribution: Independent) -> torch.Tensor:
    """The logits of ``Bernoulli(logits).to_event(1)``; ``NotImplementedError`` for any other ``Independent``."""
    if not isinstance(distribution.base_dist, Bernoulli) or distribution.reinterpreted_batch_ndims != 1:
        raise NotImplementedError(
            "KL with IndependentBernoulli is registered against Bernoulli(...).to_event(1) only, got "
            f"{type(distribution.base_dist).__name__}.to_event({distribution.reinterpreted_batch_ndims})"
        )
    return distribution.base_dist.logits


@register_kl(IndependentBernoulli, IndependentBernoulli)
def _kl_independent_bernoulli(p: IndependentBernoulli, q: IndependentBernoulli) -> torch.Tensor:
    return bernoulli_kl(p.logits, q.logits).sum(-1)


@register_kl(IndependentBernoulli, Independent)
def _kl_independent_bernoulli_to_event(p: IndependentBernoulli, q: Independent) -> torch.Tensor:
    return bernoulli_kl(p.logits, _bernoulli_logits_of(q)).sum(-1)


@register_kl(Independent, IndependentBernoulli)
def _kl_to_event_independent_bernoulli(p: Independent, q: IndependentBernoulli) -> torch.Tensor:
    return bernoulli_kl(_bernoulli_logits_of(p), q.logits).sum(-1)


@register_kl(BinaryLimit, BinaryLimit)
def _kl_binary_limit(p: BinaryLimit, q: BinaryLimit) -> torch.Tensor:
    return bernoulli_kl(p.logits, q.logits)


@register_kl(SpikeAndSlab, SpikeAndSlab)
def _kl_spike_and_slab(p: SpikeAndSlab, q: SpikeAndSlab) -> torch.Tensor:
    return bernoulli_kl(p.logits, q.logits)  # equal uniform slabs


def rising_exponential_kl(beta_p: torch.Tensor, beta_q: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{KL}` between the rising exponentials :math:`\beta e^{\beta(\zeta - 1)}/(1 - e^{-\beta})` on [0, 1].

    With :math:`\log r_\beta(\zeta) = \log\beta + \beta(\zeta - 1) - \log(1 - e^{-\beta})` and
    :math:`\mathbb E_\beta[1 - \zeta] = m(\beta)` (:func:`decaying_exponential_mean`):
    :math:`\log(\beta_p/\beta_q) - (\beta_p - \beta_q)\, m(\beta_p) - \log(1 - e^{-\beta_p}) + \log(1 - e^{-\beta_q})`.
    """
    return (
        torch.log(beta_p / beta_q)
        - (beta_p - beta_q) * decaying_exponential_mean(beta_p)
        - log1mexp(beta_p)
        + log1mexp(beta_q)
    )


@register_kl(SpikeAndExponential, SpikeAndExponential)
def _kl_spike_and_exponential(p: SpikeAndExponential, q: SpikeAndExponential) -> torch.Tensor:
    return bernoulli_kl(p.logits, q.logits) + p._prob_one * rising_exponential_kl(p.beta, q.beta)

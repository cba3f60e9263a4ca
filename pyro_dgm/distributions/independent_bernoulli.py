r"""A vector of independent Bernoulli units given by logits: one distribution, one fused log-density.

Every sigmoid-belief-net layer, and every factorial binary prior or posterior, is

.. math::

    p(y) = \prod_{i=1}^{n} \mathcal B\bigl(y_i \mid \sigma(a_i)\bigr), \qquad
    \log p(y) = -\sum_{i=1}^{n} \operatorname{BCE}(a_i, y_i)
              = \sum_{i=1}^{n} \bigl[y_i a_i - \operatorname{softplus}(a_i)\bigr].

``Bernoulli(logits=a).to_event(1)`` computes the same numbers, but as two
distribution objects and in the order negate-then-sum: torch's ``Bernoulli.log_prob``
negates the per-unit cross-entropy (a full pass over, e.g., particles x data x units,
kept for the backward pass) before ``Independent`` sums it. :class:`IndependentBernoulli`
sums first and negates the sum, and builds one object per call instead of two;
on the SBN objectives that is 6-14 % of a training step (``benchmarks/profile_overhead.py``).

Validation follows torch and Pyro (``validate_args``, by default Pyro's global
switch :func:`pyro.enable_validation`): NaN logits are refused when the
distribution is built and values outside :math:`\{0, 1\}^n` when they are scored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch.distributions import constraints
from torch.distributions.utils import lazy_property


class IndependentBernoulli(TorchDistribution):
    r""":math:`\prod_i \mathcal B(y_i \mid \sigma(a_i))` over the rightmost dim of ``logits``.

    Equal in law and in every method to ``Bernoulli(logits=logits).to_event(1)``
    (batch shape ``logits.shape[:-1]``, event shape ``logits.shape[-1:]``), faster.

    :param logits: :math:`a`, at least one dim; any leading dims are batch dims.
    :param validate_args: as in :class:`torch.distributions.Distribution`.

    Example::

        y = pyro.sample("h1", IndependentBernoulli(logits=layer(x)))
    """

    arg_constraints = {"logits": constraints.independent(constraints.real, 1)}
    support = constraints.independent(constraints.boolean, 1)
    has_enumerate_support = False

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = None) -> None:
        if logits.dim() < 1:
            raise ValueError(f"logits need at least one dim (the units), got shape {tuple(logits.shape)}")
        self.logits = logits
        super().__init__(logits.shape[:-1], logits.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape: torch.Size, _instance: IndependentBernoulli | None = None) -> IndependentBernoulli:
        new = self._get_checked_instance(IndependentBernoulli, _instance)
        batch_shape = torch.Size(batch_shape)
        new.logits = self.logits.expand(batch_shape + self.event_shape)
        super(IndependentBernoulli, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def probs(self) -> torch.Tensor:
        r""":math:`\sigma(a)`."""
        return torch.sigmoid(self.logits)

    @property
    def mean(self) -> torch.Tensor:
        return self.probs

    @property
    def mode(self) -> torch.Tensor:
        return (self.logits > 0).to(self.logits.dtype)

    @property
    def variance(self) -> torch.Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            return torch.bernoulli(self.probs.expand(shape))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`-\sum_i \operatorname{BCE}(a_i, y_i)`, summed before the negation; broadcasts."""
        if self._validate_args:
            self._validate_sample(value)
        logits, value = torch.broadcast_tensors(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)

    def entropy(self) -> torch.Tensor:
        r""":math:`\sum_i \operatorname{BCE}(a_i, \sigma(a_i))`."""
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none").sum(-1)

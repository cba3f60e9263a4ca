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
sums first and negates the sum, builds one object per call instead of two, and
computes :math:`\sigma(a)` on the logits before Pyro's plates expand them; on the SBN
objectives that was 6-14 % of a training step (``benchmarks/profile_overhead.py``).

Validation follows torch and Pyro (``validate_args``, by default Pyro's global
switch :func:`pyro.enable_validation`, read at each call as torch does): NaN logits are refused when the
distribution is built and values outside :math:`\{0, 1\}^n` when they are scored.
Both checks are written to be cheap (:func:`has_nan`: one sum; :func:`is_binary`:
three light passes) instead of torch's compare-and-reduce passes, which on the SBN
objectives cost a fifth of a training step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch.distributions import constraints
from torch.distributions.utils import lazy_property

from pyro_dgm.distributions.binary_states import MAX_ENUMERATED_EVENT_UNITS, enumerate_binary_support
from pyro_dgm.distributions.validation_flag import own_validation_flag, set_validation_flag


def has_nan(values: torch.Tensor) -> bool:
    """Whether ``values`` holds a NaN: one sum (a NaN makes it NaN), then an exact look if it is.

    Ten times cheaper than ``isnan(values).any()`` in the usual NaN-free case; the exact
    look also clears sums made NaN by ``inf - inf`` alone.
    """
    values = values.detach()
    return bool(torch.isnan(values.sum())) and bool(torch.isnan(values).any())


def is_binary(values: torch.Tensor) -> bool:
    r"""Whether every entry of ``values`` is 0 or 1: :math:`0 \le v \le 1` and :math:`\sum v (1 - v) = 0`.

    Within :math:`[0, 1]` every term :math:`v(1 - v)` is non-negative and zero exactly
    at 0 and 1, so the sum (of non-negative terms, no cancellation) is zero exactly
    when the values are binary. Three passes (min/max, :math:`1 - v`, dot) instead of
    torch's compare-compare-or-reduce-reduce; NaNs fail the range test.
    """
    flat = values.detach().reshape(-1)
    if flat.numel() == 0:
        return True
    low, high = torch.aminmax(flat)
    return bool(low >= 0) and bool(high <= 1) and not bool(torch.dot(flat, 1 - flat))


def bernoulli_entropy(logits: torch.Tensor) -> torch.Tensor:
    r"""Entropy of :math:`\mathcal B(\sigma(a))` in nats, elementwise: :math:`\sigma(a)\,\mathrm{softplus}(-a) + \sigma(-a)\,\mathrm{softplus}(a)`.

    That is :math:`-q \log q - (1 - q) \log(1 - q)` with both logarithms taken from the logits;
    a sum of two non-negative terms, so it keeps its relative accuracy when saturated
    (:math:`|a| = 30`: about :math:`31 e^{-30}`), where the cross-entropy form
    :math:`\mathrm{BCE}(a, \sigma(a))` cancels to 0.
    """
    return torch.sigmoid(logits) * F.softplus(-logits) + torch.sigmoid(-logits) * F.softplus(logits)


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

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = None) -> None:
        if logits.dim() < 1:
            raise ValueError(f"logits need at least one dim (the units), got shape {tuple(logits.shape)}")
        self.logits = logits
        self._unexpanded_logits = logits
        super().__init__(logits.shape[:-1], logits.shape[-1:], validate_args=False)  # checked below, once
        set_validation_flag(self, validate_args)
        if self._validate_args and has_nan(logits):
            raise ValueError(f"IndependentBernoulli got NaN logits (shape {tuple(logits.shape)})")

    def expand(self, batch_shape: torch.Size, _instance: IndependentBernoulli | None = None) -> IndependentBernoulli:
        new = self._get_checked_instance(IndependentBernoulli, _instance)
        batch_shape = torch.Size(batch_shape)
        new.logits = self.logits.expand(batch_shape + self.event_shape)
        new._unexpanded_logits = self._unexpanded_logits
        super(IndependentBernoulli, new).__init__(batch_shape, self.event_shape, validate_args=False)
        set_validation_flag(new, own_validation_flag(self))
        return new

    @lazy_property
    def probs(self) -> torch.Tensor:
        r""":math:`\sigma(a)`, computed before any :meth:`expand` (e.g. by Pyro's particle plate) and expanded."""
        return torch.sigmoid(self._unexpanded_logits).expand(self.logits.shape)

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

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        """Whether the :math:`2^n` joint states are listed: :math:`n \\le` :data:`MAX_ENUMERATED_EVENT_UNITS`."""
        return self.event_shape[0] <= MAX_ENUMERATED_EVENT_UNITS

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """All :math:`2^n` joint states, shape (2^n, *batch, n) (with ``expand=False``: (2^n, 1, ..., 1, n)).

        The order is that of :func:`~pyro_dgm.distributions.binary_states.all_binary_configurations`
        (most significant unit first). Pyro's ``TraceEnum_ELBO`` sums the layer out with it.
        """
        return enumerate_binary_support(
            "IndependentBernoulli", self.event_shape[0], self.batch_shape, expand, self.logits.dtype, self.logits.device
        )

    def _validate_sample(self, value: torch.Tensor) -> None:
        """Torch's shape checks, then one pass for the support."""
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"the value must be a tensor, got {type(value).__name__}")
        if value.shape[-1:] != self.event_shape:
            raise ValueError(
                f"The right-most size of value must match event_shape: the value's last dim must be "
                f"the {self.event_shape[0]} units, got shape {tuple(value.shape)}"
            )
        try:
            torch.broadcast_shapes(value.shape, self.batch_shape + self.event_shape)
        except RuntimeError:
            raise ValueError(
                f"Value is not broadcastable with batch_shape+event_shape: a value of shape "
                f"{tuple(value.shape)} does not broadcast with the distribution's "
                f"{tuple(self.batch_shape + self.event_shape)}"
            ) from None
        if not is_binary(value):
            # torch's wording (Distribution._validate_sample), which callers and tests match on
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) "
                f"to be within the support ({self.support!r}) of the distribution {self!r}, "
                f"but found invalid values (entries must be 0 or 1):\n{value}"
            )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`-\sum_i \operatorname{BCE}(a_i, y_i)`, summed before the negation; broadcasts."""
        if self._validate_args:
            self._validate_sample(value)
        logits, value = torch.broadcast_tensors(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)

    def entropy(self) -> torch.Tensor:
        r""":math:`\sum_i H(\mathcal B(\sigma(a_i)))` (:func:`bernoulli_entropy`)."""
        return bernoulli_entropy(self.logits).sum(-1)

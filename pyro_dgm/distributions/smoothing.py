r"""Shared machinery of the smoothing transformations of binary latent variables.

A smoothing transformation replaces a binary :math:`z \sim \mathrm{Bernoulli}(q)` by a
continuous :math:`\zeta` drawn from the *marginal* (DVAE++ Eq. 2, Rolfe 2017 Sec. 2.1)

.. math::

    q(\zeta) = \sum_{z \in \{0, 1\}} q(z)\, r(\zeta \mid z)
             = (1 - q)\, r(\zeta \mid 0) + q\, r(\zeta \mid 1).

Everything except the inverse CDF follows from the two conditionals, so
:class:`SmoothingTransformation` implements the marginal's ``log_prob``, ``cdf``,
posterior :math:`\nu = q(z = 1 \mid \zeta)` (DVAE++ Sec. 5), ``conditional`` and
``expand`` once; a concrete smoother supplies the conditionals' log-densities, CDFs and
inverse CDFs, and the marginal's inverse CDF (the only genuinely smoother-specific
piece, used by ``rsample``).

Mixing weights are always taken from ``logits`` in log space
(:math:`\log q = -\mathrm{softplus}(-\ell)`, :math:`\log(1 - q) = -\mathrm{softplus}(\ell)`)
so that :math:`|\ell| = 30` stays exact in float32, where ``probs`` would round to 1.

Densities of the spike smoothers are taken with respect to the base measure
:math:`\mu = \delta_0 + \lambda`, i.e. a point mass at 0 plus Lebesgue measure on
:math:`(0, 1]`: the atom's "density" at :math:`\zeta = 0` is its mass, and an absolutely
continuous part has density 0 there.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from pyro.distributions import TorchDistribution
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits

from pyro_dgm.distributions.validation_flag import own_validation_flag, set_validation_flag

__all__ = [
    "SmoothingConditional",
    "SmoothingTransformation",
    "SpikeSmoothingTransformation",
    "TemperedSmoothingTransformation",
    "distinct_elements",
    "log1mexp",
    "log_positive_quadratic_root",
    "positive_finite",
]

ParameterLike = Union[torch.Tensor, float]

LOG_TWO = math.log(2.0)
# Mächler (2012): below log 2, log(-expm1(-x)) is accurate; above it, log1p(-exp(-x)) is.
LOG1MEXP_SWITCH = LOG_TWO


def distinct_elements(value: torch.Tensor) -> torch.Tensor:
    """A view of ``value`` with every broadcast (stride-0) dimension cut to size 1.

    It holds each distinct element of an expanded tensor once, and broadcasts back to
    ``value.shape``: an elementwise check on it costs one evaluation per distinct element.
    """
    return value[tuple(slice(0, 1) if stride == 0 else slice(None) for stride in value.stride())]


class _PositiveFinite(constraints.Constraint):
    """Strictly positive and finite: an inverse temperature; use ``BinaryLimit`` for beta = inf."""

    is_discrete = False
    event_dim = 0

    def check(self, value: torch.Tensor) -> torch.Tensor:
        distinct = distinct_elements(value)  # beta is usually one number broadcast to the batch
        return ((distinct > 0) & torch.isfinite(distinct)).expand(value.shape)

    def __repr__(self) -> str:
        return "PositiveFinite()"


positive_finite = _PositiveFinite()


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\log(1 - e^{-x})` for :math:`x > 0` without cancellation.

    Uses :math:`\log(-\mathrm{expm1}(-x))` for :math:`x \le \log 2` and
    :math:`\mathrm{log1p}(-e^{-x})` above (Mächler 2012); both branches are finite for every
    :math:`x > 0`, so ``torch.where`` passes finite gradients.
    """
    return torch.where(x <= LOG1MEXP_SWITCH, torch.log(-torch.expm1(-x)), torch.log1p(-torch.exp(-x)))


def log_positive_quadratic_root(log_a: torch.Tensor, b: torch.Tensor, log_c: torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\log x` for the positive root of :math:`a x^2 + b x - c = 0`, :math:`a, c > 0`.

    With :math:`s = 2\sqrt{ac}` and :math:`h = \sqrt{b^2 + s^2}` (``torch.hypot``, so that
    neither :math:`b^2` nor :math:`4ac` under- or overflows), the two algebraically equal forms

    .. math::

        x = \frac{2c}{b + h} \quad (b \ge 0), \qquad x = \frac{h - b}{2a} \quad (b < 0)

    are chosen by the sign of :math:`b` so that the sum in the numerator or denominator never
    cancels. ``a`` and ``c`` enter as logarithms because in the smoothers they are products of
    probabilities and :math:`e^{-\beta}` that underflow float32. Each branch is evaluated on
    :math:`b` clamped to its own sign, so the branch that ``torch.where`` discards is finite
    and its (zero-weighted) gradient cannot turn into NaN.
    """
    tiny = torch.finfo(b.dtype).tiny
    # s = 2 sqrt(ac) is >= 1e-28 for the documented parameter range; the floor only keeps
    # b + h > 0 should it ever underflow.
    s = torch.exp(LOG_TWO + 0.5 * (log_a + log_c)).clamp(min=tiny)
    b_nonneg = b.clamp(min=0)
    b_neg = b.clamp(max=0)
    log_root_via_c = LOG_TWO + log_c - torch.log(b_nonneg + torch.hypot(b_nonneg, s))
    log_root_via_a = torch.log(torch.hypot(b_neg, s) - b_neg) - LOG_TWO - log_a
    return torch.where(b >= 0, log_root_via_c, log_root_via_a)


class SmoothingTransformation(TorchDistribution):
    r"""Marginal :math:`q(\zeta) = (1 - q)\, r(\zeta \mid 0) + q\, r(\zeta \mid 1)` (DVAE++ Eq. 2).

    Parameterised by ``probs`` :math:`= q = q(z = 1)` or ``logits`` :math:`= \ell = \log q - \log(1 - q)`
    (exactly one of them). Sampling is reparameterised through the inverse CDF,
    :math:`\zeta = F^{-1}(\rho)`, :math:`\rho \sim U[0, 1]`, which is continuous in :math:`\rho`
    and differentiable in the parameters (Rolfe 2017 Eq. 8).

    Subclasses implement ``_conditional_log_densities``, ``_conditional_cdfs``,
    ``_conditional_icdfs``, ``_conditional_moments`` (for :math:`r(\zeta \mid z)`) and
    ``_inverse_cdf`` (for the marginal); ``mean`` and ``variance`` follow in closed form.
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(
        self,
        *,
        probs: Optional[ParameterLike] = None,
        logits: Optional[ParameterLike] = None,
        validate_args: Optional[bool] = None,
    ) -> None:
        self._initialise(probs, logits, validate_args)

    def _initialise(
        self,
        probs: Optional[ParameterLike],
        logits: Optional[ParameterLike],
        validate_args: Optional[bool],
        **parameters: ParameterLike,
    ) -> None:
        """Store exactly one of probs/logits plus any extra parameters, all broadcast together."""
        if (probs is None) == (logits is None):
            raise ValueError(
                f"{type(self).__name__}: exactly one of `probs` or `logits` must be given, "
                f"got {'both' if probs is not None else 'neither'}."
            )
        name, value = ("probs", probs) if probs is not None else ("logits", logits)
        broadcast = broadcast_all(value, *parameters.values())
        setattr(self, name, broadcast[0])
        for parameter_name, parameter_value in zip(parameters, broadcast[1:]):
            setattr(self, parameter_name, parameter_value)
        self._unbroadcast = {
            parameter_name: given if isinstance(given, torch.Tensor) else broadcast_value.new_tensor(given)
            for parameter_name, given, broadcast_value in zip(
                (name, *parameters), (value, *parameters.values()), broadcast
            )
        }
        super().__init__(batch_shape=broadcast[0].shape, validate_args=validate_args)

    def _unbroadcast_parameter(self, name: str) -> torch.Tensor:
        """Parameter ``name`` as given, before broadcasting to the batch shape (it broadcasts to it).

        Pyro's plates expand a smoother to (particles, data, units) and ``beta`` is often
        one number: an elementwise formula of the parameters alone costs one evaluation
        per distinct value on this tensor, not one per batch element, and its gradient
        reaches the parameter without a full-shape zero tensor (indexing would make one).
        """
        return self.__dict__.get("_unbroadcast", {}).get(name, getattr(self, name))

    # ----------------------------------------------------------------- parameters
    @lazy_property
    def logits(self) -> torch.Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> torch.Tensor:
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def _log_prob_one(self) -> torch.Tensor:
        r""":math:`\log q = -\mathrm{softplus}(-\ell)`."""
        return torch.nn.functional.logsigmoid(self.logits)

    @property
    def _log_prob_zero(self) -> torch.Tensor:
        r""":math:`\log(1 - q) = -\mathrm{softplus}(\ell)`."""
        return torch.nn.functional.logsigmoid(-self.logits)

    @property
    def _prob_one(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    @property
    def _prob_zero(self) -> torch.Tensor:
        return torch.sigmoid(-self.logits)

    def _prob_zero_minus(self, rho: torch.Tensor, logits: Optional[torch.Tensor] = None) -> torch.Tensor:
        r"""Return :math:`(1 - q) - \rho` without rounding :math:`1 - q` to 1.

        When :math:`\ell < 0`, :math:`1 - q > 1/2` carries no information about a tiny
        :math:`q`; the equal form :math:`(1 - \rho) - q` keeps it (and :math:`1 - \rho` is
        exact for :math:`\rho \ge 1/2`), so e.g. :math:`\rho = 1` gives exactly :math:`-q`.

        :param logits: :math:`\ell`, by default :attr:`logits`; any tensor of the same values
            that broadcasts with it (:meth:`_unbroadcast_parameter`).
        """
        if logits is None:
            logits = self.logits
        return torch.where(logits < 0, (1 - rho) - torch.sigmoid(logits), torch.sigmoid(-logits) - rho)

    # ---------------------------------------------------- smoother-specific parts
    def _conditional_log_densities(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""Return :math:`(\log r(\zeta \mid 0), \log r(\zeta \mid 1))` on the support."""
        raise NotImplementedError

    def _conditional_cdfs(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""Return :math:`(F_{r(\cdot \mid 0)}(\zeta), F_{r(\cdot \mid 1)}(\zeta))` on the support."""
        raise NotImplementedError

    def _conditional_icdfs(self, rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""Return :math:`(F^{-1}_{r(\cdot \mid 0)}(\rho), F^{-1}_{r(\cdot \mid 1)}(\rho))`."""
        raise NotImplementedError

    def _inverse_cdf(self, rho: torch.Tensor) -> torch.Tensor:
        r"""Return the marginal's (generalised) inverse CDF :math:`F^{-1}(\rho)`."""
        raise NotImplementedError

    def _conditional_moments(self) -> Tuple[Tuple[ParameterLike, ParameterLike], Tuple[ParameterLike, ParameterLike]]:
        r"""Return :math:`((m_0, v_0), (m_1, v_1))`, mean and variance of :math:`r(\zeta \mid 0)` and :math:`r(\zeta \mid 1)`.

        Each a number or a tensor that broadcasts with the batch (closed forms of the parameters).
        """
        raise NotImplementedError

    def _log_marginal_density(self, zeta: torch.Tensor) -> torch.Tensor:
        log_r0, log_r1 = self._conditional_log_densities(zeta)
        return torch.logaddexp(self._log_prob_zero + log_r0, self._log_prob_one + log_r1)

    def _posterior_probs(self, zeta: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self._posterior_logits(zeta))

    def _log_density_ratio(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`\log r(\zeta \mid 1) - \log r(\zeta \mid 0)` for :math:`\nu`; closed forms override it.

        :meth:`log_density_ratio` stays the difference of the conditionals' log-densities
        exactly as :meth:`conditional` computes them; this one may differ by rounding.
        """
        log_r0, log_r1 = self._conditional_log_densities(zeta)
        return log_r1 - log_r0

    def _posterior_logits(self, zeta: torch.Tensor) -> torch.Tensor:
        return self.logits + self._log_density_ratio(zeta)

    # ------------------------------------------------------------- public methods
    def _validate_rho(self, rho: torch.Tensor) -> None:
        if self._validate_args and not bool(((rho >= 0) & (rho <= 1)).all()):
            raise ValueError(f"{type(self).__name__}.icdf: `rho` must lie in [0, 1] (and not be NaN).")

    def _checked(self, zeta: torch.Tensor) -> torch.Tensor:
        """Return ``zeta`` after checking it lies in the support (when validation is on)."""
        if self._validate_args:
            self._validate_sample(zeta)
        return zeta

    def log_prob(self, zeta: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\log q(\zeta) = \mathrm{logsumexp}_z[\log q(z) + \log r(\zeta \mid z)]` (DVAE++ Eq. 2)."""
        return self._log_marginal_density(self._checked(zeta))

    def cdf(self, zeta: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`F(\zeta) = (1 - q) F_{r(\cdot \mid 0)}(\zeta) + q F_{r(\cdot \mid 1)}(\zeta)`."""
        cdf_zero, cdf_one = self._conditional_cdfs(self._checked(zeta))
        return (self._prob_zero * cdf_zero + self._prob_one * cdf_one).clamp(max=1)  # clamp: rounding only

    def icdf(self, rho: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`F^{-1}(\rho)`, differentiable in the parameters; :math:`\rho \in [0, 1]`."""
        self._validate_rho(rho)
        return self._inverse_cdf(rho)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        r"""Draw :math:`\zeta = F^{-1}(\rho)` with :math:`\rho \sim U[0, 1)` (Rolfe 2017 Eq. 8)."""
        shape = self._extended_shape(sample_shape)
        rho = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device)
        return self._inverse_cdf(rho)

    @property
    def mean(self) -> torch.Tensor:
        r""":math:`\mathbb E\zeta = (1 - q)\, m_0 + q\, m_1`, :math:`m_z` the mean of :math:`r(\zeta \mid z)` (closed form)."""
        (mean_zero, _), (mean_one, _) = self._conditional_moments()
        return (self._prob_zero * mean_zero + self._prob_one * mean_one).expand(self.batch_shape)

    @property
    def variance(self) -> torch.Tensor:
        r"""Law of total variance over :math:`z`: :math:`(1 - q) v_0 + q v_1 + q (1 - q) (m_1 - m_0)^2` (closed form)."""
        (mean_zero, variance_zero), (mean_one, variance_one) = self._conditional_moments()
        prob_zero, prob_one = self._prob_zero, self._prob_one
        between = prob_zero * prob_one * (mean_one - mean_zero) ** 2
        return (prob_zero * variance_zero + prob_one * variance_one + between).expand(self.batch_shape)

    def log_density_ratio(self, zeta: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\log r(\zeta \mid 1) - \log r(\zeta \mid 0)` (:math:`\pm\infty` where one vanishes)."""
        log_r0, log_r1 = self._conditional_log_densities(self._checked(zeta))
        ratio = log_r1 - log_r0
        return ratio.expand(torch.broadcast_shapes(ratio.shape, self.batch_shape))

    def posterior_logits(self, zeta: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\mathrm{logit}\, q(z = 1 \mid \zeta) = \ell + \log r(\zeta \mid 1) - \log r(\zeta \mid 0)` (DVAE++ Sec. 5)."""
        return self._posterior_logits(self._checked(zeta))

    def posterior_probs(self, zeta: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\nu(\zeta) = q(z = 1 \mid \zeta) = \sigma(\ell + \log r(\zeta \mid 1) - \log r(\zeta \mid 0))` (DVAE++ Sec. 5)."""
        return self._posterior_probs(self._checked(zeta))

    def conditional(self, z: ParameterLike) -> "SmoothingConditional":
        r"""Return :math:`r(\zeta \mid z)` alone, for :math:`z \in \{0, 1\}` (a tensor broadcasting with the batch)."""
        return SmoothingConditional(self, z, validate_args=own_validation_flag(self))

    def expand(self, batch_shape: torch.Size, _instance: Optional["SmoothingTransformation"] = None) -> "SmoothingTransformation":
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = torch.Size(batch_shape)
        for name in self.arg_constraints:
            if name in self.__dict__:
                setattr(new, name, getattr(self, name).expand(batch_shape))
        if "_unbroadcast" in self.__dict__:
            new._unbroadcast = self._unbroadcast
        super(SmoothingTransformation, new).__init__(batch_shape, validate_args=False)
        set_validation_flag(new, own_validation_flag(self))
        return new


class TemperedSmoothingTransformation(SmoothingTransformation):
    r"""A smoothing transformation with an inverse temperature :math:`\beta > 0`.

    ``batch_shape`` is the broadcast of ``beta`` with ``probs``/``logits``; gradients reach
    ``beta`` through ``rsample`` as well as through ``log_prob``.
    """

    arg_constraints = {**SmoothingTransformation.arg_constraints, "beta": positive_finite}

    def __init__(
        self,
        beta: ParameterLike,
        probs: Optional[ParameterLike] = None,
        logits: Optional[ParameterLike] = None,
        validate_args: Optional[bool] = None,
    ) -> None:
        self._initialise(probs, logits, validate_args, beta=beta)


class SpikeSmoothingTransformation(SmoothingTransformation):
    r"""Spike-and-X smoothing: :math:`r(\zeta \mid 0) = \delta(\zeta)`, :math:`r(\zeta \mid 1)` a slab on :math:`(0, 1]`.

    Densities are with respect to :math:`\delta_0 + \lambda`: :math:`\log q(0) = \log(1 - q)`
    and :math:`\log q(\zeta) = \log q + \log r(\zeta \mid 1)` for :math:`\zeta > 0`. Hence
    :math:`\nu(0) = 0` and :math:`\nu(\zeta) = 1` for :math:`\zeta > 0` (Rolfe 2017 Sec. 2.1:
    :math:`\zeta = 0 \Leftrightarrow z = 0`). The marginal inverse CDF is generic:

    .. math::

        F^{-1}(\rho) = \begin{cases} F_{\mathrm{slab}}^{-1}(t), & t = \frac{\rho - (1 - q)}{q} > 0 \\
        0, & \text{otherwise,} \end{cases}

    the rectification of Rolfe 2017 Eq. 9 / App. D.2; :math:`t` is computed from
    ``_prob_zero_minus`` so that a tiny :math:`q` is not lost in :math:`\rho - (1 - q)`. The kink :math:`t = 0` goes to the spike
    branch (zero, left derivative) and the slab branch is evaluated at :math:`t = 1` there, so
    neither value nor gradient can be infinite.

    Subclasses implement ``_slab_log_density``, ``_slab_cdf`` and ``_slab_icdf`` (finite on all of
    :math:`[0, 1]`), and ``_slab_moments``.
    """

    def _slab_log_density(self, zeta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _slab_cdf(self, zeta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _slab_icdf(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _slab_moments(self) -> Tuple[ParameterLike, ParameterLike]:
        r"""Return the mean and variance of the slab :math:`r(\zeta \mid 1)`."""
        raise NotImplementedError

    def _conditional_moments(self) -> Tuple[Tuple[ParameterLike, ParameterLike], Tuple[ParameterLike, ParameterLike]]:
        return (0.0, 0.0), self._slab_moments()  # the spike: a point mass at 0

    def _conditional_log_densities(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        at_spike = zeta == 0
        log_spike = torch.zeros_like(zeta).masked_fill(~at_spike, -math.inf)
        log_slab = self._slab_log_density(zeta).masked_fill(at_spike, -math.inf)
        return log_spike, log_slab

    def _conditional_cdfs(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return torch.ones_like(zeta), self._slab_cdf(zeta)

    def _conditional_icdfs(self, rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros_like(rho), self._slab_icdf(rho)

    def _inverse_cdf(self, rho: torch.Tensor) -> torch.Tensor:
        prob_one, above_spike = self._prob_one, -self._prob_zero_minus(rho)  # q, rho - (1 - q)
        # rho > 1 - q is tested on 1 - q exactly as ``cdf`` computes F(0), so icdf(cdf(0)) = 0.
        on_slab = (rho > self._prob_zero) & (above_spike > 0) & (prob_one > 0)
        # Off the slab, t is replaced by 1 *before* dividing: a q that underflows (logit below
        # ~ -88 in float32) would otherwise send 0 * inf = NaN back through the unused branch.
        safe_fraction = torch.where(on_slab, above_spike, torch.ones_like(above_spike)) / torch.where(
            on_slab, prob_one, torch.ones_like(prob_one)
        )
        zeta = self._slab_icdf(safe_fraction).clamp(0, 1)  # clamp: rounding only
        return torch.where(on_slab, zeta, torch.zeros_like(zeta))


class SmoothingConditional(TorchDistribution):
    r""":math:`r(\zeta \mid z)` of a smoothing transformation on its own, for a fixed :math:`z \in \{0, 1\}`.

    Elementwise, ``log_prob``/``cdf``/``icdf`` select the :math:`z = 1` or :math:`z = 0`
    conditional of the parent smoother; for a spike smoother :math:`r(\zeta \mid 0)` is the
    point mass at 0, with ``log_prob`` 0 there and :math:`-\infty` elsewhere (density with
    respect to :math:`\delta_0 + \lambda`). ``rsample`` inverts the conditional CDF.
    """

    arg_constraints = {"z": constraints.boolean}

    def __init__(self, smoothing: SmoothingTransformation, z: ParameterLike, validate_args: Optional[bool] = None) -> None:
        z = torch.as_tensor(z, dtype=smoothing.logits.dtype, device=smoothing.logits.device)
        batch_shape = torch.broadcast_shapes(z.shape, smoothing.batch_shape)
        self.smoothing = smoothing.expand(batch_shape)
        self.z = z.expand(batch_shape)
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    # is_discrete is left undeclared (torch then raises NotImplementedError on the class):
    # the parent's support is continuous for a smoother and Boolean for BinaryLimit.
    @constraints.dependent_property(event_dim=0)
    def support(self) -> constraints.Constraint:
        return self.smoothing.support

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self.smoothing.has_rsample

    def _select(self, values: Tuple[ParameterLike, ParameterLike]) -> torch.Tensor:
        value_zero, value_one = (torch.as_tensor(value, dtype=self.z.dtype, device=self.z.device) for value in values)
        return torch.where(self.z.bool(), value_one, value_zero)

    @property
    def mean(self) -> torch.Tensor:
        r"""The mean :math:`m_z` of :math:`r(\zeta \mid z)` (0 for a spike's :math:`z = 0`)."""
        (mean_zero, _), (mean_one, _) = self.smoothing._conditional_moments()
        return self._select((mean_zero, mean_one)).expand(self.batch_shape)

    @property
    def variance(self) -> torch.Tensor:
        r"""The variance :math:`v_z` of :math:`r(\zeta \mid z)` (0 for a spike's :math:`z = 0`)."""
        (_, variance_zero), (_, variance_one) = self.smoothing._conditional_moments()
        return self._select((variance_zero, variance_one)).expand(self.batch_shape)

    def log_prob(self, zeta: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\log r(\zeta \mid z)`."""
        if self._validate_args:
            self._validate_sample(zeta)
        return self._select(self.smoothing._conditional_log_densities(zeta))

    def cdf(self, zeta: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`F_{r(\cdot \mid z)}(\zeta)`."""
        if self._validate_args:
            self._validate_sample(zeta)
        return self._select(self.smoothing._conditional_cdfs(zeta))

    def icdf(self, rho: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`F^{-1}_{r(\cdot \mid z)}(\rho)`."""
        self.smoothing._validate_rho(rho)
        return self._select(self.smoothing._conditional_icdfs(rho))

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        rho = torch.rand(shape, dtype=self.z.dtype, device=self.z.device)
        return self._select(self.smoothing._conditional_icdfs(rho))

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def expand(self, batch_shape: torch.Size, _instance: Optional["SmoothingConditional"] = None) -> "SmoothingConditional":
        new = self._get_checked_instance(SmoothingConditional, _instance)
        batch_shape = torch.Size(batch_shape)
        new.smoothing = self.smoothing.expand(batch_shape)
        new.z = self.z.expand(batch_shape)
        super(SmoothingConditional, new).__init__(batch_shape, validate_args=False)
        set_validation_flag(new, own_validation_flag(self))
        return new

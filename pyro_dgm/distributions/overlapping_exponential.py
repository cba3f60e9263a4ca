r"""Overlapping exponential smoothing (DVAE++, Vahdat et al. 2018, Sec. 3).

.. math::

    r(\zeta \mid 0) = \frac{e^{-\beta\zeta}}{Z_\beta}, \qquad
    r(\zeta \mid 1) = \frac{e^{\beta(\zeta - 1)}}{Z_\beta}, \qquad
    Z_\beta = \frac{1 - e^{-\beta}}{\beta}, \qquad \zeta \in [0, 1].

The rising exponential :math:`r(\zeta \mid 1)` is also the slab of Rolfe's
spike-and-exponential (Rolfe 2017 Eq. 9), so its density, CDF and inverse CDF live here
as functions and are shared. Derivation of the inverse CDF:
``docs/derivations/overlapping_exponential.md``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import List, Tuple

import torch
import torch.nn.functional as F

from pyro_dgm.distributions.smoothing import TemperedSmoothingTransformation, log1mexp, log_positive_quadratic_root

__all__ = [
    "OverlappingExponential",
    "decaying_exponential_cdf",
    "decaying_exponential_icdf",
    "decaying_exponential_log_density",
    "decaying_exponential_mean",
    "truncated_exponential_variance",
    "rising_exponential_cdf",
    "rising_exponential_icdf",
    "rising_exponential_log_density",
]


def rising_exponential_log_density(zeta: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \frac{\beta e^{\beta(\zeta - 1)}}{1 - e^{-\beta}} = \log\beta + \beta(\zeta - 1) - \log(1 - e^{-\beta})` (``log1mexp``; no :math:`e^{\beta}` overflow)."""
    return torch.log(beta) + beta * (zeta - 1) - log1mexp(beta)


def decaying_exponential_log_density(zeta: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \frac{\beta e^{-\beta\zeta}}{1 - e^{-\beta}} = \log\beta - \beta\zeta - \log(1 - e^{-\beta})`."""
    return torch.log(beta) - beta * zeta - log1mexp(beta)


def rising_exponential_cdf(zeta: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac{e^{\beta\zeta} - 1}{e^{\beta} - 1} = e^{\beta(\zeta - 1)} \frac{\mathrm{expm1}(-\beta\zeta)}{\mathrm{expm1}(-\beta)}`.

    The right-hand form (Rolfe 2017 Sec. 2.1 multiplied through by :math:`e^{-\beta}`) never
    forms :math:`e^{\beta}`, which overflows float32 at :math:`\beta \approx 89`.
    """
    return torch.exp(beta * (zeta - 1)) * torch.expm1(-beta * zeta) / torch.expm1(-beta)


def decaying_exponential_cdf(zeta: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac{1 - e^{-\beta\zeta}}{1 - e^{-\beta}} = \frac{\mathrm{expm1}(-\beta\zeta)}{\mathrm{expm1}(-\beta)}` (no cancellation at small :math:`\beta\zeta`)."""
    return torch.expm1(-beta * zeta) / torch.expm1(-beta)


def rising_exponential_icdf(t: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r"""Inverse of :func:`rising_exponential_cdf` (Rolfe 2017 Eq. 9 with :math:`t = (\rho + q - 1)/q`).

    .. math::

        \frac{1}{\beta}\log\bigl[t (e^{\beta} - 1) + 1\bigr]
        = 1 + \frac{1}{\beta} \operatorname{logaddexp}\bigl(\log t,\ \log(1 - t) - \beta\bigr),

    which avoids the overflow of :math:`e^{\beta}` and is exact at :math:`t = 0` (gives 0) and
    :math:`t = 1` (gives 1). :math:`1 - t` is floored at machine epsilon so that at
    :math:`t = 1` the discarded :math:`\log(1 - t) = -\infty` term cannot give a NaN gradient;
    the floor changes the result by at most :math:`\epsilon e^{-\beta}`, below rounding.
    """
    eps = torch.finfo(t.dtype).eps
    one_minus_t = (1 - t).clamp(min=eps)
    # clamp: the floor would put t = 1 at 1 + eps e^{-beta}/beta, outside the support
    return (1 + torch.logaddexp(torch.log(t), torch.log(one_minus_t) - beta) / beta).clamp(max=1)


def decaying_exponential_icdf(rho: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r"""Inverse of :func:`decaying_exponential_cdf`.

    .. math::

        -\frac{1}{\beta}\log\bigl[1 - \rho(1 - e^{-\beta})\bigr]
        = -\frac{1}{\beta}\operatorname{logaddexp}\bigl(\mathrm{log1p}(-\rho),\ \log\rho - \beta\bigr),

    exact at both ends and free of the :math:`\mathrm{log1p}(-1)` that the left-hand form hits
    in float32 at :math:`\rho = 1`, :math:`\beta \gtrsim 17`. :math:`\rho` is floored at the
    smallest normal number for the same gradient reason as in :func:`rising_exponential_icdf`.
    """
    tiny = torch.finfo(rho.dtype).tiny
    # clamp: the floor would put rho = 0 at -tiny e^{-beta}/beta, outside the support
    return (-torch.logaddexp(torch.log1p(-rho), torch.log(rho.clamp(min=tiny)) - beta) / beta).clamp(min=0)


SERIES_MAX_BETA = 1.0
r"""Below this :math:`\beta` the moments of the truncated exponential are summed as power series.

The closed forms subtract two terms of size :math:`1/\beta` (mean) or :math:`1/\beta^2`
(variance) to get :math:`O(1)`: a relative error of about :math:`4\epsilon/\beta` and
:math:`12\epsilon/\beta^2`, so about :math:`12\epsilon` at worst above this threshold. The
series converge for :math:`\beta < 2\pi`; at :math:`\beta \le 1` each term is at most
:math:`(1/2\pi)^2 \approx 1/40` of the previous one, so :data:`SERIES_TERMS` terms leave a
remainder below :math:`10^{-19}`.
"""

SERIES_TERMS = 12
"""Terms of the moment series used below :data:`SERIES_MAX_BETA` (remainder below float64 rounding)."""


def _bernoulli_numbers(count: int) -> List[Fraction]:
    r"""Exact :math:`B_0, \dots, B_{count - 1}` (:math:`B_1 = -1/2`) by :math:`\sum_{k<m+1} \binom{m+1}{k} B_k = 0`."""
    numbers: List[Fraction] = []
    for m in range(count):
        binomial, total = Fraction(1), Fraction(0)  # binomial = C(m + 1, k)
        for k, number in enumerate(numbers):
            total += binomial * number
            binomial = binomial * (m + 1 - k) / (k + 1)
        numbers.append(Fraction(1) if m == 0 else -total / (m + 1))
    return numbers


_BERNOULLI = _bernoulli_numbers(2 * SERIES_TERMS + 1)
_FACTORIALS = [math.factorial(n) for n in range(2 * SERIES_TERMS + 1)]

_MEAN_SERIES = [float(-_BERNOULLI[2 * j] / _FACTORIALS[2 * j]) for j in range(1, SERIES_TERMS + 1)]
r"""Coefficients :math:`-B_{2j}/(2j)!` of :math:`\beta^{2j - 1}` in :math:`1/\beta - 1/(e^\beta - 1) - 1/2`."""

_VARIANCE_SERIES = [float((2 * n - 1) * _BERNOULLI[2 * n] / _FACTORIALS[2 * n]) for n in range(1, SERIES_TERMS + 1)]
r"""Coefficients :math:`(2n - 1) B_{2n}/(2n)!` of :math:`\beta^{2n - 2}` in the variance (its first is 1/12)."""


def _polynomial(coefficients: List[float], x: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_k c_k x^k` by Horner's rule."""
    total = torch.full_like(x, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        total = total * x + coefficient
    return total


def decaying_exponential_mean(beta: torch.Tensor) -> torch.Tensor:
    r"""Mean of :math:`\beta e^{-\beta\zeta}/(1 - e^{-\beta})` on :math:`[0, 1]`: :math:`\frac1\beta - \frac{1}{e^\beta - 1}`.

    The rising exponential :math:`r(\zeta \mid 1)` is its mirror image, with mean one minus this.
    Below :data:`SERIES_MAX_BETA`: :math:`\frac12 - \sum_{j \ge 1} B_{2j}\beta^{2j-1}/(2j)!`
    (from :math:`x/(e^x - 1) = \sum_k B_k x^k/k!`). Each branch is evaluated at a safe
    :math:`\beta` where ``torch.where`` discards it, so neither overflows nor passes a NaN gradient.
    """
    small = beta < SERIES_MAX_BETA
    safe_beta = torch.where(small, torch.ones_like(beta), beta)
    closed_form = 1 / safe_beta + torch.exp(-safe_beta) / torch.expm1(-safe_beta)  # no e^beta overflow
    series_beta = torch.where(small, beta, torch.zeros_like(beta))
    series = 0.5 + series_beta * _polynomial(_MEAN_SERIES, series_beta * series_beta)
    return torch.where(small, series, closed_form)


def truncated_exponential_variance(beta: torch.Tensor) -> torch.Tensor:
    r"""Variance of the exponential of rate :math:`\beta` truncated to :math:`[0, 1]` (either direction).

    .. math::

        v(\beta) = \frac{1}{\beta^2} - \frac{e^{\beta}}{(e^{\beta} - 1)^2}
                 = \frac{1}{\beta^2} - \frac{e^{-\beta}}{\mathrm{expm1}(-\beta)^2}
                 = -\frac{d}{d\beta}\Bigl(\frac1\beta - \frac{1}{e^\beta - 1}\Bigr),

    which tends to 1/12 (the uniform) as :math:`\beta \to 0` and to :math:`1/\beta^2` as
    :math:`\beta \to \infty`. Below :data:`SERIES_MAX_BETA`:
    :math:`\sum_{n \ge 1} (2n - 1) B_{2n} \beta^{2n-2}/(2n)!`.
    """
    small = beta < SERIES_MAX_BETA
    safe_beta = torch.where(small, torch.ones_like(beta), beta)
    closed_form = safe_beta.pow(-2) - torch.exp(-safe_beta) / torch.expm1(-safe_beta).pow(2)
    series_beta = torch.where(small, beta, torch.zeros_like(beta))
    series = _polynomial(_VARIANCE_SERIES, series_beta * series_beta)
    return torch.where(small, series, closed_form)


class OverlappingExponential(TemperedSmoothingTransformation):
    r"""Mixture of two overlapping truncated exponentials on :math:`[0, 1]` (DVAE++ Sec. 3).

    .. math::

        q(\zeta) = (1 - q)\frac{e^{-\beta\zeta}}{Z_\beta} + q\frac{e^{\beta(\zeta - 1)}}{Z_\beta},
        \qquad Z_\beta = \frac{1 - e^{-\beta}}{\beta}.

    As :math:`\beta \to \infty` it tends to :math:`(1 - q)\delta(\zeta) + q\,\delta(\zeta - 1)`.
    The posterior logit is :math:`\ell + \beta(2\zeta - 1)`.

    The inverse CDF (DVAE++ Eq. 3) is :math:`\zeta = -\log(x)/\beta` with :math:`x` the
    positive root of

    .. math::

        (1 - q)\, x^2 + b\, x - q e^{-\beta} = 0, \qquad
        b = \rho - (1 - q) + e^{-\beta}(q - \rho),

    i.e. the paper's :math:`x^2 + b' x + c'` multiplied by :math:`1 - q` so that nothing is
    divided by a vanishing :math:`1 - q`. The root is taken in log space by
    :func:`~pyro_dgm.distributions.smoothing.log_positive_quadratic_root`, which picks between
    :math:`2c/(b + \sqrt{b^2 + 4ac})` and :math:`(-b + \sqrt{b^2 + 4ac})/(2a)` by the sign of
    :math:`b` (no cancellation) and never forms :math:`q e^{-\beta}` outside a logarithm
    (it underflows float32 for :math:`\beta = 100`, :math:`\ell = -30`).

    Example::

        >>> import torch
        >>> q = OverlappingExponential(torch.tensor(5.0), logits=torch.tensor([-1.0, 2.0]))
        >>> zeta = q.rsample((3,))
        >>> zeta.shape
        torch.Size([3, 2])
    """

    def _conditional_log_densities(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return decaying_exponential_log_density(zeta, self.beta), rising_exponential_log_density(zeta, self.beta)

    def _log_density_ratio(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`\log r(\zeta \mid 1) - \log r(\zeta \mid 0) = \beta(2\zeta - 1)`, the posterior logit's shift.

        :math:`\log\beta` and :math:`\log Z_\beta` cancel, so neither is computed (DVAE++ Sec. 5).
        """
        return self.beta * (2 * zeta - 1)

    def _conditional_cdfs(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return decaying_exponential_cdf(zeta, self.beta), rising_exponential_cdf(zeta, self.beta)

    def _conditional_moments(self) -> Tuple[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]:
        beta = self._unbroadcast_parameter("beta")
        mean_zero, variance = decaying_exponential_mean(beta), truncated_exponential_variance(beta)
        return (mean_zero, variance), (1 - mean_zero, variance)  # r(. | 1) mirrors r(. | 0)

    def _conditional_icdfs(self, rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return decaying_exponential_icdf(rho, self.beta), rising_exponential_icdf(rho, self.beta)

    def _inverse_cdf(self, rho: torch.Tensor) -> torch.Tensor:
        # the parameters as given: terms of them alone are not evaluated per batch element
        logits, beta = self._unbroadcast_parameter("logits"), self._unbroadcast_parameter("beta")
        log_a = F.logsigmoid(-logits)  # a = 1 - q
        log_c = F.logsigmoid(logits) - beta  # c = q e^{-beta}
        b = -self._prob_zero_minus(rho, logits) + torch.exp(-beta) * (torch.sigmoid(logits) - rho)
        log_x = log_positive_quadratic_root(log_a, b, log_c)  # x = e^{-beta zeta}, DVAE++ Eq. 3
        zeta = (-log_x / beta).clamp(0, 1)  # clamp: rounding only
        return zeta.expand(torch.broadcast_shapes(zeta.shape, self.batch_shape))

r"""Overlapping logistic smoothing (DVAE++, Vahdat et al. 2018, Sec. 3 and App. B).

.. math::

    r(\zeta \mid z) = \frac{\beta\, e^{-\beta(\zeta - z)}}{\bigl(1 + e^{-\beta(\zeta - z)}\bigr)^2},
    \qquad F_{r(\cdot \mid z)}(\zeta) = \sigma\bigl(\beta(\zeta - z)\bigr), \qquad \zeta \in \mathbb{R},

logistic distributions centred at 0 and 1 with scale :math:`1/\beta`. Derivation of the
closed-form inverse CDF: ``docs/derivations/overlapping_logistic.md``.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
from torch.distributions import constraints
from torch.nn.functional import softplus

from pyro_dgm.distributions.smoothing import TemperedSmoothingTransformation, log_positive_quadratic_root

__all__ = ["OverlappingLogistic"]

LOGISTIC_VARIANCE_AT_UNIT_SCALE = math.pi**2 / 3
"""Variance of the standard logistic distribution; scale s multiplies it by s^2."""


def _clip_to_open_unit_interval(rho: torch.Tensor) -> torch.Tensor:
    r"""Clamp :math:`\rho` to :math:`[\text{tiny}, 1 - \epsilon]` so that :math:`F^{-1}(\rho)` is finite.

    The support is the real line, so :math:`F^{-1}(0) = -\infty` and :math:`F^{-1}(1) = +\infty`;
    like ``torch.distributions.SigmoidTransform`` we move the end points to the smallest
    normal number and to :math:`1 - \epsilon`, which truncates probability mass of at most
    :math:`\epsilon` (float32: :math:`1.2 \times 10^{-7}`) in the far tails.
    """
    finfo = torch.finfo(rho.dtype)
    return rho.clamp(min=finfo.tiny, max=1 - finfo.eps)


def _log_logistic_density(zeta: torch.Tensor, loc: float, beta: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\beta - \mathrm{softplus}(u) - \mathrm{softplus}(-u)`, :math:`u = \beta(\zeta - \text{loc})`; finite for all finite :math:`u`."""
    scaled = beta * (zeta - loc)
    return torch.log(beta) - softplus(scaled) - softplus(-scaled)


class OverlappingLogistic(TemperedSmoothingTransformation):
    r"""Mixture of logistic distributions centred at 0 and 1 with scale :math:`1/\beta` (DVAE++ App. B).

    .. math::

        F(\zeta) = (1 - q)\,\sigma(\beta\zeta) + q\,\sigma(\beta(\zeta - 1)),
        \qquad \nu(\zeta) = \sigma\bigl(\ell + \log r(\zeta \mid 1) - \log r(\zeta \mid 0)\bigr).

    **Inverse CDF.** With :math:`w = e^{\beta(\zeta - 1/2)}`, :math:`F(\zeta) = \rho` is the
    quadratic

    .. math::

        (1 - \rho) e^{-\beta/2}\, w^2 + b\, w - \rho\, e^{-\beta/2} = 0, \qquad
        b = (1 - q - \rho) + (q - \rho) e^{-\beta},

    whose positive root gives :math:`\zeta = \tfrac12 + \log(w)/\beta`. Centring at
    :math:`\zeta = 1/2` and dividing by :math:`e^{3\beta/2}` keeps every coefficient bounded
    (the plain :math:`u = e^{\beta\zeta}` form needs :math:`e^{\beta}`, which overflows float32
    at :math:`\beta \approx 89`). The root is taken in log space by
    :func:`~pyro_dgm.distributions.smoothing.log_positive_quadratic_root`, choosing the
    non-cancelling form by the sign of :math:`b`. The end points :math:`\rho \in \{0, 1\}`
    map to large finite values (see ``_clip_to_open_unit_interval``).

    Example::

        >>> import torch
        >>> q = OverlappingLogistic(torch.tensor(8.0), probs=torch.tensor(0.3))
        >>> float(q.cdf(q.icdf(torch.tensor(0.6)))) - 0.6 < 1e-6
        True
    """

    support = constraints.real

    def _conditional_log_densities(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return _log_logistic_density(zeta, 0.0, self.beta), _log_logistic_density(zeta, 1.0, self.beta)

    def _conditional_cdfs(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return torch.sigmoid(self.beta * zeta), torch.sigmoid(self.beta * (zeta - 1))

    def _conditional_moments(self) -> Tuple[Tuple[float, torch.Tensor], Tuple[float, torch.Tensor]]:
        variance = LOGISTIC_VARIANCE_AT_UNIT_SCALE / self._unbroadcast_parameter("beta") ** 2  # scale 1/beta
        return (0.0, variance), (1.0, variance)  # logistics centred at 0 and 1

    def _conditional_icdfs(self, rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        rho = _clip_to_open_unit_interval(rho)
        standard_logistic = (torch.log(rho) - torch.log1p(-rho)) / self.beta
        return standard_logistic, 1 + standard_logistic

    def _inverse_cdf(self, rho: torch.Tensor) -> torch.Tensor:
        beta = self.beta
        rho = _clip_to_open_unit_interval(rho)
        log_a = torch.log1p(-rho) - beta / 2  # a = (1 - rho) e^{-beta/2}
        log_c = torch.log(rho) - beta / 2  # c = rho e^{-beta/2}
        b = self._prob_zero_minus(rho) + (self._prob_one - rho) * torch.exp(-beta)
        log_w = log_positive_quadratic_root(log_a, b, log_c)  # w = e^{beta (zeta - 1/2)}
        return 0.5 + log_w / beta

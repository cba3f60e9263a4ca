r"""The uniform + exponential mixture smoother of DVAE# (Vahdat, Andriyash & Macready 2018, Fig. 1).

.. math::

    r(\zeta \mid 0) = (1 - \epsilon)\, \frac{\beta e^{-\beta\zeta}}{1 - e^{-\beta}} + \epsilon, \qquad
    r(\zeta \mid 1) = r(1 - \zeta \mid 0), \qquad \zeta \in [0, 1],

the overlapping exponential of DVAE++ mixed with a uniform of weight :math:`\epsilon`
(:data:`UNIFORM_WEIGHT`). DVAE#'s Fig. 1 notes an inverse CDF close to the exponential's with
potentially lower gradient variance: the uniform floor bounds :math:`1/f(\zeta)`, hence the
implicit gradient :math:`\partial\zeta/\partial q = (R_0 - R_1)/f`, by :math:`1/\epsilon`.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch

from pyro_dgm.distributions.implicit_smoothing import ImplicitSmoothingTransformation
from pyro_dgm.distributions.overlapping_exponential import (
    decaying_exponential_cdf,
    decaying_exponential_icdf,
    decaying_exponential_log_density,
    rising_exponential_cdf,
    rising_exponential_icdf,
    rising_exponential_log_density,
)

__all__ = ["UNIFORM_WEIGHT", "UniformExponentialMixture"]

UNIFORM_WEIGHT = 0.05
r""":math:`\epsilon`, the weight of the uniform component: the value of the DVAE# experiments (its code's ``dvaes_unexp``)."""

LOG_UNIFORM_WEIGHT = math.log(UNIFORM_WEIGHT)
LOG_EXPONENTIAL_WEIGHT = math.log1p(-UNIFORM_WEIGHT)


class UniformExponentialMixture(ImplicitSmoothingTransformation):
    r"""Each conditional is :math:`(1 - \epsilon)` truncated exponential + :math:`\epsilon` uniform (DVAE#).

    .. math::

        F(\zeta) = (1 - q)\Bigl[(1 - \epsilon)\frac{1 - e^{-\beta\zeta}}{1 - e^{-\beta}} + \epsilon\zeta\Bigr]
                 + q\Bigl[(1 - \epsilon)\frac{e^{\beta(\zeta - 1)} - e^{-\beta}}{1 - e^{-\beta}} + \epsilon\zeta\Bigr].

    Neither :math:`F` nor the conditional CDFs have closed-form inverses (the latter would need
    the Lambert W function). ``rsample`` draws :math:`z`, then the component (uniform with
    probability :math:`\epsilon`), then the component's closed-form inverse CDF, and attaches the
    implicit gradient; ``icdf`` and the conditionals' ``icdf`` bisect. Densities are bounded
    (:math:`\epsilon \le r \le \epsilon + (1 - \epsilon)\beta/(1 - e^{-\beta})`), so ``log_prob``
    is finite on all of :math:`[0, 1]`.

    Example::

        >>> import torch
        >>> q = UniformExponentialMixture(torch.tensor(16.0), logits=torch.zeros(4))
        >>> bool(torch.isfinite(q.log_prob(q.rsample())).all())
        True
    """

    def _conditional_log_densities(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        falling = torch.logaddexp(LOG_EXPONENTIAL_WEIGHT + decaying_exponential_log_density(zeta, self.beta), torch.full_like(zeta, LOG_UNIFORM_WEIGHT))
        rising = torch.logaddexp(LOG_EXPONENTIAL_WEIGHT + rising_exponential_log_density(zeta, self.beta), torch.full_like(zeta, LOG_UNIFORM_WEIGHT))
        return falling, rising

    def _conditional_cdfs(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        uniform = UNIFORM_WEIGHT * zeta
        exponential_weight = 1 - UNIFORM_WEIGHT
        return (
            exponential_weight * decaying_exponential_cdf(zeta, self.beta) + uniform,
            exponential_weight * rising_exponential_cdf(zeta, self.beta) + uniform,
        )

    def _conditional_icdfs(self, rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self._bisect_conditional_icdfs(rho)

    def _draw_conditionals(self, shape: torch.Size) -> Tuple[torch.Tensor, torch.Tensor]:
        """Component first (uniform with probability epsilon), then its inverse CDF: exact draws, no bisection."""
        options = {"dtype": self.logits.dtype, "device": self.logits.device}
        rho, uniform_draw = torch.rand(shape, **options), torch.rand(shape, **options)
        is_uniform = torch.rand(shape, **options) < UNIFORM_WEIGHT
        beta = self.beta.expand(shape)
        falling = torch.where(is_uniform, uniform_draw, decaying_exponential_icdf(rho, beta))
        rising = torch.where(is_uniform, uniform_draw, rising_exponential_icdf(rho, beta))
        return falling, rising

r"""Mixture-of-ramps smoothing (Rolfe 2017, App. D.1, Eqs. 19-20).

.. math::

    r(\zeta \mid 0) = 2(1 - \zeta), \qquad r(\zeta \mid 1) = 2\zeta, \qquad \zeta \in [0, 1].

No temperature: construct with ``MixtureOfRamps(probs=...)`` or ``MixtureOfRamps(logits=...)``.
"""

from __future__ import annotations

from typing import Tuple

import torch

from pyro_dgm.distributions.smoothing import LOG_TWO, SmoothingTransformation

__all__ = ["MixtureOfRamps"]

FALLING_RAMP_MEAN = 1 / 3
r""":math:`\int_0^1 \zeta \cdot 2(1 - \zeta)\, d\zeta`; the rising ramp :math:`2\zeta` mirrors it (mean 2/3)."""

RAMP_VARIANCE = 1 / 18
r"""Variance of either ramp: :math:`\int_0^1 \zeta^2 \cdot 2\zeta\, d\zeta - (2/3)^2 = 1/2 - 4/9`."""


class MixtureOfRamps(SmoothingTransformation):
    r"""Mixture of a falling and a rising linear ramp on :math:`[0, 1]` (Rolfe 2017 App. D.1).

    .. math::

        F(\zeta) = 2q(\zeta^2 - \zeta) + 2\zeta - \zeta^2 \quad \text{(Eq. 19)}, \qquad
        F^{-1}(\rho) = \frac{q - 1 + \sqrt{(q - 1)^2 + (2q - 1)\rho}}{2q - 1} \quad \text{(Eq. 20)}.

    Eq. 20 is 0/0 at :math:`q = 1/2` and cancels near it. Multiplying by the conjugate and using
    :math:`(1 - q)^2 + (2q - 1)\rho = (1 - \rho)(1 - q)^2 + \rho q^2` gives the equal form

    .. math::

        F^{-1}(\rho) = \frac{\rho}{(1 - q) + \sqrt{(1 - \rho)(1 - q)^2 + \rho\, q^2}},

    a ratio of non-negative terms (no cancellation, no special case at :math:`q = 1/2`), with the
    square root taken by ``torch.hypot`` so that :math:`q^2` cannot underflow.

    The densities vanish at the ends (:math:`r(1 \mid 0) = r(0 \mid 1) = 0`), so the marginal
    density and :math:`\nu(\zeta) = q\zeta / ((1 - q)(1 - \zeta) + q\zeta)` are evaluated
    directly rather than through logarithms of the conditionals: that keeps their gradients
    finite at :math:`\zeta \in \{0, 1\}`.

    Example::

        >>> import torch
        >>> MixtureOfRamps(probs=torch.tensor(0.5)).icdf(torch.tensor([0.0, 0.3, 1.0]))
        tensor([0.0000, 0.3000, 1.0000])
    """

    def _conditional_log_densities(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return LOG_TWO + torch.log1p(-zeta), LOG_TWO + torch.log(zeta)

    def _conditional_cdfs(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return zeta * (2 - zeta), zeta * zeta

    def _conditional_icdfs(self, rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        # 1 - sqrt(1 - rho) in its conjugate form, exact for small rho.
        return rho / (1 + torch.sqrt(1 - rho)), torch.sqrt(rho)

    def _conditional_moments(self) -> Tuple[Tuple[float, float], Tuple[float, float]]:
        return (FALLING_RAMP_MEAN, RAMP_VARIANCE), (1 - FALLING_RAMP_MEAN, RAMP_VARIANCE)

    def _mixture_weighted_ramps(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``((1 - q)(1 - zeta), q zeta)``, half the two terms of the marginal density."""
        return self._prob_zero * (1 - zeta), self._prob_one * zeta

    def _log_marginal_density(self, zeta: torch.Tensor) -> torch.Tensor:
        falling, rising = self._mixture_weighted_ramps(zeta)
        return LOG_TWO + torch.log(falling + rising)

    def _posterior_probs(self, zeta: torch.Tensor) -> torch.Tensor:
        falling, rising = self._mixture_weighted_ramps(zeta)
        total = falling + rising
        # Both terms vanish only where q rounds to 1 at zeta = 0 or to 0 at zeta = 1; the
        # limit there is nu = zeta. The safe denominator keeps the unused branch's gradient finite.
        degenerate = total == 0
        return torch.where(degenerate, zeta, rising / torch.where(degenerate, torch.ones_like(total), total))

    def _inverse_cdf(self, rho: torch.Tensor) -> torch.Tensor:
        q_zero, q_one = self._prob_zero, self._prob_one
        # F^{-1}(0) = 0 for every q; computed apart because with 1 - q rounded to 0 (logit
        # above ~104 in float32) rho = 0 would give 0 / 0 and hypot's gradient at (0, 0) NaN.
        at_zero = rho == 0
        rho_safe = torch.where(at_zero, torch.full_like(rho, 0.5), rho)  # any rho in (0, 1)
        root = torch.hypot(torch.sqrt(1 - rho_safe) * q_zero, torch.sqrt(rho_safe) * q_one)
        zeta = (rho_safe / (q_zero + root)).clamp(0, 1)  # Eq. 20, conjugate form; clamp: rounding only
        return torch.where(at_zero, torch.zeros_like(zeta), zeta)

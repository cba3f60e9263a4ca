r"""The power-function smoother of DVAE# (Vahdat, Andriyash & Macready 2018, Sec. 3 and Fig. 1).

.. math::

    r(\zeta \mid 0) = \tfrac{1}{\beta}\, \zeta^{1/\beta - 1}, \qquad
    r(\zeta \mid 1) = r(1 - \zeta \mid 0), \qquad
    R(\zeta \mid 0) = \zeta^{1/\beta}, \qquad R(\zeta \mid 1) = 1 - (1 - \zeta)^{1/\beta},
    \qquad \zeta \in [0, 1].

The conditionals' inverse CDFs are :math:`\rho^{\beta}` and :math:`1 - (1 - \rho)^{\beta}`; the mixture has no
closed-form inverse, so :class:`PowerFunctionSmoothing` is an
:class:`~pyro_dgm.distributions.implicit_smoothing.ImplicitSmoothingTransformation`. The
posterior logit's shift is :math:`\log r(\zeta \mid 1) - \log r(\zeta \mid 0) = (1/\beta - 1)
[\log(1 - \zeta) - \log\zeta]`.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch

from pyro_dgm.distributions.implicit_smoothing import ImplicitSmoothingTransformation

__all__ = ["PowerFunctionSmoothing"]


def _power_log_density(log_zeta: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r""":math:`-\log\beta + (1/\beta - 1)\log\zeta`, with :math:`0 \cdot (-\infty) = 0` at :math:`\beta = 1` (uniform)."""
    exponent = 1 / beta - 1
    return -torch.log(beta) + torch.where(exponent == 0, torch.zeros_like(log_zeta), exponent * log_zeta)


def _power_cdf(zeta: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r""":math:`\zeta^{1/\beta} = e^{\log(\zeta)/\beta}`; 0 at :math:`\zeta = 0` with a finite (zero) gradient in :math:`\beta`."""
    positive = zeta > 0
    safe = torch.where(positive, zeta, torch.ones_like(zeta))
    return torch.where(positive, torch.exp(torch.log(safe) / beta), torch.zeros_like(zeta))


def _power_survival_from_end(one_minus_zeta_log: torch.Tensor, beta: torch.Tensor, at_end: torch.Tensor) -> torch.Tensor:
    r""":math:`1 - (1 - \zeta)^{1/\beta} = -\mathrm{expm1}(\log(1 - \zeta)/\beta)`, exact for small :math:`\zeta`; 1 at :math:`\zeta = 1`."""
    safe = torch.where(at_end, torch.zeros_like(one_minus_zeta_log), one_minus_zeta_log)
    return torch.where(at_end, torch.ones_like(safe), -torch.expm1(safe / beta))


class PowerFunctionSmoothing(ImplicitSmoothingTransformation):
    r"""Mixture of the power-function densities :math:`\tfrac1\beta \zeta^{1/\beta - 1}` and its mirror image (DVAE#).

    .. math::

        q(\zeta) = \frac{1}{\beta}\Bigl[(1 - q)\, \zeta^{1/\beta - 1} + q\, (1 - \zeta)^{1/\beta - 1}\Bigr],
        \qquad F(\zeta) = (1 - q)\, \zeta^{1/\beta} + q\bigl[1 - (1 - \zeta)^{1/\beta}\bigr].

    For :math:`\beta > 1` both conditionals have an integrable singularity at their end
    (:math:`\log q(\zeta) = +\infty` at :math:`\zeta \in \{0, 1\}`); as :math:`\beta \to \infty` the
    mixture tends to :math:`(1 - q)\delta_0 + q\,\delta_1`; :math:`\beta = 1` is uniform. DVAE#
    trains with :math:`\beta \in [20, 40]` (40 on MNIST, Fig. 1).

    ``rsample`` is ancestral with the implicit gradient and keeps draws inside :math:`(0, 1)`
    (:func:`~pyro_dgm.distributions.implicit_smoothing.open_unit_interval`); ``icdf`` inverts
    :math:`F` by bisection.

    Example::

        >>> import torch
        >>> q = PowerFunctionSmoothing(torch.tensor(40.0), logits=torch.tensor([-1.0, 2.0]))
        >>> q.rsample((3,)).shape
        torch.Size([3, 2])
    """

    def _conditional_log_densities(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return _power_log_density(torch.log(zeta), self.beta), _power_log_density(torch.log1p(-zeta), self.beta)

    def _log_density_ratio(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`b(\zeta) = (1/\beta - 1)[\log(1 - \zeta) - \log\zeta]` (:math:`\log\beta` cancels), with finite gradients at and near the ends.

        **At** :math:`\zeta \in \{0, 1\}` (``icdf`` at :math:`\rho = 0`, or above :math:`F(1 - \epsilon/2)`)
        :math:`b = \pm\infty`, so :math:`\nu = \sigma(\ell + b) \in \{0, 1\}` and :math:`\nu(1 - \nu) = 0`,
        while :math:`\partial_\zeta b` and :math:`\partial_\beta b` are infinite: autograd would give
        :math:`0 \cdot \infty = \mathrm{NaN}`. Along a draw :math:`\zeta = F^{-1}(u; \theta)`, every path
        derivative of :math:`\nu` tends to 0 as :math:`u \to 0` or 1 (Eq. (2a) of
        ``docs/derivations/dvae_sharp.md``: for :math:`\beta > 1`,
        :math:`\partial_\ell \nu \simeq \nu\,(1 + (\beta - 1) q)` with
        :math:`\nu \simeq \tfrac{q}{1 - q}\zeta^{1 - 1/\beta} \to 0`). So at an end :math:`b` is the constant
        :math:`\operatorname{sign}\bigl((1/\beta - 1)(1 - 2\zeta)\bigr)\,\infty` (0 at :math:`\beta = 1`, where
        both conditionals are uniform): :math:`\nu`'s gradient is then :math:`\nu(1 - \nu)\,\partial\ell = 0`,
        that limit (and :math:`q(1 - q)` in :math:`\ell` at :math:`\beta = 1`, as everywhere).

        **Below the smallest normal number** :math:`\zeta_{\min}` (subnormal :math:`\zeta`, only from
        ``icdf``: ``rsample`` clamps at :math:`\epsilon/2`) :math:`\partial_\zeta b \approx (1 - 1/\beta)/\zeta`
        overflows, and :math:`\partial\zeta/\partial\theta` (:math:`\approx \beta q \zeta`) underflows: their
        product, finite in exact arithmetic, is not representable. :math:`b` keeps its value but
        no :math:`\zeta`-gradient there; :math:`\nu`'s gradient keeps its :math:`\ell`- and :math:`\beta`-terms.
        """
        exponent = 1 / self.beta - 1
        at_end = (zeta <= 0) | (zeta >= 1)
        subnormal = zeta < torch.finfo(zeta.dtype).tiny
        # torch.where routes a gradient, never multiplies it: the discarded branches stay finite.
        zeta = torch.where(subnormal, zeta.detach(), zeta)
        inside = torch.where(at_end, torch.full_like(zeta, 0.5), zeta)
        ratio = exponent * (torch.log1p(-inside) - torch.log(inside))
        direction = exponent.detach() * (1 - 2 * (zeta >= 1).to(zeta.dtype))  # the sign of b as zeta -> 0 or 1
        infinity = torch.full_like(direction, math.inf)
        limit = torch.where(direction == 0, torch.zeros_like(direction), torch.copysign(infinity, direction))
        return torch.where(at_end, limit, ratio)

    def _conditional_cdfs(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        at_one = zeta >= 1
        log_one_minus = torch.log1p(-torch.where(at_one, torch.zeros_like(zeta), zeta))
        return _power_cdf(zeta, self.beta), _power_survival_from_end(log_one_minus, self.beta, at_one)

    def _conditional_icdfs(self, rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r""":math:`\rho^{\beta}` and :math:`1 - (1 - \rho)^{\beta} = -\mathrm{expm1}(\beta\, \mathrm{log1p}(-\rho))` (no cancellation)."""
        return torch.exp(self.beta * torch.log(rho)), -torch.expm1(self.beta * torch.log1p(-rho))

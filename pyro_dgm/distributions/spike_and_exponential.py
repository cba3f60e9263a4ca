r"""Spike-and-exponential smoothing (Rolfe 2017, Sec. 2.1, Eq. 9).

.. math::

    r(\zeta \mid 0) = \delta(\zeta), \qquad
    r(\zeta \mid 1) = \frac{\beta e^{\beta\zeta}}{e^{\beta} - 1}, \quad \zeta \in [0, 1].

Equivalently :math:`r(\zeta \mid 1) = \beta e^{\beta(\zeta - 1)}/(1 - e^{-\beta})`: the slab is the
rising exponential :math:`r(\zeta \mid 1)` of DVAE++'s overlapping exponential, whose functions it shares.
"""

from __future__ import annotations

from typing import Tuple

import torch

from pyro_dgm.distributions.overlapping_exponential import (
    decaying_exponential_mean,
    rising_exponential_cdf,
    rising_exponential_icdf,
    rising_exponential_log_density,
    truncated_exponential_variance,
)
from pyro_dgm.distributions.smoothing import SpikeSmoothingTransformation, TemperedSmoothingTransformation

__all__ = ["SpikeAndExponential"]


class SpikeAndExponential(SpikeSmoothingTransformation, TemperedSmoothingTransformation):
    r"""Spike at 0 mixed with a rising exponential slab on :math:`(0, 1]` (Rolfe 2017 Sec. 2.1).

    .. math::

        F(\zeta) = (1 - q) + q\,\frac{e^{\beta\zeta} - 1}{e^{\beta} - 1}, \qquad
        F^{-1}(\rho) = \begin{cases}
            \frac{1}{\beta}\log\bigl[t(e^{\beta} - 1) + 1\bigr], & t = \frac{\rho + q - 1}{q} > 0 \\
            0, & \text{otherwise}
        \end{cases} \quad \text{(Eq. 9)},

    evaluated as :math:`1 + \operatorname{logaddexp}(\log t, \log(1 - t) - \beta)/\beta`
    (:func:`~pyro_dgm.distributions.overlapping_exponential.rising_exponential_icdf`), which
    never forms :math:`e^{\beta}`. ``log_prob`` is with respect to :math:`\delta_0 + \lambda`
    (:math:`\log(1 - q)` at 0); :math:`\nu(0) = 0`, :math:`\nu(\zeta > 0) = 1`.

    Example::

        >>> import torch
        >>> q = SpikeAndExponential(torch.tensor(4.0), logits=torch.zeros(3))
        >>> q.icdf(torch.tensor([0.25, 0.5, 1.0]))
        tensor([0., 0., 1.])
    """

    def _slab_log_density(self, zeta: torch.Tensor) -> torch.Tensor:
        return rising_exponential_log_density(zeta, self.beta)

    def _slab_cdf(self, zeta: torch.Tensor) -> torch.Tensor:
        return rising_exponential_cdf(zeta, self.beta)

    def _slab_icdf(self, t: torch.Tensor) -> torch.Tensor:
        return rising_exponential_icdf(t, self.beta)

    def _slab_moments(self) -> Tuple[torch.Tensor, torch.Tensor]:
        beta = self._unbroadcast_parameter("beta")
        # the rising exponential mirrors the decaying one: mean 1 - m, same variance
        return 1 - decaying_exponential_mean(beta), truncated_exponential_variance(beta)

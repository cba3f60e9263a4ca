r"""Spike-and-slab smoothing (Rolfe 2017, App. D.2).

.. math::

    r(\zeta \mid 0) = \delta(\zeta), \qquad r(\zeta \mid 1) = 1, \quad \zeta \in [0, 1].

No temperature: construct with ``SpikeAndSlab(probs=...)`` or ``SpikeAndSlab(logits=...)``.
"""

from __future__ import annotations

from typing import Tuple

import torch

from pyro_dgm.distributions.smoothing import SpikeSmoothingTransformation

__all__ = ["SpikeAndSlab"]

UNIFORM_MEAN = 1 / 2
"""Mean of the uniform slab on [0, 1]."""

UNIFORM_VARIANCE = 1 / 12
"""Variance of the uniform slab on [0, 1]."""


class SpikeAndSlab(SpikeSmoothingTransformation):
    r"""Spike at 0 mixed with a uniform slab on :math:`(0, 1]` (Rolfe 2017 App. D.2).

    .. math::

        F(\zeta) = q(\zeta - 1) + 1, \qquad
        F^{-1}(\rho) = \begin{cases} \frac{\rho - 1}{q} + 1, & \rho \ge 1 - q \\ 0, & \text{otherwise.} \end{cases}

    :math:`(\rho - 1)/q + 1 = (\rho - (1 - q))/q` is the slab fraction :math:`t` that
    :class:`~pyro_dgm.distributions.smoothing.SpikeSmoothingTransformation` computes without
    cancellation. ``log_prob`` is with respect to :math:`\delta_0 + \lambda`;
    :math:`\nu(0) = 0`, :math:`\nu(\zeta > 0) = 1`.

    Example::

        >>> import torch
        >>> SpikeAndSlab(probs=torch.tensor(0.5)).icdf(torch.tensor([0.25, 0.75]))
        tensor([0.0000, 0.5000])
    """

    def _slab_log_density(self, zeta: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(zeta)

    def _slab_cdf(self, zeta: torch.Tensor) -> torch.Tensor:
        return zeta

    def _slab_icdf(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def _slab_moments(self) -> Tuple[float, float]:
        return UNIFORM_MEAN, UNIFORM_VARIANCE

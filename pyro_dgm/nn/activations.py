r"""The generalised non-vanishing (G-NoVa) activation of Adigun & Kosko.

BVAE paper (Kosko & Adigun), Eq. (40):

.. math::

    a(x) = \alpha x + x\,\sigma(\beta x) = \alpha x + \frac{x}{1 + e^{-\beta x}},
    \qquad \alpha > 0,\ \beta > 0 .

Its derivative :math:`a'(x) = \alpha + \sigma(\beta x) + \beta x\,\sigma(\beta x)(1 - \sigma(\beta x))`
tends to :math:`\alpha` as :math:`x \to -\infty` and to :math:`1 + \alpha` as
:math:`x \to +\infty`: the slope never vanishes, which is the point of the
"non-vanishing" name. With :math:`\alpha = 0, \beta = 1` it is SiLU/Swish.

The paper states only :math:`\alpha, \beta > 0`; the defaults below are our choice.
They are fixed hyper-parameters (not trained).
"""

from __future__ import annotations

import torch
from torch import nn

DEFAULT_ALPHA = 0.1
"""Default linear slope α: the limiting slope of a(x) for x → -∞ (paper: any α > 0)."""

DEFAULT_BETA = 1.0
"""Default gate sharpness β (paper: any β > 0); β = 1 is the Swish gate."""


class GNoVa(nn.Module):
    r"""G-NoVa activation :math:`a(x) = \alpha x + x\sigma(\beta x)` (BVAE Eq. 40), elementwise.

    :param alpha: linear slope α > 0.
    :param beta: gate sharpness β > 0.

    Example::

        >>> act = GNoVa(alpha=0.1, beta=1.0)
        >>> act(torch.zeros(3))
        tensor([0., 0., 0.])
    """

    def __init__(self, alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA) -> None:
        super().__init__()
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a positive number (BVAE Eq. 40), got {value!r}")
        self.alpha = float(alpha)
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * x + x * torch.sigmoid(self.beta * x)  # Eq. (40)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"

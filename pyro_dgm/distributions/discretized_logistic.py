r"""Mixture of discretised logistics over 8-bit intensities (Salimans et al. 2017, Sec. 2.1).

DVAE++ (Vahdat et al. 2018, Sec. 6.1) scores colour images with a factorial mixture of
discretised logistics. For an intensity :math:`x \in \{0, \tfrac1{255}, \dots, 1\}`
(pixels in [0, 1], as :func:`pyro_dgm.data.load_dataset` returns them) and a mixture of
:math:`K` logistics with weights :math:`\pi_k`, locations :math:`\mu_k` and scales
:math:`s_k`,

.. math::

    P(x) = \sum_k \pi_k \bigl[\sigma\bigl(\tfrac{x^+ - \mu_k}{s_k}\bigr)
        - \sigma\bigl(\tfrac{x^- - \mu_k}{s_k}\bigr)\bigr],
    \qquad x^\pm = x \pm \tfrac{1}{2 \cdot 255},

with the two edge bins stretched to the real line: :math:`x^- = -\infty` at
:math:`x = 0` and :math:`x^+ = +\infty` at :math:`x = 1`, so the 256 masses sum to one
exactly. Each bin's log-mass is computed without cancellation from

.. math::

    \sigma(a) - \sigma(b) = \sigma(a)\, \sigma(-b)\, (1 - e^{-(a - b)}), \qquad a > b,

i.e. :math:`\log\sigma(a) + \log\sigma(-b) + \log(1 - e^{-(a-b)})` with
:math:`a - b = 1/(255\,s)` (no fallback to the midpoint density is needed, unlike
PixelCNN++'s implementation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

from pyro_dgm.distributions.smoothing import log1mexp
from pyro_dgm.distributions.validation_flag import own_validation_flag, set_validation_flag

NUM_INTENSITIES = 256
"""8-bit colour depth: the support has 256 values."""

MAX_INTENSITY = NUM_INTENSITIES - 1
"""Intensity ``k`` of the 8-bit scale is the value ``k / MAX_INTENSITY`` in [0, 1]."""

BIN_HALF_WIDTH = 0.5 / MAX_INTENSITY
r"""Half the distance between neighbouring intensities in [0, 1]: :math:`x^\pm = x \pm` this."""

INTENSITY_TOLERANCE = 1e-3
"""How far (in units of one 8-bit step) a value may be from the grid and still be valid."""


def _on_grid(value: torch.Tensor) -> torch.Tensor:
    scaled = value * MAX_INTENSITY
    return (value >= 0) & (value <= 1) & ((scaled - scaled.round()).abs() < INTENSITY_TOLERANCE)


class _EightBitIntensities(constraints.Constraint):
    """The values ``k / 255``, ``k = 0, ..., 255``."""

    is_discrete = True
    event_dim = 0

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return _on_grid(value)

    def __repr__(self) -> str:
        return "EightBitIntensities()"


eight_bit_intensities = _EightBitIntensities()


def discretized_logistic_log_mass(
    value: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    r""":math:`\log P(x)` of one discretised logistic (the mixture's component), elementwise.

    :param value: intensities on the 8-bit grid in [0, 1].
    :param loc: :math:`\mu`; :param log_scale: :math:`\log s`; all three broadcast.
    """
    inverse_scale = torch.exp(-log_scale)
    upper = (value + BIN_HALF_WIDTH - loc) * inverse_scale  # a = (x^+ - mu) / s
    lower = (value - BIN_HALF_WIDTH - loc) * inverse_scale  # b = (x^- - mu) / s
    bin_width = 2 * BIN_HALF_WIDTH * inverse_scale  # a - b > 0
    interior = F.logsigmoid(upper) + F.logsigmoid(-lower) + log1mexp(bin_width)
    first_bin = F.logsigmoid(upper)  # x^- = -inf: log sigma(a)
    last_bin = F.logsigmoid(-lower)  # x^+ = +inf: log(1 - sigma(b))
    return torch.where(
        value < BIN_HALF_WIDTH, first_bin, torch.where(value > 1 - BIN_HALF_WIDTH, last_bin, interior)
    )


class DiscretizedLogisticMixture(TorchDistribution):
    r"""Mixture of :math:`K` discretised logistics on :math:`\{0, 1/255, \dots, 1\}`.

    The last dimension of the parameters indexes the components; the batch shape is
    the rest, and the event shape is ``()`` (one intensity). Use ``.to_event(...)`` for
    images: a factorial likelihood over pixels and channels (DVAE++ Sec. 6.1).

    :param logits: unnormalised :math:`\log \pi_k`, shape (*batch, K).
    :param loc: :math:`\mu_k` on the [0, 1] intensity scale, shape (*batch, K).
    :param log_scale: :math:`\log s_k`, shape (*batch, K).

    Example::

        >>> import torch
        >>> d = DiscretizedLogisticMixture(torch.zeros(2), torch.tensor([0.2, 0.8]), torch.full((2,), -3.0))
        >>> grid = torch.arange(256) / 255
        >>> float(d.log_prob(grid).exp().sum())  # doctest: +ELLIPSIS
        1.0...
    """

    arg_constraints = {
        "logits": constraints.real_vector,
        "loc": constraints.real_vector,
        "log_scale": constraints.real_vector,
    }
    support = eight_bit_intensities
    has_rsample = False
    has_enumerate_support = True

    def __init__(
        self,
        logits: torch.Tensor,
        loc: torch.Tensor,
        log_scale: torch.Tensor,
        validate_args: bool | None = None,
    ) -> None:
        if logits.dim() < 1:
            raise ValueError("logits, loc and log_scale need a last dimension of mixture components")
        self.logits, self.loc, self.log_scale = broadcast_all(logits, loc, log_scale)
        super().__init__(self.logits.shape[:-1], torch.Size(), validate_args=validate_args)

    @property
    def num_components(self) -> int:
        return self.logits.size(-1)

    @property
    def mixture_log_weights(self) -> torch.Tensor:
        r""":math:`\log \pi_k`, shape (*batch, K)."""
        return torch.log_softmax(self.logits, dim=-1)

    def expand(self, batch_shape, _instance=None) -> DiscretizedLogisticMixture:
        new = self._get_checked_instance(DiscretizedLogisticMixture, _instance)
        shape = torch.Size(batch_shape) + (self.num_components,)
        new.logits = self.logits.expand(shape)
        new.loc = self.loc.expand(shape)
        new.log_scale = self.log_scale.expand(shape)
        super(DiscretizedLogisticMixture, new).__init__(torch.Size(batch_shape), torch.Size(), validate_args=False)
        set_validation_flag(new, own_validation_flag(self))
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`\log P(x) = \operatorname{logsumexp}_k [\log \pi_k + \log P_k(x)]`."""
        if self._validate_args:
            self._validate_sample(value)
        component_log_mass = discretized_logistic_log_mass(value.unsqueeze(-1), self.loc, self.log_scale)
        return torch.logsumexp(self.mixture_log_weights + component_log_mass, dim=-1)

    def _support_log_masses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The 256 intensities, shape (256, 1, ..., 1), and their log-masses, shape (256, *batch)."""
        grid = self.enumerate_support(expand=False)
        return grid, self.log_prob(grid)

    @property
    def mean(self) -> torch.Tensor:
        r"""Exact mean :math:`\sum_x x P(x)` over the 256 intensities."""
        grid, log_masses = self._support_log_masses()
        return (log_masses.exp() * grid).sum(0)

    @property
    def variance(self) -> torch.Tensor:
        r"""Exact variance :math:`\sum_x (x - \mathbb E x)^2 P(x)` over the 256 intensities (centred: no cancellation)."""
        grid, log_masses = self._support_log_masses()
        masses = log_masses.exp()
        mean = (masses * grid).sum(0)
        return (masses * (grid - mean) ** 2).sum(0)

    def entropy(self) -> torch.Tensor:
        r"""Exact entropy :math:`-\sum_x P(x) \log P(x)` in nats over the 256 intensities (0 log 0 = 0)."""
        _, log_masses = self._support_log_masses()
        masses = log_masses.exp()
        return -torch.where(masses > 0, masses * log_masses, torch.zeros_like(masses)).sum(0)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """Pick a component, draw a logistic by its inverse CDF, round to the nearest intensity."""
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            component = torch.distributions.Categorical(logits=self.logits).sample(sample_shape).unsqueeze(-1)
            loc, log_scale = (
                parameter.expand(shape + (self.num_components,)).gather(-1, component).squeeze(-1)
                for parameter in (self.loc, self.log_scale)
            )
            uniform = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
            tiny = torch.finfo(uniform.dtype).tiny
            uniform = uniform.clamp(tiny, 1 - torch.finfo(uniform.dtype).eps)
            logistic = loc + torch.exp(log_scale) * (torch.log(uniform) - torch.log1p(-uniform))
            return (logistic.clamp(0, 1) * MAX_INTENSITY).round() / MAX_INTENSITY  # bins = rounding

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The 256 intensities ``k / 255`` along a new leftmost dim, shape (256, *batch)."""
        grid = torch.arange(NUM_INTENSITIES, dtype=self.loc.dtype, device=self.loc.device) / MAX_INTENSITY
        grid = grid.reshape((NUM_INTENSITIES,) + (1,) * len(self.batch_shape))
        return grid.expand((NUM_INTENSITIES,) + self.batch_shape) if expand else grid

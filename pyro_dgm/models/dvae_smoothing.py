r"""Choosing the smoothing transformation :math:`r(\zeta \mid z)` of a DVAE/DVAE++ by name.

A model and its guide must use the *same* :math:`r` (DVAE Sec. 2, DVAE++ Sec. 3): the
guide draws :math:`\zeta` from the marginal :math:`q(\zeta) = \sum_z q(z)\, r(\zeta \mid z)`
and the model scores it with :math:`r(\zeta \mid z)`. :class:`Smoothing` names the family
and its inverse temperature :math:`\beta` once; model and guide each hold a copy and
resolve the step's value with :meth:`Smoothing.at` (``beta=`` from an annealing schedule,
``binary_limit=True`` for evaluation at :math:`\beta = \infty`, where :math:`\zeta = z`).

Families (:data:`SMOOTHERS`):

=========================  =========================================  ========
name                       distribution                               β
=========================  =========================================  ========
``overlapping_exponential``  DVAE++ Eq. (3)                            yes
``overlapping_logistic``     DVAE++ App. B (logistic conditionals)     yes
``mixture_of_ramps``         DVAE App. D.1, Eq. (20)                   no
``spike_and_exponential``    DVAE Sec. 2.1, Eq. (9)                    yes
``spike_and_slab``           DVAE App. D.2                             no
``binary_limit``             :math:`\beta \to \infty`: :math:`\zeta = z` no
``power``                    DVAE#, power-function conditionals       yes
``uniform_exponential``      DVAE#, uniform + exponential mixture      yes
=========================  =========================================  ========
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from pyro_dgm.distributions import (
    BinaryLimit,
    MixtureOfRamps,
    OverlappingExponential,
    OverlappingLogistic,
    PowerFunctionSmoothing,
    SmoothingTransformation,
    SpikeAndExponential,
    SpikeAndSlab,
    SpikeSmoothingTransformation,
    TemperedSmoothingTransformation,
    UniformExponentialMixture,
)

SMOOTHERS: dict[str, type[SmoothingTransformation]] = {
    "overlapping_exponential": OverlappingExponential,
    "overlapping_logistic": OverlappingLogistic,
    "mixture_of_ramps": MixtureOfRamps,
    "spike_and_exponential": SpikeAndExponential,
    "spike_and_slab": SpikeAndSlab,
    "binary_limit": BinaryLimit,
    "power": PowerFunctionSmoothing,
    "uniform_exponential": UniformExponentialMixture,
}
"""The smoothing families by name."""

BINARY_LIMIT = "binary_limit"
r"""Name of :math:`\zeta = z` (:class:`~pyro_dgm.distributions.BinaryLimit`), for evaluation."""

DEFAULT_BETA = 5.0
r"""Default inverse temperature: the smallest initial :math:`\beta` of DVAE++ Sec. 7.1's grid {5, 6, 7, 8}."""


def is_tempered(name: str) -> bool:
    """Whether the family ``name`` has an inverse temperature :math:`\\beta`."""
    return issubclass(SMOOTHERS[name], TemperedSmoothingTransformation)


def is_spike(name: str) -> bool:
    r"""Whether ``name`` is a spike-and-X family (:math:`\zeta = 0 \Leftrightarrow z = 0`; train with ``DVAEELBO``)."""
    return issubclass(SMOOTHERS[name], SpikeSmoothingTransformation)


def _check_beta(name: str, beta: float | None, argument: str = "beta") -> None:
    if not is_tempered(name):
        if beta is not None:
            raise ValueError(
                f"the smoother '{name}' has no inverse temperature: {argument} must be None, got {beta!r}"
            )
        return
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (0 < beta < math.inf):
        raise ValueError(
            f"{argument} must be a positive finite number for the smoother '{name}' (use "
            f"binary_limit=True for beta = inf), got {beta!r}"
        )


@dataclass(frozen=True)
class Smoothing:
    r"""A smoothing family and its inverse temperature: ``Smoothing(name, beta)(logits)`` is :math:`q(\zeta)`.

    :param name: one of :data:`SMOOTHERS`.
    :param beta: :math:`\beta > 0` for the tempered families, ``None`` for the others.

    Example::

        >>> smoothing = Smoothing("overlapping_exponential", 5.0)
        >>> smoothing(torch.zeros(3)).batch_shape                      # q(zeta), DVAE++ Eq. (2)
        torch.Size([3])
        >>> smoothing.at(binary_limit=True).name
        'binary_limit'
    """

    name: str
    beta: float | None = None

    def __post_init__(self) -> None:
        if self.name not in SMOOTHERS:
            raise ValueError(f"unknown smoother {self.name!r}; choose one of: {', '.join(SMOOTHERS)}")
        _check_beta(self.name, self.beta)

    @classmethod
    def named(cls, name: str, beta: float | None = DEFAULT_BETA) -> Smoothing:
        """``Smoothing(name, beta)``, dropping ``beta`` for the families that have none."""
        if name not in SMOOTHERS:
            raise ValueError(f"unknown smoother {name!r}; choose one of: {', '.join(SMOOTHERS)}")
        return cls(name, beta if is_tempered(name) else None)

    def at(self, beta: float | None = None, binary_limit: bool = False) -> Smoothing:
        r"""The smoothing of one step: ``beta`` (if given) replaces :math:`\beta`; ``binary_limit`` gives :math:`\zeta = z`."""
        if binary_limit:
            return Smoothing(BINARY_LIMIT)
        if beta is None:
            return self
        _check_beta(self.name, beta)
        return replace(self, beta=float(beta))

    def __call__(self, logits: torch.Tensor) -> SmoothingTransformation:
        r"""The marginal :math:`q(\zeta) = (1 - \mu) r(\zeta \mid 0) + \mu\, r(\zeta \mid 1)`, :math:`\mu = \sigma(\text{logits})`."""
        family = SMOOTHERS[self.name]
        if self.beta is None:
            return family(logits=logits)
        return family(torch.as_tensor(self.beta, dtype=logits.dtype, device=logits.device), logits=logits)

    def conditional(self, z: torch.Tensor):
        r""":math:`r(\zeta \mid z)` for binary ``z`` of shape (..., n) (the smoother's logits play no part)."""
        return self(torch.zeros_like(z)).conditional(z)

r"""Step-dependent keyword arguments for the DVAE/DVAE++ models: β annealing and KL warm-up.

A schedule is a callable ``(step, total_steps) -> dict`` whose result the training loop
passes to model *and* guide (``svi.step(x, num_data=N, **schedule(step, total_steps))``,
as the CLI's trainer does with ``step_kwargs``). :class:`DVAESchedule` gives

* ``beta`` — the smoother's inverse temperature, annealed linearly over all of training
  from :math:`\beta_0` to :math:`\beta_1` (DVAE++ Sec. 7.1: initial values from {5, 6, 7,
  8}, final from {12, 14, 16, 18}; DVAE App. H raises an upper bound on :math:`\beta`
  linearly likewise):

  .. math:: \beta(t) = \beta_0 + (\beta_1 - \beta_0)\, \frac{t}{T - 1};

* ``kl_weight`` — KL warm-up (Sønderby et al. 2016; DVAE App. H; over the first 30% of
  training in the DVAE++ experiments), a linear ramp that reaches 1 after
  :math:`W = \lceil fT \rceil` steps and starts at :math:`1/W` (``poutine.scale`` needs a
  positive scale):

  .. math:: w(t) = \min\bigl(1, (t + 1)/W\bigr).

Objectives and warm-up: the models wrap every latent site of model and guide in
``poutine.scale(kl_weight)``; :class:`~pyro.infer.Trace_ELBO`,
:class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO` and
:class:`~pyro_dgm.infer.objectives.dvae.DVAEELBO` all multiply the KL by it (the latter two through
the prior site's scale). Importance-weighted objectives (IWAE, RWS, BiHM) would weight
:math:`p(h)/q(h)` by a power and are not meant to be warmed up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DVAE_PP_WARMUP_FRACTION = 0.3
"""Fraction of training over which the KL weight rises to 1 in the DVAE++ experiments."""


def _check_step(step: int, total_steps: int) -> None:
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive int, got {total_steps!r}")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < total_steps:
        raise ValueError(f"step must be an int in [0, total_steps={total_steps}), got {step!r}")


def linear_anneal(step: int, total_steps: int, start: float, end: float) -> float:
    r""":math:`\beta(t) = \beta_0 + (\beta_1 - \beta_0)\, t / (T - 1)`: ``start`` at the first step, ``end`` at the last."""
    _check_step(step, total_steps)
    progress = step / (total_steps - 1) if total_steps > 1 else 1.0
    return start + (end - start) * progress


def kl_warmup_weight(step: int, total_steps: int, fraction: float = DVAE_PP_WARMUP_FRACTION) -> float:
    r""":math:`w(t) = \min(1, (t + 1) / \lceil fT \rceil)`; ``fraction`` :math:`f = 0` means no warm-up."""
    _check_step(step, total_steps)
    if not 0 <= fraction <= 1:
        raise ValueError(f"the warm-up fraction must be in [0, 1], got {fraction!r}")
    warmup_steps = math.ceil(fraction * total_steps)
    if warmup_steps == 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


@dataclass(frozen=True)
class DVAESchedule:
    r"""``(step, total_steps) -> {"kl_weight": w, "beta": β}`` for model and guide.

    :param beta_start: :math:`\beta_0`; ``None``: no ``beta`` key (the models keep their own,
        and the smoothers without :math:`\beta` need this).
    :param beta_end: :math:`\beta_1`; default ``beta_start`` (constant).
    :param warmup_fraction: :math:`f`, the fraction of steps of KL warm-up (0: none).

    Example:
        >>> schedule = DVAESchedule(beta_start=5.0, beta_end=12.0)
        >>> schedule(0, 101)
        {'kl_weight': 0.03225806451612903, 'beta': 5.0}
        >>> schedule(100, 101)
        {'kl_weight': 1.0, 'beta': 12.0}
    """

    beta_start: float | None = None
    beta_end: float | None = None
    warmup_fraction: float = DVAE_PP_WARMUP_FRACTION

    def __post_init__(self) -> None:
        for name in ("beta_start", "beta_end"):
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive finite number or None, got {value!r}")
        if self.beta_start is None and self.beta_end is not None:
            raise ValueError("beta_end needs beta_start")
        if not 0 <= self.warmup_fraction <= 1:
            raise ValueError(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction!r}")

    def __call__(self, step: int, total_steps: int) -> dict[str, float]:
        kwargs = {"kl_weight": kl_warmup_weight(step, total_steps, self.warmup_fraction)}
        if self.beta_start is not None:
            end = self.beta_start if self.beta_end is None else self.beta_end
            kwargs["beta"] = linear_anneal(step, total_steps, self.beta_start, end)
        return kwargs

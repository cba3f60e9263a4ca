r"""Add a weight penalty (BiHM's L1) to any objective without touching the importance weights.

BiHM Sec. 4 trains with :math:`\lambda \sum |W|` added to the minibatch loss. Writing the
penalty as a ``pyro.factor`` would put it into every data point's log-weight (or, outside
the data plate, couple the data points); :class:`PenalisedObjective` instead adds it to the
*loss* after the wrapped objective has produced its value and gradients, so the
per-data-point weights, and every estimate computed from them, stay untouched.

Scale: the wrapped objectives return the minibatch loss scaled to the whole data set,
:math:`\frac{N}{B} \sum_{b} \ell_b`. BiHM adds the penalty once per minibatch loss
:math:`\sum_b \ell_b`, so it is scaled by the same :math:`N/B`:

.. math::

    \mathcal L = \frac{N}{B}\Big(\sum_{b=1}^{B} \ell_b + \lambda \sum |W|\Big).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from pyro.infer import ELBO
from torch import nn


def minibatch_scale(args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    """:math:`N/B` of a step called as ``(x, num_data=N)``; 1 without ``num_data``."""
    num_data = kwargs.get("num_data")
    if num_data is None or not args or not isinstance(args[0], torch.Tensor):
        return 1.0
    return num_data / args[0].shape[0]


class PenalisedObjective(ELBO):
    r"""``objective`` plus :math:`\frac{N}{B} \sum_m \mathrm{penalty}_m()` (see the module docstring).

    :param objective: any ``pyro.infer.ELBO`` (BiHM, RWS, VIMCO, Pyro's own).
    :param modules: modules with a ``penalty()`` method returning a scalar tensor, e.g.
        :meth:`~pyro_dgm.models.SigmoidBeliefNet.penalty` (:math:`\lambda \sum |W|`).

    State (``state_dict``) and attributes such as ``effective_sample_size`` are the
    wrapped objective's.
    """

    def __init__(self, objective: ELBO, modules: Sequence[nn.Module]) -> None:
        missing = [type(module).__name__ for module in modules if not callable(getattr(module, "penalty", None))]
        if missing:
            raise ValueError(f"modules must have a penalty() method; {missing} do not")
        super().__init__(num_particles=1, max_plate_nesting=objective.max_plate_nesting)
        self.objective = objective
        self.modules = list(modules)

    def penalty(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
        """The scaled penalty of this step (a scalar tensor with gradient)."""
        return minibatch_scale(args, kwargs) * sum(module.penalty() for module in self.modules)

    def loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> float:
        with torch.no_grad():
            penalty = self.penalty(args, kwargs)
        return self.objective.loss(model, guide, *args, **kwargs) + float(penalty)

    def loss_and_grads(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> float:
        loss = self.objective.loss_and_grads(model, guide, *args, **kwargs)
        penalty = self.penalty(args, kwargs)
        if penalty.requires_grad:
            penalty.backward()
        return loss + penalty.detach().item()

    def _get_trace(self, model: Callable, guide: Callable, args: tuple, kwargs: dict) -> Any:
        return self.objective._get_trace(model, guide, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        objective = self.__dict__.get("objective")
        if objective is None:
            raise AttributeError(name)
        return getattr(objective, name)

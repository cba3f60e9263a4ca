"""Monte Carlo estimates against exact values: means, standard errors and the acceptance rule.

Two ways to get independent estimates:

* *replicates* in one call (BiHM, RWS, VIMCO): the minibatch of B distinct data points
  is repeated R times, row ``r * B + b`` holding x_b (:func:`replicate`); per-point
  means (:func:`per_point_mean_and_standard_error`) or gradients averaged over groups
  of replicates (:func:`replicate_gradients`, one batched backward pass);
* *repetitions* of the whole estimator (the DVAE family): :func:`repeated`,
  :func:`repeated_loss_and_gradient`, checked by :func:`assert_unbiased`.

Every statistical assertion is "within NUM_STANDARD_ERRORS standard errors".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tests.infer.gradients import flat_gradient
from tests.infer.small_models import NUM_DATA_POINTS

NUM_STANDARD_ERRORS = 4.0
"""|mean - exact| < 4 SE per compared number: a false alarm has probability ~6e-5 each."""

ROUNDING_TOLERANCE = 1e-12
"""float64 rounding of sums of O(1) terms; lets zero-variance coordinates (a gradient
that is exactly 0, e.g. the weight of a pixel that is 0 in every data point) pass."""

# ----------------------------------------------------------------- replicates in one batch

NUM_REPLICATE_GROUPS = 40
"""Independent group means per estimate; 39 degrees of freedom for each SE."""


def replicate(x: torch.Tensor, num_replicates: int) -> torch.Tensor:
    """R copies of the minibatch, row r * B + b holding x_b."""
    return x.repeat(num_replicates, 1)


def per_point_mean_and_standard_error(
    values: torch.Tensor, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and its standard error over replicates of values laid out as (R * B,)."""
    grid = values.reshape(-1, num_points)
    return grid.mean(0), grid.std(0) / grid.size(0) ** 0.5


@dataclass
class MonteCarloMean:
    mean: torch.Tensor
    standard_error: torch.Tensor

    def z_scores(self, exact: torch.Tensor, allowance: torch.Tensor | float = 0.0) -> torch.Tensor:
        """|mean - exact| in standard errors, after granting ``allowance`` (e.g. a bias bound)."""
        excess = ((self.mean - exact).abs() - allowance).clamp(min=0.0)
        # a component with no variance (e.g. a weight from a pixel that is 0 in every
        # data point) must match exactly: 0 SE off if equal, infinitely many if not
        return torch.where(excess == 0, 0.0, excess / self.standard_error)

    def assert_matches(self, exact: torch.Tensor, allowance: torch.Tensor | float = 0.0) -> None:
        z = self.z_scores(exact, allowance)
        assert z.max() < NUM_STANDARD_ERRORS, (
            f"max |mean - exact| = {z.max():.2f} SE (component {z.argmax().item()}); "
            f"mean {self.mean.tolist()}, exact {exact.tolist()}"
        )


def replicate_gradients(
    per_point_loss: torch.Tensor,
    params: list[torch.Tensor],
    points_per_replicate: int = NUM_DATA_POINTS,
    num_groups: int = NUM_REPLICATE_GROUPS,
) -> MonteCarloMean:
    """Mean and SE over replicates of d(sum of one replicate's losses)/d params.

    ``per_point_loss`` has shape (R * points_per_replicate,), replicate r in rows
    ``r * points_per_replicate + b``; replicates are dealt round-robin to groups.
    """
    per_group = grouped_replicate_gradients(per_point_loss, params, points_per_replicate, num_groups)
    return MonteCarloMean(per_group.mean(0), per_group.std(0) / math.sqrt(num_groups))


def grouped_replicate_gradients(
    per_point_loss: torch.Tensor,
    params: list[torch.Tensor],
    points_per_replicate: int = NUM_DATA_POINTS,
    num_groups: int = NUM_REPLICATE_GROUPS,
) -> torch.Tensor:
    """The gradient averaged over each group of replicates, shape (num_groups, number of parameters)."""
    num_points = per_point_loss.numel()
    num_replicates = num_points // points_per_replicate
    assert num_replicates % num_groups == 0
    group = (torch.arange(num_points) // points_per_replicate) % num_groups
    selector = torch.zeros(num_groups, num_points, dtype=per_point_loss.dtype)
    selector[group, torch.arange(num_points)] = 1.0
    grads = torch.autograd.grad(
        per_point_loss,
        params,
        grad_outputs=selector,
        is_grads_batched=True,
        retain_graph=True,
        allow_unused=True,
    )
    per_group = torch.cat(
        [
            (
                torch.zeros(num_groups, p.numel(), dtype=p.dtype)
                if g is None
                else g.reshape(num_groups, -1)
            )
            for g, p in zip(grads, params)
        ],
        dim=1,
    ) / (num_replicates // num_groups)
    return per_group


# ------------------------------------------------------------ repetitions of an estimator

NUM_REPEATS = 40
"""Independent repetitions of an estimator for its mean and standard error (SE within ~11%)."""

PARTICLES_PER_REPEAT = 250
"""Vectorised particles per repetition: cheap, unlike the per-call tracing overhead."""

NOISELESS_COMPONENT_TOLERANCE = 1e-9
"""Components with no sampling noise (e.g. a bias gradient fixed by x) must match to rounding."""


def repeated(estimate, num_repeats: int) -> torch.Tensor:
    """Stack num_repeats independent draws of a (tensor-valued) estimator."""
    return torch.stack(
        [torch.as_tensor(estimate()).detach().reshape(-1) for _ in range(num_repeats)]
    )


def repeated_loss_and_gradient(
    objective, model, guide, x, parameters, num_repeats=NUM_REPEATS, **kwargs
) -> tuple[torch.Tensor, torch.Tensor]:
    """(losses (R,), gradients (R, P)) of R independent evaluations of the objective."""
    losses, gradients = [], []
    for _ in range(num_repeats):
        loss = objective.differentiable_loss(model, guide, x, **kwargs)
        losses.append(loss.detach())
        gradients.append(flat_gradient(loss, parameters))
    return torch.stack(losses), torch.stack(gradients)


def assert_unbiased(draws: torch.Tensor, exact: torch.Tensor) -> None:
    """|mean - exact| < 4 SE componentwise, SE = sd / sqrt(R) of the R independent draws."""
    mean = draws.mean(0)
    standard_error = draws.std(0) / math.sqrt(draws.size(0))
    deviation = (mean - exact.reshape(-1)).abs()
    assert (
        deviation < NUM_STANDARD_ERRORS * standard_error + NOISELESS_COMPONENT_TOLERANCE
    ).all(), f"deviation / SE = {(deviation / standard_error).tolist()}"

"""Gradients of a scalar with respect to a list of parameters, as one flat vector."""

from __future__ import annotations

import torch


def gradients(output: torch.Tensor, parameters) -> list[torch.Tensor]:
    """d output / d parameters, zeros for parameters the output does not depend on.

    The graph is kept, so several gradients of one output can be taken.
    """
    grads = torch.autograd.grad(output, parameters, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(parameters, grads)]


def flat_gradient(output: torch.Tensor, parameters) -> torch.Tensor:
    """:func:`gradients` concatenated into one vector."""
    return torch.cat([g.reshape(-1) for g in gradients(output, parameters)])

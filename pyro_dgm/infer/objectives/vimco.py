r"""VIMCO: the K-sample importance-weighted bound with leave-one-out baselines.

For each data point :math:`x_b` and K samples :math:`h_k \sim q(h \mid x_b)` the
multi-sample bound (Mnih & Rezende 2016; Burda et al. 2016; the equation numbers
are this module's) is

.. math::

    \hat L_K = \log \frac1K \sum_{k=1}^K w_k, \qquad w_k = \frac{p(x_b, h_k)}{q(h_k \mid x_b)},
    \qquad \mathbb E[\hat L_K] \le \log p(x_b).                                  \tag{1}

Its gradient, with :math:`\tilde w_k = w_k / \sum_j w_j` (MR16), is

.. math::

    \nabla \mathbb E[\hat L_K] = \mathbb E\Big[\sum_k \tilde w_k \nabla \log w_k
        + \sum_k \big(\hat L_K - \hat L_K^{(-k)}\big) \nabla \log q(h_k \mid x_b)\Big], \tag{2}

where the leave-one-out baseline replaces :math:`w_k` by a mean of the others
(geometric by default, which MR16 found slightly better than arithmetic),

.. math::

    \hat L_K^{(-k)} = \log \frac1K \Big(\sum_{j \ne k} w_j + \hat w_{-k}\Big), \qquad
    \hat w_{-k} = \exp\Big(\frac{1}{K-1} \sum_{j \ne k} \log w_j\Big)
    \;\text{ or }\; \frac{1}{K-1} \sum_{j \ne k} w_j.                           \tag{3}

The baseline does not depend on :math:`h_k`, so (2) stays unbiased, and the
learning signal of sample k is local to it. Everything is per data point: the
weights of one data point never normalise another's (Pyro's
:class:`~pyro.infer.RenyiELBO` forms one weight per minibatch, issue #2220, and with
``alpha=0`` gives non-reparameterised guide sites no gradient, issue #3289).

**Supported guides.** Each guide site is treated by its distribution:
non-reparameterisable sites (``has_rsample`` false: Bernoulli, Categorical, …) get
the score-function term of (2) with the baseline (3); reparameterised sites get
the pathwise term through :math:`\nabla \log w_k` and no score term. A mixed guide
follows the same per-site rule (the tests cover all-discrete and all-reparameterised
guides). Per data point the leave-one-out means cost O(K²) memory.

Reference: A. Mnih and D. J. Rezende, "Variational Inference for Monte Carlo
Objectives", ICML 2016 (MR16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from pyro.poutine import Trace

from pyro_dgm.infer.importance import (
    ImportanceWeightedObjective,
    WeightedParticles,
    effective_sample_size,
    log_mean_exp,
)

LeaveOneOutMean = Literal["geometric", "arithmetic"]


@dataclass
class VIMCOTerms:
    r"""Per-data-point VIMCO quantities, unscaled, shape (B,).

    ``surrogate[b]`` has the value :math:`-\hat L_{K,b}` and minus Eq. (2) as its
    gradient; ``scale`` is the subsample scale N/B.
    """

    surrogate: torch.Tensor
    effective_sample_size: torch.Tensor
    scale: float | torch.Tensor


def leave_one_out_bounds(
    log_weights: torch.Tensor, mean: LeaveOneOutMean = "geometric"
) -> torch.Tensor:
    r""":math:`\hat L_K^{(-k)}` of Eq. (3) for every k, from ``log_weights`` of shape (K, B).

    Row k of a (K, K, B) table holds the log-weights with entry k replaced by the
    chosen mean of the others; its log-mean-exp is :math:`\hat L_K^{(-k)}`.
    Every sum runs over the others directly (no subtraction), so it is exact also
    when one weight dominates.
    """
    num_particles = log_weights.size(0)
    if num_particles < 2:
        raise ValueError("leave-one-out baselines need at least 2 particles")
    others = ~torch.eye(num_particles, dtype=torch.bool, device=log_weights.device)
    others = others.reshape(num_particles, num_particles, *(1,) * (log_weights.dim() - 1))
    table = log_weights.unsqueeze(0).expand(num_particles, *log_weights.shape)
    if mean == "geometric":
        replacement = torch.where(others, table, 0.0).sum(dim=1) / (num_particles - 1)
    elif mean == "arithmetic":
        masked = torch.where(others, table, -math.inf)
        replacement = torch.logsumexp(masked, dim=1) - math.log(num_particles - 1)
    else:
        raise ValueError(f"mean must be 'geometric' or 'arithmetic', got {mean!r}")
    table = torch.where(others, table, replacement.unsqueeze(1))
    return log_mean_exp(table, dim=1)


def _without_reparameterized_sites(guide_trace: Trace) -> Trace:
    """A new trace holding only the sites that need a score-function term (no edges).

    Built afresh rather than by ``copy`` + ``remove_node``: a copy shares its edge
    sets with the original, which ``remove_node`` would edit.
    """
    score_trace = Trace()
    for name, site in guide_trace.nodes.items():
        if not (site["type"] == "sample" and getattr(site["fn"], "has_rsample", False)):
            score_trace.add_node(name, **site)
    return score_trace


class VIMCO(ImportanceWeightedObjective):
    r"""Maximise the K-sample bound (1) with the VIMCO gradient estimator (2)-(3).

    :param int num_particles: K >= 2 samples per data point.
    :param str leave_one_out: ``"geometric"`` (MR16's choice) or ``"arithmetic"``
        mean of the other weights in the baseline (3).
    :param max_plate_nesting: as in :class:`pyro.infer.ELBO`.
    :param str data_plate: see :class:`~pyro_dgm.infer.importance.ImportanceWeightedObjective`.

    :meth:`loss` is :math:`-\frac NB \sum_b \hat L_{K,b}`, an unbiased estimate of minus
    the full-data bound; :meth:`differentiable_loss` has that value and gradient (2).
    After each call :attr:`last_effective_sample_size` holds the mean Kish ESS.
    """

    MIN_NUM_PARTICLES = 2
    """The baseline (3) of each sample is built from the K - 1 others."""

    def __init__(
        self,
        num_particles: int = 10,
        leave_one_out: LeaveOneOutMean = "geometric",
        max_plate_nesting: float = float("inf"),
        data_plate: str | None = None,
    ) -> None:
        if isinstance(num_particles, int) and num_particles < self.MIN_NUM_PARTICLES:
            raise ValueError(f"VIMCO needs num_particles >= {self.MIN_NUM_PARTICLES}, got {num_particles}")
        if leave_one_out not in ("geometric", "arithmetic"):
            raise ValueError(
                f"leave_one_out must be 'geometric' or 'arithmetic', got {leave_one_out!r}"
            )
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            data_plate=data_plate,
            detach_samples=False,  # reparameterised sites need their pathwise gradient
        )
        self.leave_one_out = leave_one_out
        self.last_effective_sample_size: float | None = None

    def terms(self, model, guide, *args, **kwargs) -> VIMCOTerms:
        """One run of guide and model with K particles, reduced to per-data-point terms."""
        particles = self.weighted_particles(model, guide, *args, **kwargs)
        log_weights = particles.log_weights
        bound = log_mean_exp(log_weights, dim=0)  # Eq. (1)
        learning_signal = bound.detach() - leave_one_out_bounds(  # Eq. (2), (3)
            log_weights.detach(), self.leave_one_out
        )
        score_log_prob = WeightedParticles.from_traces(
            particles.model_trace,
            _without_reparameterized_sites(particles.guide_trace),
            int(self.max_plate_nesting),
            self.data_plate,
        ).guide_log_prob
        score_term = (learning_signal * score_log_prob).sum(dim=0)  # Eq. (2), second sum
        return VIMCOTerms(
            surrogate=-(bound + score_term - score_term.detach()),
            effective_sample_size=effective_sample_size(log_weights.detach(), dim=0),
            scale=particles.scale,
        )

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        r""":math:`-\frac NB \sum_b \hat L_{K,b}` in value, minus Eq. (2) in gradient."""
        terms = self.terms(model, guide, *args, **kwargs)
        self.last_effective_sample_size = terms.effective_sample_size.mean().item()
        return terms.scale * terms.surrogate.sum()

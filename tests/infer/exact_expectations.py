r"""Exact values of the small models, by enumerating their latent (and observed) states.

* :func:`exact_particles`: every latent configuration of a :class:`TinySBN` as (C, B)
  log-densities, differentiable in its parameters;
* log p(x), log p~*(x) (BiHM Eq. 1) and exact finite-K expectations over all C^K
  particle tuples (:func:`finite_k_expectation`, :class:`ExactKSample`);
* :func:`exact_log_terms`: log p(x, h) and log q(h | x) of :func:`tiny_bihm` over every (x, h).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pyro_dgm.infer.estimators.exact import all_binary_configurations, enumerate_latents
from pyro_dgm.infer.importance import WeightedParticles, log_mean_exp
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide
from tests.infer.small_models import TINY_BIHM_LAYER_SIZES, TinySBN


def exact_particles(sbn: TinySBN, x: torch.Tensor, **kwargs) -> WeightedParticles:
    """Every latent configuration of ``sbn`` per point: (C, B) log-densities, differentiable."""
    return enumerate_latents(
        sbn.model, sbn.guide, sbn.latent_shapes, x.size(0), x, dtype=x.dtype, **kwargs
    )


def exact_log_bound(particles: WeightedParticles) -> torch.Tensor:
    """log p~*(x_b) = 2 log sum_h sqrt(p(x_b, h) q(h | x_b)), BiHM Eq. 1, shape (B,)."""
    return 2 * torch.logsumexp(0.5 * (particles.model_log_prob + particles.guide_log_prob), dim=0)


def exact_log_marginal(particles: WeightedParticles) -> torch.Tensor:
    """log p(x_b) = log sum_h p(x_b, h), shape (B,)."""
    return torch.logsumexp(particles.model_log_prob, dim=0)


def exact_negative_log_likelihood(sbn: TinySBN, x: torch.Tensor) -> float:
    """-sum_b log p(x_b), without gradients."""
    with torch.no_grad():
        return -exact_log_marginal(exact_particles(sbn, x)).sum().item()


def particle_tuple_indices(num_configurations: int, num_particles: int) -> torch.Tensor:
    """All C^K ordered K-tuples of configuration indices, shape (C^K, K)."""
    axes = [torch.arange(num_configurations)] * num_particles
    return torch.cartesian_prod(*axes).reshape(-1, num_particles)


def finite_k_expectation(
    log_q: torch.Tensor, log_w: torch.Tensor, num_particles: int, statistic
) -> torch.Tensor:
    """E over K iid h_k ~ q of statistic(log w[tuple]) (over the tuple dim 1), exact, (B,)."""
    tuples = particle_tuple_indices(log_q.size(0), num_particles)
    tuple_probability = log_q[tuples].sum(dim=1).exp()  # (C^K, B)
    return (tuple_probability * statistic(log_w[tuples])).sum(dim=0)


@dataclass
class ExactKSample:
    r"""Exact expectations over :math:`h_{1:K} \sim \prod_k q(h_k \mid x_b)`, per data point."""

    model_log_prob: torch.Tensor  # (T, K, B)
    guide_log_prob: torch.Tensor  # (T, K, B)

    @classmethod
    def of(cls, particles: WeightedParticles, num_particles: int) -> "ExactKSample":
        """Every K-tuple of the C configurations: (C, B) log-densities -> (C^K, K, B)."""
        tuples = particle_tuple_indices(particles.model_log_prob.size(0), num_particles)
        return cls(particles.model_log_prob[tuples], particles.guide_log_prob[tuples])

    @property
    def tuple_prob(self) -> torch.Tensor:
        """q(h_1..h_K | x_b), shape (T, B), differentiable w.r.t. the guide."""
        return self.guide_log_prob.sum(dim=1).exp()

    def bound(self, detach_guide: bool = False) -> torch.Tensor:
        """L_K per tuple and data point, (T, B)."""
        guide_log_prob = self.guide_log_prob.detach() if detach_guide else self.guide_log_prob
        return log_mean_exp(self.model_log_prob - guide_log_prob, dim=1)

    def expected_bound(self) -> torch.Tensor:
        """E[L_K] per data point, (B,), differentiable in every parameter (exact ∇E[L_K])."""
        return (self.tuple_prob * self.bound()).sum(dim=0)

    def variance_of_bound(self) -> torch.Tensor:
        prob = self.tuple_prob.detach()
        bound = self.bound().detach()
        return (prob * bound**2).sum(0) - (prob * bound).sum(0) ** 2

    def expected_wake_theta_objective(self) -> torch.Tensor:
        """E_q[L_K] with q held fixed: its θ-gradient is the exact mean of wake-θ (2)."""
        return (self.tuple_prob.detach() * self.bound(detach_guide=True)).sum(dim=0)

    def expected_wake_phi_objective(self) -> torch.Tensor:
        r"""E_q[\sum_k \tilde w_k \log q(h_k|x)], weights and q-probabilities held fixed."""
        normalized = torch.softmax((self.model_log_prob - self.guide_log_prob).detach(), dim=1)
        weighted = (normalized * self.guide_log_prob).sum(dim=1)
        return (self.tuple_prob.detach() * weighted).sum(dim=0)


def exact_log_terms(
    model: SigmoidBeliefNet, guide: BottomUpGuide
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Every x (rows, MSB-first codes) by every h = (h1, h2) (columns): log p(x,h), log q(h|x).

    For the 4-3-2 net of :func:`tiny_bihm`, from Pyro's own trace log-densities
    (:func:`enumerate_latents`), independent of the fast path's arithmetic. Shapes (16, 32).
    """
    dtype = model.prior.bias.dtype
    data = all_binary_configurations(TINY_BIHM_LAYER_SIZES[0], dtype=dtype)
    with torch.no_grad():
        particles = enumerate_latents(
            model,
            guide,
            {"h1": (TINY_BIHM_LAYER_SIZES[1],), "h2": (TINY_BIHM_LAYER_SIZES[2],)},
            data.size(0),
            data,
            dtype=dtype,
        )
    return particles.model_log_prob.T, particles.guide_log_prob.T

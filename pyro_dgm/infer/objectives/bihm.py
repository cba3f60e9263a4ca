r"""The bidirectional Helmholtz machine objective (Bornschein et al., 2016)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from pyro.util import warn_if_nan

from pyro_dgm.infer.importance import (
    ImportanceWeightedObjective,
    WeightedParticles,
    effective_sample_size,
    log_mean_exp,
)

BHATTACHARYYA_POWER = 0.5
r"""BiHM weighs by :math:`\omega = (p/q)^{1/2}`: p* is the geometric mean of p and q."""


def bihm_log_weights(particles: WeightedParticles) -> torch.Tensor:
    r"""(K, B) log-weights :math:`\log \omega_{k,b} = \tfrac12[\log p(x_b,h_k) - \log q(h_k|x_b)]` (Alg. 1)."""
    return BHATTACHARYYA_POWER * particles.log_weights


def bihm_log_bound(log_omega: torch.Tensor) -> torch.Tensor:
    r"""(B,) estimates :math:`\log \hat{\tilde p}{}^*(x_b) = 2 \log \frac1K \sum_k \omega_{k,b}` (Eq. 4)."""
    return log_mean_exp(log_omega, dim=0) / BHATTACHARYYA_POWER


class BiHMELBO(ImportanceWeightedObjective):
    r"""The BiHM bound :math:`\log \tilde p^*(x)` with its importance-sampled gradient.

    The BiHM model is :math:`p^*(x, h) = \sqrt{p(x,h)\,q(x,h)} / Z` with
    :math:`q(x) = p^*(x)`, whose marginal is bounded below by (BiHM Eq. 1)

    .. math::

        \tilde p^*(x) = \Big(\sum_h \sqrt{p(x,h)\,q(h \mid x)}\Big)^2 = Z^2 p^*(x) \le p^*(x).

    With :math:`h_k \sim q(h \mid x)`, :math:`k = 1..K`, and
    :math:`\omega_k = \sqrt{p(x,h_k)/q(h_k \mid x)}`, the bound is estimated by (Eq. 4)

    .. math::

        \tilde p^*(x) \simeq \Big(\frac1K \sum_{k=1}^K \omega_k\Big)^2 ,

    and the loss is :math:`-\sum_b 2 \log \frac1K \sum_k \omega_{k,b}`, summed over the
    minibatch and multiplied by the subsample scale N/B. The gradient with respect to
    the parameters :math:`\theta` of *both* p and q is (Eq. 6, Algorithm 1)

    .. math::

        \frac{\partial}{\partial\theta} \log \tilde p^*(x)
        = \sum_h p^*(h \mid x)\, \frac{\partial}{\partial\theta} \log p(x,h)\,q(h \mid x)
        \simeq \sum_{k=1}^K \tilde\omega_k \frac{\partial}{\partial\theta}
            \log p(x, h_k)\, q(h_k \mid x),
        \qquad \tilde\omega_k = \frac{\omega_k}{\sum_{k'} \omega_{k'}} .

    Note the *plus* sign on :math:`\log q`: differentiating
    :math:`2 \log \sum_h \sqrt{p q}` gives :math:`2 \cdot \tfrac12 \partial \log(pq)`
    under the posterior :math:`p^*(h \mid x) \propto \sqrt{p q}`, which equals the
    self-normalised average with weights :math:`\sqrt{pq}/q = \omega`. The samples
    are treated as observed (no gradient through the sampler), so discrete latent
    sites need no relaxation. The self-normalised gradient is biased at finite K by
    :math:`\frac{p(x)}{K \tilde p^*(x)} \big(\partial \log \tilde p^*(x) -
    \mathbb E_{p(h \mid x)} \partial \log p(x,h) q(h \mid x)\big) + O(K^{-2})`.

    Requirements: the guide samples every latent site of the model, and every
    sample site lies in the data plate (per-data-point weights).

    After each call, :attr:`effective_sample_size` holds Kish's ESS
    :math:`(\sum_k \omega_k)^2 / \sum_k \omega_k^2` of the BiHM weights per data point
    (BiHM Sec. 4.1), and :attr:`log_bound` the per-data-point estimate of
    :math:`\log \tilde p^*(x_b)` (Eq. 4), both detached, shape (B,).

    :param int num_particles: K, samples from the guide per data point.
    :param max_plate_nesting: as in :class:`pyro.infer.ELBO`.
    :param str data_plate: the plate that indexes data points.

    Reference: J. Bornschein, S. Shabanian, A. Fischer, Y. Bengio, *Bidirectional
    Helmholtz Machines*, ICML 2016.
    """

    def __init__(
        self,
        num_particles: int = 10,
        max_plate_nesting: float = float("inf"),
        data_plate: str | None = None,
    ) -> None:
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            data_plate=data_plate,
            detach_samples=True,
        )
        self.effective_sample_size: torch.Tensor | None = None
        self.log_bound: torch.Tensor | None = None

    def _loss_and_surrogate(
        self, model: Callable, guide: Callable, args: tuple, kwargs: dict
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss value (Eq. 4) and a surrogate whose gradient is minus Eq. 6."""
        particles = self.weighted_particles(model, guide, *args, **kwargs)
        log_omega = bihm_log_weights(particles).detach()
        log_bound = bihm_log_bound(log_omega)  # Eq. 4
        normalized_omega = torch.softmax(log_omega, dim=0)  # Alg. 1: omega_k / sum_k' omega_k'
        weighted_log_joint = (  # Eq. 6, summed over particles
            normalized_omega * (particles.model_log_prob + particles.guide_log_prob)
        ).sum(dim=0)
        self.log_bound = log_bound
        self.effective_sample_size = effective_sample_size(log_omega, dim=0)
        loss = -particles.scale * log_bound.sum()
        surrogate_loss = -particles.scale * weighted_log_joint.sum()
        warn_if_nan(loss, "loss")
        return loss, surrogate_loss

    def differentiable_loss(
        self, model: Callable, guide: Callable, *args, **kwargs
    ) -> torch.Tensor:
        """The loss as a tensor whose gradient is the BiHM estimator (minus Eq. 6)."""
        loss, surrogate_loss = self._loss_and_surrogate(model, guide, args, kwargs)
        return loss + (surrogate_loss - surrogate_loss.detach())

r"""Plain-PyTorch reference implementations of the SBN estimators, for speed comparisons.

No Pyro here: the same sigmoid belief net and bottom-up guide (the *same* modules,
so the same weights), the same K-particle sampling and the same surrogate losses
whose gradients are the estimators of :mod:`pyro_dgm.infer`. With equal RNG seeds
both paths draw the same samples, so their gradients agree to rounding — which
:func:`benchmarks.speed.check_same_gradient` asserts before anything is timed.

``scale`` is the subsample scale N/B that pyro_dgm multiplies the summed loss by.

For a minibatch :math:`x_{1..B}` and particles :math:`h_{k,b} \sim q(h \mid x_b)`,
``log_p[k, b]`` is :math:`\log p(x_b, h_{k,b})` and ``log_q[k, b]`` is
:math:`\log q(h_{k,b} \mid x_b)`; samples are detached (treated as observed).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide


def bernoulli_log_prob(logits: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Sum over the last dim of log Bernoulli(value | logits), broadcasting as ``Bernoulli.log_prob`` does."""
    logits, value = torch.broadcast_tensors(logits, value)
    return -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)


def sample_bernoulli(logits: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Draw like Pyro's Bernoulli site does: ``torch.bernoulli`` of the expanded probabilities.

    Under ``no_grad``, as ``Bernoulli.sample`` is: ``torch.bernoulli`` is differentiable
    (with a zero gradient), so outside ``no_grad`` every later layer would backpropagate
    zeros into the sampler, costing one useless matrix product per layer.
    """
    with torch.no_grad():
        return torch.bernoulli(torch.sigmoid(logits).expand(shape))


def sbn_log_weights(
    model: SigmoidBeliefNet, guide: BottomUpGuide, x: torch.Tensor, num_particles: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log_p, log_q)`` of shape (K, B): guide bottom-up, then the model top-down."""
    batch_size = x.size(0)
    context, log_q, latents = x, 0.0, []
    for conditional in guide.conditionals:
        logits = conditional.logits(context)
        h = sample_bernoulli(logits, (num_particles, batch_size, conditional.out_features))
        log_q = log_q + bernoulli_log_prob(logits, h)
        latents.append(h)
        context = h
    top = latents[-1]
    log_p = bernoulli_log_prob(model.prior.bias, top)
    for layer in range(len(latents) - 1, 0, -1):
        log_p = log_p + bernoulli_log_prob(model.conditionals[layer].logits(latents[layer]), latents[layer - 1])
    log_p = log_p + bernoulli_log_prob(model.conditionals[0].logits(latents[0]), x)
    return log_p, log_q


def sbn_ancestral_sample(model: SigmoidBeliefNet, num_samples: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(x, [h_1, ..., h_L])`` drawn top-down from the model."""
    h = sample_bernoulli(model.prior.bias, (num_samples, model.layer_sizes[-1]))
    latents = [h]
    for layer in range(model.num_latent_layers - 1, -1, -1):
        conditional = model.conditionals[layer]
        h = sample_bernoulli(conditional.logits(h), (num_samples, conditional.out_features))
        latents.insert(0, h)
    return latents[0], latents[1:]


def bihm_surrogate(log_p: torch.Tensor, log_q: torch.Tensor, scale: float) -> torch.Tensor:
    r"""BiHM Eq. 6: gradient :math:`\sum_k \tilde w_k \nabla \log[p(x,h_k) q(h_k|x)]`, :math:`\tilde w \propto \sqrt{p/q}`."""
    weights = torch.softmax(0.5 * (log_p - log_q), dim=0).detach()
    return -scale * (weights * (log_p + log_q)).sum()


def rws_wake_surrogate(
    log_p: torch.Tensor, log_q: torch.Tensor, scale: float, insomnia: float = 1.0
) -> torch.Tensor:
    r"""Wake-θ plus ``insomnia`` · wake-φ: :math:`\sum_k \tilde w_k \nabla[\log p + \mathrm{insomnia} \log q]`, :math:`\tilde w \propto p/q`.

    ``insomnia=1`` (the default of :class:`~pyro_dgm.infer.objectives.rws.ReweightedWakeSleep`)
    is wake-φ only; below 1 add ``(1 - insomnia)`` · :func:`sleep_surrogate`.
    """
    weights = torch.softmax(log_p - log_q, dim=0).detach()
    return -scale * (weights * (log_p + insomnia * log_q)).sum()


def sleep_surrogate(model: SigmoidBeliefNet, guide: BottomUpGuide, num_samples: int, scale: float) -> torch.Tensor:
    r"""Sleep-φ: :math:`-\nabla_\phi \log q(h \mid x)` at :math:`(x, h) \sim p`."""
    with torch.no_grad():
        x, latents = sbn_ancestral_sample(model, num_samples)
    log_q, context = 0.0, x
    for conditional, h in zip(guide.conditionals, latents):
        log_q = log_q + bernoulli_log_prob(conditional.logits(context), h)
        context = h
    return -scale * log_q.sum()


def vimco_surrogate(log_p: torch.Tensor, log_q: torch.Tensor, scale: float) -> torch.Tensor:
    r"""VIMCO: :math:`\sum_k \tilde w_k \nabla \log w_k + \sum_k (L - L^{(-k)}) \nabla \log q_k` (geometric-mean baseline)."""
    num_particles = log_p.size(0)
    log_w = log_p - log_q
    bound = torch.logsumexp(log_w, dim=0) - math.log(num_particles)
    detached = log_w.detach()
    others_mean = (detached.sum(0, keepdim=True) - detached) / (num_particles - 1)
    replaced = detached.unsqueeze(0).expand(num_particles, -1, -1).clone()
    index = torch.arange(num_particles, device=log_w.device)
    replaced[index, index] = others_mean
    leave_one_out = torch.logsumexp(replaced, dim=1) - math.log(num_particles)
    learning_signal = (bound.detach().unsqueeze(0) - leave_one_out).detach()
    weights = torch.softmax(detached, dim=0)
    return -scale * ((weights * log_w).sum() + (learning_signal * log_q).sum())

r"""A small Gaussian VAE, in Pyro and in plain PyTorch, for timing Pyro's IWAE.

:class:`GaussianVAE` holds the networks once; :meth:`GaussianVAE.model` and
:meth:`GaussianVAE.guide` are the Pyro program that
``pyro.infer.RenyiELBO(alpha=0, vectorize_particles=True)`` trains (the IWAE bound
of Burda et al. 2016), and :func:`iwae_log_weights` with :func:`iwae_surrogate` is
the same model and estimator written by hand, on the same modules and weights.

The generative model is :math:`z \sim \mathcal N(0, I)`, :math:`x \mid z \sim
\prod_d \mathcal B(x_d \mid \sigma(f(z)_d))`; the guide is
:math:`q(z \mid x) = \mathcal N(\mu(x), \mathrm{diag}\, \sigma(x)^2)`, sampled by
reparameterisation.

**Which estimator.** ``RenyiELBO`` sums each site's log-density over the plates
that are *not* shared by every site (``get_dependent_plate_dims``); the data plate
holds every site here, so the weights are per data point, the IWAE bound:

.. math::

    \log w_{k,b} = \log p(x_b, z_{k,b}) - \log q(z_{k,b} \mid x_b),
    \qquad \text{loss} = -\sum_b \log \tfrac1K \textstyle\sum_k w_{k,b},

with the gradient :math:`-\sum_b \sum_k \tilde w_{k,b} \nabla \log w_{k,b}` (pathwise
through :math:`z`). :func:`iwae_surrogate` is that loss; the benchmark asserts that
both paths' gradients agree.

With equal RNG seeds both paths draw the same :math:`\epsilon`: ``Normal.rsample``
fills ``torch.empty(shape).normal_()`` and so does :func:`iwae_log_weights`.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)
r""":math:`\tfrac12 \log 2\pi`, the constant of the Gaussian log-density."""

VAE_PLATE_NAME = "data"
"""The Pyro program's plate over data points."""


class GaussianVAE(nn.Module):
    """A one-hidden-layer Gaussian VAE with a Bernoulli decoder (MLPs with tanh).

    Args:
        data_size: D, the number of binary pixels.
        hidden_size: width of the encoder's and the decoder's hidden layer.
        latent_size: dimension of :math:`z`.

    Example:
        >>> vae = GaussianVAE(784, 200, 50)
        >>> log_p, log_q = iwae_log_weights(vae, torch.zeros(3, 784), num_particles=5)
        >>> log_p.shape
        torch.Size([5, 3])
    """

    def __init__(self, data_size: int = 784, hidden_size: int = 200, latent_size: int = 50) -> None:
        super().__init__()
        self.latent_size = latent_size
        self.encoder = nn.Sequential(nn.Linear(data_size, hidden_size), nn.Tanh())
        self.encoder_loc = nn.Linear(hidden_size, latent_size)
        self.encoder_log_scale = nn.Linear(hidden_size, latent_size)
        self.decoder = nn.Sequential(
            nn.Linear(latent_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, data_size)
        )

    def posterior_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`(\mu(x), \sigma(x))` of the guide, each of shape (B, latent_size)."""
        hidden = self.encoder(x)
        return self.encoder_loc(hidden), self.encoder_log_scale(hidden).exp()

    def model(self, x: torch.Tensor) -> None:
        """The Pyro model: standard normal prior, Bernoulli decoder, ``x`` observed."""
        pyro.module("vae", self)
        prior_loc = x.new_zeros(self.latent_size)
        with pyro.plate(VAE_PLATE_NAME, x.size(0)):
            z = pyro.sample("z", dist.Normal(prior_loc, torch.ones_like(prior_loc)).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=self.decoder(z)).to_event(1), obs=x)

    def guide(self, x: torch.Tensor) -> None:
        """The Pyro guide: the reparameterised Gaussian encoder."""
        pyro.module("vae", self)
        loc, scale = self.posterior_params(x)
        with pyro.plate(VAE_PLATE_NAME, x.size(0)):
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))


def normal_log_prob(value: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Sum over the last dim of log N(value | loc, scale²)."""
    return (-((value - loc) ** 2) / (2 * scale**2) - scale.log() - HALF_LOG_TWO_PI).sum(-1)


def iwae_log_weights(
    vae: GaussianVAE, x: torch.Tensor, num_particles: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log_p, log_q)`` of shape (K, B), differentiable through the reparameterised z."""
    loc, scale = vae.posterior_params(x)
    shape = (num_particles, *loc.shape)
    epsilon = torch.empty(shape, dtype=loc.dtype, device=loc.device).normal_()
    z = loc + epsilon * scale  # Normal.rsample's formula
    log_q = normal_log_prob(z, loc, scale)
    log_prior = (-0.5 * z**2 - HALF_LOG_TWO_PI).sum(-1)  # N(z | 0, I)
    logits = vae.decoder(z)
    log_likelihood = -F.binary_cross_entropy_with_logits(
        logits, x.expand_as(logits), reduction="none"
    ).sum(-1)
    return log_prior + log_likelihood, log_q


def iwae_surrogate(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    r"""``RenyiELBO(alpha=0)``'s loss: :math:`-\sum_b \log \frac1K \sum_k w_{k,b}`, from (K, B) log-densities."""
    log_weights = log_p - log_q
    return -(torch.logsumexp(log_weights, dim=0) - math.log(log_weights.size(0))).sum()

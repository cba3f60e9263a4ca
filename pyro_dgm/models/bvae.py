r"""The bidirectional VAE (Kosko & Adigun) and its unidirectional twin, in plain Pyro.

Both are Gaussian-latent VAEs over flat images :math:`x \in [0,1]^D`,

.. math::

    p(z) = \mathcal N(0, I_J), \qquad p(x \mid z) = \prod_d \mathcal B(x_d \mid \sigma(\ell_d(z))),
    \qquad q(z \mid x) = \mathcal N\bigl(\mu(x), \operatorname{diag}\sigma^2(x)\bigr),

trained on the ELBO (BVAE Eq. 38) or any other Pyro objective. They differ in where
the encoder and decoder weights live (BVAE Fig. 1):

* :class:`BidirectionalVAE` — one network :math:`\mathbf N_\theta` with a
  bidirectional mean head :math:`\mathbf W_\theta` and a log-variance head
  :math:`\mathbf V_\theta` (Algorithm 1). The guide is the *forward* pass,
  :math:`\mu = \mathbf W_\theta(\mathbf N_\theta(x))`,
  :math:`\ln\sigma^2 = \mathbf V_\theta(\mathbf N_\theta(x))` (line 4); the model's
  decoder is the *backward* pass through the same weights,
  :math:`\ell(z) = \mathbf N_\theta^\top(\mathbf W_\theta^\top(z))` (line 6), so
  :math:`q_f(z \mid x, \theta)` and :math:`p_b(x \mid z, \theta)` share :math:`\theta`
  (Eq. 36–38) and one optimiser step on the ELBO moves both (Eq. 39).
* :class:`UnidirectionalVAE` — the same architecture untied
  (:meth:`~pyro_dgm.nn.bidirectional.BidirectionalModule.untie`): an encoder network
  run forward and a separate decoder network run as the transposed architecture
  (Eq. 24–25). It has exactly the weight matrices/kernels of :math:`\mathbf N_\theta`
  and :math:`\mathbf W_\theta` more parameters (about twice as many).

Likelihood: Bernoulli on binarised pixels (the paper's "BCE", Algorithm 1 line 7),
the default; ``likelihood="continuous_bernoulli"`` scores grey levels in [0, 1]
with a normalised density instead. The decoder is parameterised by logits.

Sample sites: ``z`` (latent, event dim 1) and ``x`` (observed, event dim 1) in the
data plate ``"data"`` (dim -1), so Pyro's vectorised particles broadcast on the
left and every ELBO of :mod:`pyro.infer` applies as is:

* ELBO: ``Trace_ELBO()`` or ``TraceMeanField_ELBO()`` (analytic KL);
* β-VAE: ``model(x, beta=β)`` / ``guide(x, beta=β)`` scale the latent site by β in
  both model and guide with :func:`pyro.poutine.scale` (Pyro's KL-annealing idiom),
  so any ELBO estimates :math:`\mathbb E_q \ln p(x \mid z) - \beta\,\mathrm{KL}(q \| p)`;
* β-TCVAE: :class:`pyro_dgm.infer.objectives.tcvae.TCVAE_ELBO`;
* IWAE: ``RenyiELBO(alpha=0, num_particles=K, vectorize_particles=True)``; Pyro
  1.9 sums log-densities only over plates *not* shared by all sites
  (``get_dependent_plate_dims``), so with every site in the data plate it forms one
  importance weight per data point (checked in ``tests/models/test_bvae.py``).
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from pyro_dgm.models.param_store import register_module
from pyro_dgm.models.plates import check_data, data_plate
from pyro_dgm.nn.bidirectional import (
    BidirectionalLinear,
    BidirectionalModule,
    BidirectionalSequential,
    ReversePass,
)

LATENT_SITE = "z"
"""Name of the Gaussian latent sample site."""

OBSERVED_SITE = "x"
"""Name of the observed pixels' sample site."""

LIKELIHOODS = ("bernoulli", "continuous_bernoulli")
"""Pixel likelihoods :class:`ImageDecoder` offers."""

LOG_VARIANCE_TO_LOG_SCALE = 0.5
r""":math:`\ln\sigma = \tfrac12 \ln\sigma^2` (the heads predict log-variances, Algorithm 1)."""


def _flatten_batch(tensor: torch.Tensor, event_size: int, argument: str) -> tuple[torch.Size, torch.Tensor]:
    """Split ``(..., event_size)`` into its batch shape and a ``(prod(batch), event_size)`` view."""
    if tensor.dim() < 1 or tensor.size(-1) != event_size:
        raise ValueError(f"{argument} must have shape (..., {event_size}), got {tuple(tensor.shape)}")
    return tensor.shape[:-1], tensor.reshape(-1, event_size)


class GaussianEncoder(nn.Module):
    r"""``forward(x)`` returns :math:`q(z \mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)` (Algorithm 1, line 4).

    :math:`\mu = \text{mean\_head}(\text{body}(x))` and
    :math:`\ln\sigma^2 = \text{log\_variance\_head}(\text{body}(x))`. Any leading
    batch dims of ``x`` (data, particles) pass through.

    :param body: feature network :math:`\mathbf N`, ``(N, data_dim) -> (N, F)``.
    :param mean_head: :math:`\mathbf W`, ``(N, F) -> (N, J)``.
    :param log_variance_head: :math:`\mathbf V`, ``(N, F) -> (N, J)``.
    :param data_dim: D, the size of a flat input.
    """

    def __init__(self, body: nn.Module, mean_head: nn.Module, log_variance_head: nn.Module, data_dim: int) -> None:
        super().__init__()
        self.body = body
        self.mean_head = mean_head
        self.log_variance_head = log_variance_head
        self.data_dim = data_dim

    def forward(self, x: torch.Tensor) -> dist.Independent:
        batch_shape, flat = _flatten_batch(x, self.data_dim, "x")
        features = self.body(flat)
        loc = self.mean_head(features)  # Algorithm 1, line 4: mu = W(N(x))
        log_variance = self.log_variance_head(features)  # ln sigma^2 = V(N(x))
        scale = torch.exp(LOG_VARIANCE_TO_LOG_SCALE * log_variance)
        latent_shape = batch_shape + loc.shape[-1:]
        return dist.Normal(loc.reshape(latent_shape), scale.reshape(latent_shape)).to_event(1)


class ImageDecoder(nn.Module):
    r"""``forward(z)`` returns :math:`p(x \mid z)`, factorised over pixels, with logits ``logits_net(z)``.

    :param logits_net: ``(N, J) -> (N, D)`` pixel logits.
    :param latent_dim: J.
    :param likelihood: ``"bernoulli"`` (binary pixels) or ``"continuous_bernoulli"``
        (grey levels in [0, 1], Loaiza-Ganem & Cunningham 2019).
    """

    def __init__(self, logits_net: nn.Module, latent_dim: int, likelihood: str = "bernoulli") -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.logits_net = logits_net
        self.latent_dim = latent_dim
        self.likelihood = likelihood

    def forward(self, z: torch.Tensor) -> dist.Independent:
        batch_shape, flat = _flatten_batch(z, self.latent_dim, "z")
        logits = self.logits_net(flat)  # Algorithm 1, line 6: N^T(W^T(z)) for the BVAE
        logits = logits.reshape(batch_shape + logits.shape[-1:])
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=logits).to_event(1)
        return dist.ContinuousBernoulli(logits=logits).to_event(1)


class GaussianLatentVAE(nn.Module):
    r"""Model/guide pair shared by the bidirectional VAE and its twin.

    ``model(x)``: :math:`z \sim \mathcal N(0, I)`, :math:`x \sim` ``decoder(z)``;
    ``guide(x)``: :math:`z \sim` ``encoder(x)``. Both take ``num_data`` (scale a
    minibatch up to a data set of that size) and ``beta`` (the β-VAE weight of the
    latent site, applied with :func:`pyro.poutine.scale` in both, so the KL term of
    any ELBO is multiplied by β).

    :param encoder: ``forward(x)`` returns a distribution over z with event shape (J,).
    :param decoder: ``forward(z)`` returns a distribution over x with event shape (D,).
    :param data_dim: D.
    :param latent_dim: J.
    :param name: prefix of the parameters in Pyro's param store.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, data_dim: int, latent_dim: int, name: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.data_dim = data_dim
        self.latent_dim = latent_dim
        self.name = name

    def prior(self, batch_shape: torch.Size | tuple[int, ...]) -> dist.Independent:
        """:math:`p(z) = \\mathcal N(0, I_J)` with the given batch shape, on the parameters' device."""
        parameter = next(self.parameters())
        zeros = torch.zeros(tuple(batch_shape) + (self.latent_dim,), dtype=parameter.dtype, device=parameter.device)
        return dist.Normal(zeros, torch.ones_like(zeros)).to_event(1)

    def _contexts(self, x: torch.Tensor, num_data: int | None, beta: float) -> tuple[pyro.plate, poutine.scale]:
        """Validate the arguments, register the parameters; return the data plate and the β scale."""
        batch_size = check_data(x, self.data_dim, self)
        _check_beta(beta)
        register_module(self.name, self)
        return data_plate(batch_size, num_data, x.device), poutine.scale(scale=beta)

    def model(self, x: torch.Tensor, num_data: int | None = None, beta: float = 1.0) -> torch.Tensor:
        """Score the batch ``x`` (B, D) under :math:`p(z)\\,p(x \\mid z)`; returns z."""
        data, kl_scale = self._contexts(x, num_data, beta)
        with data:
            with kl_scale:
                z = pyro.sample(LATENT_SITE, self.prior((x.size(0),)))
            pyro.sample(OBSERVED_SITE, self.decoder(z), obs=x)
        return z

    def guide(self, x: torch.Tensor, num_data: int | None = None, beta: float = 1.0) -> torch.Tensor:
        """Sample :math:`z \\sim q(z \\mid x)` for the batch ``x`` (B, D); returns z."""
        data, kl_scale = self._contexts(x, num_data, beta)
        with data, kl_scale:
            return pyro.sample(LATENT_SITE, self.encoder(x))


def _check_beta(beta: float) -> None:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a positive number (the KL weight of the beta-VAE), got {beta!r}")


def _network_sizes(network: BidirectionalModule) -> tuple[int, int]:
    if not isinstance(network, BidirectionalModule):
        raise TypeError(f"network must be a BidirectionalModule, got {type(network).__name__}")
    data_dim = getattr(network, "in_features", None)
    feature_dim = getattr(network, "out_features", None)
    if data_dim is None or feature_dim is None:
        raise ValueError(
            "network must map flat vectors to flat vectors (declare in_features and "
            "out_features, e.g. a BidirectionalSequential that starts and ends with a "
            "BidirectionalLinear or a BidirectionalReshape to/from a flat shape)"
        )
    return data_dim, feature_dim


class BidirectionalVAE(GaussianLatentVAE):
    r"""Bidirectional VAE (Kosko & Adigun, Algorithm 1): encode forward, decode backward, one θ.

    :param network: :math:`\mathbf N_\theta`, a bidirectional map from flat data
        (``in_features`` = D) to flat features (``out_features`` = F), e.g.
        :func:`~pyro_dgm.nn.bidirectional_networks.bidirectional_mlp` or
        :func:`~pyro_dgm.nn.bidirectional_networks.bidirectional_resnet`.
    :param latent_dim: J.
    :param likelihood: ``"bernoulli"`` (default) or ``"continuous_bernoulli"``.
    :param name: prefix in Pyro's param store.

    Parameters: those of :math:`\mathbf N_\theta`, the bidirectional mean head
    :math:`\mathbf W_\theta` (F×J weights, biases of both directions) and the
    forward-only log-variance head :math:`\mathbf V_\theta` (``nn.Linear(F, J)``).

    Example::

        >>> from pyro_dgm.nn.bidirectional_networks import bidirectional_mlp
        >>> bvae = BidirectionalVAE(bidirectional_mlp([784, 256]), latent_dim=16)
        >>> bvae.encoder(torch.rand(3, 784)).batch_shape, bvae.decoder(torch.randn(3, 16)).event_shape
        (torch.Size([3]), torch.Size([784]))
    """

    def __init__(self, network: BidirectionalModule, latent_dim: int, likelihood: str = "bernoulli", name: str = "bvae") -> None:
        data_dim, feature_dim = _network_sizes(network)
        mean_head = BidirectionalLinear(feature_dim, latent_dim)  # W_theta
        log_variance_head = nn.Linear(feature_dim, latent_dim)  # V_theta (forward only)
        encoder = GaussianEncoder(network, mean_head, log_variance_head, data_dim)
        decoder = ImageDecoder(ReversePass(BidirectionalSequential(network, mean_head)), latent_dim, likelihood)
        super().__init__(encoder, decoder, data_dim, latent_dim, name)


class UnidirectionalVAE(GaussianLatentVAE):
    r"""The unidirectional twin: the BVAE's architecture with separate encoder and decoder weights.

    ``network`` serves as an architecture template only: it is untied into a fresh
    forward (encoder) network and a fresh transposed (decoder) network; its own
    parameters are not used. Same arguments as :class:`BidirectionalVAE`.
    """

    def __init__(self, network: BidirectionalModule, latent_dim: int, likelihood: str = "bernoulli", name: str = "vae") -> None:
        data_dim, feature_dim = _network_sizes(network)
        body_forward, body_reverse = network.untie()
        mean_forward, mean_reverse = BidirectionalLinear(feature_dim, latent_dim).untie()
        encoder = GaussianEncoder(body_forward, mean_forward, nn.Linear(feature_dim, latent_dim), data_dim)
        decoder = ImageDecoder(nn.Sequential(mean_reverse, body_reverse), latent_dim, likelihood)
        super().__init__(encoder, decoder, data_dim, latent_dim, name)

r"""Diagonal Gaussian layers: modules that, given a context, return a Normal distribution.

The continuous latent layers of a DVAE (Rolfe 2017, Sec. 4-5) are conditionally
Gaussian in both the prior and the approximating posterior,

.. math::

    p(\mathfrak z_m \mid c) = \mathcal N\bigl(\mathfrak z_m \mid \mu(c), \operatorname{diag}\sigma^2(c)\bigr),

where "the neural networks output the mean and log-standard deviation of a
diagonal-covariance Gaussian distribution using a linear final layer" (DVAE Sec. 5).
:class:`NormalLayer` is that network; like
:class:`~pyro_dgm.nn.bernoulli_layer.BernoulliLayer` its ``forward`` returns the
distribution (event dim 1), so model and guide code read
``pyro.sample("continuous1", layer(context))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro.distributions as dist
import torch
from torch import nn

from pyro_dgm.nn.bernoulli_layer import ConditionalLayer

INITIAL_LOG_SCALE = 0.0
r"""Bias of the log-standard-deviation head: :math:`\sigma = 1` at initialisation, as the
standard normal prior a VAE starts from."""


class NormalLayer(ConditionalLayer):
    r""":math:`\mathcal N(\mu(c), \operatorname{diag} e^{2 s(c)})` with :math:`(\mu, s)` from one MLP.

    Args:
        in_features: size of the context :math:`c`.
        out_features: dimension of the Gaussian.
        hidden_sizes: widths of deterministic hidden layers (none: :math:`\mu, s` affine in :math:`c`).
        activation: the hidden layers' nonlinearity.

    Example:
        >>> layer = NormalLayer(10, 4, hidden_sizes=[20])
        >>> layer(torch.zeros(3, 10)).rsample().shape
        torch.Size([3, 4])
    """

    outputs_per_unit = 2  # mu and s

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (),
        activation: type[nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__(in_features, out_features, hidden_sizes, activation)
        with torch.no_grad():
            self.net[-1].bias.zero_()
            self.net[-1].bias[out_features:].fill_(INITIAL_LOG_SCALE)

    def loc_and_log_scale(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`\mu(c)` and :math:`s(c) = \log\sigma(c)`, each of shape ``context.shape[:-1] + (out_features,)``."""
        loc, log_scale = self.network_output(context).chunk(2, dim=-1)
        return loc, log_scale

    def forward(self, context: torch.Tensor) -> dist.Independent:
        """The Gaussian given ``context``, event shape ``(out_features,)``."""
        loc, log_scale = self.loc_and_log_scale(context)
        return dist.Normal(loc, log_scale.exp()).to_event(1)

r"""GumBolt's proxy densities (Khoshaman & Amin, NeurIPS 2018): an RBM and a Gumbel-relaxed posterior on :math:`[0, 1]^N`.

GumBolt relaxes a binary latent :math:`z` by the binary Concrete (Gumbel-sigmoid) draw
:math:`\zeta = \sigma((\ell + \log\rho - \log(1 - \rho))/\tau)` and evaluates both densities with their
*discrete* formulas extended to the cube:

.. math::

    \log \tilde p(\zeta) = -E(\zeta) - \log Z, \qquad
    \log \tilde q(\zeta \mid x) = \sum_i \zeta_i \log q_i + (1 - \zeta_i)\log(1 - q_i),

with :math:`E(\zeta) = -a^\top\zeta - \zeta_1^\top W \zeta_2` multilinear. Neither is normalised:
:math:`\int_{[0,1]^N} e^{-E} \le 2^{-N} Z` (each coordinate enters :math:`e^{-E}` convexly), so
using the discrete :math:`\log Z` under-states :math:`\log \tilde p` by at least :math:`N \log 2`, and
:math:`\tilde q` is not the density of the draws. Both are exact at :math:`\zeta \in \{0, 1\}^N`, so
the objective tends to the discrete one as :math:`\tau \to 0`. ``docs/derivations/dvae_sharp.md``
derives the bound; the paper's exact statement of it was not available to us.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

from pyro_dgm.distributions.relaxed_boltzmann import RelaxedBoltzmannPrior

__all__ = ["GumBoltPosterior", "GumBoltPrior"]


class GumBoltPrior(RelaxedBoltzmannPrior):
    r"""The RBM energy on the cube: :math:`\log \tilde p(\zeta) = a_1^\top\zeta_1 + a_2^\top\zeta_2 + \zeta_1^\top W \zeta_2 - \log Z` (not normalised).

    ``sample`` draws binary :math:`z \sim p(z)`, the :math:`\tau \to 0` limit of the relaxation.

    Example::

        >>> import torch
        >>> from pyro_dgm.distributions import RBM
        >>> prior = GumBoltPrior(RBM(torch.zeros(2), torch.ones(1), torch.ones(2, 1)))
        >>> float(prior.unnormalized_log_prob(torch.tensor([1.0, 0.5, 1.0])))
        2.5
    """

    support = constraints.independent(constraints.unit_interval, 1)

    def unnormalized_log_prob(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`-E(\zeta)`, the RBM's negative energy at continuous :math:`\zeta`."""
        zeta1, zeta2 = zeta[..., : self.rbm.num_units1], zeta[..., self.rbm.num_units1 :]
        field2 = self.rbm.bias2 + (zeta1.unsqueeze(-2) @ self.rbm.weight).squeeze(-2)
        return (self.rbm.bias1 * zeta1).sum(-1) + (field2 * zeta2).sum(-1)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self._binary_draws(sample_shape)


class GumBoltPosterior(TorchDistribution):
    r"""Binary Concrete draws scored by the Bernoulli formula: GumBolt's relaxed posterior, elementwise.

    ``rsample``: :math:`\zeta = \sigma\bigl((\ell + \log\rho - \log(1 - \rho))/\tau\bigr)`,
    :math:`\rho \sim U(0, 1)` (Maddison et al. 2017; Jang et al. 2017), pathwise in :math:`\ell`
    and :math:`\tau`. ``log_prob``: :math:`\zeta\log\sigma(\ell) + (1 - \zeta)\log\sigma(-\ell)`, the
    proxy of GumBolt, *not* the density of these draws (module docstring).

    :param temperature: :math:`\tau > 0`.
    :param logits: :math:`\ell`.

    Example::

        >>> import torch
        >>> q = GumBoltPosterior(torch.tensor(0.5), logits=torch.zeros(3))
        >>> q.rsample((2,)).shape
        torch.Size([2, 3])
    """

    arg_constraints = {"temperature": constraints.positive, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature: torch.Tensor | float, logits: torch.Tensor, validate_args: Optional[bool] = None) -> None:
        self.temperature, self.logits = broadcast_all(temperature, logits)
        super().__init__(self.logits.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(GumBoltPosterior, _instance)
        batch_shape = torch.Size(batch_shape)
        new.temperature, new.logits = self.temperature.expand(batch_shape), self.logits.expand(batch_shape)
        super(GumBoltPosterior, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        finfo = torch.finfo(self.logits.dtype)
        # rho in [tiny, 1 - eps]: the logistic noise stays finite, so every gradient does
        rho = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device).clamp(finfo.tiny, 1 - finfo.eps)
        return torch.sigmoid((self.logits + torch.log(rho) - torch.log1p(-rho)) / self.temperature)

    def log_prob(self, zeta: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(zeta)
        return zeta * F.logsigmoid(self.logits) + (1 - zeta) * F.logsigmoid(-self.logits)

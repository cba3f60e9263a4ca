r"""The binary limit :math:`\beta \to \infty` of the smoothing transformations (Rolfe 2017 footnote 5).

Every smoother tends to :math:`(1 - q)\,\delta(\zeta) + q\,\delta(\zeta - 1)`, i.e.
:math:`\zeta = z \sim \mathrm{Bernoulli}(q)`; a model trained with finite :math:`\beta` is
evaluated with this distribution in place of its smoother.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
from torch.distributions import constraints

from pyro_dgm.distributions.independent_bernoulli import bernoulli_entropy
from pyro_dgm.distributions.smoothing import SmoothingTransformation

__all__ = ["BinaryLimit"]


def _log_point_mass(zeta: torch.Tensor, atom: float) -> torch.Tensor:
    """0 at the atom and -inf elsewhere: the log-density of a point mass w.r.t. counting measure."""
    return torch.where(zeta == atom, zeta.new_zeros(()), zeta.new_full((), -math.inf))


class BinaryLimit(SmoothingTransformation):
    r""":math:`\zeta = z \sim \mathrm{Bernoulli}(q)`: the smoothers at :math:`\beta = \infty`.

    ``log_prob`` is the Bernoulli one, :math:`F^{-1}(\rho) = \mathbb{1}[\rho > 1 - q]` (the
    generalised inverse :math:`\inf\{\zeta : F(\zeta) \ge \rho\}`), :math:`\nu(\zeta) = \zeta`,
    and :math:`r(\zeta \mid z) = \delta(\zeta - z)`. Not reparameterisable (``has_rsample`` is
    False); ``enumerate_support`` makes it usable with Pyro's enumeration.

    Example::

        >>> import torch
        >>> BinaryLimit(probs=torch.tensor([0.2, 0.9])).log_prob(torch.tensor([0.0, 1.0])).exp()
        tensor([0.8000, 0.9000])
    """

    support = constraints.boolean
    has_rsample = False
    has_enumerate_support = True

    def _conditional_log_densities(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return _log_point_mass(zeta, 0.0), _log_point_mass(zeta, 1.0)

    def _log_marginal_density(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`\log q` at :math:`\zeta = 1`, :math:`\log(1 - q)` at 0, :math:`-\infty` elsewhere.

        The closed form of the mixture :math:`\mathrm{logsumexp}_z[\log q(z) + \log \delta(\zeta - z)]`,
        equal to it in value; it spares the evaluation (a K = 5,000 importance pass, where
        every guide site is scored at this distribution) two point-mass tensors and a
        ``logaddexp``.
        """
        outside = zeta.new_full((), -math.inf)
        return torch.where(zeta == 1, self._log_prob_one, torch.where(zeta == 0, self._log_prob_zero, outside))

    def _log_density_ratio(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`\log \delta(\zeta - 1) - \log \delta(\zeta)`: :math:`+\infty` at 1, :math:`-\infty` at 0, NaN elsewhere.

        So :math:`\nu(\zeta) = \sigma(\ell + \text{ratio}) = \zeta` on the support, as the
        difference of the point masses gives it.
        """
        return torch.where(
            zeta == 1, zeta.new_full((), math.inf), torch.where(zeta == 0, zeta.new_full((), -math.inf), math.nan)
        )

    def _conditional_cdfs(self, zeta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return (zeta >= 0).to(zeta.dtype), (zeta >= 1).to(zeta.dtype)

    def _conditional_icdfs(self, rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros_like(rho), torch.ones_like(rho)

    def _conditional_moments(self) -> Tuple[Tuple[float, float], Tuple[float, float]]:
        return (0.0, 0.0), (1.0, 0.0)  # point masses at 0 and 1: mean q, variance q (1 - q)

    def entropy(self) -> torch.Tensor:
        r"""The Bernoulli entropy :math:`-q \log q - (1 - q) \log(1 - q)` in nats (:func:`bernoulli_entropy`)."""
        return bernoulli_entropy(self.logits)

    def _inverse_cdf(self, rho: torch.Tensor) -> torch.Tensor:
        # Compared with 1 - q exactly as ``cdf`` computes F(0), so icdf(cdf(0)) = 0.
        return (rho > self._prob_zero).to(self.logits.dtype)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        raise NotImplementedError("BinaryLimit is discrete and has no reparameterised sampler; use sample().")

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            rho = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device)
            return self._inverse_cdf(rho)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        values = torch.arange(2, dtype=self.logits.dtype, device=self.logits.device)
        values = values.reshape((2,) + (1,) * len(self.batch_shape))
        return values.expand((2,) + self.batch_shape) if expand else values

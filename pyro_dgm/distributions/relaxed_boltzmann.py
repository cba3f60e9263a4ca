r"""Relaxed Boltzmann priors of DVAE# (Vahdat, Andriyash & Macready 2018, Sec. 3): densities over continuous :math:`\zeta`.

An RBM :math:`p(z) = e^{-E(z)}/Z` over :math:`z = [z_1, z_2] \in \{0,1\}^N`,
:math:`E(z) = -a^\top z - z_1^\top W z_2`, is relaxed to a density :math:`p(\zeta)` whose
log-density can enter importance weights (the bound of
:class:`~pyro_dgm.infer.objectives.dvae_sharp.DVAESharpELBO`):

* :class:`OverlappingRelaxedRBM` — :math:`p(\zeta) = \sum_z p(z) \prod_i r(\zeta_i \mid z_i)` with
  a factorial smoother :math:`r` (DVAE# Sec. 3.1). With
  :math:`c_i = \log r(\zeta_i \mid 0)`, :math:`b_i = \log r(\zeta_i \mid 1) - \log r(\zeta_i \mid 0)`,

  .. math::

      \log p(\zeta) = \sum_i c_i(\zeta_i) + \log Z(\zeta) - \log Z, \qquad
      Z(\zeta) = \sum_z e^{-E(z) + b(\zeta)^\top z},

  the partition function of the same RBM with biases :math:`a + b(\zeta)`, taken exactly
  (enumeration) or by its mean-field lower bound (DVAE# Eq. 6);
* :class:`GaussianIntegralRelaxedRBM` — the Gaussian integral trick,
  :math:`r(\zeta \mid z) = \mathcal N(\zeta; z, A^{-1})`, :math:`A = \mathbf W + \lambda I`, whose
  :math:`p(\zeta)` is a closed-form mixture of :math:`2^N` Gaussians.

Both have ``log_prob = unnormalized_log_prob - log Z`` with :math:`\log Z` the RBM's
(:attr:`RBM.log_partition`: exact when enumerable, or the estimate the RBM was built with);
objectives that train them use ``unnormalized_log_prob`` and add :math:`\log Z` themselves,
as :class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO` does. Derivations:
``docs/derivations/dvae_sharp.md``.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from pyro.distributions import MultivariateNormal, TorchDistribution
from torch.distributions import constraints

from pyro_dgm.distributions.rbm import RBM, exact_log_partition
from pyro_dgm.distributions.smoothing import SmoothingTransformation

__all__ = [
    "DEFAULT_MEAN_FIELD_ITERATIONS",
    "GaussianIntegralRelaxedRBM",
    "OverlappingRelaxedRBM",
    "RelaxedBoltzmannPrior",
    "mean_field_log_partition",
    "minimum_gaussian_shift",
]

DEFAULT_MEAN_FIELD_ITERATIONS = 5
"""Block mean-field sweeps per evaluation: the DVAE# experiments' setting (its code runs 5)."""

MEAN_FIELD_INITIAL_PROBABILITY = 0.5
"""Starting magnetisation of every unit: the maximum-entropy point, as in DVAE#."""

LOG_TWO_PI = math.log(2 * math.pi)

LogPartitionMethod = Literal["mean_field", "exact"]


def _check_shared_rbm(rbm: RBM, name: str) -> None:
    if not isinstance(rbm, RBM):
        raise TypeError(f"{name}: rbm must be an RBM, got {type(rbm).__name__}")
    if rbm.batch_shape:
        raise ValueError(
            f"{name}: the RBM must have an empty batch shape (one prior shared by every data point), "
            f"got batch shape {tuple(rbm.batch_shape)}"
        )


def _bernoulli_entropy(probs: torch.Tensor) -> torch.Tensor:
    r""":math:`-\sum_i [m_i \log m_i + (1 - m_i)\log(1 - m_i)]` with :math:`0 \log 0 = 0`."""
    return -(torch.special.xlogy(probs, probs) + torch.special.xlogy(1 - probs, 1 - probs)).sum(-1)


def mean_field_log_partition(
    bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor, num_iterations: int = DEFAULT_MEAN_FIELD_ITERATIONS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Mean-field lower bound on :math:`\log \sum_z e^{a_1^\top z_1 + a_2^\top z_2 + z_1^\top W z_2}` (DVAE# Eq. 6).

    For any factorial :math:`m = [m_1, m_2] \in [0, 1]^N` (Gibbs' inequality, the KL from the
    factorial :math:`q_m` to the RBM being non-negative)

    .. math::

        \log Z \ge a_1^\top m_1 + a_2^\top m_2 + m_1^\top W m_2 + H(m),

    with equality gap :math:`\mathrm{KL}(q_m \,\|\, p)`. :math:`m` starts at
    :data:`MEAN_FIELD_INITIAL_PROBABILITY` and takes ``num_iterations`` block updates,
    :math:`m_2 \leftarrow \sigma(a_2 + W^\top m_1)` then :math:`m_1 \leftarrow \sigma(a_1 + W m_2)`,
    each of which cannot decrease the bound. :math:`m` is computed without gradient: the
    returned bound's gradient is then its partial derivative at fixed :math:`m`, which at a
    fixed point of the updates is the total derivative (envelope theorem).

    :returns: ``(bound, m1, m2)``; the bound has the broadcast batch shape of the arguments.
    """
    with torch.no_grad():
        batch = torch.broadcast_shapes(bias1.shape[:-1], bias2.shape[:-1], weight.shape[:-2])
        m1 = torch.full(batch + bias1.shape[-1:], MEAN_FIELD_INITIAL_PROBABILITY, dtype=bias1.dtype, device=bias1.device)
        m2 = torch.full(batch + bias2.shape[-1:], MEAN_FIELD_INITIAL_PROBABILITY, dtype=bias2.dtype, device=bias2.device)
        for _ in range(num_iterations):
            m2 = torch.sigmoid(bias2 + (m1.unsqueeze(-2) @ weight).squeeze(-2))
            m1 = torch.sigmoid(bias1 + (weight @ m2.unsqueeze(-1)).squeeze(-1))
    coupling = ((m1.unsqueeze(-2) @ weight).squeeze(-2) * m2).sum(-1)
    bound = (bias1 * m1).sum(-1) + (bias2 * m2).sum(-1) + coupling + _bernoulli_entropy(m1) + _bernoulli_entropy(m2)
    return bound, m1, m2


class RelaxedBoltzmannPrior(TorchDistribution):
    r"""A density over :math:`\zeta \in \mathbb R^N` built from one RBM :math:`p(z)` (shared by all data points).

    Subclasses give :meth:`unnormalized_log_prob`, :math:`\log p(\zeta) + \log Z`; ``log_prob``
    subtracts the RBM's :math:`\log Z`. Objectives recognise a relaxed prior site by this class
    and add :math:`\log Z` themselves (exact, supplied, or with a PCD gradient).
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, rbm: RBM, batch_shape: torch.Size = torch.Size(), validate_args: Optional[bool] = None) -> None:
        _check_shared_rbm(rbm, type(self).__name__)
        self.rbm = rbm
        super().__init__(batch_shape, torch.Size((rbm.num_units1 + rbm.num_units2,)), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(type(self), _instance)
        new.__dict__.update({key: value for key, value in self.__dict__.items() if key not in ("_batch_shape",)})
        super(RelaxedBoltzmannPrior, new).__init__(torch.Size(batch_shape), self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def log_partition(self) -> torch.Tensor:
        r""":math:`\log Z` of the RBM (exact when enumerable, else the estimate it was built with)."""
        return self.rbm.log_partition

    def unnormalized_log_prob(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(\zeta) + \log Z`."""
        raise NotImplementedError

    def log_prob(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(\zeta) = \text{unnormalized\_log\_prob}(\zeta) - \log Z`."""
        if self._validate_args:
            self._validate_sample(zeta)
        return self.unnormalized_log_prob(zeta) - self.log_partition

    def _binary_draws(self, sample_shape: torch.Size) -> torch.Tensor:
        return self.rbm.sample(torch.Size(sample_shape) + self.batch_shape)


class OverlappingRelaxedRBM(RelaxedBoltzmannPrior):
    r"""The RBM relaxed by a factorial overlapping smoother: :math:`p(\zeta) = \sum_z p(z)\, r(\zeta \mid z)` (DVAE# Sec. 3.1).

    .. math::

        \log p(\zeta) = \sum_i c_i(\zeta_i) + \log Z(a + b(\zeta), W) - \log Z,

    :math:`c = \log r(\zeta \mid 0)`, :math:`b = \log r(\zeta \mid 1) - \log r(\zeta \mid 0)`. With
    ``log_partition_method="mean_field"`` (DVAE#) :math:`\log Z(\zeta)` is replaced by the bound of
    :func:`mean_field_log_partition`, so ``log_prob`` is a lower bound of the relaxed log-density
    (exact when :math:`W = 0`), with the envelope gradient; ``"exact"`` enumerates the smaller
    side of the RBM (up to :data:`~pyro_dgm.distributions.rbm.MAX_ENUMERATED_UNITS` units) and is
    exact in value and gradient.

    :param rbm: the RBM :math:`p(z)`, batch shape ``()``.
    :param smoother: any smoother whose conditionals :math:`r(\zeta_i \mid z_i)` relax the units
        (its logits play no part), batch shape broadcasting with ``(N,)`` (e.g. one
        :math:`\beta`, or one per unit).
    :param log_partition_method: ``"mean_field"`` or ``"exact"``.
    :param num_iterations: mean-field block sweeps.

    ``sample`` draws :math:`z \sim p(z)` (exactly when enumerable, else by Gibbs) and
    :math:`\zeta \sim r(\zeta \mid z)`.

    Example::

        >>> import torch
        >>> from pyro_dgm.distributions import RBM, PowerFunctionSmoothing
        >>> rbm = RBM(torch.zeros(3), torch.zeros(2), 0.1 * torch.ones(3, 2))
        >>> prior = OverlappingRelaxedRBM(rbm, PowerFunctionSmoothing(torch.tensor(4.0), logits=torch.zeros(5)))
        >>> prior.log_prob(torch.full((5,), 0.3)).shape
        torch.Size([])
    """

    def __init__(
        self,
        rbm: RBM,
        smoother: SmoothingTransformation,
        log_partition_method: LogPartitionMethod = "mean_field",
        num_iterations: int = DEFAULT_MEAN_FIELD_ITERATIONS,
        validate_args: Optional[bool] = None,
    ) -> None:
        _check_shared_rbm(rbm, type(self).__name__)
        if not isinstance(smoother, SmoothingTransformation):
            raise TypeError(f"{type(self).__name__}: smoother must be a SmoothingTransformation, got {type(smoother).__name__}")
        if log_partition_method not in ("mean_field", "exact"):
            raise ValueError(f"log_partition_method must be 'mean_field' or 'exact', got {log_partition_method!r}")
        if isinstance(num_iterations, bool) or not isinstance(num_iterations, int) or num_iterations < 1:
            raise ValueError(f"num_iterations must be a positive int, got {num_iterations!r}")
        num_units = rbm.num_units1 + rbm.num_units2
        try:
            torch.broadcast_shapes(smoother.batch_shape, (num_units,))
        except RuntimeError as error:
            raise ValueError(
                f"smoother batch shape {tuple(smoother.batch_shape)} does not broadcast with the {num_units} units"
            ) from error
        if log_partition_method == "exact" and not rbm.is_enumerable:
            raise ValueError(
                f"log_partition_method='exact' enumerates the smaller side of the RBM, which has "
                f"{rbm.num_units1} + {rbm.num_units2} units (too many); use 'mean_field'"
            )
        self.smoother = smoother
        self.log_partition_method = log_partition_method
        self.num_iterations = num_iterations
        super().__init__(rbm, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self) -> constraints.Constraint:
        return constraints.independent(self.smoother.support, 1)

    def smoother_terms(self, zeta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`(c(\zeta), b(\zeta)) = (\log r(\zeta \mid 0), \log r(\zeta \mid 1) - \log r(\zeta \mid 0))`, elementwise."""
        log_r0, _ = self.smoother._conditional_log_densities(zeta)
        return log_r0, self.smoother._log_density_ratio(zeta)

    def shifted_log_partition(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`\log Z(\zeta) = \log \sum_z e^{-E(z) + b(\zeta)^\top z}`: exact, or its mean-field lower bound."""
        _, shift = self.smoother_terms(zeta)
        bias1 = self.rbm.bias1 + shift[..., : self.rbm.num_units1]
        bias2 = self.rbm.bias2 + shift[..., self.rbm.num_units1 :]
        if self.log_partition_method == "exact":
            return exact_log_partition(bias1, bias2, self.rbm.weight)
        return mean_field_log_partition(bias1, bias2, self.rbm.weight, self.num_iterations)[0]

    def unnormalized_log_prob(self, zeta: torch.Tensor) -> torch.Tensor:
        log_r0, _ = self.smoother_terms(zeta)
        return log_r0.sum(-1) + self.shifted_log_partition(zeta)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            z = self._binary_draws(sample_shape)
            return self.smoother.conditional(z).sample()


def minimum_gaussian_shift(weight: torch.Tensor, margin: float) -> torch.Tensor:
    r""":math:`\sigma_{\max}(W) + \text{margin}`: the smallest eigenvalue of :math:`\mathbf W + \lambda I` is then ``margin``.

    The symmetric coupling :math:`\mathbf W = [[0, W], [W^\top, 0]]` has eigenvalues
    :math:`\pm` the singular values of :math:`W`, so :math:`\lambda_{\min}(\mathbf W) = -\sigma_{\max}(W)`.
    Detached: :math:`\lambda` is a hyperparameter of the relaxation, not a function to differentiate.
    """
    return torch.linalg.matrix_norm(weight.detach(), ord=2) + margin


class GaussianIntegralRelaxedRBM(RelaxedBoltzmannPrior):
    r"""The RBM relaxed by the Gaussian integral trick (DVAE# Sec. 3): :math:`r(\zeta \mid z) = \mathcal N(z, A^{-1})`.

    With :math:`A = \mathbf W + \lambda I \succ 0`, :math:`\mathbf W = [[0, W], [W^\top, 0]]` and
    :math:`z_i^2 = z_i`,

    .. math::

        \log p(\zeta) = -\log Z + \tfrac12 \log\det\frac{A}{2\pi} - \tfrac12 \zeta^\top A \zeta
            + \sum_i \operatorname{softplus}\bigl([A\zeta]_i + a_i - \lambda/2\bigr),

    exactly (a mixture of :math:`2^N` Gaussians whose weights are the RBM's :math:`p(z)`);
    :math:`p(z \mid \zeta)` is factorial with logits :math:`A\zeta + a - \lambda/2`
    (:meth:`conditional_logits`). :math:`\log\det A = N\log\lambda + \log\det(I - W^\top W/\lambda^2)`
    (Schur complement, the smaller side's Gram matrix, by Cholesky).

    :param rbm: the RBM, batch shape ``()``.
    :param shift: :math:`\lambda`, which must exceed :math:`\sigma_{\max}(W)`; see
        :func:`minimum_gaussian_shift` (DVAE# keeps :math:`\lambda \ge \sigma_{\max}(W) + 5`).

    Example::

        >>> import torch
        >>> from pyro_dgm.distributions import RBM
        >>> rbm = RBM(torch.zeros(2), torch.zeros(2), torch.eye(2))
        >>> prior = GaussianIntegralRelaxedRBM(rbm, shift=6.0)
        >>> prior.sample((4,)).shape
        torch.Size([4, 4])
    """

    support = constraints.real_vector

    def __init__(self, rbm: RBM, shift: float | torch.Tensor, validate_args: Optional[bool] = None) -> None:
        _check_shared_rbm(rbm, type(self).__name__)
        shift = torch.as_tensor(shift, dtype=rbm.bias1.dtype, device=rbm.bias1.device)
        if shift.dim() != 0 or not bool(torch.isfinite(shift)):
            raise ValueError(f"shift must be a finite scalar, got {shift}")
        largest_singular_value = torch.linalg.matrix_norm(rbm.weight.detach(), ord=2)
        if not bool(shift > largest_singular_value):
            raise ValueError(
                f"shift = {float(shift):.6g} must exceed the largest singular value of the RBM weight, "
                f"{float(largest_singular_value):.6g}, for A = W + shift I to be positive definite"
            )
        self.shift = shift
        super().__init__(rbm, validate_args=validate_args)

    def _precision_times(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`A\zeta = \lambda\zeta + [W\zeta_2, W^\top\zeta_1]`."""
        zeta1, zeta2 = zeta[..., : self.rbm.num_units1], zeta[..., self.rbm.num_units1 :]
        coupled = torch.cat([(self.rbm.weight @ zeta2.unsqueeze(-1)).squeeze(-1), (zeta1.unsqueeze(-2) @ self.rbm.weight).squeeze(-2)], -1)
        return self.shift * zeta + coupled

    def log_det_precision(self) -> torch.Tensor:
        r""":math:`\log\det A = N \log\lambda + \log\det(I - G/\lambda^2)`, :math:`G` the smaller Gram matrix of :math:`W`."""
        weight = self.rbm.weight
        gram = weight @ weight.T if weight.size(0) <= weight.size(1) else weight.T @ weight
        identity = torch.eye(gram.size(0), dtype=gram.dtype, device=gram.device)
        cholesky = torch.linalg.cholesky(identity - gram / self.shift**2)
        return self.event_shape[0] * torch.log(self.shift) + 2 * torch.log(torch.diagonal(cholesky)).sum()

    def conditional_logits(self, zeta: torch.Tensor) -> torch.Tensor:
        r"""Logits of the factorial :math:`p(z \mid \zeta)`: :math:`A\zeta + a - \lambda/2`."""
        bias = torch.cat([self.rbm.bias1, self.rbm.bias2])
        return self._precision_times(zeta) + bias - self.shift / 2

    def unnormalized_log_prob(self, zeta: torch.Tensor) -> torch.Tensor:
        num_units = self.event_shape[0]
        precision_zeta = self._precision_times(zeta)
        quadratic = (zeta * precision_zeta).sum(-1)
        log_normaliser = 0.5 * (self.log_det_precision() - num_units * LOG_TWO_PI)
        bias = torch.cat([self.rbm.bias1, self.rbm.bias2])
        return log_normaliser - 0.5 * quadratic + F.softplus(precision_zeta + bias - self.shift / 2).sum(-1)

    def precision_matrix(self) -> torch.Tensor:
        r""":math:`A = \mathbf W + \lambda I`, shape (N, N)."""
        n1, n2 = self.rbm.num_units1, self.rbm.num_units2
        weight = self.rbm.weight
        top = torch.cat([torch.zeros(n1, n1, dtype=weight.dtype, device=weight.device), weight], 1)
        bottom = torch.cat([weight.T, torch.zeros(n2, n2, dtype=weight.dtype, device=weight.device)], 1)
        return torch.cat([top, bottom], 0) + self.shift * torch.eye(n1 + n2, dtype=weight.dtype, device=weight.device)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            z = self._binary_draws(sample_shape)
            return MultivariateNormal(z, precision_matrix=self.precision_matrix()).sample()

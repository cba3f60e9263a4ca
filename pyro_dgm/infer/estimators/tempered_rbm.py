r"""The geometric path of RBMs that AIS and parallel tempering walk along.

Both estimators of :math:`\log Z` for a large RBM (:mod:`pyro_dgm.infer.estimators.ais`,
:mod:`pyro_dgm.infer.estimators.parallel_tempering`) move from an exactly normalisable *base*
:math:`p_0` to the target RBM :math:`p_1` through the geometric path

.. math::

    f_\beta(z) = f_0(z)^{1-\beta} f_1(z)^{\beta}, \qquad
    f_1(z) = e^{-E(z)}, \quad E(z) = -a_1^\top z_1 - a_2^\top z_2 - z_1^\top W z_2 ,

with a factorial base :math:`f_0(z) = e^{b_1^\top z_1 + b_2^\top z_2}`. Every
intermediate is again an RBM, with biases :math:`c_\beta = b + \beta (a - b)` and
couplings :math:`\beta W`, so

* the base's :math:`\log Z_0 = \sum_i \operatorname{softplus}(b_{1i})
  + \sum_j \operatorname{softplus}(b_{2j})` is exact                      (Eq. B1)
* block Gibbs at :math:`\beta` needs only :math:`\beta`-scaled fields        (Eq. B2)
* the second block sums out analytically (Salakhutdinov & Murray, 2008, Sec. 4.1):

.. math::

    \log f_\beta(z_1) = \log \sum_{z_2} f_\beta(z_1, z_2)
        = c_{1,\beta}^\top z_1 + \sum_j \operatorname{softplus}\bigl(
          b_{2j} + \beta\,(a_2 - b_2 + W^\top z_1)_j\bigr) .                    \quad (B3)

The chains therefore live on :math:`z_1` only; :math:`z_2` is drawn afresh inside
each Gibbs sweep. The path relabels the blocks so that :math:`z_1` is the *smaller*
one: :math:`\log Z` is symmetric in the labels, and summing out the larger block
integrates more of the state analytically. The coupling :math:`u = W^\top z_1` is
computed once per state and reused for every :math:`\beta` at which (B3) or (B2) is
evaluated, which is what lets parallel tempering evaluate all its temperatures in one
tensor operation. (Building one :class:`~pyro_dgm.distributions.rbm.RBM` per
temperature and calling :func:`~pyro_dgm.distributions.gibbs.block_gibbs` would
materialise :math:`\beta W` for each temperature and each chain in a broadcast matmul.)

Three bases (``base=``):

``"mean_field"`` (the default of AIS)
    :math:`b_1 = a_1 + W m_2`, :math:`b_2 = a_2 + W^\top m_1`, the fields of the naive
    mean-field approximation :math:`m_1 = \sigma(a_1 + W m_2)`,
    :math:`m_2 = \sigma(a_2 + W^\top m_1)` of the target (Eq. B4), reached by
    :data:`MEAN_FIELD_UPDATES` damped updates from :math:`m = 1/2`. The base keeps the
    biases and adds the couplings' average effect, so the path anneals only the
    fluctuations of :math:`W`. Without couplings it is ``"biases"``; on RBMs whose
    biases centre the couplings (:math:`a = -\tfrac12 W \mathbf 1`, as the planted
    multimodal RBMs of ``benchmarks/rbm_log_partition.py``) :math:`m = 1/2` is a fixed
    point and it is ``"uniform"``. At equal budget it had the smallest spread of the
    three, and of the ``rbms`` library, on the weakly and strongly coupled RBMs of
    ``docs/benchmarks.md`` ("AIS against rbms").
``"uniform"`` (the default of parallel tempering)
    :math:`b = 0`: :math:`f_\beta = f_1^\beta`, the tempered family :math:`p^\beta`
    of DVAE (Rolfe, 2017, App. H.1); :math:`\log Z_0 = (n_1 + n_2) \log 2`. Every
    mode of the target is reached from a distribution that covers all states.
``"biases"``
    :math:`b = a`: the target with its couplings switched off, so only :math:`W` is
    annealed (the base of the ``rbms`` library keeps the first block's biases). As
    good as the others when the couplings are weak, but when biases and couplings
    compensate each other (as in trained RBMs, and in the planted multimodal RBMs of
    ``benchmarks/rbm_log_partition.py``) the base sits far from the target and the
    path crosses a sharp transition: on one planted 64 + 64 RBM AIS from this base was
    0.69 nats low with :math:`10^4` temperatures while reporting a standard error of
    0.026 (``docs/rbm_partition.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pyro_dgm.distributions.argument_checks import check_int
from pyro_dgm.distributions.bipartite_fields import draw_bernoulli_, vector_matrix_product
from pyro_dgm.distributions.rbm import RBM

BASES = ("mean_field", "uniform", "biases")
"""The factorial base distributions a path can start from (see the module docstring)."""

MEAN_FIELD_UPDATES = 10
"""Damped mean-field updates of the ``"mean_field"`` base (Eq. B4). Each block update is a
contraction with factor at most 1/2 + ||W||_2 / 8 (sigma' <= 1/4), so on weakly coupled
RBMs ten updates converge far below the base's own effect on AIS. Few enough that float
rounding does not carry the iteration off an *unstable* fixed point m = 1/2: on the
planted 64 + 64 RBM of ``benchmarks/rbm_log_partition.py`` (singular values of W ~ 8) a
perturbation grows by about 1.9 per update, so rounding (1e-7) stays below 1e-4 and the
base stays uniform, covering every mode (tested on centred RBMs)."""

MEAN_FIELD_DAMPING = 0.5
"""Each mean-field update moves m halfway to sigma(field): damping keeps strongly coupled RBMs'
updates from jumping between states."""


def mean_field_logits(
    bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The fields :math:`(a_1 + W m_2, a_2 + W^\top m_1)` of the naive mean-field approximation.

    .. math::

        m_1 \leftarrow (1 - \delta)\, m_1 + \delta\, \sigma(a_1 + W m_2), \qquad
        m_2 \leftarrow (1 - \delta)\, m_2 + \delta\, \sigma(a_2 + W^\top m_1)      \quad (B4)

    from :math:`m = 1/2`, :data:`MEAN_FIELD_UPDATES` times with damping
    :math:`\delta` = :data:`MEAN_FIELD_DAMPING`. Shapes as the parameters (batched).
    """
    mean1 = torch.full_like(bias1, 0.5)
    mean2 = torch.full_like(bias2, 0.5)
    for _ in range(MEAN_FIELD_UPDATES):
        field1 = bias1 + vector_matrix_product(mean2, weight.mT)
        mean1 = (1 - MEAN_FIELD_DAMPING) * mean1 + MEAN_FIELD_DAMPING * torch.sigmoid(field1)
        field2 = bias2 + vector_matrix_product(mean1, weight)
        mean2 = (1 - MEAN_FIELD_DAMPING) * mean2 + MEAN_FIELD_DAMPING * torch.sigmoid(field2)
    return bias1 + vector_matrix_product(mean2, weight.mT), bias2 + vector_matrix_product(mean1, weight)


def check_schedule(betas: torch.Tensor, name: str = "betas") -> None:
    r"""Raise ``ValueError`` unless ``betas`` is a 1-D, non-decreasing path from 0 to 1."""
    if not isinstance(betas, torch.Tensor) or betas.dim() != 1 or betas.numel() < 2:
        raise ValueError(f"{name} must be a 1-D tensor with at least 2 entries")
    if not torch.isfinite(betas).all():
        raise ValueError(f"{name} must be finite")
    if betas[0] != 0 or betas[-1] != 1:
        raise ValueError(
            f"{name} must start at 0 and end at 1, got {betas[0].item()} ... {betas[-1].item()}"
        )
    if (betas[1:] < betas[:-1]).any():
        raise ValueError(f"{name} must be non-decreasing")




def schedule_from(
    betas: int | torch.Tensor, like: torch.Tensor, *, strictly_increasing: bool = False
) -> torch.Tensor:
    """A number of temperatures linear in beta, or a checked user schedule, in ``like``'s dtype."""
    if not isinstance(betas, torch.Tensor):
        return linear_schedule(betas, like=like)
    check_schedule(betas)
    if strictly_increasing and (betas[1:] <= betas[:-1]).any():
        raise ValueError("betas must be strictly increasing")
    return betas.to(dtype=like.dtype, device=like.device)


def linear_schedule(num_temperatures: int, *, like: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`\beta_k = k / (K - 1)`, :math:`k = 0, \dots, K-1`, dtype and device of ``like``."""
    check_int("num_temperatures", num_temperatures, 2)
    dtype = like.dtype if like is not None else torch.get_default_dtype()
    device = like.device if like is not None else None
    return torch.linspace(0.0, 1.0, num_temperatures, dtype=dtype, device=device)


def _per_unit(beta: float | torch.Tensor) -> float | torch.Tensor:
    """A temperature ready to scale a (..., units) field: tensors gain a unit dimension."""
    return beta.unsqueeze(-1) if isinstance(beta, torch.Tensor) else beta


class GeometricRBMPath:
    r"""The RBMs :math:`f_\beta = f_0^{1-\beta} f_1^\beta` between a factorial base and ``rbm``.

    :param rbm: the target :class:`~pyro_dgm.distributions.rbm.RBM` (any batch shape).
    :param base: ``"mean_field"``, ``"uniform"`` or ``"biases"`` (module docstring).

    ``z1`` below is the smaller block of ``rbm`` (its second block when n2 < n1).

    Inverse temperatures ``beta`` are tensors that broadcast against a state's shape
    without its unit dimension, so one call can evaluate many temperatures.
    """

    def __init__(self, rbm: RBM, base: str = "uniform") -> None:
        if not isinstance(rbm, RBM):
            raise ValueError(f"rbm must be a pyro_dgm RBM, got {type(rbm).__name__}")
        if base not in BASES:
            raise ValueError(f"base must be one of {BASES}, got {base!r}")
        self.base = base
        self.batch_shape = rbm.batch_shape
        target1, target2, weight = rbm.bias1.detach(), rbm.bias2.detach(), rbm.weight.detach()
        if rbm.num_units1 > rbm.num_units2:  # keep the smaller block, sum out the larger
            target1, target2, weight = target2, target1, weight.transpose(-1, -2)
        self.weight = weight
        if base == "biases":
            self.base_bias1, self.base_bias2 = target1, target2
        elif base == "mean_field":
            self.base_bias1, self.base_bias2 = mean_field_logits(target1, target2, weight)
        else:
            self.base_bias1, self.base_bias2 = torch.zeros_like(target1), torch.zeros_like(target2)
        self.bias_change1 = target1 - self.base_bias1  # a1 - b1
        self.bias_change2 = target2 - self.base_bias2  # a2 - b2

    @property
    def num_units1(self) -> int:
        """Units of the block the chains carry (the smaller one)."""
        return self.base_bias1.size(-1)

    @property
    def dtype(self) -> torch.dtype:
        return self.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.weight.device

    def log_partition_base(self) -> torch.Tensor:
        r""":math:`\log Z_0`, shape ``batch_shape`` (Eq. B1)."""
        return F.softplus(self.base_bias1).sum(-1) + F.softplus(self.base_bias2).sum(-1)

    def sample_base(self, sample_shape: Sequence[int]) -> torch.Tensor:
        r"""Exact draws of :math:`z_1 \sim p_0`, shape (*sample_shape, *batch_shape, n1)."""
        logits = self.base_bias1.expand(torch.Size(sample_shape) + self.base_bias1.shape)
        return draw_bernoulli_(logits.clone())

    def coupling(self, z1: torch.Tensor) -> torch.Tensor:
        r""":math:`u = W^\top z_1`, shape (..., n2): the only matmul a state needs per sweep."""
        return vector_matrix_product(z1, self.weight)

    def log_marginal(
        self, z1: torch.Tensor, coupling: torch.Tensor, beta: float | torch.Tensor
    ) -> torch.Tensor:
        r""":math:`\log f_\beta(z_1)`, Eq. (B3), shape ``z1.shape[:-1]`` broadcast with ``beta``."""
        field2 = self.base_bias2 + _per_unit(beta) * (self.bias_change2 + coupling)
        linear = (self.base_bias1 * z1).sum(-1) + beta * (self.bias_change1 * z1).sum(-1)
        return linear + F.softplus(field2).sum(-1)

    def gibbs_sweep(self, coupling: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
        r"""One block-Gibbs sweep at :math:`\beta` from the state whose coupling is given (Eq. B2).

        .. math::

            z_2 \sim \operatorname{Bern}\bigl(\sigma(b_2 + \beta(a_2 - b_2 + W^\top z_1))\bigr),
            \qquad
            z_1' \sim \operatorname{Bern}\bigl(\sigma(b_1 + \beta(a_1 - b_1 + W z_2))\bigr)

        leaves :math:`p_\beta(z_1)` invariant. Returns :math:`z_1'`.
        """
        beta = _per_unit(beta)
        z2 = draw_bernoulli_(self.base_bias2 + beta * (self.bias_change2 + coupling))
        back = vector_matrix_product(z2, self.weight.mT)  # W z2
        return draw_bernoulli_(self.base_bias1 + beta * (self.bias_change1 + back))

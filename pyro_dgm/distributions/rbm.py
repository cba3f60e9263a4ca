r"""The restricted Boltzmann machine (RBM) prior of DVAE and DVAE++.

An RBM is a distribution over two blocks of binary units
:math:`z = (z_1, z_2) \in \{0,1\}^{n_1 + n_2}` on a bipartite graph
(DVAE, Rolfe 2017, Eq. (6); DVAE++, Vahdat et al. 2018, Sec. 5):

.. math::

    p(z_1, z_2) = \frac{e^{-E(z_1, z_2)}}{Z}, \qquad
    E(z_1, z_2) = -a_1^\top z_1 - a_2^\top z_2 - z_1^\top W z_2 .

Because the graph is bipartite, one block can be summed out analytically,

.. math::

    \sum_{z_2} e^{-E(z_1, z_2)} = e^{-F_1(z_1)}, \qquad
    F_1(z_1) = -a_1^\top z_1 - \sum_j \operatorname{softplus}(a_2 + W^\top z_1)_j ,

so the partition function needs a sum over the :math:`2^{\min(n_1, n_2)}` states of
the smaller block only:

.. math::

    \log Z = \operatorname{logsumexp}_{z_1} \bigl[a_1^\top z_1
        + \textstyle\sum_j \operatorname{softplus}(a_2 + W^\top z_1)_j\bigr] .

That sum is taken in chunks (:data:`CHUNK_ELEMENTS`), and so is its gradient (a
second pass computing the exact expected sufficient statistics), so both run in
bounded memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pyro.distributions import Bernoulli, Independent, TorchDistribution
from torch.autograd.function import once_differentiable
from torch.distributions import Categorical, constraints
from torch.distributions.utils import lazy_property

from pyro_dgm.distributions.argument_checks import check_int
from pyro_dgm.distributions.binary_states import (
    MAX_ENUMERATED_EVENT_UNITS,
    cached_binary_configurations,
    enumerate_binary_support,
)
from pyro_dgm.distributions.bipartite_fields import vector_matrix_product
from pyro_dgm.distributions.gibbs_sweeps import sweep_blocks
from pyro_dgm.distributions.independent_bernoulli import is_binary

MAX_ENUMERATED_UNITS = 20
"""Largest smaller block that :class:`RBM` enumerates for its exact log partition function.

:math:`2^{20} \\approx 10^6` states times the other block's softplus terms: for 20 + 200
units about 1 s in float32 and 2-3 s in float64 on one CPU core, twice that with the
gradient (``docs/distributions/rbm.md``); each extra unit doubles the cost.
"""

CHUNK_ELEMENTS = 2**21
"""Elements of the largest temporary of one chunk (states x batch x other block's units).

2^21 elements are 8 MiB in float32, 16 MiB in float64. An enumeration holds three
such arrays (the low bits' shared field and two reused workspaces), so the peak extra
memory of :func:`exact_log_partition` and of its gradient is about three times this,
whatever the number of states; measured figures are in ``docs/distributions/rbm.md``.
"""

DEFAULT_BURN_IN_SWEEPS = 1000
"""Block-Gibbs sweeps :meth:`RBM.sample` runs when the RBM is too big to sample exactly.

Ten times the 100 sweeps per minibatch that DVAE (Rolfe 2017, App. H) uses on
*persistent* chains, because these chains start from scratch. No fixed number is
enough for every RBM: strongly coupled ones mix slowly (DVAE Sec. 5), so for
training use :class:`~pyro_dgm.distributions.gibbs.PersistentChains`.
"""


def _check_binary(value: torch.Tensor, name: str) -> None:
    binary = is_binary(value) if value.is_floating_point() else bool(torch.all((value == 0) | (value == 1)))
    if not binary:
        raise ValueError(f"{name} must hold only the binary values 0 and 1")


def _check_last_dim(value: torch.Tensor, size: int, name: str) -> None:
    if value.dim() < 1 or value.size(-1) != size:
        raise ValueError(
            f"{name} must have {size} entries in its last dimension, got shape {tuple(value.shape)}"
        )


def _check_parameters(bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor) -> None:
    for name, value, min_dim in (("bias1", bias1, 1), ("bias2", bias2, 1), ("weight", weight, 2)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {value.dtype}")
        if value.dim() < min_dim:
            raise ValueError(
                f"{name} must have at least {min_dim} dimension(s), got shape {tuple(value.shape)}"
            )
    if bias1.size(-1) != weight.size(-2) or bias2.size(-1) != weight.size(-1):
        raise ValueError(
            f"shape mismatch: bias1 {tuple(bias1.shape)} and bias2 {tuple(bias2.shape)} need "
            f"weight of shape (..., {bias1.size(-1)}, {bias2.size(-1)}), got {tuple(weight.shape)}"
        )
    if bias1.size(-1) == 0 or bias2.size(-1) == 0:
        raise ValueError("bias1 and bias2 must each have at least one unit")
    if len({bias1.dtype, bias2.dtype, weight.dtype}) > 1:
        raise ValueError(
            "bias1, bias2 and weight must share one dtype, got "
            f"{bias1.dtype}, {bias2.dtype}, {weight.dtype}"
        )


def _low_bits_per_chunk(num_enumerated: int, elements_per_state: int, chunk_elements: int) -> int:
    """How many enumerated bits vary within a chunk: 2^bits states fit in chunk_elements."""
    states_per_chunk = max(chunk_elements // max(elements_per_state, 1), 1)
    return min(num_enumerated, states_per_chunk.bit_length() - 1)


class _ChunkedEnumeration:
    r"""The :math:`2^n` states of one block, in chunks, with the other block summed out.

    Configuration :math:`i = c \cdot 2^l + j` of the enumerated block (most significant
    bit first, as :func:`~pyro_dgm.distributions.binary_states.all_binary_configurations`) is split into
    its high bits (the chunk :math:`c`) and its :math:`l` low bits (:math:`j`, the
    position within the chunk). The low bits' share of the biases and the field,
    :math:`a^\top z_{\text{low}}` and :math:`W^\top z_{\text{low}}`, is the same in every
    chunk and is computed once. Every chunk reuses two preallocated workspaces of
    (2^l, *batch, m) elements with in-place operations: no large tensor is allocated
    per chunk, so the process's memory stays flat (fresh per-chunk tensors fragment
    the C heap and the resident memory creeps up by hundreds of MiB).

    Works without autograd; :class:`_LogPartition` supplies the gradient.

    :param bias_enum: biases of the enumerated block, shape (*batch, n).
    :param bias_other: biases of the summed-out block, shape (*batch, m).
    :param weight: couplings, enumerated block first, shape (*batch, n, m).
    """

    def __init__(
        self,
        bias_enum: torch.Tensor,
        bias_other: torch.Tensor,
        weight: torch.Tensor,
        chunk_elements: int = CHUNK_ELEMENTS,
    ) -> None:
        num_enumerated = bias_enum.size(-1)
        elements_per_state = math.prod(bias_other.shape)  # batch x other units
        low_bits = _low_bits_per_chunk(num_enumerated, elements_per_state, chunk_elements)
        self.high_bits = num_enumerated - low_bits
        self.bias_enum = bias_enum.detach()
        self.bias_other = bias_other.detach()
        self.weight = weight.detach()
        dtype, device = bias_enum.dtype, bias_enum.device
        # bool: one byte per bit; at most 2^20 x 20 bytes when a chunk holds one state
        # shared across calls (read only): the same tables serve every training step
        self.high_configurations = cached_binary_configurations(self.high_bits, torch.bool, device)
        self.low_configurations = cached_binary_configurations(low_bits, dtype, device)
        low_bias = torch.matmul(self.bias_enum[..., self.high_bits :], self.low_configurations.T)
        self.low_bias = low_bias.movedim(-1, 0)  # (2^l, *batch)
        low_field = torch.matmul(self.low_configurations, self.weight[..., self.high_bits :, :])
        self.low_field = low_field.movedim(-2, 0).contiguous()  # (2^l, *batch, m)
        self._field = torch.empty_like(self.low_field)
        self._scratch = torch.empty_like(self.low_field)

    @property
    def num_chunks(self) -> int:
        return self.high_configurations.size(0)

    def _high_part(self, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The chunk's high bits (h,) and :math:`a^\top z_{\text{high}}`, shape (*batch)."""
        high = self.high_configurations[chunk].to(self.low_bias.dtype)
        return high, (self.bias_enum[..., : self.high_bits] * high).sum(-1)

    def _fill_field(self, high: torch.Tensor) -> torch.Tensor:
        r"""Write :math:`b + W^\top z` of the chunk's states into the workspace, (2^l, *batch, m)."""
        offset = self.bias_other + torch.matmul(high, self.weight[..., : self.high_bits, :])
        return torch.add(self.low_field, offset, out=self._field)

    def chunk_log_weights(self, chunk: int) -> torch.Tensor:
        r"""The chunk's log weights, shape (2^l, *batch).

        .. math:: -F(z) = a^\top z + \textstyle\sum_j \operatorname{softplus}(b + W^\top z)_j
        """
        high, high_bias = self._high_part(chunk)
        field = self._fill_field(high)
        # softplus(x) = max(x, 0) + log1p(exp(-|x|)), in place and stable for any x
        tail = torch.abs(field, out=self._scratch).neg_().exp_().log1p_()
        softplus = field.clamp_(min=0).add_(tail)
        return softplus.sum(-1) + self.low_bias + high_bias

    @property
    def num_states(self) -> int:
        return self.num_chunks * self.low_configurations.size(0)

    def all_log_weights(self) -> torch.Tensor:
        """:meth:`chunk_log_weights` of every chunk, shape (num_chunks, 2^l, *batch)."""
        return torch.stack([self.chunk_log_weights(c) for c in range(self.num_chunks)])

    def log_masses(self) -> torch.Tensor:
        """Every chunk's log mass (logsumexp over its states), shape (num_chunks, *batch)."""
        return torch.stack(
            [torch.logsumexp(self.chunk_log_weights(c), dim=0) for c in range(self.num_chunks)]
        )

    def log_normalizer(self) -> torch.Tensor:
        r""":math:`\log \sum_z e^{-F(z)}`, shape (*batch)."""
        return torch.logsumexp(self.log_masses(), dim=0)

    def expected_statistics(
        self, log_normalizer: torch.Tensor, log_weights: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""The gradient of :math:`\log Z` (DVAE Eq. (11)), chunk by chunk.

        With the other block summed out, :math:`\mathbb{E}_p[z_{\text{other}} \mid z] =
        \sigma(b + W^\top z)`, so

        .. math::

            \frac{\partial \log Z}{\partial a} = \mathbb{E}_p[z], \quad
            \frac{\partial \log Z}{\partial b} = \mathbb{E}_p[\sigma(b + W^\top z)], \quad
            \frac{\partial \log Z}{\partial W} = \mathbb{E}_p[z\, \sigma(b + W^\top z)^\top].

        :param log_normalizer: :math:`\log Z`, shape (*batch).
        :param log_weights: :meth:`all_log_weights` if kept from the forward pass, else
            recomputed chunk by chunk.
        :returns: shapes (*batch, n), (*batch, m), (*batch, n, m).
        """
        low = self.low_configurations
        batch_shape = self.bias_other.shape[:-1]
        num_other = self.bias_other.size(-1)
        mean_high = self.bias_enum.new_zeros(batch_shape + (self.high_bits,))
        mean_low = self.bias_enum.new_zeros(batch_shape + (low.size(-1),))
        mean_other = self.bias_other.new_zeros(batch_shape + (num_other,))
        cross_high = self.weight.new_zeros(batch_shape + (self.high_bits, num_other))
        cross_low = self.weight.new_zeros(batch_shape + (low.size(-1), num_other))
        for chunk in range(self.num_chunks):
            chunk_log_weights = (
                self.chunk_log_weights(chunk) if log_weights is None else log_weights[chunk]
            )
            probs = (chunk_log_weights - log_normalizer).exp_()  # (2^l, *batch)
            high, _ = self._high_part(chunk)
            # probability-weighted sigmoid(field) of each state, (2^l, *batch, m)
            weighted = self._fill_field(high).sigmoid_().mul_(probs.unsqueeze(-1))
            chunk_other = weighted.sum(0)
            mean_high += probs.sum(0).unsqueeze(-1) * high
            mean_low += torch.matmul(probs.movedim(0, -1), low)
            mean_other += chunk_other
            cross_high += high.unsqueeze(-1) * chunk_other.unsqueeze(-2)
            cross_low += torch.matmul(low.T, weighted.movedim(0, -2))
        mean_enum = torch.cat([mean_high, mean_low], dim=-1)
        return mean_enum, mean_other, torch.cat([cross_high, cross_low], dim=-2)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size) -> torch.Tensor:
        r"""Exact draws of the enumerated block from :math:`p(z) \propto e^{-F(z)}`.

        Two-stage inverse sampling: the chunk from the chunk masses, then the state
        within the chunk; only chunks that some draw landed in are recomputed.

        :returns: shape (*sample_shape, *batch, n).
        """
        chunk_log_masses = self.log_masses()
        chunk = Categorical(logits=chunk_log_masses.movedim(0, -1)).sample(sample_shape)
        within = torch.zeros_like(chunk)
        for c in torch.unique(chunk).tolist():
            log_weights = self.chunk_log_weights(c).movedim(0, -1)
            draws = Categorical(logits=log_weights).sample(sample_shape)
            within = torch.where(chunk == c, draws, within)
        high = self.high_configurations[chunk].to(self.low_configurations.dtype)
        return torch.cat([high, self.low_configurations[within]], dim=-1)


class _LogPartition(torch.autograd.Function):
    r""":math:`\log Z` by chunked enumeration; the backward pass is a second chunked pass.

    Autograd through the chunks would keep every chunk's activations alive (2^20 x m
    elements for 20 enumerated units); instead the gradient is the exact expectation
    of the sufficient statistics (:meth:`_ChunkedEnumeration.expected_statistics`).
    First derivatives only.
    """

    @staticmethod
    def forward(ctx, bias_enum, bias_other, weight, chunk_elements):
        enumeration = _ChunkedEnumeration(bias_enum, bias_other, weight, chunk_elements)
        log_weights = None
        if enumeration.num_states * math.prod(bias_other.shape[:-1]) <= chunk_elements:
            # every state's -F fits in one chunk's budget: keep it, backward skips a softplus pass
            log_weights = enumeration.all_log_weights()
            log_normalizer = torch.logsumexp(log_weights.flatten(0, 1), dim=0)
        else:
            log_normalizer = enumeration.log_normalizer()
        ctx.save_for_backward(bias_enum, bias_other, weight, log_normalizer, log_weights)
        ctx.chunk_elements = chunk_elements
        return log_normalizer

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        bias_enum, bias_other, weight, log_normalizer, log_weights = ctx.saved_tensors
        enumeration = _ChunkedEnumeration(bias_enum, bias_other, weight, ctx.chunk_elements)
        mean_enum, mean_other, mean_cross = enumeration.expected_statistics(
            log_normalizer, log_weights
        )
        grad = grad_output.unsqueeze(-1)
        return grad * mean_enum, grad * mean_other, grad.unsqueeze(-1) * mean_cross, None


def _enumerated_first(
    bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor, enumerated_side: int | None
) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The side to enumerate (the smaller one unless told) and the parameters, that side first."""
    if enumerated_side is None:
        enumerated_side = 1 if bias1.size(-1) <= bias2.size(-1) else 2
    if enumerated_side == 1:
        return 1, bias1, bias2, weight
    if enumerated_side == 2:
        return 2, bias2, bias1, weight.transpose(-1, -2)
    raise ValueError(f"enumerated_side must be 1, 2 or None, got {enumerated_side!r}")


def exact_log_partition(
    bias1: torch.Tensor,
    bias2: torch.Tensor,
    weight: torch.Tensor,
    *,
    enumerated_side: int | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> torch.Tensor:
    r"""Exact :math:`\log Z` of an RBM by enumerating one block and summing out the other.

    .. math::

        \log Z = \operatorname{logsumexp}_{z_1 \in \{0,1\}^{n_1}} \bigl[a_1^\top z_1
            + \textstyle\sum_j \operatorname{softplus}(a_2 + W^\top z_1)_j\bigr]

    (or the same with the blocks swapped). Chunked: each chunk's workspaces hold at
    most ``chunk_elements`` elements. The gradient,
    :math:`\nabla_\theta \log Z = \mathbb{E}_p[-\nabla_\theta E]` (DVAE Eq. (11)), is
    the exact expectation taken in a second chunked pass, so it is memory-bounded
    too (first derivatives only). There is no size limit here; :class:`RBM` applies
    :data:`MAX_ENUMERATED_UNITS`.

    :param bias1: :math:`a_1`, shape (*batch, n1).
    :param bias2: :math:`a_2`, shape (*batch, n2).
    :param weight: :math:`W`, shape (*batch, n1, n2); the batch shapes broadcast.
    :param enumerated_side: 1 or 2, the block to enumerate; ``None``: the smaller.
    :param chunk_elements: the chunk budget, default :data:`CHUNK_ELEMENTS`.
    :returns: :math:`\log Z`, shape (*batch).
    """
    _check_parameters(bias1, bias2, weight)
    bias1, bias2, weight = _broadcast_parameters(bias1, bias2, weight)
    if (
        isinstance(chunk_elements, bool)
        or not isinstance(chunk_elements, int)
        or chunk_elements < 1
    ):
        raise ValueError(f"chunk_elements must be a positive int, got {chunk_elements!r}")
    _, bias_enum, bias_other, weight_enum = _enumerated_first(bias1, bias2, weight, enumerated_side)
    return _LogPartition.apply(bias_enum, bias_other, weight_enum, chunk_elements)


def _broadcast_parameters(
    bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    try:
        batch_shape = torch.broadcast_shapes(bias1.shape[:-1], bias2.shape[:-1], weight.shape[:-2])
    except RuntimeError as error:
        raise ValueError(
            f"the batch shapes of bias1 {tuple(bias1.shape[:-1])}, bias2 {tuple(bias2.shape[:-1])} "
            f"and weight {tuple(weight.shape[:-2])} do not broadcast"
        ) from error
    return (
        bias1.expand(batch_shape + bias1.shape[-1:]),
        bias2.expand(batch_shape + bias2.shape[-1:]),
        weight.expand(batch_shape + weight.shape[-2:]),
    )


class RBM(TorchDistribution):
    r"""Restricted Boltzmann machine over :math:`z = (z_1, z_2) \in \{0,1\}^{n_1+n_2}`.

    .. math::

        p(z) = e^{-E(z)} / Z, \qquad E(z) = -a_1^\top z_1 - a_2^\top z_2 - z_1^\top W z_2

    (DVAE Eq. (6); DVAE++ Sec. 5). A value is the concatenation ``[z1, z2]``.

    :param bias1: :math:`a_1`, shape (*batch, n1).
    :param bias2: :math:`a_2`, shape (*batch, n2).
    :param weight: :math:`W`, shape (*batch, n1, n2). The three batch shapes broadcast
        to :attr:`batch_shape`.
    :param log_partition: an estimate of :math:`\log Z` (e.g. from AIS), broadcastable
        to the batch shape. When given it is used as :attr:`log_partition` even if the
        RBM is small enough to enumerate; otherwise the exact value is computed, which
        needs ``min(n1, n2) <= MAX_ENUMERATED_UNITS``.

    Sampling is exact when enumerable (the smaller block from its marginal
    :math:`\propto e^{-F}`, the other from its conditional), else ``num_sweeps``
    (default :data:`DEFAULT_BURN_IN_SWEEPS`) sweeps of block Gibbs from uniform random
    states.
    """

    arg_constraints = {
        "bias1": constraints.real_vector,
        "bias2": constraints.real_vector,
        "weight": constraints.independent(constraints.real, 2),
        "log_partition": constraints.real,
    }
    support = constraints.independent(constraints.boolean, 1)
    has_rsample = False

    def __init__(
        self,
        bias1: torch.Tensor,
        bias2: torch.Tensor,
        weight: torch.Tensor,
        log_partition: torch.Tensor | float | None = None,
        validate_args: bool | None = None,
    ) -> None:
        _check_parameters(bias1, bias2, weight)
        self.bias1, self.bias2, self.weight = _broadcast_parameters(bias1, bias2, weight)
        batch_shape = self.bias1.shape[:-1]
        self.log_partition_supplied = log_partition is not None
        self._unexpanded: RBM | None = None  # set by expand(): log Z is computed on it, once
        if log_partition is not None:
            log_partition = torch.as_tensor(log_partition, dtype=bias1.dtype, device=bias1.device)
            try:
                self.log_partition = log_partition.expand(batch_shape)
            except RuntimeError as error:
                raise ValueError(
                    f"log_partition of shape {tuple(log_partition.shape)} does not broadcast "
                    f"to the batch shape {tuple(batch_shape)}"
                ) from error
        event_shape = torch.Size((self.num_units1 + self.num_units2,))
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    # ----- structure -------------------------------------------------------------------

    @property
    def num_units1(self) -> int:
        """:math:`n_1`, the size of the first block."""
        return self.bias1.size(-1)

    @property
    def num_units2(self) -> int:
        """:math:`n_2`, the size of the second block."""
        return self.bias2.size(-1)

    @property
    def is_enumerable(self) -> bool:
        """Whether exact :math:`\\log Z` is available: ``min(n1, n2) <= MAX_ENUMERATED_UNITS``."""
        return min(self.num_units1, self.num_units2) <= MAX_ENUMERATED_UNITS

    @property
    def has_log_partition(self) -> bool:
        """Whether :attr:`log_partition` is available: supplied, or computable exactly."""
        return "log_partition" in self.__dict__ or self.is_enumerable

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split a value ``[z1, z2]`` of shape (..., n1 + n2) into its blocks."""
        _check_last_dim(z, self.num_units1 + self.num_units2, "z")
        return z[..., : self.num_units1], z[..., self.num_units1 :]

    def expand(self, batch_shape: Sequence[int], _instance=None) -> RBM:
        new = self._get_checked_instance(RBM, _instance)
        batch_shape = torch.Size(batch_shape)
        new.bias1 = self.bias1.expand(batch_shape + self.bias1.shape[-1:])
        new.bias2 = self.bias2.expand(batch_shape + self.bias2.shape[-1:])
        new.weight = self.weight.expand(batch_shape + self.weight.shape[-2:])
        new.log_partition_supplied = self.log_partition_supplied
        new._unexpanded = self.unexpanded  # Pyro's plates expand to (particles, data): log Z once
        if "log_partition" in self.__dict__:  # supplied, or already computed
            new.log_partition = self.log_partition.expand(batch_shape)
        super(RBM, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def unexpanded(self) -> RBM:
        """The RBM that :meth:`expand` broadcast this one from (itself if none): same parameters, no copies."""
        return self if self._unexpanded is None else self._unexpanded

    # ----- energies and conditionals ---------------------------------------------------

    def _field2(self, z1: torch.Tensor) -> torch.Tensor:
        """:math:`a_2 + W^\\top z_1`, the logits of :math:`p(z_2 \\mid z_1)`: one GEMM over all states."""
        return self.bias2 + vector_matrix_product(z1, self.weight)

    def _field1(self, z2: torch.Tensor) -> torch.Tensor:
        """:math:`a_1 + W z_2`, the logits of :math:`p(z_1 \\mid z_2)`: one GEMM with :math:`W^\\top` read in place."""
        return self.bias1 + vector_matrix_product(z2, self.weight.mT)

    def _check_block(self, value: torch.Tensor, size: int, name: str) -> None:
        _check_last_dim(value, size, name)
        if self._validate_args:
            _check_binary(value, name)

    def unnormalized_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`-E(z) = a_1^\top z_1 + a_2^\top z_2 + z_1^\top W z_2`, shape (..., *batch)."""
        self._check_block(z, self.num_units1 + self.num_units2, "z")
        z1, z2 = self.split(z)
        return (self.bias1 * z1).sum(-1) + (self._field2(z1) * z2).sum(-1)

    def free_energy1(self, z1: torch.Tensor) -> torch.Tensor:
        r"""Free energy of the first block, shape (..., *batch).

        .. math::

            F_1(z_1) = -\log \sum_{z_2} e^{-E(z_1, z_2)}
                = -a_1^\top z_1 - \textstyle\sum_j \operatorname{softplus}(a_2 + W^\top z_1)_j
        """
        self._check_block(z1, self.num_units1, "z1")
        return -(self.bias1 * z1).sum(-1) - F.softplus(self._field2(z1)).sum(-1)

    def free_energy2(self, z2: torch.Tensor) -> torch.Tensor:
        r"""Free energy of the second block, shape (..., *batch).

        .. math::

            F_2(z_2) = -\log \sum_{z_1} e^{-E(z_1, z_2)}
                = -a_2^\top z_2 - \textstyle\sum_i \operatorname{softplus}(a_1 + W z_2)_i
        """
        self._check_block(z2, self.num_units2, "z2")
        return -(self.bias2 * z2).sum(-1) - F.softplus(self._field1(z2)).sum(-1)

    def conditional2(self, z1: torch.Tensor) -> Independent:
        r""":math:`p(z_2 \mid z_1) = \prod_j \operatorname{Bern}(\sigma(a_2 + W^\top z_1)_j)`."""
        self._check_block(z1, self.num_units1, "z1")
        return Independent(Bernoulli(logits=self._field2(z1), validate_args=self._validate_args), 1)

    def conditional1(self, z2: torch.Tensor) -> Independent:
        r""":math:`p(z_1 \mid z_2) = \prod_i \operatorname{Bern}(\sigma(a_1 + W z_2)_i)`."""
        self._check_block(z2, self.num_units2, "z2")
        return Independent(Bernoulli(logits=self._field1(z2), validate_args=self._validate_args), 1)

    # ----- normalisation ---------------------------------------------------------------

    @lazy_property
    def log_partition(self) -> torch.Tensor:
        r""":math:`\log Z`, shape batch_shape: exact and differentiable when :attr:`is_enumerable`.

        An estimate passed as ``log_partition=`` takes precedence.
        """
        if not self.is_enumerable:
            raise ValueError(
                f"this RBM has {self.num_units1} + {self.num_units2} units; exact log Z "
                f"enumerates 2^min(n1, n2) states and is limited to min(n1, n2) <= "
                f"{MAX_ENUMERATED_UNITS}. Pass an estimate as RBM(..., log_partition=...) "
                "(e.g. from AIS)"
            )
        if self._unexpanded is not None:
            return self._unexpanded.log_partition.expand(self.batch_shape)
        return exact_log_partition(self.bias1, self.bias2, self.weight)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(z) = -E(z) - \log Z`, shape (..., *batch)."""
        if self._validate_args:
            self._validate_sample(value)
        return self.unnormalized_log_prob(value) - self.log_partition

    # ----- sampling ----------------------------------------------------------------------

    def sample(
        self, sample_shape: Sequence[int] = torch.Size(), *, num_sweeps: int | None = None
    ) -> torch.Tensor:
        """Draws, shape (*sample_shape, *batch_shape, n1 + n2): exact if enumerable, else Gibbs.

        :param num_sweeps: block-Gibbs sweeps from uniform random states when the RBM is
            too large to enumerate (default :data:`DEFAULT_BURN_IN_SWEEPS`); unused when the
            draws are exact.
        """
        num_sweeps = DEFAULT_BURN_IN_SWEEPS if num_sweeps is None else num_sweeps
        check_int("num_sweeps", num_sweeps)
        sample_shape = torch.Size(sample_shape)
        with torch.no_grad():
            if self.is_enumerable:
                side, *enumerated_first = _enumerated_first(
                    self.bias1, self.bias2, self.weight, None
                )
                enumeration = _ChunkedEnumeration(*enumerated_first, CHUNK_ELEMENTS)
                if side == 1:
                    z1 = enumeration.sample(sample_shape)
                    z2 = self.conditional2(z1).sample()
                else:
                    z2 = enumeration.sample(sample_shape)
                    z1 = self.conditional1(z2).sample()
            else:
                shape = sample_shape + self.batch_shape + (self.num_units1,)
                start = torch.randint(0, 2, shape, device=self.bias1.device).to(self.bias1.dtype)
                z1, z2 = sweep_blocks(self.bias1, self.bias2, self.weight, start, num_sweeps)
        return torch.cat([z1, z2], dim=-1)

    # ----- moments and enumeration of the support (new in issue 18) ------------------------

    def _exact_statistics(self, quantity: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""Exact :math:`\log Z`, :math:`\mathbb E[z]` (*batch, n1 + n2) and :math:`\mathbb E[z_1 z_2^\top]` (*batch, n1, n2).

        One chunked pass enumerating the smaller block (its gradient pass,
        :meth:`_ChunkedEnumeration.expected_statistics`), on the parameters before any
        :meth:`expand`; without autograd.

        :param quantity: the name of the property asking, for the error when not enumerable.
        """
        if not self.is_enumerable:
            raise NotImplementedError(
                f"RBM.{quantity} is exact only when a block can be enumerated: this RBM has "
                f"{self.num_units1} + {self.num_units2} units and enumeration is limited to "
                f"min(n1, n2) <= {MAX_ENUMERATED_UNITS}; estimate it from draws of RBM.sample "
                "or PersistentChains"
            )
        source = self.unexpanded
        side, bias_enum, bias_other, weight_enum = _enumerated_first(source.bias1, source.bias2, source.weight, None)
        with torch.no_grad():
            enumeration = _ChunkedEnumeration(bias_enum, bias_other, weight_enum, CHUNK_ELEMENTS)
            log_normalizer = enumeration.log_normalizer()
            mean_enum, mean_other, cross = enumeration.expected_statistics(log_normalizer)
        if side == 1:
            mean = torch.cat([mean_enum, mean_other], dim=-1)
        else:
            mean, cross = torch.cat([mean_other, mean_enum], dim=-1), cross.transpose(-1, -2)
        return (
            log_normalizer.expand(self.batch_shape),
            mean.expand(self.batch_shape + mean.shape[-1:]),
            cross.expand(self.batch_shape + cross.shape[-2:]),
        )

    @property
    def mean(self) -> torch.Tensor:
        r""":math:`\mathbb E[z] = \partial \log Z / \partial (a_1, a_2)` (DVAE Eq. (11)), exact when :attr:`is_enumerable`.

        Not differentiable (computed without autograd); raises ``NotImplementedError``
        otherwise (Pyro's ``init_to_mean`` then falls back to ``init_to_median``).
        """
        return self._exact_statistics("mean")[1]

    @property
    def variance(self) -> torch.Tensor:
        r""":math:`\mathbb E[z](1 - \mathbb E[z])` per unit (binary units), exact when :attr:`is_enumerable`; not differentiable."""
        mean = self._exact_statistics("variance")[1]
        return mean * (1 - mean)

    def entropy(self) -> torch.Tensor:
        r""":math:`H = \log Z - \mathbb E[-E(z)] = \log Z - a_1^\top \mathbb E z_1 - a_2^\top \mathbb E z_2 - \langle W, \mathbb E[z_1 z_2^\top] \rangle`.

        Exact (the enumerated :math:`\log Z`, not a supplied estimate) when :attr:`is_enumerable`,
        in nats; not differentiable.
        """
        log_normalizer, mean, cross = self._exact_statistics("entropy")
        mean1, mean2 = self.split(mean)
        expected_neg_energy = (
            (self.bias1 * mean1).sum(-1) + (self.bias2 * mean2).sum(-1) + (self.weight * cross).sum((-1, -2))
        )
        return log_normalizer - expected_neg_energy.detach()

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        """Whether the :math:`2^{n_1 + n_2}` joint states are listed: at most :data:`MAX_ENUMERATED_EVENT_UNITS` units."""
        return self.num_units1 + self.num_units2 <= MAX_ENUMERATED_EVENT_UNITS

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """All joint states ``[z1, z2]``, shape (2^(n1+n2), *batch, n1 + n2), for ``TraceEnum_ELBO``.

        Exact enumeration needs this many units at most (:data:`MAX_ENUMERATED_EVENT_UNITS`),
        far fewer than :attr:`is_enumerable`'s limit on the smaller block: an RBM prior
        with more units must be sampled (a guide over z), not summed out.
        """
        return enumerate_binary_support(
            "RBM", self.event_shape[0], self.batch_shape, expand, self.bias1.dtype, self.bias1.device
        )

r"""Block-Gibbs sweeps of a restricted Boltzmann machine, on its parameter tensors.

Given one block the other is factorial, so a sweep draws a whole block at once
(DVAE, Rolfe 2017, Eq. (6)):

.. math::

    z_2 \sim \prod_j \operatorname{Bernoulli}\bigl(\sigma(a_2 + W^\top z_1)_j\bigr), \qquad
    z_1 \sim \prod_i \operatorname{Bernoulli}\bigl(\sigma(a_1 + W z_2)_i\bigr) .

This module holds the sweeps alone, on ``(bias1, bias2, weight)``: the
:class:`~pyro_dgm.distributions.rbm.RBM` samples with them when it cannot enumerate, and
:func:`~pyro_dgm.distributions.gibbs.block_gibbs` (argument checks, persistent chains)
builds on the RBM, so neither of those two modules imports the other's importer.
"""

from __future__ import annotations

import torch

from pyro_dgm.distributions.bipartite_fields import draw_bernoulli_, is_shared_across_batch, vector_matrix_product


def sweep_blocks(
    bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor, z1: torch.Tensor, num_sweeps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``num_sweeps`` sweeps from ``z1``: each draws :math:`z_2 \mid z_1`, then :math:`z_1 \mid z_2`.

    No checks and no autograd: the caller validates (``z1`` binary, in the parameters'
    dtype, its leading shape broadcasting with their batch shape; ``num_sweeps >= 1``)
    and runs this under ``torch.no_grad()``.

    :param bias1: :math:`a_1`, shape (*batch, n1).
    :param bias2: :math:`a_2`, shape (*batch, n2).
    :param weight: :math:`W`, shape (*batch, n1, n2).
    :param z1: starting states of the first block, shape (*chains, *batch, n1).
    :returns: the last sweep's ``(z1, z2)``.
    """
    if _is_one_rbm(bias1, bias2, weight):
        return _sweep_shared_rbm(bias1, bias2, weight, z1, num_sweeps)
    for _ in range(num_sweeps):
        z2 = draw_bernoulli_(bias2 + vector_matrix_product(z1, weight))
        z1 = draw_bernoulli_(bias1 + vector_matrix_product(z2, weight.mT))
    return z1, z2


def _is_one_rbm(bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the parameters are one RBM in memory, whatever their batch shape (unbatched, or expanded by plates)."""
    return (
        is_shared_across_batch(bias1, 1)
        and is_shared_across_batch(bias2, 1)
        and is_shared_across_batch(weight, 2)
    )


def _sweep_shared_rbm(
    bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor, z1: torch.Tensor, num_sweeps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    r""":func:`sweep_blocks` for an RBM shared by its batch: every chain a row of two GEMMs per sweep.

    Per half-sweep: ``addmm`` (the bias enters the GEMM's accumulator), ``sigmoid_``,
    ``uniform_`` and ``lt_`` on preallocated buffers, so the loop allocates nothing and
    makes four calls, which matters when the GEMMs are small (100 chains of a 100 + 100
    RBM take microseconds per product). The draws are those of the general loop of
    :func:`sweep_blocks`, :math:`\mathbb 1[u < \sigma(\text{field})]`, with the uniforms in
    the same order.
    """
    batch_shape = weight.shape[:-2]
    num_units1, num_units2 = weight.shape[-2:]
    first = (0,) * len(batch_shape)
    bias1, bias2, weight = bias1[first], bias2[first], weight[first]
    leading_shape = torch.broadcast_shapes(z1.shape[:-1], batch_shape)
    num_rows = leading_shape.numel()
    state1 = z1.expand(leading_shape + z1.shape[-1:]).reshape(num_rows, num_units1).clone()
    state2 = z1.new_empty(num_rows, num_units2)
    field1, field2 = torch.empty_like(state1), torch.empty_like(state2)
    for _ in range(num_sweeps):
        torch.addmm(bias2, state1, weight, out=field2).sigmoid_()
        state2.uniform_().lt_(field2)
        torch.addmm(bias1, state2, weight.mT, out=field1).sigmoid_()
        state1.uniform_().lt_(field1)
    return (
        state1.reshape(leading_shape + (num_units1,)),
        state2.reshape(leading_shape + (num_units2,)),
    )

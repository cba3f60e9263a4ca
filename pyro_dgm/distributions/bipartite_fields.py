r"""The fields of one block of a bipartite model given the other, as matrix-matrix products.

A block-Gibbs sweep of an RBM (DVAE, Rolfe 2017, Eq. (6)) needs, for every chain,
the fields :math:`a_2 + W^\top z_1` and :math:`a_1 + W z_2`. Written per chain as
``matmul(W, z2.unsqueeze(-1))`` these are batched matrix-*vector* products: one small
product per chain, memory-bound, and on the CPU 40x slower than the same arithmetic
as one GEMM (82 ms against 2 ms for 1000 chains of a 392 + 200 RBM, issue 13). Here
every chain is a row of one matrix, :math:`Z_1 W` and :math:`Z_2 W^\top`, and the
matrix is never copied per chain.

A draw :math:`z \sim \operatorname{Bern}(\sigma(a))` is made as :math:`\mathbb 1[u <
\sigma(a)]` with :math:`u \sim U[0, 1)`, in place over the logits: two element-wise
passes and one uniform per unit, about twice as fast as ``torch.bernoulli`` of the
probabilities on the CPU (``benchmarks/bernoulli_draw_costs.py``; ``docs/benchmarks.md``,
"RBM samplers against RBM libraries").
"""

from __future__ import annotations

import torch


def is_shared_across_batch(value: torch.Tensor, event_ndim: int) -> bool:
    """Whether every batch element of ``value`` (*batch, *event) is the same tensor in memory.

    True without batch dimensions, and for batch dimensions made by ``expand`` (size 1 or
    stride 0), as Pyro's plates make them.
    """
    batch_ndim = value.dim() - event_ndim
    batch_dims = zip(value.shape[:batch_ndim], value.stride()[:batch_ndim])
    return all(size == 1 or stride == 0 for size, stride in batch_dims)


def vector_matrix_product(vectors: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    r""":math:`v^\top M` for row vectors (*sample, *batch, n) and matrices (*batch, n, m).

    The vectors' batch dimensions broadcast against the matrices'. When the matrices
    are shared across the batch (no batch dimensions, or batch dimensions made by
    ``expand``, of size 1 or stride 0) this is one GEMM with every vector a row, and
    the result has the vectors' leading shape, ``vectors.shape[:-1] + (m,)``, which
    broadcasts against the batch shape. Otherwise it is one ``bmm`` over the batch, each
    batch element's vectors (over the sample dimensions) being the rows of its product,
    with result shape ``broadcast(vectors.shape[:-1], batch) + (m,)``.

    Differentiable in both arguments. A transposed matrix (``W.mT``) is read in place.
    """
    batch_ndim = matrix.dim() - 2
    if is_shared_across_batch(matrix, 2):
        return torch.matmul(vectors, matrix[(0,) * batch_ndim])
    batch_shape = matrix.shape[:-2]
    leading_shape = torch.broadcast_shapes(vectors.shape[:-1], batch_shape)
    vectors = vectors.expand(leading_shape + vectors.shape[-1:])
    sample_shape = leading_shape[: len(leading_shape) - batch_ndim]
    rows = vectors.reshape(-1, batch_shape.numel(), vectors.size(-1)).transpose(0, 1)
    products = torch.bmm(rows, matrix.reshape(-1, *matrix.shape[-2:]))  # (batch, rows, m)
    # contiguous, in the logical order: a *_like random draw then fills it in that order too
    products = products.transpose(0, 1).contiguous()
    return products.reshape(*sample_shape, *batch_shape, matrix.size(-1))


def draw_bernoulli_(logits: torch.Tensor) -> torch.Tensor:
    r"""Independent draws :math:`\mathbb 1[u < \sigma(a)]`, :math:`u \sim U[0, 1)`, in ``logits``' dtype.

    Overwrites ``logits`` (with :math:`\sigma(a)`): pass a fresh tensor, outside autograd.
    Each draw is Bernoulli with probability :math:`\sigma(a)` up to the resolution of the
    uniforms (:math:`2^{-24}` in float32).
    """
    probs = logits.sigmoid_()
    return torch.rand_like(probs).lt_(probs)

"""The GEMM forms of the RBM's conditional fields against the batched matrix-vector forms they replace."""

import pytest
import torch

from pyro_dgm.distributions.bipartite_fields import draw_bernoulli_, vector_matrix_product
from pyro_dgm.distributions.rbm import RBM

N1, N2 = 5, 3
"""Unequal blocks: a transposed weight cannot pass for the right one."""

FLOAT32_TOLERANCE = dict(rtol=1e-5, atol=1e-5)
"""Sums of N1 float32 products of O(1) terms: different summation orders differ by ~1e-6."""


def old_field2(rbm, z1):
    """The batched matrix-vector form of :meth:`RBM._field2` before issue 13."""
    return rbm.bias2 + torch.matmul(z1.unsqueeze(-2), rbm.weight).squeeze(-2)


def old_field1(rbm, z2):
    """The batched matrix-vector form of :meth:`RBM._field1` before issue 13."""
    return rbm.bias1 + torch.matmul(rbm.weight, z2.unsqueeze(-1)).squeeze(-1)


def bits(*shape, dtype=torch.float32):
    return torch.randint(0, 2, shape).to(dtype)


def rbm_with_batch(kind, dtype=torch.float32):
    """An RBM whose parameters are unbatched, batched per element, or expanded from one."""
    if kind == "unbatched":
        return RBM(torch.randn(N1, dtype=dtype), torch.randn(N2, dtype=dtype), torch.randn(N1, N2, dtype=dtype))
    if kind == "batched":  # a different W per batch element: the bmm path
        return RBM(torch.randn(2, 3, N1, dtype=dtype), torch.randn(3, N2, dtype=dtype), torch.randn(2, 3, N1, N2, dtype=dtype))
    if kind == "expanded":  # Pyro's plates: one W, stride-0 batch dimensions: the GEMM path
        return RBM(torch.randn(N1, dtype=dtype), torch.randn(N2, dtype=dtype), torch.randn(N1, N2, dtype=dtype)).expand((2, 3))
    if kind == "partly_shared":  # W shared along one batch dim only: the bmm path on a broadcast copy
        return RBM(torch.randn(N1, dtype=dtype), torch.randn(N2, dtype=dtype), torch.randn(2, 1, N1, N2, dtype=dtype)).expand((2, 3))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["unbatched", "batched", "expanded", "partly_shared"])
@pytest.mark.parametrize("chain_shape", [(), (7,), (4, 7)])
def test_fast_fields_equal_the_matrix_vector_forms(kind, chain_shape):
    torch.manual_seed(0)
    rbm = rbm_with_batch(kind)
    z1 = bits(*chain_shape, *rbm.batch_shape, N1)
    z2 = bits(*chain_shape, *rbm.batch_shape, N2)
    fast2, fast1 = rbm._field2(z1), rbm._field1(z2)
    slow2, slow1 = old_field2(rbm, z1), old_field1(rbm, z2)
    assert fast2.shape == slow2.shape and fast1.shape == slow1.shape
    torch.testing.assert_close(fast2, slow2, **FLOAT32_TOLERANCE)
    torch.testing.assert_close(fast1, slow1, **FLOAT32_TOLERANCE)


@pytest.mark.parametrize("kind", ["batched", "expanded"])
def test_fast_fields_broadcast_states_without_batch_dimensions(kind):
    """States shared by every RBM of the batch (shape (chains, n)) broadcast as before."""
    torch.manual_seed(1)
    rbm = rbm_with_batch(kind, torch.float64)
    z1, z2 = bits(1, 1, 1, N1, dtype=torch.float64), bits(N2, dtype=torch.float64)
    torch.testing.assert_close(rbm._field2(z1), old_field2(rbm, z1), rtol=0, atol=1e-12)
    torch.testing.assert_close(rbm._field1(z2), old_field1(rbm, z2), rtol=0, atol=1e-12)


def test_fast_fields_have_the_matrix_vector_gradients():
    """free_energy2 differentiates through the new product: its gradient is the old one's."""
    torch.manual_seed(2)
    weight = torch.randn(2, N1, N2, dtype=torch.float64, requires_grad=True)
    bias1 = torch.randn(N1, dtype=torch.float64, requires_grad=True)
    rbm = RBM(bias1, torch.randn(N2, dtype=torch.float64), weight)
    z2 = bits(6, 2, N2, dtype=torch.float64)
    fast = torch.autograd.grad(rbm.free_energy2(z2).sum(), (weight, bias1))
    slow_energy = -(rbm.bias2 * z2).sum(-1) - torch.nn.functional.softplus(old_field1(rbm, z2)).sum(-1)
    slow = torch.autograd.grad(slow_energy.sum(), (weight, bias1))
    for fast_grad, slow_grad in zip(fast, slow):
        torch.testing.assert_close(fast_grad, slow_grad, rtol=0, atol=1e-12)


def test_vector_matrix_product_reads_a_transposed_matrix_in_place():
    torch.manual_seed(3)
    matrix = torch.randn(3, N1, N2, dtype=torch.float64)
    vectors = torch.randn(4, 3, N2, dtype=torch.float64)
    expected = torch.einsum("sbm,bnm->sbn", vectors, matrix)
    torch.testing.assert_close(vector_matrix_product(vectors, matrix.mT), expected, rtol=0, atol=1e-12)


def test_draw_bernoulli_compares_uniforms_with_the_probabilities():
    """1[u < sigmoid(a)] with the uniforms torch.rand_like would draw, in the logits' dtype."""
    logits = torch.tensor([[-30.0, 0.0, 30.0], [-1.0, 0.5, 2.0]], dtype=torch.float64)
    probs = torch.sigmoid(logits)
    torch.manual_seed(4)
    uniforms = torch.rand_like(probs)
    torch.manual_seed(4)
    draws = draw_bernoulli_(logits.clone())
    assert draws.dtype == torch.float64
    assert torch.equal(draws, (uniforms < probs).double())
    assert draws[0, 0] == 0 and draws[0, 2] == 1

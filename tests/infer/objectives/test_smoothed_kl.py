"""The expected RBM coupling of DVAE++ Eq. 7 against its definition, pair by pair."""

import pytest
import torch

from pyro_dgm.infer.objectives.smoothed_kl import expected_coupling

N1, N2 = 3, 2
"""RBM sides of the test: every pair (u, v) is written out."""


def coupling_by_definition(probs, posterior_probs, weight, group_of_unit):
    r""":math:`\sum_{uv} W_{uv} m_{uv}` with :math:`m_{uv}` of Eq. 7, one pair at a time."""
    total = torch.zeros(probs.shape[:-1], dtype=probs.dtype)
    for u in range(N1):
        for v in range(N2):
            group_u, group_v = group_of_unit[u], group_of_unit[N1 + v]
            left = posterior_probs[..., u] if group_u < group_v else probs[..., u]
            right = posterior_probs[..., N1 + v] if group_u > group_v else probs[..., N1 + v]
            total = total + weight[u, v] * left * right
    return total


@pytest.mark.parametrize(
    "group_of_unit",
    [[0, 0, 0, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [2, 0, 1, 1, 2]],
    ids=["two_sides", "sides_reversed", "one_group", "mixed", "three_groups"],
)
def test_expected_coupling_is_eq7_pair_by_pair(group_of_unit):
    """Terms with no pair are skipped and full masks not applied; value and gradient are unchanged."""
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(4, N1 + N2, dtype=torch.float64, generator=generator).requires_grad_()
    posterior_probs = torch.rand(4, N1 + N2, dtype=torch.float64, generator=generator).requires_grad_()
    weight = torch.randn(N1, N2, dtype=torch.float64, generator=generator).requires_grad_()
    groups = torch.tensor(group_of_unit)
    value = expected_coupling(probs, posterior_probs, weight, groups)
    expected = coupling_by_definition(probs, posterior_probs, weight, group_of_unit)
    assert torch.allclose(value, expected, rtol=1e-12, atol=0.0)
    inputs = (probs, posterior_probs, weight)
    gradients = torch.autograd.grad(value.sum(), inputs, allow_unused=True)
    expected_gradients = torch.autograd.grad(expected.sum(), inputs, allow_unused=True)
    for tensor, gradient, expected_gradient in zip(inputs, gradients, expected_gradients):
        gradient = torch.zeros_like(tensor) if gradient is None else gradient  # unused: zero
        expected_gradient = torch.zeros_like(tensor) if expected_gradient is None else expected_gradient
        assert torch.allclose(gradient, expected_gradient, rtol=1e-12, atol=1e-15)

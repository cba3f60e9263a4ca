"""Rolfe's DVAE objective (spike-and-exponential smoothing) against exact values.

Ground truth: enumeration over z and Gauss-Legendre quadrature over the slab of each
unit with z = 1 (zeta = 0 exactly where z = 0), with the RBM's exact log Z.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch

from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.spike_and_exponential import SpikeAndExponential
from pyro_dgm.infer.estimators.smoothed_exact import SPIKE
from pyro_dgm.infer.objectives.dvae import DVAEELBO, rolfe_coupling_correction
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from tests.infer.monte_carlo_checks import (
    PARTICLES_PER_REPEAT,
    assert_unbiased,
    repeated_loss_and_gradient,
)
from tests.infer.smoothed_models import (
    BETA,
    MIXED_GROUPS,
    TWO_SIDES,
    TinySmoothedRBM,
    exact_loss_and_gradient,
    tiny_data,
)

SPIKE_AND_EXPONENTIAL = partial(SpikeAndExponential, BETA)


def _objective(cls):
    return cls(
        num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True, log_partition_gradient="exact"
    )


@pytest.mark.parametrize("groups", [TWO_SIDES, MIXED_GROUPS], ids=["two_sides", "mixed"])
def test_dvae_value_and_gradient_are_unbiased(groups):
    """Mean loss and mean Rolfe gradient (Eq. 11-12, 31) within 4 SE of the exact ones."""
    tiny, x = TinySmoothedRBM(smoother=SPIKE_AND_EXPONENTIAL, groups=groups), tiny_data()
    losses, gradients = repeated_loss_and_gradient(
        _objective(DVAEELBO), tiny.model, tiny.guide, x, list(tiny.parameters())
    )
    exact_loss, exact_gradient = exact_loss_and_gradient(tiny, x, atoms=SPIKE)
    assert_unbiased(losses.unsqueeze(-1), exact_loss)
    assert_unbiased(gradients, exact_gradient)


BIAS_IN_STANDARD_ERRORS = 10.0
"""The autodiff-through-nu gradient is off by far more than sampling noise."""


def test_autodiff_through_a_spike_misses_the_step_and_warns():
    """DVAE++'s estimator on spike smoothers is biased: what Rolfe's correction is for."""
    tiny, x = TinySmoothedRBM(smoother=SPIKE_AND_EXPONENTIAL), tiny_data()
    with pytest.warns(UserWarning, match="site 'z'.*exactly 0 or 1.*use DVAEELBO"):
        _, gradients = repeated_loss_and_gradient(
            _objective(DVAEPlusPlusELBO), tiny.model, tiny.guide, x, list(tiny.parameters())
        )
    _, exact_gradient = exact_loss_and_gradient(tiny, x, atoms=SPIKE)
    standard_error = gradients.std(0) / gradients.size(0) ** 0.5
    deviation = (gradients.mean(0) - exact_gradient).abs()
    assert (deviation > BIAS_IN_STANDARD_ERRORS * standard_error).any()


def test_dvae_refuses_overlapping_smoothers_naming_the_site():
    tiny, x = TinySmoothedRBM(smoother=partial(OverlappingExponential, BETA)), tiny_data()
    with pytest.raises(ValueError, match="guide site 'zeta0' uses OverlappingExponential"):
        _objective(DVAEELBO).differentiable_loss(tiny.model, tiny.guide, x)


def test_rolfe_correction_is_zero_valued_with_the_gradient_of_eq_31():
    """Value 0; d/dq_u = W_uv (1 - z_u) / (1 - q_u) mu_v for the earlier unit u of each pair."""
    probs = torch.tensor([0.3, 0.6, 0.2, 0.7], dtype=torch.float64)
    logits = torch.logit(probs).requires_grad_(True)
    z = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    weight = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    group_of_unit = torch.tensor(
        [0, 1, 1, 0]
    )  # unit 0 < unit 2; unit 3 < unit 1; (0,3), (1,2) tied
    correction = rolfe_coupling_correction(logits, z, weight, group_of_unit)
    (gradient,) = torch.autograd.grad(correction, logits)
    assert correction.item() == 0.0
    q = probs
    expected_in_q = torch.stack(
        [
            weight[0, 0] * (1 - z[0]) / (1 - q[0]) * q[2],  # pair (0, 2): unit 0 earlier
            torch.tensor(0.0, dtype=torch.float64),  # unit 1 is never the earlier unit of a pair
            torch.tensor(0.0, dtype=torch.float64),  # nor is unit 2
            weight[1, 1] * (1 - z[3]) / (1 - q[3]) * q[1],  # pair (1, 3): unit 3 earlier
        ]
    )
    assert (expected_in_q != 0).sum() == 2
    assert torch.allclose(gradient, expected_in_q * q * (1 - q))  # dq/dlogit = q (1 - q)


def test_rolfe_correction_is_finite_where_a_probability_rounds_to_one():
    """q_u = 1 in float32 (logit 20): z_u = 1 contributes nothing, z_u = 0 (rho = 0) no 0/0.

    With z_u = 0 the Eq. (31) term is W_uv (1 - z_u)/(1 - q_u) mu_v dq_u = W_uv q_u mu_v dl_u,
    finite although 1 - q_u is 0 in float32.
    """
    logits = torch.tensor([20.0, 20.0, 1.0, 0.5], requires_grad=True)
    z = torch.tensor([1.0, 0.0, 1.0, 0.0])
    weight = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    group_of_unit = torch.tensor([0, 0, 1, 1])  # units 0, 1 earlier than units 2, 3
    probs = torch.sigmoid(logits.detach())
    assert probs[0] == probs[1] == 1.0
    correction = rolfe_coupling_correction(logits, z, weight, group_of_unit)
    (gradient,) = torch.autograd.grad(correction, logits)
    assert correction.item() == 0.0
    assert torch.isfinite(gradient).all()
    assert gradient[0] == 0.0
    assert torch.allclose(gradient[1], weight[1] @ probs[2:])

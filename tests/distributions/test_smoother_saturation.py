"""Every smoother in float32 where sigma(logit) rounds to 0 or 1, at the ends of rho's range.

sigma(l) is 1 in float32 once l > ~16.6 (1 - q then rounds to 0), exp(-l) underflows past
l ~ 88 (denormals) and ~104 (zero); rho = 0 is drawn about once in 2^24 uniforms. A 0/0 or
inf - inf anywhere in the sampler, the density or nu surfaces as a NaN value or gradient.
"""

from __future__ import annotations

import pytest
import torch

from pyro_dgm.models.dvae_smoothing import BINARY_LIMIT, SMOOTHERS, is_tempered

SATURATED_LOGITS = [0.0, 16.6, 17.0, 30.0, 88.5, 104.0, 200.0]
"""Logits where float32 rounding changes regime (with their negatives); 0 as a control."""
RHO_EXTREMES = [0.0, 2.0**-149, 2.0**-24, 0.5, 1.0 - 2.0**-24]
"""Uniform draws at the ends of [0, 1) in float32: 0, the smallest denormal, one ulp, the largest below 1."""
BETA = 5.0
"""The models' default inverse temperature (DVAE++ Sec. 7.1)."""

DIFFERENTIABLE = [name for name in SMOOTHERS if name != BINARY_LIMIT]  # the binary limit has no rsample


def _smoother(name: str, logits: torch.Tensor):
    family = SMOOTHERS[name]
    return family(BETA, logits=logits) if is_tempered(name) else family(logits=logits)


def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.tensor([sign * value for value in SATURATED_LOGITS for sign in (1.0, -1.0)])
    rho = torch.tensor(RHO_EXTREMES)
    return logits.repeat_interleave(rho.numel()), rho.repeat(logits.numel())


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_sample_density_and_posterior_are_finite_and_differentiable_when_saturated(name):
    logits, rho = _grid()
    logits.requires_grad_(True)
    smoother = _smoother(name, logits)
    zeta = smoother.icdf(rho)
    nu = smoother.posterior_probs(zeta)
    log_density = smoother.log_prob(zeta)
    assert torch.isfinite(zeta).all() and smoother.support.check(zeta).all()
    assert torch.isfinite(nu).all() and ((nu >= 0) & (nu <= 1)).all()
    assert not torch.isnan(log_density).any()
    for value in (zeta, nu):
        (gradient,) = torch.autograd.grad(value.sum(), logits, retain_graph=True)
        assert torch.isfinite(gradient).all(), f"{name}: non-finite gradient at logits {logits[~torch.isfinite(gradient)]}"


@pytest.mark.parametrize("name", [name for name in DIFFERENTIABLE if is_tempered(name)])
def test_temperature_gradients_are_finite_when_saturated(name):
    """The same grid, differentiated in beta: zeta's implicit gradient and nu's reach beta too."""
    logits, rho = _grid()
    beta = torch.tensor(BETA, requires_grad=True)
    smoother = SMOOTHERS[name](beta, logits=logits)
    zeta = smoother.icdf(rho)
    for value in (zeta, smoother.posterior_probs(zeta)):
        (gradient,) = torch.autograd.grad(value.sum(), beta, retain_graph=True)
        assert torch.isfinite(gradient), f"{name}: non-finite gradient in beta"

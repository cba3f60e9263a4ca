"""Closed-form means and variances of the smoothers (issue 18 item 4) against quadrature and 60-digit arithmetic."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
import torch
from scipy import integrate
from torch.distributions import constraints

from pyro_dgm.distributions import (
    BinaryLimit,
    MixtureOfRamps,
    OverlappingExponential,
    OverlappingLogistic,
    SpikeAndExponential,
    SpikeAndSlab,
)
from pyro_dgm.distributions.overlapping_exponential import (
    SERIES_MAX_BETA,
    decaying_exponential_mean,
    truncated_exponential_variance,
)

QUADRATURE_TOLERANCE = 1e-12
"""Absolute and relative tolerance asked of scipy's adaptive quadrature."""

MOMENT_TOLERANCE = 1e-9
"""Closed form vs quadrature in float64: the quadrature's error, with room for peaked densities."""

LOGISTIC_TAIL_SCALES = 50.0
"""The overlapping logistic is integrated over [-L, 1 + L], L = this / beta: the tails beyond hold e^-50."""

REFERENCE_DIGITS = 60
"""Decimal digits of the reference moments (the closed forms cancel about log10(1/beta^2) digits)."""

ULPS = 32
"""Allowed relative error of the truncated-exponential moments, in units of the dtype's epsilon (measured: at most 11)."""

BETAS = [0.3, 1.0, 5.0, 100.0]
LOGITS = [-4.0, 0.0, 3.0]


def smoother(name: str, beta: float, logits: float):
    beta_t, logits_t = torch.tensor(beta, dtype=torch.float64), torch.tensor(logits, dtype=torch.float64)
    return {
        "overlapping exponential": lambda: OverlappingExponential(beta_t, logits=logits_t),
        "overlapping logistic": lambda: OverlappingLogistic(beta_t, logits=logits_t),
        "spike-and-exponential": lambda: SpikeAndExponential(beta_t, logits=logits_t),
        "spike-and-slab": lambda: SpikeAndSlab(logits=logits_t),
        "mixture of ramps": lambda: MixtureOfRamps(logits=logits_t),
    }[name]()


def quadrature_moments(distribution, beta: float) -> tuple[float, float]:
    r"""E[zeta] and Var[zeta] by adaptive quadrature of the density (a spike's atom at 0 adds nothing to E zeta^k)."""
    if distribution.support is constraints.real:  # the overlapping logistic and its conditionals
        tail = LOGISTIC_TAIL_SCALES / beta
        low, high, points = -tail, 1 + tail, [0.0, 1.0]
    else:
        low, high, points = 0.0, 1.0, None

    def moment(power: int) -> float:
        def integrand(zeta: float) -> float:
            value = torch.tensor(zeta, dtype=torch.float64)
            return zeta**power * float(distribution.log_prob(value).exp())

        result, _ = integrate.quad(integrand, low, high, points=points, epsabs=QUADRATURE_TOLERANCE,
                                   epsrel=QUADRATURE_TOLERANCE, limit=500)
        return result

    mean = moment(1)
    return mean, moment(2) - mean**2


NAMES = ["overlapping exponential", "overlapping logistic", "spike-and-exponential", "spike-and-slab", "mixture of ramps"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("logits", LOGITS)
def test_mean_and_variance_equal_quadrature(name, beta, logits):
    distribution = smoother(name, beta, logits)
    mean, variance = quadrature_moments(distribution, beta)
    assert float(distribution.mean) == pytest.approx(mean, rel=MOMENT_TOLERANCE, abs=MOMENT_TOLERANCE)
    assert float(distribution.variance) == pytest.approx(variance, rel=MOMENT_TOLERANCE, abs=MOMENT_TOLERANCE)
    for z in (0.0, 1.0):
        conditional = distribution.conditional(torch.tensor(z, dtype=torch.float64))
        conditional_mean, conditional_variance = (
            (0.0, 0.0) if z == 0 and name.startswith("spike") else quadrature_moments(conditional, beta)
        )
        assert float(conditional.mean) == pytest.approx(conditional_mean, rel=MOMENT_TOLERANCE, abs=MOMENT_TOLERANCE)
        assert float(conditional.variance) == pytest.approx(conditional_variance, rel=MOMENT_TOLERANCE, abs=MOMENT_TOLERANCE)


def reference_bernoulli_entropy(logit: float) -> float:
    """-q log q - (1 - q) log(1 - q), q = sigmoid(logit), in 60 digits."""
    with localcontext() as context:
        context.prec = REFERENCE_DIGITS
        q = 1 / (1 + (-Decimal(logit)).exp())
        return float(-q * q.ln() - (1 - q) * (1 - q).ln())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binary_limit_moments_are_bernoulli(dtype):
    logits = torch.tensor([-30.0, -1.0, 0.0, 2.0, 30.0], dtype=dtype)
    limit, bernoulli = BinaryLimit(logits=logits), torch.distributions.Bernoulli(logits=logits)
    torch.testing.assert_close(limit.mean, bernoulli.mean)
    torch.testing.assert_close(limit.variance, bernoulli.variance)
    # relative accuracy even when saturated (torch's Bernoulli.entropy is off by 0.1 % at |logits| 30)
    expected = torch.tensor([reference_bernoulli_entropy(float(logit)) for logit in logits], dtype=torch.float64)
    torch.testing.assert_close(limit.entropy().double(), expected, rtol=ULPS * torch.finfo(dtype).eps, atol=0)


def reference_moments(beta: float) -> tuple[float, float]:
    r"""Mean :math:`1/\beta - 1/(e^\beta - 1)` and variance :math:`1/\beta^2 - e^\beta/(e^\beta - 1)^2` in 60 digits."""
    with localcontext() as context:
        context.prec = REFERENCE_DIGITS
        b = Decimal(beta)
        growth = b.exp()
        return float(1 / b - 1 / (growth - 1)), float(1 / b**2 - growth / (growth - 1) ** 2)


# Both sides of the series/closed-form switch, tiny and huge beta.
REFERENCE_BETAS = [1e-8, 0.01, 0.5, SERIES_MAX_BETA * (1 - 1e-6), SERIES_MAX_BETA, SERIES_MAX_BETA * (1 + 1e-6), 3.0, 30.0, 80.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("beta", REFERENCE_BETAS)
def test_truncated_exponential_moments_to_a_few_ulps(beta, dtype):
    mean, variance = reference_moments(beta)
    beta_t = torch.tensor(beta, dtype=dtype)
    eps = torch.finfo(dtype).eps
    assert float(decaying_exponential_mean(beta_t)) == pytest.approx(mean, rel=ULPS * eps)
    assert float(truncated_exponential_variance(beta_t)) == pytest.approx(variance, rel=ULPS * eps)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_truncated_exponential_moments_have_finite_gradients(dtype):
    # both branches of torch.where are evaluated: neither may overflow into a NaN gradient
    beta = torch.tensor([1e-30, 1e-4, SERIES_MAX_BETA, 2.0, 100.0, 1000.0, 1e30], dtype=dtype, requires_grad=True)
    (decaying_exponential_mean(beta) + truncated_exponential_variance(beta)).sum().backward()
    assert bool(torch.isfinite(beta.grad).all()), beta.grad
    # the variance is minus the derivative of the mean
    beta = torch.tensor([0.2, 0.9, 1.1, 4.0], dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(decaying_exponential_mean(beta).sum(), beta)
    torch.testing.assert_close(-gradient, truncated_exponential_variance(beta.detach()), rtol=1e-12, atol=0)


def test_series_coefficients_start_as_the_uniform():
    # beta -> 0: the truncated exponential is uniform on [0, 1], mean 1/2 and variance 1/12
    tiny = torch.tensor(1e-12, dtype=torch.float64)
    assert float(decaying_exponential_mean(tiny)) == pytest.approx(0.5, rel=1e-12)
    assert float(truncated_exponential_variance(tiny)) == pytest.approx(1 / 12, rel=1e-12)
    assert math.isclose(float(truncated_exponential_variance(torch.tensor(1e3, dtype=torch.float64))), 1e-6, rel_tol=1e-12)
    assert np.isfinite(float(truncated_exponential_variance(torch.tensor(1e30))))

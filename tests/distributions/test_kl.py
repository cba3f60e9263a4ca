"""Registered KL divergences (issue 18 item 3) against torch's, exact sums, quadrature and 60-digit arithmetic."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pyro.distributions as dist
import pytest
import torch
from scipy import integrate
from torch.distributions import kl_divergence

from pyro_dgm.distributions import (
    BinaryLimit,
    IndependentBernoulli,
    SpikeAndExponential,
    SpikeAndSlab,
    bernoulli_kl,
)

REFERENCE_DIGITS = 60
ULPS = 64
"""Allowed relative error of bernoulli_kl against the 60-digit value, in units of epsilon."""

CLOSE_LOGITS_ULPS = 1
"""Allowed absolute error of bernoulli_kl between close logits, in units of epsilon."""

QUADRATURE_TOLERANCE = 1e-12


def test_independent_bernoulli_matches_bernoulli_to_event_both_ways():
    generator = torch.Generator().manual_seed(0)
    p_logits, q_logits = 4 * torch.randn(2, 3, 5, generator=generator, dtype=torch.float64)
    reference = kl_divergence(dist.Bernoulli(logits=p_logits).to_event(1), dist.Bernoulli(logits=q_logits).to_event(1))
    p, q = IndependentBernoulli(p_logits), IndependentBernoulli(q_logits)
    for divergence in (
        kl_divergence(p, q),
        kl_divergence(p, dist.Bernoulli(logits=q_logits).to_event(1)),
        kl_divergence(dist.Bernoulli(logits=p_logits).to_event(1), q),
    ):
        assert divergence.shape == (3,)
        torch.testing.assert_close(divergence, reference, rtol=1e-12, atol=1e-14)


def test_independent_bernoulli_refuses_other_independents():
    p = IndependentBernoulli(torch.zeros(3))
    with pytest.raises(NotImplementedError, match="to_event"):
        kl_divergence(p, dist.Bernoulli(logits=torch.zeros(1, 3)).to_event(2))
    with pytest.raises(NotImplementedError, match="Normal"):
        kl_divergence(p, dist.Normal(torch.zeros(3), 1.0).to_event(1))


def reference_bernoulli_kl(a: float, b: float) -> float:
    with localcontext() as context:
        context.prec = REFERENCE_DIGITS
        p, q = 1 / (1 + (-Decimal(a)).exp()), 1 / (1 + (-Decimal(b)).exp())
        return float(p * (p / q).ln() + (1 - p) * ((1 - p) / (1 - q)).ln())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_kl_keeps_its_relative_accuracy_when_saturated(dtype):
    pairs = [(30.0, 29.0), (-30.0, -29.0), (30.0, -30.0), (0.3, -2.0), (-25.0, 3.0)]
    a = torch.tensor([pair[0] for pair in pairs], dtype=dtype)
    b = torch.tensor([pair[1] for pair in pairs], dtype=dtype)
    expected = torch.tensor([reference_bernoulli_kl(x, y) for x, y in pairs], dtype=torch.float64)
    torch.testing.assert_close(bernoulli_kl(a, b).double(), expected, rtol=ULPS * torch.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_kl_of_close_logits_is_accurate_to_a_few_eps(dtype):
    # KL ~ q (1 - q) (a - b)^2 / 2 is second order while its terms are first order: they cancel,
    # so only the absolute error is small (as in torch's Bernoulli KL); measured below 0.02 eps
    a = torch.tensor([5.0, -2.0, 0.0], dtype=dtype)
    b = a + torch.tensor([1e-3, -1e-2, 1e-4], dtype=dtype)
    expected = torch.tensor([reference_bernoulli_kl(float(x), float(y)) for x, y in zip(a, b)], dtype=torch.float64)
    error = (bernoulli_kl(a, b).double() - expected).abs()
    assert bool((error <= CLOSE_LOGITS_ULPS * torch.finfo(dtype).eps).all()), error


def test_binary_limit_is_the_bernoulli_kl():
    p, q = torch.tensor([-3.0, 0.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 0.5, -2.0], dtype=torch.float64)
    torch.testing.assert_close(
        kl_divergence(BinaryLimit(logits=p), BinaryLimit(logits=q)),
        kl_divergence(dist.Bernoulli(logits=p), dist.Bernoulli(logits=q)),
        rtol=1e-12,
        atol=0,
    )


def quadrature_kl(p, q) -> float:
    r"""KL over the base measure :math:`\delta_0 + \lambda`: the atom at 0, plus the slab integral on (0, 1]."""
    zero = torch.zeros((), dtype=torch.float64)
    atom = float(p.log_prob(zero).exp() * (p.log_prob(zero) - q.log_prob(zero)))

    def integrand(zeta: float) -> float:
        value = torch.tensor(zeta, dtype=torch.float64)
        log_p = p.log_prob(value)
        return float(log_p.exp() * (log_p - q.log_prob(value)))

    slab, _ = integrate.quad(integrand, 0.0, 1.0, epsabs=QUADRATURE_TOLERANCE, epsrel=QUADRATURE_TOLERANCE, limit=500)
    return atom + slab


@pytest.mark.parametrize(
    "make_p, make_q",
    [
        (lambda: SpikeAndSlab(logits=torch.tensor(0.4, dtype=torch.float64)),
         lambda: SpikeAndSlab(logits=torch.tensor(-1.5, dtype=torch.float64))),
        (lambda: SpikeAndExponential(torch.tensor(3.0, dtype=torch.float64), logits=torch.tensor(0.4, dtype=torch.float64)),
         lambda: SpikeAndExponential(torch.tensor(3.0, dtype=torch.float64), logits=torch.tensor(2.0, dtype=torch.float64))),
        (lambda: SpikeAndExponential(torch.tensor(0.5, dtype=torch.float64), logits=torch.tensor(-1.0, dtype=torch.float64)),
         lambda: SpikeAndExponential(torch.tensor(12.0, dtype=torch.float64), logits=torch.tensor(1.0, dtype=torch.float64))),
        (lambda: SpikeAndExponential(torch.tensor(40.0, dtype=torch.float64), logits=torch.tensor(3.0, dtype=torch.float64)),
         lambda: SpikeAndExponential(torch.tensor(2.0, dtype=torch.float64), logits=torch.tensor(0.0, dtype=torch.float64))),
    ],
    ids=["spike-and-slab", "spike-and-exponential, equal beta", "beta 0.5 vs 12", "beta 40 vs 2"],
)
def test_spike_smoother_kl_equals_quadrature(make_p, make_q):
    p, q = make_p(), make_q()
    assert float(kl_divergence(p, q)) == pytest.approx(quadrature_kl(p, q), rel=1e-9, abs=1e-12)

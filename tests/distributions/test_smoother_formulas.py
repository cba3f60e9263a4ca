"""Each smoother against its paper's formulas, written naively in NumPy float64.

The library evaluates rearranged, overflow-free forms; these tests check that the
rearrangements equal the published expressions (Rolfe 2017 Sec. 2.1 and App. D,
DVAE++ Sec. 3 and Eq. 3) where the naive forms are themselves accurate (moderate beta, q).
The overlapping logistic, whose inverse CDF is our own derivation, is checked against a
bracketing root finder.
"""

import math

import numpy as np
import pytest
import torch
from scipy import optimize

from pyro_dgm.distributions.binary_limit import BinaryLimit
from pyro_dgm.distributions.mixture_of_ramps import MixtureOfRamps
from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.overlapping_logistic import OverlappingLogistic
from pyro_dgm.distributions.spike_and_exponential import SpikeAndExponential
from pyro_dgm.distributions.spike_and_slab import SpikeAndSlab

# Naive and stable forms agree to a few hundred ulps at these moderate parameters: the naive
# forms lose up to ~e^beta / beta^2 (beta <= 6) relative accuracy to cancellation.
NAIVE_FORM_RTOL = 1e-10
NAIVE_FORM_ATOL = 1e-12
# brentq is asked for the root to 1e-14; the closed form then has to match to that level.
ROOT_FINDER_XTOL = 1e-14
ROOT_FINDER_MATCH = 1e-12

BETAS = [0.7, 2.5, 6.0]
PROBS = [0.15, 0.5, 0.8]
ZETA = np.linspace(0.01, 0.99, 41)
RHO = np.linspace(0.0, 1.0, 51)


def t64(array):
    return torch.as_tensor(np.asarray(array, dtype=np.float64))


def assert_close(actual: torch.Tensor, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=NAIVE_FORM_RTOL, atol=NAIVE_FORM_ATOL)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("q", PROBS)
def test_overlapping_exponential_matches_dvaepp_section_3_and_eq_3(beta, q):
    smoother = OverlappingExponential(t64(beta), probs=t64(q))
    z_beta = (1 - math.exp(-beta)) / beta
    r0, r1 = np.exp(-beta * ZETA) / z_beta, np.exp(beta * (ZETA - 1)) / z_beta
    assert_close(smoother.conditional(0.0).log_prob(t64(ZETA)).exp(), r0)
    assert_close(smoother.conditional(1.0).log_prob(t64(ZETA)).exp(), r1)
    assert_close(smoother.log_prob(t64(ZETA)).exp(), (1 - q) * r0 + q * r1)
    # DVAE++ Eq. 3 verbatim.
    b = (RHO + math.exp(-beta) * (q - RHO)) / (1 - q) - 1
    c = -(q * math.exp(-beta)) / (1 - q)
    eq3 = -np.log((-b + np.sqrt(b**2 - 4 * c)) / 2) / beta
    assert_close(smoother.icdf(t64(RHO)), eq3)
    # DVAE++ Sec. 5 with log r(zeta|1) - log r(zeta|0) = beta (2 zeta - 1).
    logit = math.log(q / (1 - q))
    assert_close(smoother.posterior_probs(t64(ZETA)), 1 / (1 + np.exp(-(logit + beta * (2 * ZETA - 1)))))


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("q", PROBS)
def test_spike_and_exponential_matches_rolfe_eq_9(beta, q):
    smoother = SpikeAndExponential(t64(beta), probs=t64(q))
    slab = beta * np.exp(beta * ZETA) / (math.exp(beta) - 1)  # Rolfe Sec. 2.1
    assert_close(smoother.conditional(1.0).log_prob(t64(ZETA)).exp(), slab)
    assert_close(smoother.cdf(t64(ZETA)), q * ((np.exp(beta * ZETA) - 1) / (math.exp(beta) - 1) - 1) + 1)
    on_slab = RHO >= 1 - q
    slab_rho = np.where(on_slab, RHO, 1.0)
    eq9 = np.where(on_slab, np.log((slab_rho + q - 1) / q * (math.exp(beta) - 1) + 1) / beta, 0.0)
    assert_close(smoother.icdf(t64(RHO)), eq9)


@pytest.mark.parametrize("q", PROBS)
def test_spike_and_slab_matches_rolfe_appendix_d2(q):
    smoother = SpikeAndSlab(probs=t64(q))
    assert_close(smoother.cdf(t64(ZETA)), q * (ZETA - 1) + 1)
    assert_close(smoother.icdf(t64(RHO)), np.where(RHO >= 1 - q, (RHO - 1) / q + 1, 0.0))
    assert_close(smoother.log_prob(t64(ZETA)).exp(), np.full_like(ZETA, q))
    assert float(smoother.log_prob(t64(0.0)).exp()) == pytest.approx(1 - q, rel=1e-15)


@pytest.mark.parametrize("q", [0.15, 0.4, 0.8])
def test_mixture_of_ramps_matches_rolfe_eqs_19_and_20(q):
    smoother = MixtureOfRamps(probs=t64(q))
    assert_close(smoother.conditional(0.0).log_prob(t64(ZETA)).exp(), 2 * (1 - ZETA))
    assert_close(smoother.conditional(1.0).log_prob(t64(ZETA)).exp(), 2 * ZETA)
    assert_close(smoother.cdf(t64(ZETA)), 2 * q * (ZETA**2 - ZETA) + 2 * ZETA - ZETA**2)  # Eq. 19
    eq20 = (q - 1 + np.sqrt((q - 1) ** 2 + (2 * q - 1) * RHO)) / (2 * q - 1)
    assert_close(smoother.icdf(t64(RHO)), eq20)
    assert_close(smoother.posterior_probs(t64(ZETA)), q * ZETA / (q * ZETA + (1 - q) * (1 - ZETA)))


def test_mixture_of_ramps_at_one_half_is_uniform():
    """Eq. 20 is 0/0 at q = 1/2, where Rolfe gives F^{-1}(rho) = rho; the conjugate form needs no special case."""
    assert torch.equal(MixtureOfRamps(probs=t64(0.5)).icdf(t64(RHO)), t64(RHO))


@pytest.mark.parametrize("beta", [0.5, 3.0, 20.0])
@pytest.mark.parametrize("q", PROBS)
def test_overlapping_logistic_icdf_is_the_root_of_its_cdf(beta, q):
    smoother = OverlappingLogistic(t64(beta), probs=t64(q))

    def cdf(zeta: float) -> float:
        return (1 - q) / (1 + math.exp(-beta * zeta)) + q / (1 + math.exp(-beta * (zeta - 1)))

    rho = RHO[1:-1]
    bracket = 60.0 / beta + 1.0
    roots = [optimize.brentq(lambda x, r=r: cdf(x) - r, -bracket, bracket, xtol=ROOT_FINDER_XTOL) for r in rho]
    np.testing.assert_allclose(smoother.icdf(t64(rho)).numpy(), roots, rtol=0, atol=ROOT_FINDER_MATCH)
    density = (1 - q) * beta / (4 * np.cosh(beta * ZETA / 2) ** 2) + q * beta / (4 * np.cosh(beta * (ZETA - 1) / 2) ** 2)
    assert_close(smoother.log_prob(t64(ZETA)).exp(), density)


# Every smoother tends to Bernoulli(q) as beta -> infinity (Rolfe footnote 5, DVAE++ Sec. 3).
# For the exponential smoothers, |rho - (1 - q)| >= delta implies |F^{-1}(rho) - z| <= log(1/delta) / beta
# (bound the marginal CDF below by the weighted CDF of the near component).
LIMIT_BETA = 400.0
LIMIT_DELTA = 0.01


@pytest.mark.parametrize("cls", [OverlappingExponential, SpikeAndExponential])
def test_large_beta_tends_to_binary_limit(cls):
    logits = t64([-2.0, 0.0, 1.5]).reshape(-1, 1)
    rho = t64(np.linspace(0, 1, 401))
    binary = BinaryLimit(logits=logits)
    far_from_jump = (rho - torch.sigmoid(-logits)).abs() >= LIMIT_DELTA
    gap = (cls(t64(LIMIT_BETA), logits=logits).icdf(rho) - binary.icdf(rho)).abs()
    assert gap[far_from_jump].max() <= math.log(1 / LIMIT_DELTA) / LIMIT_BETA


# BinaryLimit scores the K = 5,000 evaluation's every binary site through closed forms of
# its mixture; they must equal SmoothingTransformation's generic formulas (logsumexp of
# log q(z) + log delta(zeta - z), and the difference of the point masses' log-densities)
# bit for bit: the full-protocol numbers must not move with the shortcut. Logits span the
# range where logsigmoid underflows to 0 in float32; zeta includes values off the support
# (the generic forms give -inf and NaN there).
BINARY_LIMIT_LOGITS = [-200.0, -30.0, -3.0, 0.0, 2.0, 40.0, 200.0]
BINARY_LIMIT_ZETA = [0.0, 1.0, 0.5, -1.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binary_limit_closed_forms_equal_the_generic_mixture(dtype):
    from pyro_dgm.distributions.smoothing import SmoothingTransformation

    logits = torch.tensor(BINARY_LIMIT_LOGITS, dtype=dtype).reshape(-1, 1)
    zeta = torch.tensor(BINARY_LIMIT_ZETA, dtype=dtype)
    binary = BinaryLimit(logits=logits, validate_args=False)
    for closed, generic in [
        (binary._log_marginal_density(zeta), SmoothingTransformation._log_marginal_density(binary, zeta)),
        (binary._log_density_ratio(zeta), SmoothingTransformation._log_density_ratio(binary, zeta)),
    ]:
        assert closed.dtype == dtype and closed.shape == generic.shape
        assert torch.equal(closed.isnan(), generic.isnan())
        assert torch.equal(closed.nan_to_num(nan=0.0), generic.nan_to_num(nan=0.0))
    assert binary.log_prob(torch.tensor(0.0, dtype=dtype))[2].item() == pytest.approx(math.log(1 - 1 / (1 + math.exp(3))))

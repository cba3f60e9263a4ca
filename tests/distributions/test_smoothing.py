"""Properties shared by every smoothing transformation q(zeta) = sum_z q(z) r(zeta|z).

Exactness checks (inverse CDF round trips, normalisation, Bayes' rule, mixture identities)
use floating-point tolerances derived from first-order error analysis; statistical checks
(KS, pathwise gradients) use a fixed seed and tolerances from the estimator's standard error.
"""

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from scipy import integrate, stats

from pyro_dgm.distributions.binary_limit import BinaryLimit
from pyro_dgm.distributions.mixture_of_ramps import MixtureOfRamps
from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.overlapping_logistic import OverlappingLogistic
from pyro_dgm.distributions.smoothing import SmoothingTransformation
from pyro_dgm.distributions.spike_and_exponential import SpikeAndExponential
from pyro_dgm.distributions.spike_and_slab import SpikeAndSlab

DTYPES = [torch.float32, torch.float64]

# Round trips, in units of machine epsilon. First-order analysis: a computed F(zeta) carries an
# absolute error of a few eps, which icdf turns into eps / q(zeta) in zeta; a computed zeta
# carries a relative error of a few eps, which cdf turns into eps * |zeta| q(zeta) in rho. The
# ~10 rounded operations per evaluation (amplified by exp/log of arguments up to beta = 100)
# bound the constant; the measured worst case over the stress grid is 56 eps.
ROUND_TRIP_EPS_MULTIPLE = 128.0
# Deterministic quadrature: scipy.integrate.quad is asked for 1e-12 absolute accuracy;
# the remaining float64 rounding of ~1e3 summands of O(1) is far below 1e-10.
QUADRATURE_TOLERANCE = 1e-10
QUAD_EPSABS = 1e-12
# Composite Gauss-Legendre rule (differentiable, in torch) for the gradient targets:
# 400 panels of 16 nodes integrate e^{-beta zeta} with beta <= 10 to machine precision.
GAUSS_LEGENDRE_PANELS = 400
GAUSS_LEGENDRE_ORDER = 16
# Logistic tails beyond 40 scale lengths carry mass < e^{-40} ~ 4e-18, below float64 resolution.
LOGISTIC_TAIL_SCALES = 40.0
# Statistical tests: 4 standard errors (two-sided false-alarm rate 6e-5 for a correct sampler);
# KS at level 1e-3, whose asymptotic critical value is 1.95 / sqrt(n).
NUM_STANDARD_ERRORS = 4.0
KS_NUM_SAMPLES = 100_000
KS_MIN_P_VALUE = 1e-3
KS_CRITICAL_CONSTANT = 1.95
GRADIENT_NUM_SAMPLES = 100_000
# A gradient test only has power if 4 SE is a small fraction of the quantity it checks.
MAX_RELATIVE_RESOLUTION = 0.25


@dataclass(frozen=True)
class Smoother:
    name: str
    build: Callable[..., SmoothingTransformation]
    tempered: bool
    spike: bool
    reparameterised: bool = True

    def __call__(self, beta, logits=None, probs=None, **kwargs) -> SmoothingTransformation:
        if self.tempered:
            return self.build(beta, logits=logits, probs=probs, **kwargs)
        return self.build(logits=logits, probs=probs, **kwargs)

    def support_bounds(self, beta: float):
        if self.name == "overlapping_logistic":
            tail = LOGISTIC_TAIL_SCALES / beta
            return -tail, 1.0 + tail
        return 0.0, 1.0


SMOOTHERS = [
    Smoother("overlapping_exponential", OverlappingExponential, tempered=True, spike=False),
    Smoother("overlapping_logistic", OverlappingLogistic, tempered=True, spike=False),
    Smoother("spike_and_exponential", SpikeAndExponential, tempered=True, spike=True),
    Smoother("spike_and_slab", SpikeAndSlab, tempered=False, spike=True),
    Smoother("mixture_of_ramps", MixtureOfRamps, tempered=False, spike=False),
]
BINARY_LIMIT = Smoother("binary_limit", BinaryLimit, tempered=False, spike=False, reparameterised=False)
ALL = SMOOTHERS + [BINARY_LIMIT]


def by_name(smoothers):
    return pytest.mark.parametrize("smoother", smoothers, ids=[s.name for s in smoothers])


def tensor(value, dtype=torch.float64):
    return torch.as_tensor(value, dtype=dtype)


def stress_grid(dtype):
    """Logits in [-30, 30] (shape (61, 1, 1)) and beta in {0.5, 1, 10, 100} (shape (1, 4, 1))."""
    logits = torch.linspace(-30, 30, 61, dtype=dtype).reshape(-1, 1, 1)
    beta = tensor([0.5, 1.0, 10.0, 100.0], dtype).reshape(1, -1, 1)
    return logits, beta


def spike_mass(q: SmoothingTransformation) -> torch.Tensor:
    """Mass of the atom at zeta = 0 (log_prob is w.r.t. delta_0 + Lebesgue there)."""
    return q.log_prob(torch.zeros_like(q.logits)).exp()


def gauss_legendre(lower: float, upper: float, dtype=torch.float64):
    """Nodes and weights of a composite Gauss-Legendre rule on [lower, upper]."""
    nodes, weights = np.polynomial.legendre.leggauss(GAUSS_LEGENDRE_ORDER)
    edges = np.linspace(lower, upper, GAUSS_LEGENDRE_PANELS + 1)
    half = 0.5 * np.diff(edges)[:, None]
    centre = 0.5 * (edges[1:] + edges[:-1])[:, None]
    return tensor((centre + half * nodes).ravel(), dtype), tensor((half * weights).ravel(), dtype)


def expectation_by_quadrature(smoother: Smoother, q: SmoothingTransformation, f, beta: float) -> torch.Tensor:
    """E_q[f(zeta)] = mass(0) f(0) + integral of f q over the continuous part (differentiable)."""
    nodes, weights = gauss_legendre(*smoother.support_bounds(beta))
    continuous = (weights * f(nodes) * q.log_prob(nodes).exp()).sum()
    if smoother.spike:
        continuous = continuous + spike_mass(q) * f(torch.zeros(()))
    return continuous


def quad_integral(function, lower: float, upper: float) -> float:
    breakpoints = [point for point in (0.0, 1.0) if lower < point < upper] or None
    value, _ = integrate.quad(function, lower, upper, epsabs=QUAD_EPSABS, epsrel=0.0, limit=500, points=breakpoints)
    return value


def probability_integral_transform(q: SmoothingTransformation, zeta: torch.Tensor) -> np.ndarray:
    """u = F(zeta), randomised over the jump at an atom, so u ~ U[0, 1] exactly when zeta ~ q.

    For a continuous F this is the statistic of ``kstest(zeta, F)``; at an atom a with
    F(a-) < F(a) it draws u ~ U[F(a-), F(a)] (the randomised PIT), since a KS test against a
    CDF with a jump would otherwise reject a correct sampler.
    """
    cdf = q.cdf(zeta)
    if isinstance(q, BinaryLimit):
        atom = torch.ones_like(zeta, dtype=torch.bool)
    elif isinstance(q, (SpikeAndExponential, SpikeAndSlab)):
        atom = zeta == 0
    else:
        atom = torch.zeros_like(zeta, dtype=torch.bool)
    jump = q.log_prob(zeta).exp()  # at an atom, log_prob is the log of its mass
    u = torch.where(atom, cdf - torch.rand_like(cdf) * jump, cdf)
    return u.detach().cpu().numpy()


def assert_uniform(u: np.ndarray) -> None:
    result = stats.kstest(u, "uniform")
    critical = KS_CRITICAL_CONSTANT / math.sqrt(len(u))
    assert result.pvalue > KS_MIN_P_VALUE, result
    assert result.statistic < critical, (result.statistic, critical)


# --------------------------------------------------------------------------- round trips
@by_name(SMOOTHERS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_cdf_of_icdf_is_identity(smoother, dtype):
    """|F(F^{-1}(rho)) - rho| <= C eps (1 + |zeta| q(zeta)) on the range of F (rho >= F(0) for spikes)."""
    eps = torch.finfo(dtype).eps
    logits, beta = stress_grid(dtype)
    rho = torch.linspace(0, 1, 1001, dtype=dtype)
    q = smoother(beta, logits=logits)
    zeta = q.icdf(rho)
    density = q.log_prob(zeta).exp()
    on_range = torch.ones_like(zeta, dtype=torch.bool)
    if smoother.spike:
        on_range = rho >= q.cdf(torch.zeros((), dtype=dtype))
        density = torch.where(zeta == 0, torch.zeros_like(density), density)
        assert torch.all(zeta[~on_range] == 0)
    if smoother.name == "overlapping_logistic":  # rho in {0, 1} is moved into the open interval
        on_range = on_range & (rho > 0) & (rho < 1)
    error = (q.cdf(zeta) - rho).abs() / (1 + zeta.abs() * density)
    assert error[on_range].max() <= ROUND_TRIP_EPS_MULTIPLE * eps


@by_name(SMOOTHERS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_icdf_of_cdf_is_identity(smoother, dtype):
    """|F^{-1}(F(zeta)) - zeta| <= C eps (|zeta| + 1 / q(zeta)); the atom zeta = 0 maps back exactly."""
    eps = torch.finfo(dtype).eps
    logits, beta = stress_grid(dtype)
    lower, upper = (-2.0, 3.0) if smoother.name == "overlapping_logistic" else (0.0, 1.0)
    zeta = torch.linspace(lower, upper, 1001, dtype=dtype)
    q = smoother(beta, logits=logits)
    back = q.icdf(q.cdf(zeta))
    if smoother.spike:
        assert torch.all(back[..., 0] == 0)
        zeta, back = zeta[1:], back[..., 1:]
    error = (back - zeta).abs() / (zeta.abs() + q.log_prob(zeta).exp().reciprocal())
    assert error.max() <= ROUND_TRIP_EPS_MULTIPLE * eps


def test_binary_limit_icdf_is_generalised_inverse():
    q = BinaryLimit(logits=tensor([-2.0, 0.0, 3.0]))
    q0 = torch.sigmoid(-q.logits)
    assert torch.equal(q.icdf(q0), torch.zeros(3, dtype=torch.float64))
    assert torch.equal(q.icdf(torch.nextafter(q0, torch.ones(3, dtype=torch.float64))), torch.ones(3, dtype=torch.float64))
    assert torch.equal(q.icdf(q.cdf(torch.zeros(3, dtype=torch.float64))), torch.zeros(3, dtype=torch.float64))
    eps = torch.finfo(torch.float64).eps  # (1 - q) + q rounds to within one ulp of 1
    assert torch.allclose(q.cdf(torch.ones(3, dtype=torch.float64)), torch.ones(3, dtype=torch.float64), rtol=0, atol=eps)


# --------------------------------------------------------------------------- normalisation
@by_name(SMOOTHERS)
@pytest.mark.parametrize("beta", [0.5, 10.0, 100.0])
@pytest.mark.parametrize("logit", [-3.0, 0.7])
def test_density_integrates_to_one(smoother, beta, logit):
    q = smoother(tensor(beta), logits=tensor(logit))
    lower, upper = smoother.support_bounds(beta)
    total = quad_integral(lambda x: float(q.log_prob(tensor(x)).exp()), lower, upper)
    if smoother.spike:
        total += float(spike_mass(q))
    assert abs(total - 1.0) < QUADRATURE_TOLERANCE


@by_name(SMOOTHERS)
@pytest.mark.parametrize("beta", [0.5, 10.0])
def test_cdf_is_integral_of_density(smoother, beta):
    q = smoother(tensor(beta), logits=tensor(-0.4))
    lower, _ = smoother.support_bounds(beta)
    atom = float(spike_mass(q)) if smoother.spike else 0.0
    for point in [0.1, 0.5, 0.93]:
        integral = atom + quad_integral(lambda x: float(q.log_prob(tensor(x)).exp()), lower, point)
        assert abs(integral - float(q.cdf(tensor(point)))) < QUADRATURE_TOLERANCE


# --------------------------------------------------------------------------- sampling
@by_name(ALL)
@pytest.mark.parametrize("beta, logit", [(2.0, 0.5), (10.0, -1.5)])
def test_samples_follow_cdf(smoother, beta, logit):
    q = smoother(tensor(beta), logits=tensor(logit))
    zeta = q.sample((KS_NUM_SAMPLES,))
    assert_uniform(probability_integral_transform(q, zeta))


@by_name(SMOOTHERS)
@pytest.mark.parametrize("z", [0.0, 1.0])
def test_conditional_samples_follow_conditional_cdf(smoother, z):
    conditional = smoother(tensor(3.0), logits=tensor(0.0)).conditional(tensor(z))
    zeta = conditional.rsample((KS_NUM_SAMPLES,))
    if smoother.spike and z == 0.0:
        assert torch.all(zeta == 0)
        return
    result = stats.kstest(zeta.numpy(), lambda x: conditional.cdf(tensor(x)).numpy())
    assert result.pvalue > KS_MIN_P_VALUE and result.statistic < KS_CRITICAL_CONSTANT / math.sqrt(KS_NUM_SAMPLES)


def _sin_plus_square(zeta: torch.Tensor) -> torch.Tensor:
    return torch.sin(3 * zeta) + zeta**2


@by_name(SMOOTHERS)
@pytest.mark.parametrize("beta, logit", [(1.0, 0.3), (4.0, -0.8)])
def test_pathwise_gradient_matches_quadrature(smoother, beta, logit):
    """d/d(logits, beta) E_q[f(zeta)] by rsample equals the derivative of the quadrature integral."""
    logits_leaf = tensor(logit).requires_grad_()
    beta_leaf = tensor(beta).requires_grad_()
    exact_value = expectation_by_quadrature(smoother, smoother(beta_leaf, logits=logits_leaf), _sin_plus_square, beta)
    parameters = [logits_leaf, beta_leaf] if smoother.tempered else [logits_leaf]
    exact = torch.autograd.grad(exact_value, parameters)
    # Sanity of the quadrature itself: it integrates the density to 1.
    normaliser = expectation_by_quadrature(smoother, smoother(tensor(beta), logits=tensor(logit)), torch.ones_like, beta)
    assert abs(float(normaliser) - 1) < QUADRATURE_TOLERANCE

    # One parameter copy per sample gives the per-sample pathwise gradients, hence their SE.
    logits_copies = torch.full((GRADIENT_NUM_SAMPLES,), logit, dtype=torch.float64, requires_grad=True)
    beta_copies = torch.full((GRADIENT_NUM_SAMPLES,), beta, dtype=torch.float64, requires_grad=True)
    zeta = smoother(beta_copies, logits=logits_copies).rsample()
    copies = [logits_copies, beta_copies] if smoother.tempered else [logits_copies]
    per_sample = torch.autograd.grad(_sin_plus_square(zeta).sum(), copies)
    for estimate, target in zip(per_sample, exact):
        mean, standard_error = float(estimate.mean()), float(estimate.std() / math.sqrt(GRADIENT_NUM_SAMPLES))
        assert standard_error > 0
        assert NUM_STANDARD_ERRORS * standard_error < MAX_RELATIVE_RESOLUTION * abs(float(target))
        assert abs(mean - float(target)) < NUM_STANDARD_ERRORS * standard_error, (mean, float(target), standard_error)


# --------------------------------------------------------------------------- posterior and conditionals
def support_grid(smoother: Smoother, num_points: int) -> torch.Tensor:
    """Points of the support (including its end points where it has them), shape (num_points, 1, 1)."""
    if smoother is BINARY_LIMIT:
        return tensor([0.0, 1.0]).reshape(2, 1, 1)
    lower, upper = (-3.0, 4.0) if smoother.name == "overlapping_logistic" else (0.0, 1.0)
    return torch.linspace(lower, upper, num_points, dtype=torch.float64).reshape(-1, 1, 1)


@by_name(ALL)
def test_posterior_is_bayes_rule_over_conditionals(smoother):
    beta, logits = tensor([[1.5], [9.0]]), tensor([-2.0, 0.0, 1.3])
    q = smoother(beta, logits=logits)
    zeta = support_grid(smoother, 41)
    joint_one = q.probs * q.conditional(1.0).log_prob(zeta).exp()
    joint_zero = (1 - q.probs) * q.conditional(0.0).log_prob(zeta).exp()
    bayes = joint_one / (joint_one + joint_zero)
    assert torch.allclose(q.posterior_probs(zeta), bayes, rtol=1e-12, atol=1e-15)
    assert torch.allclose(torch.sigmoid(q.posterior_logits(zeta)), bayes, rtol=1e-12, atol=1e-15)
    if smoother.spike or smoother is BINARY_LIMIT:  # zeta = 0 <=> z = 0; zeta > 0 <=> z = 1
        assert torch.equal(q.posterior_probs(zeta), (zeta > 0).to(zeta.dtype).expand_as(bayes))


@by_name(ALL)
def test_mixture_of_conditionals_is_the_marginal(smoother):
    q = smoother(tensor([[0.7], [12.0]]), logits=tensor([-1.0, 2.0]))
    zeta = support_grid(smoother, 57)
    weights = (1 - q.probs, q.probs)
    conditionals = (q.conditional(0.0), q.conditional(1.0))
    density = sum(w * r.log_prob(zeta).exp() for w, r in zip(weights, conditionals))
    cdf = sum(w * r.cdf(zeta) for w, r in zip(weights, conditionals))
    assert torch.allclose(density, q.log_prob(zeta).exp(), rtol=1e-12, atol=1e-15)
    assert torch.allclose(cdf, q.cdf(zeta), rtol=1e-12, atol=1e-15)
    ratio = conditionals[1].log_prob(zeta) - conditionals[0].log_prob(zeta)
    assert torch.equal(q.log_density_ratio(zeta), ratio)


@by_name(SMOOTHERS)
@pytest.mark.parametrize("z", [0.0, 1.0])
@pytest.mark.parametrize("beta", [0.5, 10.0, 100.0])
def test_conditional_integrates_to_one(smoother, z, beta):
    conditional = smoother(tensor(beta), logits=tensor(0.0)).conditional(tensor(z))
    lower, upper = smoother.support_bounds(beta)
    total = quad_integral(lambda x: float(conditional.log_prob(tensor(x)).exp()), lower, upper)
    if smoother.spike:
        total += float(conditional.log_prob(tensor(0.0)).exp())  # the atom: 1 for z = 0, 0 for z = 1
    assert abs(total - 1.0) < QUADRATURE_TOLERANCE


@by_name(SMOOTHERS)
def test_conditional_icdf_inverts_conditional_cdf(smoother):
    rho = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    for z in (0.0, 1.0):
        conditional = smoother(tensor([0.5, 10.0]).reshape(-1, 1), logits=tensor(0.0)).conditional(tensor(z))
        zeta = conditional.icdf(rho)
        if smoother.spike and z == 0.0:
            assert torch.all(zeta == 0)
            continue
        assert torch.allclose(conditional.cdf(zeta), rho, rtol=0, atol=ROUND_TRIP_EPS_MULTIPLE * torch.finfo(torch.float64).eps)


# --------------------------------------------------------------------------- numerics
@by_name(ALL)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_stress_grid_values_and_gradients_are_finite(smoother, dtype):
    logits, beta = (parameter.requires_grad_() for parameter in stress_grid(dtype))
    rho = torch.cat([torch.linspace(0, 1, 101, dtype=dtype), tensor([1e-7, 1 - 1e-7, 1e-30], dtype)])
    q = smoother(beta, logits=logits)
    zeta = q.icdf(rho)
    parameters = [logits, beta] if smoother.tempered else [logits]
    outputs = {"icdf": zeta, "log_prob": q.log_prob(zeta), "cdf": q.cdf(zeta), "posterior_probs": q.posterior_probs(zeta)}
    if smoother.reparameterised:
        outputs["rsample"] = q.rsample((3,))
    for name, value in outputs.items():
        assert value.dtype == dtype and torch.isfinite(value).all(), name
        if value.requires_grad:
            for gradient in torch.autograd.grad(value.sum(), parameters, retain_graph=True, allow_unused=True):
                assert gradient is None or torch.isfinite(gradient).all(), name


@by_name(SMOOTHERS)
def test_icdf_is_monotone(smoother):
    rho = torch.linspace(0, 1, 2001, dtype=torch.float64)
    zeta = smoother(tensor([0.5, 5.0, 100.0]).reshape(-1, 1), logits=tensor([-4.0, 0.0, 4.0]).reshape(-1, 1, 1)).icdf(rho)
    assert torch.all(zeta.diff(dim=-1) >= 0)


# --------------------------------------------------------------------------- shapes
@by_name(ALL)
def test_batch_broadcasting_and_expand(smoother):
    beta = tensor([0.5, 2.0, 7.0]).reshape(3, 1)
    logits = tensor([-1.0, 0.0, 0.5, 2.0])
    q = smoother(beta, logits=logits)
    expected_batch = (3, 4) if smoother.tempered else (4,)
    assert q.batch_shape == expected_batch and q.event_shape == ()
    sample = q.sample((5,))
    assert sample.shape == (5,) + expected_batch
    assert q.log_prob(sample).shape == (5,) + expected_batch
    row = sample.reshape(-1, 4)[0]
    assert q.cdf(row).shape == expected_batch  # a zeta of shape (4,) broadcasts against the batch
    big = q.expand((2,) + expected_batch)
    assert big.batch_shape == (2,) + expected_batch
    rho = torch.rand((2,) + expected_batch, dtype=torch.float64)
    assert torch.equal(big.icdf(rho), q.icdf(rho))
    assert torch.equal(big.log_prob(sample[:2]), q.log_prob(sample[:2]))
    conditional = q.conditional(tensor([0.0, 1.0, 1.0, 0.0]))
    assert conditional.batch_shape == expected_batch
    assert conditional.expand((2,) + expected_batch).sample().shape == (2,) + expected_batch


@by_name(SMOOTHERS)
def test_expanded_smoother_draws_as_the_unexpanded_one(smoother):
    """Plates expand a smoother: its draws and gradients are the unexpanded one's, its shapes the batch's."""
    logits = tensor([-1.0, 0.5, 2.0]).requires_grad_()
    q = smoother(tensor(3.0), logits=logits)
    expanded = q.expand((4, 3))
    torch.manual_seed(0)
    drawn = expanded.rsample()
    torch.manual_seed(0)
    expected = q.rsample((4,))
    assert torch.equal(drawn, expected)
    (gradient,) = torch.autograd.grad(drawn.sum(), logits)
    (expected_gradient,) = torch.autograd.grad(expected.sum(), logits)
    assert torch.allclose(gradient, expected_gradient, rtol=1e-12, atol=0.0)
    assert expanded.icdf(tensor(0.3)).shape == (4, 3)  # a rho smaller than the batch broadcasts


@by_name(ALL)
def test_probs_and_logits_parameterisations_agree(smoother):
    probs = tensor([0.1, 0.5, 0.8])
    by_probs = smoother(tensor(3.0), probs=probs)
    by_logits = smoother(tensor(3.0), logits=torch.log(probs) - torch.log1p(-probs))
    assert torch.allclose(by_probs.logits, by_logits.logits) and torch.allclose(by_logits.probs, probs)
    rho = torch.linspace(0, 1, 11, dtype=torch.float64).reshape(-1, 1)
    assert torch.allclose(by_probs.icdf(rho), by_logits.icdf(rho), rtol=1e-12, atol=1e-12)
    assert torch.allclose(by_probs.expand((2, 3)).probs, probs.expand(2, 3))


@by_name(SMOOTHERS)
def test_rsample_and_conditional_follow_parameter_dtype(smoother):
    q = smoother(torch.tensor(2.0), logits=torch.zeros(2))
    assert q.rsample().dtype == torch.float32 and q.conditional(1.0).rsample().dtype == torch.float32


@pytest.mark.cuda
@by_name(ALL)
def test_runs_on_cuda(smoother):
    q = smoother(torch.tensor(2.0, device="cuda"), logits=torch.zeros(2, device="cuda"))
    zeta = q.sample((3,))
    assert zeta.device.type == "cuda" and q.log_prob(zeta).device.type == "cuda"


# --------------------------------------------------------------------------- bad input
@by_name(ALL)
@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"probs": 1.5}, "parameter probs"),
        ({"probs": -0.1}, "parameter probs"),
        ({"probs": math.nan}, "parameter probs"),
        ({"logits": math.nan}, "parameter logits"),
        ({}, "exactly one of `probs` or `logits`.*neither"),
        ({"probs": 0.5, "logits": 0.0}, "exactly one of `probs` or `logits`.*both"),
    ],
)
def test_bad_probabilities_raise_value_error_naming_argument(smoother, kwargs, argument):
    kwargs = {key: tensor(value) for key, value in kwargs.items()}
    with pytest.raises(ValueError, match=argument):
        smoother(tensor(1.0), validate_args=True, **kwargs)


@by_name([s for s in SMOOTHERS if s.tempered])
@pytest.mark.parametrize("beta", [0.0, -1.0, math.nan, math.inf])
def test_bad_beta_raises_value_error_naming_beta(smoother, beta):
    with pytest.raises(ValueError, match="parameter beta"):
        smoother(tensor(beta), logits=tensor(0.0), validate_args=True)


@by_name(ALL)
def test_bad_rho_zeta_and_z_raise_value_error(smoother):
    q = smoother(tensor(2.0), logits=tensor(0.0), validate_args=True)
    for rho in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError, match="`rho`"):
            q.icdf(tensor(rho))
    if smoother.name != "overlapping_logistic":
        with pytest.raises(ValueError, match="support"):
            q.log_prob(tensor(1.5))
    with pytest.raises(ValueError, match="parameter z "):
        q.conditional(tensor(0.5))


@by_name([s for s in ALL if not s.tempered])
def test_untempered_smoothers_take_keyword_parameters_only(smoother):
    with pytest.raises(TypeError):
        smoother.build(tensor(0.5))


def test_binary_limit_is_not_reparameterised_and_enumerates():
    q = BinaryLimit(logits=tensor([[-1.0, 2.0]]))
    assert not q.has_rsample
    with pytest.raises(NotImplementedError):
        q.rsample()
    support = q.enumerate_support()
    assert support.shape == (2, 1, 2)
    assert torch.allclose(q.log_prob(support).exp().sum(0), torch.ones(1, 2, dtype=torch.float64))
    assert torch.allclose(q.log_prob(support[1]), dist.Bernoulli(logits=q.logits).log_prob(support[1]))


# --------------------------------------------------------------------------- Pyro integration
def test_reparameterised_site_in_trace_elbo():
    """A smoother is a reparameterised Pyro sample site: Trace_ELBO's gradient is the pathwise one."""
    data = tensor([0.9, 0.1, 0.8])

    def model():
        zeta = pyro.sample("zeta", OverlappingExponential(tensor(5.0), logits=torch.zeros(3)).to_event(1))
        pyro.sample("x", dist.Normal(zeta, 0.1).to_event(1), obs=data)

    def guide():
        logits = pyro.param("logits", torch.zeros(3, dtype=torch.float64))
        pyro.sample("zeta", OverlappingExponential(tensor(5.0), logits=logits).to_event(1))

    guide_trace = pyro.poutine.trace(guide).get_trace()
    assert guide_trace.nodes["zeta"]["fn"].has_rsample
    loss = pyro.infer.Trace_ELBO().differentiable_loss(model, guide)
    (gradient,) = torch.autograd.grad(loss, [pyro.param("logits").unconstrained()])
    assert torch.isfinite(gradient).all() and torch.all(gradient != 0)

"""The DVAE# smoothers: power-function and uniform + exponential mixture (implicit-gradient sampling).

The independent checks of ``test_smoothing.py`` (round trips, quadrature normalisation, KS, pathwise
gradient against the derivative of a quadrature), adapted to densities with integrable singularities
at the ends of [0, 1], plus the checks of that file that hold for any smoother, called on these two.
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from pyro_dgm.distributions.implicit_smoothing import open_unit_interval
from pyro_dgm.distributions.power_function import PowerFunctionSmoothing
from pyro_dgm.distributions.uniform_exponential import UNIFORM_WEIGHT, UniformExponentialMixture
from tests.distributions import contract
from tests.distributions import test_smoothing as shared
from tests.distributions.contract import Case

POWER = shared.Smoother("power_function", PowerFunctionSmoothing, tempered=True, spike=False)
UNIFORM_EXPONENTIAL = shared.Smoother("uniform_exponential", UniformExponentialMixture, tempered=True, spike=False)
NEW_SMOOTHERS = [POWER, UNIFORM_EXPONENTIAL]
by_name = shared.by_name
tensor = shared.tensor

PAPER_BETAS = [16.0, 20.0, 30.0, 40.0]
"""The betas of the DVAE# experiments for these smoothers (power 20-40, uniform + exponential 16-40)."""
STRESS_BETAS = [0.5, 1.0, 10.0, 40.0, 100.0]
FLOAT32_GRADIENT_HEADROOM = 1e-20  # room for summing many zeta-gradients in a backward pass
# Substitution zeta = v^GAMMA near each end turns zeta^(1/beta - 1) into a polynomial in v once
# GAMMA >= beta, so fixed Gauss-Legendre nodes integrate it (and its parameter derivatives) exactly.
SUBSTITUTION_POWER = 160.0


def left_half_nodes(dtype=torch.float64):
    """Gauss-Legendre nodes and weights on [0, 1/2] after zeta = v^g (a fixed g: differentiable in the parameters)."""
    v_nodes, v_weights = shared.gauss_legendre(0.0, 0.5 ** (1 / SUBSTITUTION_POWER), dtype)
    nodes, weights = v_nodes**SUBSTITUTION_POWER, SUBSTITUTION_POWER * v_nodes ** (SUBSTITUTION_POWER - 1) * v_weights
    # below the smallest normal number r(zeta | 0) overflows; unresolved_mass() bounds what is dropped
    resolved = nodes >= torch.finfo(dtype).tiny
    return nodes[resolved], weights[resolved]


def unresolved_mass(beta: float) -> float:
    """Mass of the mixture within float64's smallest normal number of either end: at most R_0(tiny) = tiny^(1/beta)."""
    return torch.finfo(torch.float64).tiny ** (1 / beta)


def expectation_by_quadrature(smoother, beta: torch.Tensor, logits: torch.Tensor, function) -> torch.Tensor:
    """E_q[f] = int_0^1/2 f q_l + int_0^1/2 f(1 - zeta) q_{-l}(zeta) (mirror symmetry; see quad_unit_interval)."""
    nodes, weights = left_half_nodes()
    density = smoother(beta, logits=logits).log_prob(nodes).exp()
    mirrored = smoother(beta, logits=-logits).log_prob(nodes).exp()
    return (weights * (function(nodes) * density + function(1 - nodes) * mirrored)).sum()


def quad_left_half(function, lower: float, upper: float, beta: float) -> float:
    """scipy quad of ``function`` on [lower, upper] within [0, 1/2] after zeta = v^g, g = max(beta, 1)."""
    power = max(beta, 1.0)

    def integrand(v):
        return function(v**power) * power * v ** (power - 1)

    a, b = lower ** (1 / power), upper ** (1 / power)
    return integrate.quad(integrand, a, b, epsabs=shared.QUAD_EPSABS, epsrel=0.0, limit=500)[0]


def quad_unit_interval(density, mirrored_density, upper: float, beta: float) -> float:
    """The integral of ``density`` over [0, upper], its part above 1/2 taken as that of the mirror image below 1/2.

    Near zeta = 1 a float64 cannot resolve 1 - zeta below 1.1e-16, which at beta = 40 holds 40%
    of the mass of r(zeta | 1); the mirror image ``mirrored_density(zeta) = density(1 - zeta)`` (a
    property checked on its own by ``test_mirror_symmetry``) puts that mass near 0, where it is resolved.
    """
    total = quad_left_half(density, 0.0, min(upper, 0.5), beta)
    if upper > 0.5:
        total += quad_left_half(mirrored_density, 1 - upper, 0.5, beta)
    return total


def density_function(q):
    return lambda x: float(q.log_prob(tensor(x)).exp())


def mixture_integral(smoother, beta: float, logit: float, upper: float = 1.0) -> float:
    density = density_function(smoother(tensor(beta), logits=tensor(logit)))
    mirrored = density_function(smoother(tensor(beta), logits=tensor(-logit)))
    return quad_unit_interval(density, mirrored, upper, beta)


@by_name(NEW_SMOOTHERS)
def test_mirror_symmetry(smoother):
    """q_l(1 - zeta) = q_{-l}(zeta), r(1 - zeta | 1) = r(zeta | 0), F_l(1 - zeta) = 1 - F_{-l}(zeta)."""
    zeta = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    for beta in (0.5, 3.0, 40.0):
        q, mirror = smoother(tensor(beta), logits=tensor(0.8)), smoother(tensor(beta), logits=tensor(-0.8))
        assert torch.allclose(q.log_prob(1 - zeta), mirror.log_prob(zeta), rtol=1e-9, atol=1e-12)
        assert torch.allclose(q.conditional(1.0).log_prob(1 - zeta), q.conditional(0.0).log_prob(zeta), rtol=1e-9, atol=1e-12)
        assert torch.allclose(q.cdf(1 - zeta), 1 - mirror.cdf(zeta), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- closed forms
def test_power_function_matches_its_definition():
    beta, zeta = tensor(3.0), tensor([0.01, 0.3, 0.9])
    q = PowerFunctionSmoothing(beta, logits=tensor(0.4))
    probability = torch.sigmoid(tensor(0.4))
    density = ((1 - probability) * zeta ** (1 / beta - 1) + probability * (1 - zeta) ** (1 / beta - 1)) / beta
    cdf = (1 - probability) * zeta ** (1 / beta) + probability * (1 - (1 - zeta) ** (1 / beta))
    assert torch.allclose(q.log_prob(zeta).exp(), density, rtol=1e-13)
    assert torch.allclose(q.cdf(zeta), cdf, rtol=1e-13)
    ratio = (1 / beta - 1) * (torch.log(1 - zeta) - torch.log(zeta))
    assert torch.allclose(q.posterior_logits(zeta), q.logits + ratio, rtol=1e-13)


def test_uniform_exponential_matches_its_definition():
    beta, zeta = tensor(7.0), tensor([0.0, 0.2, 1.0])
    q = UniformExponentialMixture(beta, logits=tensor(-0.3))
    probability = torch.sigmoid(tensor(-0.3))
    exponential = beta / (1 - torch.exp(-beta))
    r0 = (1 - UNIFORM_WEIGHT) * exponential * torch.exp(-beta * zeta) + UNIFORM_WEIGHT
    r1 = (1 - UNIFORM_WEIGHT) * exponential * torch.exp(beta * (zeta - 1)) + UNIFORM_WEIGHT
    assert torch.allclose(q.log_prob(zeta).exp(), (1 - probability) * r0 + probability * r1, rtol=1e-13)


# --------------------------------------------------------------------------- round trips
@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("dtype", shared.DTYPES, ids=["float32", "float64"])
def test_cdf_of_icdf_is_identity(smoother, dtype):
    """|F(F^{-1}(rho)) - rho| <= C eps (1 + zeta q(zeta)) where zeta is a normal number of the dtype.

    Below the smallest normal number zeta underflows (power smoother, float32, beta = 40: for
    rho < 0.075 (1 - q)); that is representability, not an error of the inverse.
    """
    eps, tiny = torch.finfo(dtype).eps, torch.finfo(dtype).tiny
    logits = torch.linspace(-30, 30, 61, dtype=dtype).reshape(-1, 1, 1)
    beta = tensor(STRESS_BETAS, dtype).reshape(1, -1, 1)
    rho = torch.linspace(0, 1, 401, dtype=dtype)
    q = smoother(beta, logits=logits)
    zeta = q.icdf(rho).detach()
    normal = zeta >= tiny
    density = q.log_prob(zeta.clamp(min=tiny)).exp()
    error = (q.cdf(zeta) - rho).abs() / (1 + zeta * density)
    assert error[normal].max() <= shared.ROUND_TRIP_EPS_MULTIPLE * eps
    assert normal.float().mean() > 0.9  # the check covers most of the grid


@by_name(NEW_SMOOTHERS)
def test_icdf_of_cdf_is_identity(smoother):
    """|F^{-1}(F(zeta)) - zeta| <= C eps (zeta + 1 / q(zeta)) on the interior of [0, 1] (float64)."""
    eps = torch.finfo(torch.float64).eps
    logits = torch.linspace(-30, 30, 31, dtype=torch.float64).reshape(-1, 1, 1)
    beta = tensor(STRESS_BETAS).reshape(1, -1, 1)
    zeta = torch.cat([tensor([1e-300, 1e-30, 1e-8]), torch.linspace(0.001, 0.999, 301, dtype=torch.float64), tensor([1 - 1e-8])])
    q = smoother(beta, logits=logits)
    back = q.icdf(q.cdf(zeta)).detach()
    error = (back - zeta).abs() / (zeta + q.log_prob(zeta).exp().reciprocal())
    assert error.max() <= shared.ROUND_TRIP_EPS_MULTIPLE * eps


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("beta", [8.0] + PAPER_BETAS)
def test_icdf_is_the_generalised_inverse_to_the_float(smoother, beta):
    """The contract's cdf/icdf check at betas whose law is not on the float64 grid (test_contract.py keeps beta <= 2).

    At beta 8 one float below 1 holds q (2^-53)^(1/8) = 0.0099 q of the mass, and F jumps by up to 1e-3 between
    neighbouring floats there: icdf must return the smallest float with F >= rho (1 itself for every rho above
    F(1 - 2^-53)), which the bracket's midpoint, or a logit grid that skips every other float below 1, did not.
    """
    contract.check_cdf_icdf_inverse(Case(f"{smoother.name}(beta {beta})", lambda p: smoother.build(p(beta), logits=p.randn(3))))


def test_power_conditional_icdfs_are_exact_near_the_ends():
    """rho^beta and 1 - rho^beta keep their relative precision where 1 - zeta or zeta is tiny."""
    q = PowerFunctionSmoothing(tensor(40.0), logits=tensor(0.0))
    rho = tensor([1e-3, 0.5])
    assert torch.allclose(q.conditional(0.0).icdf(rho), rho**40, rtol=1e-14)
    one_minus = 1 - q.conditional(1.0).icdf(tensor([0.5]))
    assert torch.allclose(one_minus, tensor([0.5**40]), rtol=1e-3)  # 1 - (1 - 9e-13): cancellation in the test only
    assert float(q.conditional(1.0).icdf(tensor(1 - 1e-3))) == 1.0  # 1 - 1e-120 rounds to 1


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("z", [0.0, 1.0])
def test_conditional_icdf_inverts_conditional_cdf(smoother, z):
    """Round trip of r(. | z) at betas where 1 - zeta stays resolved (see test_power_conditional_icdfs_are_exact_near_the_ends)."""
    rho = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    conditional = smoother(tensor([0.5, 3.0]).reshape(-1, 1), logits=tensor(0.0)).conditional(tensor(z))
    zeta = conditional.icdf(rho)
    error = (conditional.cdf(zeta) - rho).abs() / (1 + zeta * conditional.log_prob(zeta).exp())
    assert error.max() <= shared.ROUND_TRIP_EPS_MULTIPLE * torch.finfo(torch.float64).eps


# --------------------------------------------------------------------------- normalisation
@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("beta", [0.5, 3.0, 40.0])
@pytest.mark.parametrize("logit", [-3.0, 0.7])
def test_density_integrates_to_one(smoother, beta, logit):
    assert abs(mixture_integral(smoother, beta, logit) - 1.0) < shared.QUADRATURE_TOLERANCE


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("z", [0.0, 1.0])
@pytest.mark.parametrize("beta", [0.5, 40.0])
def test_conditional_integrates_to_one(smoother, z, beta):
    q = smoother(tensor(beta), logits=tensor(0.0))
    density, mirrored = (density_function(q.conditional(tensor(value))) for value in (z, 1 - z))
    assert abs(quad_unit_interval(density, mirrored, 1.0, beta) - 1.0) < shared.QUADRATURE_TOLERANCE


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("beta", [0.5, 30.0])
def test_cdf_is_integral_of_density(smoother, beta):
    q = smoother(tensor(beta), logits=tensor(-0.4))
    for point in [0.1, 0.5, 0.93]:
        integral = mixture_integral(smoother, beta, -0.4, point)
        assert abs(integral - float(q.cdf(tensor(point)))) < shared.QUADRATURE_TOLERANCE


# --------------------------------------------------------------------------- sampling
def rounding_aware_probability_integral_transform(smoother, beta: float, logit: float, zeta: torch.Tensor) -> np.ndarray:
    """u ~ U[F(lo), F(hi)] with [lo, hi] the reals that ``zeta`` stands for; F in float64.

    A float draw stands for every real that rounds to it: the half-ulp interval around it, and for
    the end points that ``open_unit_interval`` clamps to, everything beyond them ([0, eps/2] and
    [1 - eps/2, 1]). Near zeta = 1 those intervals carry visible mass (float32, beta = 16: 1.5% per
    float), so a plain PIT would reject a correct sampler. The randomised PIT over them is
    uniform exactly when the draws are the exact distribution rounded to the dtype.
    """
    zero, one = torch.zeros((), dtype=zeta.dtype), torch.ones((), dtype=zeta.dtype)
    lo = 0.5 * (zeta.double() + torch.nextafter(zeta, zero).double())
    hi = 0.5 * (zeta.double() + torch.nextafter(zeta, one).double())
    lo = torch.where(zeta == open_unit_interval(zero), torch.zeros_like(lo), lo)
    hi = torch.where(zeta == open_unit_interval(one), torch.ones_like(hi), hi)
    q = smoother(tensor(beta), logits=tensor(logit))
    cdf_lo, cdf_hi = q.cdf(lo), q.cdf(hi)
    return (cdf_lo + torch.rand_like(cdf_lo) * (cdf_hi - cdf_lo)).numpy()


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("dtype", shared.DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("beta, logit", [(2.0, 0.5), (40.0, -1.5), (16.0, 1.0)])
def test_samples_follow_cdf(smoother, dtype, beta, logit):
    torch.manual_seed(0)
    q = smoother(tensor(beta, dtype), logits=tensor(logit, dtype))
    zeta = q.sample((shared.KS_NUM_SAMPLES,))
    assert zeta.dtype == dtype and bool(((zeta > 0) & (zeta < 1)).all())
    shared.assert_uniform(rounding_aware_probability_integral_transform(smoother, beta, logit, zeta))


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("z", [0.0, 1.0])
def test_conditional_samples_follow_conditional_cdf(smoother, z):
    torch.manual_seed(1)
    conditional = smoother(tensor(3.0), logits=tensor(0.0)).conditional(tensor(z))
    zeta = conditional.rsample((20_000,))  # the uniform + exponential one bisects: fewer draws
    result = stats.kstest(zeta.numpy(), lambda x: conditional.cdf(tensor(x)).numpy())
    assert result.pvalue > shared.KS_MIN_P_VALUE


def test_uniform_exponential_ancestral_draws_follow_conditional_cdfs():
    """The component-first draws of rsample (no bisection) follow each conditional's CDF."""
    torch.manual_seed(2)
    q = UniformExponentialMixture(tensor(16.0), logits=torch.zeros(shared.KS_NUM_SAMPLES, dtype=torch.float64))
    falling, rising = q._draw_conditionals(q.batch_shape)
    cdf_zero, cdf_one = q._conditional_cdfs(falling)[0], q._conditional_cdfs(rising)[1]
    shared.assert_uniform(cdf_zero.numpy())
    shared.assert_uniform(cdf_one.numpy())


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("beta, logit", [(4.0, 0.3), (40.0, -0.8), (16.0, 1.2)])
def test_pathwise_gradient_matches_quadrature(smoother, beta, logit):
    """d/d(logits, beta) E_q[f(zeta)] by the implicit-gradient rsample equals the derivative of a quadrature."""
    logits_leaf = tensor(logit).requires_grad_()
    beta_leaf = tensor(beta).requires_grad_()
    normaliser = expectation_by_quadrature(smoother, tensor(beta), tensor(logit), torch.ones_like)
    assert abs(float(normaliser) - 1) < 1e-10 + unresolved_mass(beta)  # the quadrature integrates the density to 1
    exact_value = expectation_by_quadrature(smoother, beta_leaf, logits_leaf, shared._sin_plus_square)
    exact = torch.autograd.grad(exact_value, [logits_leaf, beta_leaf])

    torch.manual_seed(3)
    logits_copies = torch.full((shared.GRADIENT_NUM_SAMPLES,), logit, dtype=torch.float64, requires_grad=True)
    beta_copies = torch.full((shared.GRADIENT_NUM_SAMPLES,), beta, dtype=torch.float64, requires_grad=True)
    zeta = smoother(beta_copies, logits=logits_copies).rsample()
    per_sample = torch.autograd.grad(shared._sin_plus_square(zeta).sum(), [logits_copies, beta_copies])
    for estimate, target in zip(per_sample, exact):
        mean, standard_error = float(estimate.mean()), float(estimate.std() / math.sqrt(shared.GRADIENT_NUM_SAMPLES))
        assert standard_error > 0
        assert shared.NUM_STANDARD_ERRORS * standard_error < shared.MAX_RELATIVE_RESOLUTION * abs(float(target))
        assert abs(mean - float(target)) < shared.NUM_STANDARD_ERRORS * standard_error, (mean, float(target), standard_error)


@by_name(NEW_SMOOTHERS)
def test_icdf_gradient_is_the_implicit_derivative(smoother):
    """d icdf(rho) / d theta equals central finite differences of the bisected inverse (float64)."""
    rho = tensor([0.05, 0.4, 0.8])
    logits, beta = tensor(0.3).requires_grad_(), tensor(5.0).requires_grad_()
    gradients = torch.autograd.grad(smoother(beta, logits=logits).icdf(rho).sum(), [logits, beta])
    step = 1e-6
    for index, gradient in enumerate(gradients):
        shifted = [[0.3, 5.0], [0.3, 5.0]]
        shifted[0][index] += step
        shifted[1][index] -= step
        plus, minus = (smoother(tensor(b), logits=tensor(l)).icdf(rho).sum() for l, b in shifted)
        assert abs(float((plus - minus) / (2 * step)) - float(gradient)) < 1e-6 * (1 + abs(float(gradient)))


# --------------------------------------------------------------------------- the ends of [0, 1]
ENDPOINT_BETAS = [0.5, 5.0, 40.0]
"""Below 1 (density vanishing at the ends), the models' default, and the top of the papers' range."""
ENDPOINT_LOGITS = [-1.3, 0.7]
INNER_OFFSETS = [1e-6, 1e-9, 1e-12]
"""Distances of rho from an end at which the path derivatives must approach their endpoint values."""
LIMIT_SLOPE = 100.0
r"""Bound on |g(end + delta) - g(end)| / (delta (1 + |log delta|)): at these betas the differences are O(delta log delta)
(UE: O(zeta), zeta ~ delta / f; power: nu (1 - nu) ~ delta^{min(beta - 1, 1)}, times the log zeta of d nu / d beta,
Eq. (2a)); measured up to 33 (power, beta 0.5, logit -1.3, rho = 1e-12)."""
FINITE_DIFFERENCE_RHO = 1e-3
"""A rho near each end where the float64 grid still resolves zeta, for a central difference."""
FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_TOLERANCE = 1e-6
"""Relative: truncation O(h^2) ~ 1e-12, rounding (icdf exact to one float) ~ eps / h ~ 1e-10; wide margin."""


def path_gradients(smoother, beta: float, logit: float, rho: float) -> torch.Tensor:
    """d/d(logit, beta) of zeta = icdf(rho) and of nu(zeta) (float64): [dzeta/dl, dzeta/dbeta, dnu/dl, dnu/dbeta]."""
    logits_leaf, beta_leaf = tensor(logit).requires_grad_(), tensor(beta).requires_grad_()
    q = smoother(beta_leaf, logits=logits_leaf)
    zeta = q.icdf(tensor(rho))
    values = (zeta, q.posterior_probs(zeta))
    return torch.stack([g for value in values for g in torch.autograd.grad(value, [logits_leaf, beta_leaf], retain_graph=True)])


def uniform_exponential_log_ratio_at_end(beta: torch.Tensor, end: float) -> torch.Tensor:
    """b = log r(end | 1) - log r(end | 0) from the closed forms r(0 | 0) = (1 - eps) beta / (1 - e^-beta) + eps, r(0 | 1) = ... e^-beta ... (mirrored at 1)."""
    peak = (1 - UNIFORM_WEIGHT) * beta / -torch.expm1(-beta) + UNIFORM_WEIGHT
    floor = (1 - UNIFORM_WEIGHT) * beta * torch.exp(-beta) / -torch.expm1(-beta) + UNIFORM_WEIGHT
    return torch.log(floor) - torch.log(peak) if end == 0.0 else torch.log(peak) - torch.log(floor)


def endpoint_limit(smoother, beta: float, logit: float, end: float) -> torch.Tensor:
    r"""The one-sided limits of the path derivatives at rho -> end (docs/derivations/dvae_sharp.md, Eq. (2a)).

    zeta's derivatives tend to 0 (dF/dtheta = 0 at both ends, f > 0). Power smoother: nu -> 0 or 1 like
    zeta^{|1 - 1/beta|}, which kills every term of nu's derivatives: 0. Uniform + exponential: b is smooth
    at the ends and dzeta/dtheta -> 0, so nu's derivatives are its partial ones at the end:
    nu (1 - nu) (1, db/dbeta).
    """
    if smoother is POWER:
        return torch.zeros(4, dtype=torch.float64)
    beta_leaf = tensor(beta).requires_grad_()
    log_ratio = uniform_exponential_log_ratio_at_end(beta_leaf, end)
    (log_ratio_by_beta,) = torch.autograd.grad(log_ratio, beta_leaf)
    nu = torch.sigmoid(tensor(logit) + log_ratio.detach())
    slope = nu * (1 - nu)
    return torch.stack([tensor(0.0), tensor(0.0), slope, slope * log_ratio_by_beta])


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("beta", ENDPOINT_BETAS)
@pytest.mark.parametrize("logit", ENDPOINT_LOGITS)
@pytest.mark.parametrize("end", [0.0, 1.0])
def test_endpoint_gradients_are_the_one_sided_limits(smoother, beta, logit, end):
    """At rho = 0 and 1 (zeta on an end) the gradients of zeta and nu are the limits of the derivatives inside.

    Three links: (1) the endpoint gradients equal the analytic limits; (2) the gradients at rho = end -+ delta
    approach them like delta; (3) just inside, autograd is the derivative (central differences of the map
    theta -> nu(icdf(rho; theta); theta)).
    """
    q = smoother(tensor(beta), logits=tensor(logit))
    nu_at_end = q.posterior_probs(q.icdf(tensor(end)))
    if smoother is POWER:  # r(zeta | 1) / r(zeta | 0) = (zeta / (1 - zeta))^(1 - 1/beta) at zeta = end
        expected_nu = tensor(float((end == 1.0) == (beta > 1)))
    else:
        expected_nu = torch.sigmoid(tensor(logit) + uniform_exponential_log_ratio_at_end(tensor(beta), end))
    assert torch.allclose(nu_at_end, expected_nu, rtol=1e-9, atol=1e-12)
    at_end = path_gradients(smoother, beta, logit, end)
    assert torch.isfinite(at_end).all()
    assert torch.allclose(at_end, endpoint_limit(smoother, beta, logit, end), rtol=1e-9, atol=1e-12)
    inward = 1.0 if end == 0.0 else -1.0
    for offset in INNER_OFFSETS:
        inside = path_gradients(smoother, beta, logit, end + inward * offset)
        assert float((inside - at_end).abs().max()) <= LIMIT_SLOPE * offset * (1 + abs(math.log(offset))), (offset, inside, at_end)
    rho = end + inward * FINITE_DIFFERENCE_RHO
    gradients = path_gradients(smoother, beta, logit, rho)
    for index in range(2):  # logit, beta
        shifted = [[logit, beta], [logit, beta]]
        shifted[0][index] += FINITE_DIFFERENCE_STEP
        shifted[1][index] -= FINITE_DIFFERENCE_STEP
        plus, minus = (smoother(tensor(b), logits=tensor(l)) for l, b in shifted)
        zeta_plus, zeta_minus = plus.icdf(tensor(rho)), minus.icdf(tensor(rho))
        for position, (high, low) in ((index, (zeta_plus, zeta_minus)), (2 + index, (plus.posterior_probs(zeta_plus), minus.posterior_probs(zeta_minus)))):
            difference = float((high - low) / (2 * FINITE_DIFFERENCE_STEP))
            assert abs(difference - float(gradients[position])) < FINITE_DIFFERENCE_TOLERANCE * (1 + abs(difference)), (position, difference, gradients)


# --------------------------------------------------------------------------- float32 stability
@by_name(NEW_SMOOTHERS)
def test_float32_sampling_path_is_finite_over_the_papers_betas(smoother):
    """rsample, log_prob of its draws, the posterior and every gradient are finite in float32."""
    torch.manual_seed(4)
    logits = torch.linspace(-30, 30, 61).reshape(-1, 1).requires_grad_()
    beta = torch.tensor(PAPER_BETAS + [100.0]).requires_grad_()
    q = smoother(beta, logits=logits)
    zeta = q.rsample((50,))
    outputs = {"rsample": zeta, "log_prob": q.log_prob(zeta), "posterior_probs": q.posterior_probs(zeta)}
    for name, value in outputs.items():
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), name
        for gradient in torch.autograd.grad(value.sum(), [logits, beta], retain_graph=True):
            assert torch.isfinite(gradient).all(), name


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("dtype", shared.DTYPES, ids=["float32", "float64"])
def test_icdf_is_finite_with_finite_gradients(smoother, dtype):
    logits = torch.linspace(-30, 30, 13, dtype=dtype).reshape(-1, 1, 1).requires_grad_()
    beta = tensor(STRESS_BETAS, dtype).reshape(1, -1, 1).requires_grad_()
    rho = torch.cat([torch.linspace(0, 1, 21, dtype=dtype), tensor([1e-7, 1 - 1e-7], dtype)])
    zeta = smoother(beta, logits=logits).icdf(rho)
    assert zeta.dtype == dtype and torch.isfinite(zeta).all()
    for gradient in torch.autograd.grad(zeta.sum(), [logits, beta]):
        assert torch.isfinite(gradient).all()


# --------------------------------------------------------------------------- the shared, smoother-agnostic checks
SHARED_CHECKS = [
    shared.test_batch_broadcasting_and_expand,
    shared.test_expanded_smoother_draws_as_the_unexpanded_one,
    shared.test_probs_and_logits_parameterisations_agree,
    shared.test_rsample_and_conditional_follow_parameter_dtype,
    shared.test_icdf_is_monotone,
    shared.test_bad_rho_zeta_and_z_raise_value_error,
]


@by_name(NEW_SMOOTHERS)
@pytest.mark.parametrize("check", SHARED_CHECKS, ids=[check.__name__ for check in SHARED_CHECKS])
def test_shared_smoother_checks(smoother, check):
    check(smoother)


@by_name(NEW_SMOOTHERS)
def test_bad_parameters_raise_value_error_naming_them(smoother):
    for beta in (0.0, -1.0, math.nan, math.inf):
        shared.test_bad_beta_raises_value_error_naming_beta(smoother, beta)
    for kwargs, argument in [({"probs": 1.5}, "parameter probs"), ({"logits": math.nan}, "parameter logits")]:
        shared.test_bad_probabilities_raise_value_error_naming_argument(smoother, kwargs, argument)


@by_name(NEW_SMOOTHERS)
def test_posterior_is_bayes_rule_on_the_interior(smoother):
    q = smoother(tensor([[1.5], [9.0], [40.0]]), logits=tensor([-2.0, 0.0, 1.3]))
    zeta = torch.linspace(1e-6, 1 - 1e-6, 41, dtype=torch.float64).reshape(-1, 1, 1)
    joint_one = q.probs * q.conditional(1.0).log_prob(zeta).exp()
    joint_zero = (1 - q.probs) * q.conditional(0.0).log_prob(zeta).exp()
    assert torch.allclose(q.posterior_probs(zeta), joint_one / (joint_one + joint_zero), rtol=1e-11, atol=1e-15)


def test_zeta_gradients_at_the_clamped_ends_are_far_from_overflow():
    """d log r(zeta | z) / d zeta ~ 1/distance-to-the-end at the clamped draws stays summable in float32.

    With the lower clamp at the smallest normal number (1e-38) it was 8e37, and the backward pass of
    DVAE#'s weights, which adds several such terms, overflowed to NaN after 7 training steps.
    """
    q = PowerFunctionSmoothing(torch.tensor(40.0), logits=torch.zeros(2))
    zeta = open_unit_interval(torch.tensor([0.0, 1.0])).requires_grad_()
    for z, end in ((0.0, 0), (1.0, 1)):  # each conditional is singular at its own end
        (gradient,) = torch.autograd.grad(q.conditional(z).log_prob(zeta)[end], [zeta])
        assert float(gradient.abs().max()) < torch.finfo(torch.float32).max * FLOAT32_GRADIENT_HEADROOM

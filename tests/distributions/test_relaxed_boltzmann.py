"""Relaxed Boltzmann priors (DVAE#) and GumBolt's proxies against enumeration and numerical integration.

RBMs of 2-5 units are enumerated straight from the definition (rbm_brute_force); integrals over
zeta use tensor-product Gauss-Legendre rules (and scipy's quad in one dimension).
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from pyro_dgm.distributions.gumbolt import GumBoltPosterior, GumBoltPrior
from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.power_function import PowerFunctionSmoothing
from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.distributions.relaxed_boltzmann import (
    GaussianIntegralRelaxedRBM,
    OverlappingRelaxedRBM,
    mean_field_log_partition,
    minimum_gaussian_shift,
)
from pyro_dgm.distributions.uniform_exponential import UniformExponentialMixture
from tests.distributions.rbm_brute_force import brute_force_probabilities
from tests.total_variation import empirical_probabilities, total_variation, total_variation_threshold

DTYPE = torch.float64
EXACT_TOLERANCE = 1e-10  # float64 identities between two evaluations of ~2^4 terms
QUAD_TOLERANCE = 1e-8
# Composite Gauss-Legendre, 8 nodes per panel: panels of width <= 1/20 (exponentials of rate <= 10 on
# [0, 1]) and 1/4 (Gaussians of standard deviation >= 1/3) integrate to ~1e-12.
GAUSS_LEGENDRE_ORDER = 8
UNIT_SQUARE_PANELS = 20
GAUSSIAN_BOX_PANELS = 100
NUM_STANDARD_ERRORS = 4.0
LAW_NUM_DRAWS = 40_000
KS_FALSE_ALARM_PROBABILITY = 1e-6
"""Chance that a correct sampler fails one Kolmogorov-Smirnov check (asymptotic Kolmogorov bound)."""
NUM_PROJECTIONS = 4
MEAN_FIELD_CONVERGED_ITERATIONS = 200  # contraction factor < 0.5 per sweep for |W| < 1: converged to rounding
FINITE_DIFFERENCE_STEP = 1e-6  # central differences: truncation O(h^2) = 1e-12, rounding O(eps / h) = 2e-10


def tensor(value):
    return torch.as_tensor(value, dtype=DTYPE)


def random_rbm(num_units1, num_units2, weight_scale=1.0, seed=0) -> RBM:
    generator = torch.Generator().manual_seed(seed)
    return RBM(
        0.5 * torch.randn(num_units1, generator=generator, dtype=DTYPE),
        0.5 * torch.randn(num_units2, generator=generator, dtype=DTYPE),
        weight_scale * torch.randn(num_units1, num_units2, generator=generator, dtype=DTYPE),
    )


def smoothers(num_units):
    return {
        "power": PowerFunctionSmoothing(tensor(3.0), logits=torch.zeros(num_units, dtype=DTYPE)),
        "power_40": PowerFunctionSmoothing(tensor(40.0), logits=torch.zeros(num_units, dtype=DTYPE)),
        "uniform_exponential": UniformExponentialMixture(tensor(10.0), logits=torch.zeros(num_units, dtype=DTYPE)),
        "exponential": OverlappingExponential(tensor(5.0), logits=torch.zeros(num_units, dtype=DTYPE)),
    }


SMOOTHER_NAMES = list(smoothers(1))


def brute_force_relaxed_log_density(rbm: RBM, smoother, zeta: torch.Tensor) -> torch.Tensor:
    """log sum_z p(z) prod_i r(zeta_i | z_i), straight from the definition."""
    states, probabilities = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)  # (S, N), (S,)
    log_conditionals = smoother.conditional(states.unsqueeze(-2)).log_prob(zeta).sum(-1)  # (S, *zeta batch)
    log_weights = torch.log(probabilities).reshape((-1,) + (1,) * (zeta.dim() - 1))
    return torch.logsumexp(log_weights + log_conditionals, dim=0)


def interior_points(num_points, num_units, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(num_points, num_units, generator=generator, dtype=DTYPE).clamp(1e-6, 1 - 1e-6)


# --------------------------------------------------------------------------- overlapping relaxation
@pytest.mark.parametrize("name", SMOOTHER_NAMES)
def test_exact_overlapping_relaxation_is_the_mixture_over_z(name):
    rbm = random_rbm(2, 2)
    smoother = smoothers(4)[name]
    zeta = interior_points(50, 4)
    prior = OverlappingRelaxedRBM(rbm, smoother, log_partition_method="exact")
    assert torch.allclose(prior.log_prob(zeta), brute_force_relaxed_log_density(rbm, smoother, zeta), rtol=0, atol=EXACT_TOLERANCE)


@pytest.mark.parametrize("name", SMOOTHER_NAMES)
def test_mean_field_gap_is_the_kl_to_the_exact_posterior(name):
    """log Z(zeta) - bound(m) = KL(q_m || p(z | zeta)) for the m the sweeps reach (any m; enumeration)."""
    rbm = random_rbm(2, 2, weight_scale=1.5)
    smoother = smoothers(4)[name]
    zeta = interior_points(20, 4)
    prior = OverlappingRelaxedRBM(rbm, smoother)
    exact = OverlappingRelaxedRBM(rbm, smoother, log_partition_method="exact")
    _, shift = prior.smoother_terms(zeta)
    bias1, bias2 = rbm.bias1 + shift[:, :2], rbm.bias2 + shift[:, 2:]
    _, m1, m2 = mean_field_log_partition(bias1, bias2, rbm.weight)
    states, posterior = brute_force_probabilities(bias1, bias2, rbm.weight)  # p(z | zeta), (S, 20)
    m = torch.cat([m1, m2], -1)
    log_q = (states.unsqueeze(1) * torch.log(m) + (1 - states.unsqueeze(1)) * torch.log1p(-m)).sum(-1)
    kl = (log_q.exp() * (log_q - torch.log(posterior))).sum(0)
    gap = exact.log_prob(zeta) - prior.log_prob(zeta)
    assert torch.allclose(gap, kl, rtol=0, atol=EXACT_TOLERANCE)
    assert bool((kl > 0).all())  # coupled: the bound is strict


def test_mean_field_is_exact_without_coupling():
    rbm = RBM(tensor([0.3, -1.0]), tensor([2.0]), torch.zeros(2, 1, dtype=DTYPE))
    smoother = smoothers(3)["power"]
    zeta = interior_points(30, 3)
    prior = OverlappingRelaxedRBM(rbm, smoother, num_iterations=1)
    assert torch.allclose(prior.log_prob(zeta), brute_force_relaxed_log_density(rbm, smoother, zeta), rtol=0, atol=EXACT_TOLERANCE)


def test_mean_field_gradient_is_the_envelope_gradient_at_convergence():
    """With the sweeps converged, autograd of the bound (m fixed) equals finite differences of the bound (m re-solved)."""
    rbm = random_rbm(2, 3, weight_scale=0.5)
    bias1, bias2, weight = (parameter.clone().requires_grad_() for parameter in (rbm.bias1, rbm.bias2, rbm.weight))
    bound = mean_field_log_partition(bias1, bias2, weight, MEAN_FIELD_CONVERGED_ITERATIONS)[0]
    gradients = torch.autograd.grad(bound, [bias1, bias2, weight])
    for index, gradient in enumerate(gradients):
        flat = gradient.reshape(-1)
        for element in range(flat.numel()):
            shifted = []
            for sign in (1.0, -1.0):
                parameters = [rbm.bias1.clone(), rbm.bias2.clone(), rbm.weight.clone()]
                parameters[index].view(-1)[element] += sign * FINITE_DIFFERENCE_STEP
                shifted.append(mean_field_log_partition(*parameters, MEAN_FIELD_CONVERGED_ITERATIONS)[0])
            difference = (shifted[0] - shifted[1]) / (2 * FINITE_DIFFERENCE_STEP)
            assert abs(float(difference) - float(flat[element])) < 1e-7


def test_exact_relaxation_gradient_in_zeta_matches_finite_differences():
    rbm = random_rbm(2, 2)
    prior = OverlappingRelaxedRBM(rbm, smoothers(4)["power"], log_partition_method="exact")
    zeta = tensor([0.2, 0.7, 0.45, 0.9]).requires_grad_()
    (gradient,) = torch.autograd.grad(prior.log_prob(zeta), [zeta])
    for unit in range(4):
        step = torch.zeros(4, dtype=DTYPE)
        step[unit] = FINITE_DIFFERENCE_STEP
        difference = (prior.log_prob(zeta.detach() + step) - prior.log_prob(zeta.detach() - step)) / (2 * FINITE_DIFFERENCE_STEP)
        assert abs(float(difference) - float(gradient[unit])) < 1e-6


def square_rule(lower: float, upper: float, panels: int):
    """Tensor-product composite Gauss-Legendre rule on [lower, upper]^2: points (P, 2), weights (P,)."""
    nodes, weights = np.polynomial.legendre.leggauss(GAUSS_LEGENDRE_ORDER)
    edges = np.linspace(lower, upper, panels + 1)
    half, centre = 0.5 * np.diff(edges)[:, None], 0.5 * (edges[1:] + edges[:-1])[:, None]
    axis_nodes, axis_weights = tensor((centre + half * nodes).ravel()), tensor((half * weights).ravel())
    points = torch.cartesian_prod(axis_nodes, axis_nodes)
    return points, torch.cartesian_prod(axis_weights, axis_weights).prod(-1)


def integrate_unit_square(log_density) -> float:
    points, weights = square_rule(0.0, 1.0, UNIT_SQUARE_PANELS)
    return float((weights * log_density(points).exp()).sum())


@pytest.mark.parametrize("name", ["uniform_exponential", "exponential"])
def test_relaxed_densities_integrate_to_one_and_mean_field_to_less(name):
    """Numerical integration over [0, 1]^2 (1 + 1 units, bounded densities): exact -> 1, mean field -> < 1."""
    rbm = random_rbm(1, 1, weight_scale=2.0)
    smoother = smoothers(2)[name]
    exact = OverlappingRelaxedRBM(rbm, smoother, log_partition_method="exact")
    mean_field = OverlappingRelaxedRBM(rbm, smoother)
    assert abs(integrate_unit_square(exact.log_prob) - 1) < QUAD_TOLERANCE
    mean_field_mass = integrate_unit_square(mean_field.log_prob)
    assert mean_field_mass < 1 - 1e-3  # strictly below 1: the coupling W = 2 makes the gap visible
    uncoupled = RBM(rbm.bias1, rbm.bias2, torch.zeros(1, 1, dtype=DTYPE))
    assert abs(integrate_unit_square(OverlappingRelaxedRBM(uncoupled, smoother).log_prob) - 1) < QUAD_TOLERANCE


@pytest.mark.parametrize("name", ["power", "uniform_exponential"])
def test_overlapping_samples_have_the_relaxed_mean(name):
    """E[zeta] = sum_z p(z) E[zeta | z], by enumeration, within 4 standard errors."""
    torch.manual_seed(5)
    rbm = random_rbm(2, 2)
    smoother = smoothers(4)[name]
    draws = OverlappingRelaxedRBM(rbm, smoother).sample((40_000,))
    states, probabilities = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)
    conditional_means = [
        integrate.quad(lambda x: x * float(smoothers(1)[name].conditional(tensor(z)).log_prob(tensor(x)).exp()), 0, 1, limit=200)[0]
        for z in (0.0, 1.0)
    ]
    expected = (probabilities.unsqueeze(-1) * (conditional_means[0] + (conditional_means[1] - conditional_means[0]) * states)).sum(0)
    standard_error = draws.std(0) / math.sqrt(draws.size(0))
    assert bool(((draws.mean(0) - expected).abs() < NUM_STANDARD_ERRORS * standard_error).all())


def test_overlapping_samples_follow_the_relaxed_law_jointly():
    """Which side of 1/2 each coordinate falls: 2^N cells whose exact masses are sum_z p(z) prod_i P_r(side_i | z_i).

    The cells' law depends on the coupling of the units (unlike the means), so total variation between
    the draws' frequencies and the enumerated masses tests the joint law of the ancestral sampler; the
    smoother is the power function at beta 3, singular at both ends.
    """
    torch.manual_seed(8)
    rbm = random_rbm(2, 2, weight_scale=2.0)
    smoother = smoothers(4)["power"]
    draws = OverlappingRelaxedRBM(rbm, smoother).sample((LAW_NUM_DRAWS,))
    states, probabilities = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)  # (S, N), (S,)
    cells = torch.cartesian_prod(*[tensor([0.0, 1.0])] * 4)  # (C, N): 1 = above 1/2, most significant bit first
    below_half = smoother.conditional(states).cdf(torch.full_like(states, 0.5))  # (S, N): P(zeta_i <= 1/2 | z_i)
    side = torch.where(cells.unsqueeze(1) == 1, 1 - below_half, below_half)  # (C, S, N)
    masses = (side.prod(-1) * probabilities).sum(-1)
    frequencies = empirical_probabilities(draws > 0.5)
    assert total_variation(frequencies, masses) <= total_variation_threshold(masses, LAW_NUM_DRAWS)


@pytest.mark.parametrize("margin", [1.0, 5.0])
def test_gaussian_integral_samples_follow_the_mixture_on_projections(margin):
    """u^T zeta ~ sum_z p(z) N(u^T z, u^T A^{-1} u) for fixed directions u (Cramer-Wold): KS per direction.

    Margin 5 (DVAE#'s: component standard deviations <= 5^-1/2) separates the components, so the weights
    p(z) show; margin 1 makes A^{-1} far from I / lambda, so the coupling of the Gaussian shows.
    """
    torch.manual_seed(9)
    rbm = random_rbm(2, 3, weight_scale=1.5)
    prior = GaussianIntegralRelaxedRBM(rbm, minimum_gaussian_shift(rbm.weight, margin))
    draws = prior.sample((LAW_NUM_DRAWS,))
    states, probabilities = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)
    covariance = torch.linalg.inv(prior.precision_matrix())
    directions = torch.randn(NUM_PROJECTIONS, 5, generator=torch.Generator().manual_seed(3), dtype=DTYPE)
    critical = math.sqrt(math.log(2 / KS_FALSE_ALARM_PROBABILITY) / (2 * LAW_NUM_DRAWS))
    for direction in directions:
        scale = torch.sqrt(direction @ covariance @ direction)
        projected = (draws @ direction).sort().values
        component_cdfs = torch.special.ndtr((projected.unsqueeze(-1) - states @ direction) / scale)  # (N, S)
        cdf = (component_cdfs * probabilities).sum(-1)
        empirical = torch.arange(1, LAW_NUM_DRAWS + 1, dtype=DTYPE) / LAW_NUM_DRAWS
        distance = float(torch.maximum((empirical - cdf).abs(), (empirical - 1 / LAW_NUM_DRAWS - cdf).abs()).max())
        assert distance <= critical


# --------------------------------------------------------------------------- Gaussian integral trick
def gaussian_mixture_log_density(prior: GaussianIntegralRelaxedRBM, zeta: torch.Tensor) -> torch.Tensor:
    """log sum_z p(z) N(zeta; z, A^{-1}) by enumeration."""
    rbm = prior.rbm
    states, probabilities = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)
    normal = torch.distributions.MultivariateNormal(states, precision_matrix=prior.precision_matrix())
    components = normal.log_prob(zeta.unsqueeze(-2))  # (..., S)
    return torch.logsumexp(components + torch.log(probabilities), dim=-1)


def test_gaussian_integral_relaxation_is_the_gaussian_mixture_over_z():
    rbm = random_rbm(2, 3, weight_scale=1.5)
    prior = GaussianIntegralRelaxedRBM(rbm, minimum_gaussian_shift(rbm.weight, 0.5))
    zeta = 3 * torch.randn(40, 5, generator=torch.Generator().manual_seed(2), dtype=DTYPE)
    assert torch.allclose(prior.log_prob(zeta), gaussian_mixture_log_density(prior, zeta), rtol=EXACT_TOLERANCE, atol=EXACT_TOLERANCE)
    assert torch.allclose(prior.log_det_precision(), torch.logdet(prior.precision_matrix()), rtol=0, atol=EXACT_TOLERANCE)


def test_gaussian_integral_posterior_over_z_is_bayes_rule():
    rbm = random_rbm(1, 2)
    prior = GaussianIntegralRelaxedRBM(rbm, 4.0)
    zeta = tensor([0.3, -0.4, 1.2])
    states, probabilities = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)
    joint = torch.log(probabilities) + torch.distributions.MultivariateNormal(states, precision_matrix=prior.precision_matrix()).log_prob(zeta)
    posterior_means = (torch.softmax(joint, 0).unsqueeze(-1) * states).sum(0)
    assert torch.allclose(torch.sigmoid(prior.conditional_logits(zeta)), posterior_means, rtol=0, atol=EXACT_TOLERANCE)


def test_gaussian_integral_density_integrates_to_one_with_the_rbm_mean():
    rbm = random_rbm(1, 1, weight_scale=2.0)
    prior = GaussianIntegralRelaxedRBM(rbm, minimum_gaussian_shift(rbm.weight, 1.0))
    half_width = 12.0  # covariance <= 1 (smallest eigenvalue of A is 1): 12 standard deviations, mass e^-72 outside
    points, weights = square_rule(-half_width, 1 + half_width, GAUSSIAN_BOX_PANELS)
    density = weights * prior.log_prob(points).exp()
    assert abs(float(density.sum()) - 1) < QUAD_TOLERANCE
    states, probabilities = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)
    rbm_mean = (probabilities.unsqueeze(-1) * states).sum(0)
    assert torch.allclose((density.unsqueeze(-1) * points).sum(0), rbm_mean, rtol=0, atol=QUAD_TOLERANCE)


def test_gaussian_integral_samples_have_the_rbm_mean():
    torch.manual_seed(6)
    rbm = random_rbm(2, 2)
    draws = GaussianIntegralRelaxedRBM(rbm, minimum_gaussian_shift(rbm.weight, 5.0)).sample((40_000,))
    states, probabilities = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)
    expected = (probabilities.unsqueeze(-1) * states).sum(0)
    standard_error = draws.std(0) / math.sqrt(draws.size(0))
    assert bool(((draws.mean(0) - expected).abs() < NUM_STANDARD_ERRORS * standard_error).all())


# --------------------------------------------------------------------------- log Z, shapes, bad input
def test_log_prob_subtracts_the_rbms_log_partition():
    rbm = random_rbm(2, 2)
    zeta = interior_points(3, 4)
    priors = [OverlappingRelaxedRBM(rbm, smoothers(4)["power"]), GaussianIntegralRelaxedRBM(rbm, 6.0), GumBoltPrior(rbm)]
    for prior in priors:
        assert torch.allclose(prior.unnormalized_log_prob(zeta) - prior.log_prob(zeta), rbm.log_partition.expand(3), rtol=0, atol=1e-12)
    supplied = RBM(rbm.bias1, rbm.bias2, rbm.weight, log_partition=7.0)
    assert torch.allclose(GumBoltPrior(supplied).log_prob(zeta), GumBoltPrior(supplied).unnormalized_log_prob(zeta) - 7.0)


def test_large_rbm_without_log_partition_gives_unnormalized_values_only():
    rbm = RBM(torch.zeros(21, dtype=DTYPE), torch.zeros(21, dtype=DTYPE), torch.zeros(21, 21, dtype=DTYPE))
    prior = OverlappingRelaxedRBM(rbm, PowerFunctionSmoothing(tensor(3.0), logits=torch.zeros(42, dtype=DTYPE)))
    zeta = interior_points(2, 42)
    assert prior.unnormalized_log_prob(zeta).shape == (2,)
    with pytest.raises(ValueError, match="log_partition"):
        prior.log_prob(zeta)
    with pytest.raises(ValueError, match="too many"):
        OverlappingRelaxedRBM(rbm, prior.smoother, log_partition_method="exact")


def test_expand_keeps_the_density():
    rbm = random_rbm(2, 2)
    for prior in [OverlappingRelaxedRBM(rbm, smoothers(4)["power"]), GaussianIntegralRelaxedRBM(rbm, 6.0), GumBoltPrior(rbm)]:
        expanded = prior.expand((3, 2))
        assert expanded.batch_shape == (3, 2) and expanded.event_shape == (4,)
        zeta = interior_points(6, 4).reshape(3, 2, 4)
        assert torch.equal(expanded.log_prob(zeta), prior.log_prob(zeta))
        assert expanded.sample().shape == (3, 2, 4)


def test_bad_arguments_raise_errors_naming_them():
    rbm = random_rbm(2, 2)
    with pytest.raises(ValueError, match="shift"):
        GaussianIntegralRelaxedRBM(rbm, float(torch.linalg.matrix_norm(rbm.weight, ord=2)) * 0.99)
    batched = RBM(torch.zeros(3, 2, dtype=DTYPE), torch.zeros(2, dtype=DTYPE), torch.zeros(2, 2, dtype=DTYPE))
    with pytest.raises(ValueError, match="batch shape"):
        GumBoltPrior(batched)
    with pytest.raises(ValueError, match="smoother batch shape"):
        OverlappingRelaxedRBM(rbm, smoothers(3)["power"])
    with pytest.raises(ValueError, match="log_partition_method"):
        OverlappingRelaxedRBM(rbm, smoothers(4)["power"], log_partition_method="bethe")
    with pytest.raises(ValueError, match="num_iterations"):
        OverlappingRelaxedRBM(rbm, smoothers(4)["power"], num_iterations=0)


# --------------------------------------------------------------------------- GumBolt
def test_gumbolt_prior_is_the_rbm_at_binary_points():
    rbm = random_rbm(2, 2)
    states, probabilities = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)
    assert torch.allclose(GumBoltPrior(rbm).log_prob(states), torch.log(probabilities), rtol=0, atol=EXACT_TOLERANCE)


@pytest.mark.parametrize("units", [(1, 1), (2, 1)])
def test_gumbolt_relaxed_partition_function_is_below_the_bound(units):
    """int_[0,1]^N e^{-E} <= 2^{-N} Z (docs/derivations/dvae_sharp.md), by Gauss-Legendre (e^{-E} is smooth)."""
    rbm = random_rbm(*units, weight_scale=2.0)
    num_units = sum(units)
    nodes, weights = np.polynomial.legendre.leggauss(30)
    nodes, weights = tensor((nodes + 1) / 2), tensor(weights / 2)
    grid = torch.cartesian_prod(*[nodes] * num_units).reshape(-1, num_units)
    grid_weights = torch.cartesian_prod(*[weights] * num_units).reshape(-1, num_units).prod(-1)
    relaxed = (grid_weights * GumBoltPrior(rbm).unnormalized_log_prob(grid).exp()).sum()
    bound = torch.exp(rbm.log_partition) / 2**num_units
    assert float(relaxed) < float(bound)
    uncoupled = RBM(torch.zeros(units[0], dtype=DTYPE), torch.zeros(units[1], dtype=DTYPE), torch.zeros(*units, dtype=DTYPE))
    flat = (grid_weights * GumBoltPrior(uncoupled).unnormalized_log_prob(grid).exp()).sum()
    assert abs(float(flat) - 1.0) < 1e-12  # e^{-E} = 1: the integral is 1 and the bound 2^{-N} 2^N = 1 is attained


def test_gumbolt_posterior_samples_follow_the_binary_concrete_cdf():
    """P(zeta <= s) = sigmoid(tau logit(s) - l) (Maddison et al. 2017, binary Concrete)."""
    torch.manual_seed(7)
    temperature, logit = tensor(0.7), tensor(0.4)
    draws = GumBoltPosterior(temperature, logits=logit).sample((100_000,))
    cdf = torch.sigmoid(temperature * (torch.log(draws) - torch.log1p(-draws)) - logit)
    assert stats.kstest(cdf.numpy(), "uniform").pvalue > 1e-3


def test_gumbolt_posterior_log_prob_is_bernoulli_at_binary_points():
    logits = tensor([-1.0, 0.5, 3.0])
    posterior = GumBoltPosterior(tensor(0.5), logits=logits)
    for value in (0.0, 1.0):
        zeta = torch.full((3,), value, dtype=DTYPE)
        assert torch.allclose(posterior.log_prob(zeta), torch.distributions.Bernoulli(logits=logits).log_prob(zeta), rtol=0, atol=1e-14)

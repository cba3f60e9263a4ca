"""DVAESharpELBO / GumBoltELBO against exact enumeration + quadrature on a tiny model.

The tiny model: an RBM over 1 + 1 units, relaxed; x (2 pixels) ~ Bernoulli(logits c + V zeta); a
factorial guide with logits d + U x. With K = 2 particles the bound E log (w_1 + w_2)/2 is a
4-dimensional integral. Ground truth: per unit and particle, z in {0, 1} is enumerated (weights
1 - q, q) and zeta = R_z^{-1}(u) integrated over u in [0, 1] by Gauss-Legendre; for GumBolt
zeta = sigmoid((l + logit u)/tau) over u. Every density in the ground truth is written from its
definition here (RBM by enumeration, smoother formulas), independently of the library.
The Monte Carlo side replicates one data point M times, so the gradient of the loss is a sum of
M independent estimates; R such sums give the mean and its standard error.
"""

import itertools
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_dgm.distributions.gumbolt import GumBoltPosterior, GumBoltPrior
from pyro_dgm.distributions.power_function import PowerFunctionSmoothing
from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.distributions.relaxed_boltzmann import OverlappingRelaxedRBM
from pyro_dgm.distributions.uniform_exponential import UNIFORM_WEIGHT, UniformExponentialMixture
from pyro_dgm.infer.objectives.dvae_sharp import DVAESharpELBO, GumBoltELBO
from tests.distributions.rbm_brute_force import brute_force_probabilities

DTYPE = torch.float64
NUM_PARTICLES = 2
NUM_UNITS = 2
DATA = torch.tensor([[1.0, 0.0]], dtype=DTYPE)
BETA = 3.0
TEMPERATURE = 0.6
# Gauss-Legendre nodes per dimension. From 14 to 20 nodes the exact bounds move by 7e-5 (power
# smoother: fractional powers of u at the ends), 2e-6 (GumBolt) and 2e-10 (uniform + exponential),
# all far below the Monte Carlo standard errors they are compared with (> 1e-3).
QUADRATURE_NODES = 14
REPLICATES = 4000
REPEATS = 25
NUM_STANDARD_ERRORS = 4.0
CONVERGED_MEAN_FIELD = 100  # sweeps: the 1 + 1 mean field is converged to rounding, so its envelope gradient is exact


def parameters():
    generator = torch.Generator().manual_seed(3)

    def draw(*shape, scale=0.7):
        return (scale * torch.randn(*shape, generator=generator, dtype=DTYPE)).requires_grad_()

    return {
        "a1": draw(1), "a2": draw(1), "W": draw(1, 1, scale=1.5),
        "c": draw(2), "V": draw(2, 2, scale=1.5), "d": draw(2), "U": draw(2, 2),
    }


def set_params(values):
    pyro.clear_param_store()
    for name, value in values.items():
        pyro.param(name, value.detach().clone())
    return [pyro.param(name).unconstrained() for name in values]


def make_pair(prior_fn, guide_fn):
    def model(x):
        rbm = RBM(pyro.param("a1"), pyro.param("a2"), pyro.param("W"))
        with pyro.plate("data", x.size(0)):
            zeta = pyro.sample("zeta", prior_fn(rbm))
            logits = pyro.param("c") + zeta @ pyro.param("V").T
            pyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x)

    def guide(x):
        with pyro.plate("data", x.size(0)):
            logits = pyro.param("d") + x @ pyro.param("U").T
            pyro.sample("zeta", guide_fn(logits).to_event(1))

    return model, guide


# --------------------------------------------------------------------------- ground truth, from definitions
def power_conditionals(beta):
    def log_density(zeta, z):
        distance = torch.where(z.bool(), 1 - zeta, zeta)
        return -math.log(beta) + (1 / beta - 1) * torch.log(distance)

    def inverse(u, z):
        return torch.where(z.bool(), 1 - (1 - u) ** beta, u**beta)

    return log_density, inverse


def uniform_exponential_log_density(beta):
    def log_density(zeta, z):
        distance = torch.where(z.bool(), 1 - zeta, zeta)
        exponential = beta * torch.exp(-beta * distance) / (1 - math.exp(-beta))
        return torch.log((1 - UNIFORM_WEIGHT) * exponential + UNIFORM_WEIGHT)

    return log_density


def gauss_legendre_grid():
    """Tensor-product nodes (P, K, 2) and weights (P,) on [0, 1]^(K x 2)."""
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    nodes, weights = torch.tensor((nodes + 1) / 2, dtype=DTYPE), torch.tensor(weights / 2, dtype=DTYPE)
    dims = NUM_PARTICLES * NUM_UNITS
    grid = torch.cartesian_prod(*[nodes] * dims).reshape(-1, NUM_PARTICLES, NUM_UNITS)
    return grid, torch.cartesian_prod(*[weights] * dims).reshape(-1, dims).prod(-1)


def exact_relaxed_log_prior(values, conditional_log_density):
    """log sum_z p(z) prod_i r(zeta_i | z_i), z enumerated."""
    states, probabilities = brute_force_probabilities(values["a1"], values["a2"], values["W"])

    def log_prior(zeta):
        terms = [conditional_log_density(zeta, state.expand_as(zeta)).sum(-1) for state in states]
        return torch.logsumexp(torch.stack(terms, -1) + torch.log(probabilities), -1)

    return log_prior


def mean_field_relaxed_log_prior(values, conditional_log_density):
    """sum_i c_i + max_m [(a + b)^T m + m1 W m2 + H(m)] - log Z: the fixed point iterated with autograd throughout."""
    states, probabilities = brute_force_probabilities(values["a1"], values["a2"], values["W"])
    log_partition = torch.logsumexp(torch.log(probabilities) + 0, 0)  # = 0: probabilities are normalised
    neg_energy_states = values["a1"] * states[:, 0] + values["a2"] * states[:, 1] + values["W"][0, 0] * states[:, 0] * states[:, 1]
    log_partition = torch.logsumexp(neg_energy_states, 0)

    def log_prior(zeta):
        c = conditional_log_density(zeta, torch.zeros_like(zeta))
        b = conditional_log_density(zeta, torch.ones_like(zeta)) - c
        field1, field2 = values["a1"] + b[..., 0], values["a2"] + b[..., 1]
        m1 = torch.full_like(field1, 0.5)
        for _ in range(CONVERGED_MEAN_FIELD):
            m2 = torch.sigmoid(field2 + values["W"][0, 0] * m1)
            m1 = torch.sigmoid(field1 + values["W"][0, 0] * m2)
        entropy = sum(-(m * torch.log(m) + (1 - m) * torch.log1p(-m)) for m in (m1, m2))
        return c.sum(-1) + field1 * m1 + field2 * m2 + values["W"][0, 0] * m1 * m2 + entropy - log_partition

    return log_prior


def log_weights_at(values, zeta, log_prior, log_guide):
    likelihood_logits = values["c"] + zeta @ values["V"].T
    log_likelihood = dist.Bernoulli(logits=likelihood_logits).log_prob(DATA[0]).sum(-1)
    return log_likelihood + log_prior(zeta) - log_guide(zeta)


def iw_bound(log_weights):
    return torch.logsumexp(log_weights, -1) - math.log(NUM_PARTICLES)


def guide_log_probs(values):
    logits = values["d"] + DATA[0] @ values["U"].T
    return torch.nn.functional.logsigmoid(-logits), torch.nn.functional.logsigmoid(logits)


def mixture_log_density(values, conditional_log_density):
    log_q0, log_q1 = guide_log_probs(values)

    def log_guide(zeta):
        return torch.logaddexp(
            log_q0 + conditional_log_density(zeta, torch.zeros_like(zeta)), log_q1 + conditional_log_density(zeta, torch.ones_like(zeta))
        ).sum(-1)

    return log_guide


def exact_bound_over_zeta(values, conditional_log_density, log_prior):
    """E log mean_k w_k = int prod_k q(zeta_k | x) bound(zeta) d zeta, Gauss-Legendre over zeta (bounded densities)."""
    grid, grid_weight = gauss_legendre_grid()
    log_guide = mixture_log_density(values, conditional_log_density)
    bound = iw_bound(log_weights_at(values, grid, log_prior, log_guide))
    return (grid_weight * log_guide(grid).sum(-1).exp() * bound).sum()


def exact_bound_by_enumeration(values, conditional_log_density, inverse_cdf, log_prior):
    """E log mean_k w_k: z of every particle and unit enumerated (weights q, 1 - q), zeta = R_z^{-1}(u), u by Gauss-Legendre."""
    grid, grid_weight = gauss_legendre_grid()
    log_q0, log_q1 = guide_log_probs(values)
    log_guide = mixture_log_density(values, conditional_log_density)
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=NUM_PARTICLES * NUM_UNITS):
        z = torch.tensor(bits, dtype=DTYPE).reshape(NUM_PARTICLES, NUM_UNITS)
        log_mass = torch.where(z.bool(), log_q1, log_q0).sum()
        bound = iw_bound(log_weights_at(values, inverse_cdf(grid, z), log_prior, log_guide))
        total = total + log_mass.exp() * (grid_weight * bound).sum()
    return total


def exact_gumbolt_bound(values):
    """E log mean_k w_k over binary-Concrete draws: zeta = sigmoid((l + logit u) / tau), u by Gauss-Legendre."""
    grid, grid_weight = gauss_legendre_grid()
    logits = values["d"] + DATA[0] @ values["U"].T
    zeta = torch.sigmoid((logits + torch.log(grid) - torch.log1p(-grid)) / TEMPERATURE)
    states, _ = brute_force_probabilities(values["a1"], values["a2"], values["W"])

    def neg_energy(value):
        return values["a1"] * value[..., 0] + values["a2"] * value[..., 1] + values["W"][0, 0] * value[..., 0] * value[..., 1]

    log_partition = torch.logsumexp(neg_energy(states), 0)

    def log_guide(value):
        return (value * torch.nn.functional.logsigmoid(logits) + (1 - value) * torch.nn.functional.logsigmoid(-logits)).sum(-1)

    bound = iw_bound(log_weights_at(values, zeta, lambda value: neg_energy(value) - log_partition, log_guide))
    return (grid_weight * bound).sum()


def monte_carlo_gradient(objective, model, guide, values):
    """Mean and standard error of the per-data-point estimator of d bound / d parameters, and of the bound."""
    leaves = set_params(values)
    data = DATA.expand(REPLICATES, -1)
    estimates, bounds = [], []
    for _ in range(REPEATS):
        loss = objective.differentiable_loss(model, guide, data)
        gradient = torch.autograd.grad(-loss / REPLICATES, leaves)
        estimates.append(torch.cat([g.reshape(-1) for g in gradient]))
        bounds.append(-float(loss.detach()) / REPLICATES)
    stacked = torch.stack(estimates)
    return stacked.mean(0), stacked.std(0) / math.sqrt(REPEATS), np.mean(bounds), np.std(bounds) / math.sqrt(REPEATS)


def exact_gradient(bound, values):
    gradient = torch.autograd.grad(bound, list(values.values()), allow_unused=True)
    return torch.cat([(torch.zeros_like(v) if g is None else g).reshape(-1) for g, v in zip(gradient, values.values())])


def assert_matches(estimate, standard_error, exact):
    unused = exact == 0  # U's weights on the pixel that is 0 in DATA: no gradient on either side
    assert bool((estimate[unused] == 0).all()) and bool((standard_error[~unused] > 0).all())
    estimate, standard_error, exact = estimate[~unused], standard_error[~unused], exact[~unused]
    assert bool(((estimate - exact).abs() < NUM_STANDARD_ERRORS * standard_error).all()), (estimate, exact, standard_error)
    # power: the estimator resolves the gradient (4 SE below half its size for most entries)
    assert float((NUM_STANDARD_ERRORS * standard_error < 0.5 * exact.abs()).float().mean()) >= 0.5


# --------------------------------------------------------------------------- the tests
def check_against_exact(objective, model, guide, exact_bound_fn):
    values = parameters()
    exact = exact_bound_fn(values)
    exact_grad = exact_gradient(exact, values)
    torch.manual_seed(0)
    estimate, standard_error, bound, bound_error = monte_carlo_gradient(objective, model, guide, values)
    assert abs(bound - float(exact.detach())) < NUM_STANDARD_ERRORS * bound_error, (bound, float(exact.detach()), bound_error)
    assert_matches(estimate, standard_error, exact_grad)


def test_power_smoother_exact_relaxation_matches_enumeration_and_quadrature():
    """Implicit-gradient draws + exact relaxed prior: bound and all 15 partial derivatives."""
    log_density, inverse = power_conditionals(BETA)
    model, guide = make_pair(
        lambda rbm: OverlappingRelaxedRBM(rbm, PowerFunctionSmoothing(torch.tensor(BETA, dtype=DTYPE), logits=torch.zeros(2, dtype=DTYPE)), "exact"),
        lambda logits: PowerFunctionSmoothing(torch.tensor(BETA, dtype=DTYPE), logits=logits),
    )
    objective = DVAESharpELBO(num_particles=NUM_PARTICLES, log_partition_gradient="exact")
    check_against_exact(
        objective, model, guide,
        lambda values: exact_bound_by_enumeration(values, log_density, inverse, exact_relaxed_log_prior(values, log_density)),
    )


def test_uniform_exponential_mean_field_relaxation_matches_quadrature():
    """Mean-field relaxed prior (converged): the envelope gradient equals the derivative of the quadrature."""
    log_density = uniform_exponential_log_density(BETA)
    smoother = lambda logits: UniformExponentialMixture(torch.tensor(BETA, dtype=DTYPE), logits=logits)  # noqa: E731
    model, guide = make_pair(
        lambda rbm: OverlappingRelaxedRBM(rbm, smoother(torch.zeros(2, dtype=DTYPE)), num_iterations=CONVERGED_MEAN_FIELD),
        smoother,
    )
    objective = DVAESharpELBO(num_particles=NUM_PARTICLES, log_partition_gradient="exact")
    check_against_exact(
        objective, model, guide,
        lambda values: exact_bound_over_zeta(values, log_density, mean_field_relaxed_log_prior(values, log_density)),
    )


def test_gumbolt_objective_matches_quadrature():
    model, guide = make_pair(GumBoltPrior, lambda logits: GumBoltPosterior(torch.tensor(TEMPERATURE, dtype=DTYPE), logits=logits))
    objective = GumBoltELBO(num_particles=NUM_PARTICLES, log_partition_gradient="exact")
    check_against_exact(objective, model, guide, exact_gumbolt_bound)


def fixed_pair():
    """The tiny power-smoother pair with the exact relaxation."""
    beta = torch.tensor(BETA, dtype=DTYPE)
    return make_pair(
        lambda rbm: OverlappingRelaxedRBM(rbm, PowerFunctionSmoothing(beta, logits=torch.zeros(2, dtype=DTYPE)), "exact"),
        lambda logits: PowerFunctionSmoothing(beta, logits=logits),
    )


@pytest.mark.parametrize("kl_weight", [1.0, 0.3])
def test_loss_is_the_warmed_log_mean_weight_of_the_replayed_particles(kl_weight):
    """-loss = sum_b log mean_k exp(log p(x|zeta) + kappa [log p(zeta) - log q(zeta|x)]), recomputed by hand."""
    values = parameters()
    set_params(values)
    model, guide = fixed_pair()
    data = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=DTYPE)

    def scaled(fn):
        return lambda x: _scale_latents(fn, kl_weight, x)

    objective = DVAESharpELBO(num_particles=3, log_partition_gradient="exact")
    objective.differentiable_loss(scaled(model), scaled(guide), data)  # guesses max_plate_nesting (draws)
    torch.manual_seed(4)
    loss = objective.differentiable_loss(scaled(model), scaled(guide), data)
    torch.manual_seed(4)
    guide_trace = pyro.poutine.trace(objective._vectorized_num_particles(scaled(guide))).get_trace(data)
    zeta = guide_trace.nodes["zeta"]["value"]  # (K, B, 2)
    rbm = RBM(pyro.param("a1"), pyro.param("a2"), pyro.param("W"))
    beta = torch.tensor(BETA, dtype=DTYPE)
    log_prior = OverlappingRelaxedRBM(rbm, PowerFunctionSmoothing(beta, logits=torch.zeros(2, dtype=DTYPE)), "exact").log_prob(zeta)
    log_guide = PowerFunctionSmoothing(beta, logits=pyro.param("d") + data @ pyro.param("U").T).log_prob(zeta).sum(-1)
    log_likelihood = dist.Bernoulli(logits=pyro.param("c") + zeta @ pyro.param("V").T).log_prob(data).sum(-1)
    expected = -(torch.logsumexp(log_likelihood + kl_weight * (log_prior - log_guide), 0) - math.log(3)).sum()
    assert torch.allclose(loss, expected, rtol=1e-12, atol=1e-12)


class _ScaleLatents(pyro.poutine.messenger.Messenger):
    """Scale every unobserved site by kl_weight, as the models' kl_scale does."""

    def __init__(self, kl_weight):
        super().__init__()
        self.kl_weight = kl_weight

    def _pyro_sample(self, msg):
        if not msg["is_observed"]:
            msg["scale"] = msg["scale"] * self.kl_weight


def _scale_latents(fn, kl_weight, x):
    with _ScaleLatents(kl_weight):
        return fn(x)


def test_persistent_log_partition_reports_the_exact_value_and_steps_chains():
    values = parameters()
    set_params(values)
    model, guide = fixed_pair()
    exact, persistent = (DVAESharpELBO(num_particles=2, log_partition_gradient=mode, num_chains=7, num_sweeps=3) for mode in ("exact", "persistent"))
    torch.manual_seed(5)
    exact_loss = exact.differentiable_loss(model, guide, DATA)
    torch.manual_seed(5)
    persistent_loss = persistent.differentiable_loss(model, guide, DATA)
    assert torch.allclose(exact_loss, persistent_loss, rtol=1e-12)
    assert persistent.log_partition_source == {"zeta": "exact"} and persistent.state_dict()["zeta"]["chains"].shape == (7, 2)
    with torch.no_grad():  # a loss evaluation does not advance the chains
        before = persistent.state_dict()["zeta"]["chains"].clone()
        persistent.loss(model, guide, DATA)
        assert torch.equal(before, persistent.state_dict()["zeta"]["chains"])


def test_large_rbm_without_estimate_omits_log_partition_with_a_warning():
    num = 21
    zeros = torch.zeros(num, dtype=DTYPE)

    def model(x):
        rbm = RBM(zeros, zeros, torch.zeros(num, num, dtype=DTYPE))
        with pyro.plate("data", x.size(0)):
            zeta = pyro.sample("zeta", GumBoltPrior(rbm))
            pyro.sample("x", dist.Bernoulli(logits=zeta[..., :2]).to_event(1), obs=x)

    def guide(x):
        with pyro.plate("data", x.size(0)):
            pyro.sample("zeta", GumBoltPosterior(torch.tensor(0.5, dtype=DTYPE), logits=torch.zeros(x.size(0), 2 * num, dtype=DTYPE)).to_event(1))

    objective = GumBoltELBO(num_particles=2, num_chains=4, num_sweeps=1)
    with pytest.warns(UserWarning, match="omits log Z"):
        loss = objective.differentiable_loss(model, guide, DATA)
    assert torch.isfinite(loss) and objective.log_partition_source == {"zeta": "omitted"}


def test_non_reparameterised_guide_site_is_rejected_by_name():
    model, _ = fixed_pair()
    set_params(parameters())

    def guide(x):
        with pyro.plate("data", x.size(0)):
            pyro.sample("zeta", dist.Bernoulli(probs=torch.full((x.size(0), 2), 0.5, dtype=DTYPE)).to_event(1))

    with pytest.raises(NotImplementedError, match="guide site 'zeta'"):
        DVAESharpELBO(num_particles=2).differentiable_loss(model, guide, DATA)

r"""BiHMELBO against exact enumeration of TinySBN's 2^5 latent configurations.

Exact references, per data point x_b (C = 32 configurations h, weights w = p/q,
omega = sqrt(w)):

* finite-K expectations of the loss and of the gradient estimator, by enumerating
  all C^K tuples of particles (K <= 3);
* log p~*(x) = 2 log sum_h sqrt(p q) (BiHM Eq. 1) and its gradient by autograd,
  itself checked by finite differences and against the Eq. 6 identity;
* the first-order (1/K) bias of both estimators in closed form (delta method), so
  large-K comparisons need no hand-set allowance.

Replicates are an extra batch dimension: the minibatch holds R copies of the data.
"""

from __future__ import annotations

import math

import pyro
import pyro.optim
import pytest
import torch

from pyro_dgm.infer.objectives.bihm import BiHMELBO
from tests.infer.exact_expectations import (
    exact_log_bound,
    exact_log_marginal,
    exact_particles,
    finite_k_expectation,
    particle_tuple_indices,
)
from tests.infer.fixed_draws import DrawPool, guide_draws
from tests.infer.monte_carlo_checks import (
    NUM_STANDARD_ERRORS,
    ROUNDING_TOLERANCE,
    per_point_mean_and_standard_error,
    replicate,
)
from tests.infer.small_models import (
    NUM_DATA_POINTS,
    ExactPosteriorPair,
    TinySBN,
    distinct_binary_data,
)

FINITE_DIFFERENCE_STEP = 1e-6
"""Central differences in float64: truncation O(step^2) ~ 1e-12, rounding ~1e-16/step ~ 1e-10."""

FINITE_DIFFERENCE_TOLERANCE = 1e-7
"""Well above both finite-difference error terms, far below any real discrepancy."""


def bihm_loss_statistic(tuple_log_w: torch.Tensor) -> torch.Tensor:
    """-2 log (1/K) sum_k sqrt(w_k) for each tuple (Eq. 4)."""
    num_particles = tuple_log_w.size(1)
    return -2 * (torch.logsumexp(0.5 * tuple_log_w, dim=1) - math.log(num_particles))


# ---------------------------------------------------------------------------- loss


@pytest.mark.parametrize("num_particles", [1, 2, 3])
def test_mean_loss_equals_exact_finite_k_expectation(sbn, data, num_particles):
    num_replicates = 4000
    objective = BiHMELBO(num_particles=num_particles)
    objective.loss(sbn.model, sbn.guide, replicate(data, num_replicates))
    mean, standard_error = per_point_mean_and_standard_error(-objective.log_bound, NUM_DATA_POINTS)
    with torch.no_grad():
        exact = exact_particles(sbn, data)
        expected = finite_k_expectation(
            exact.guide_log_prob, exact.log_weights, num_particles, bihm_loss_statistic
        )
        if num_particles == 1:  # K = 1: the loss is minus the ELBO, -E_q[log p - log q]
            elbo = (exact.guide_log_prob.exp() * exact.log_weights).sum(0)
            torch.testing.assert_close(expected, -elbo)
    assert ((mean - expected).abs() < NUM_STANDARD_ERRORS * standard_error).all(), (mean, expected)


def test_mean_loss_at_large_k_approaches_minus_log_bound(sbn, data):
    r"""E[loss] = -log p~* + (p/p~* - 1)/K + O(K^-2): Var_q(omega)/E_q(omega)^2 = p/p~* - 1."""
    num_particles, num_replicates = 200, 1000
    objective = BiHMELBO(num_particles=num_particles)
    objective.loss(sbn.model, sbn.guide, replicate(data, num_replicates))
    mean, standard_error = per_point_mean_and_standard_error(-objective.log_bound, NUM_DATA_POINTS)
    with torch.no_grad():
        exact = exact_particles(sbn, data)
        log_bound = exact_log_bound(exact)
        first_order_bias = (exact_log_marginal(exact) - log_bound).expm1() / num_particles
    assert ((mean - (-log_bound + first_order_bias)).abs() < NUM_STANDARD_ERRORS * standard_error).all()


def test_loss_is_scaled_by_subsample_scale(sbn, data):
    num_particles, num_data = 5, 10 * data.size(0)
    objective = BiHMELBO(num_particles=num_particles)
    draws = guide_draws(sbn, data, num_particles)  # subsampling consumes RNG: fix the draws
    full = objective.loss(sbn.model, DrawPool(draws)(sbn.guide), data)
    full_bound = objective.log_bound
    scaled = objective.loss(sbn.model, DrawPool(draws)(sbn.guide), data, num_data=num_data)
    torch.testing.assert_close(objective.log_bound, full_bound)  # per-point weights unscaled
    assert scaled == pytest.approx(num_data / data.size(0) * full, rel=1e-12)
    assert full == pytest.approx(-full_bound.sum().item(), rel=1e-12)


def test_effective_sample_size_bounds(sbn, data):
    num_particles, num_replicates = 50, 20
    objective = BiHMELBO(num_particles=1)
    objective.loss(sbn.model, sbn.guide, data)
    torch.testing.assert_close(objective.effective_sample_size, torch.ones_like(objective.log_bound))
    objective = BiHMELBO(num_particles=num_particles)
    objective.loss(sbn.model, sbn.guide, replicate(data, num_replicates))
    ess = objective.effective_sample_size
    assert ess.shape == (num_replicates * NUM_DATA_POINTS,)
    assert ((ess >= 1) & (ess <= num_particles)).all()
    assert (ess < num_particles * (1 - 1e-6)).any()  # q is not p*(h|x): weights vary


def test_exact_posterior_guide_gives_exact_loss_and_full_ess():
    """q(h|x) = p(h|x): omega = sqrt(p(x)) for every h, so the loss is -log p(x) at any K."""
    pair = ExactPosteriorPair()
    x = pair.all_data()
    num_particles = 6
    objective = BiHMELBO(num_particles=num_particles)
    loss = objective.loss(pair.model, pair.guide, x)
    log_marginal = pair.log_marginal(x)
    torch.testing.assert_close(objective.log_bound, log_marginal)
    assert loss == pytest.approx(-log_marginal.sum().item(), rel=1e-12)
    torch.testing.assert_close(
        objective.effective_sample_size, torch.full_like(log_marginal, float(num_particles))
    )


# ------------------------------------------------------------------------ gradient


def parameter_vector_grad(sbn: TinySBN) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in sbn.parameters()])


def exact_gradient(sbn: TinySBN, scalar: torch.Tensor) -> torch.Tensor:
    grads = torch.autograd.grad(scalar, list(sbn.parameters()), retain_graph=True)
    return torch.cat([g.reshape(-1) for g in grads])


def test_exact_reference_gradient_matches_finite_differences(sbn, data):
    """The reference d log p~*/d theta (autograd through enumeration) is right."""
    autograd = exact_gradient(sbn, exact_log_bound(exact_particles(sbn, data)).sum())
    finite_differences = []
    with torch.no_grad():
        for parameter in sbn.parameters():
            flat = parameter.view(-1)
            for i in range(flat.numel()):
                original = flat[i].item()
                flat[i] = original + FINITE_DIFFERENCE_STEP
                plus = exact_log_bound(exact_particles(sbn, data)).sum()
                flat[i] = original - FINITE_DIFFERENCE_STEP
                minus = exact_log_bound(exact_particles(sbn, data)).sum()
                flat[i] = original
                finite_differences.append((plus - minus) / (2 * FINITE_DIFFERENCE_STEP))
    torch.testing.assert_close(
        autograd, torch.stack(finite_differences), atol=FINITE_DIFFERENCE_TOLERANCE, rtol=0
    )


def test_eq6_identity_gradient_is_posterior_average_of_log_pq(sbn, data):
    """d log p~* = sum_h p*(h|x) d log p(x,h) q(h|x), p*(h|x) ∝ sqrt(p q) (Eq. 6, exact)."""
    exact = exact_particles(sbn, data)
    log_bound = exact_log_bound(exact)
    log_pq = exact.model_log_prob + exact.guide_log_prob
    posterior = torch.softmax(0.5 * log_pq.detach(), dim=0)
    left = exact_gradient(sbn, log_bound.sum())
    right = exact_gradient(sbn, (posterior * log_pq).sum())
    torch.testing.assert_close(left, right)


def grouped_gradient_estimates(
    sbn: TinySBN, data: torch.Tensor, num_particles: int, num_groups: int, replicates_per_group: int
) -> torch.Tensor:
    """(num_groups, num_params): row g is the loss gradient averaged over group g's replicates."""
    objective = BiHMELBO(num_particles=num_particles)
    batch = replicate(data, replicates_per_group)
    rows = []
    for _ in range(num_groups):  # a few groups give the standard error of the mean gradient
        sbn.zero_grad()
        objective.loss_and_grads(sbn.model, sbn.guide, batch)
        rows.append(parameter_vector_grad(sbn) / replicates_per_group)
    return torch.stack(rows)


def test_mean_gradient_equals_exact_finite_k_expectation():
    r"""K = 2: E[sum_k w~_k g(h_k)] = sum_a c_a g(a), c_a = K q_a E[omega_a / (omega_a + omega_b)].

    All C^2 particle pairs are enumerated.
    """
    num_particles = 2
    sbn, data = TinySBN(), distinct_binary_data(NUM_DATA_POINTS)
    estimates = grouped_gradient_estimates(
        sbn, data, num_particles, num_groups=50, replicates_per_group=200
    )
    exact = exact_particles(sbn, data)
    log_q, log_w = exact.guide_log_prob.detach(), exact.log_weights.detach()
    tuples = particle_tuple_indices(log_q.size(0), num_particles)
    tuple_probability = log_q[tuples].sum(dim=1).exp()  # (C^K, B)
    first_normalized_weight = torch.softmax(0.5 * log_w[tuples], dim=1)[:, 0]  # w~ of particle 1
    coefficient = torch.zeros_like(log_q).index_add_(
        0, tuples[:, 0], num_particles * tuple_probability * first_normalized_weight
    )
    log_pq = exact.model_log_prob + exact.guide_log_prob
    expected_loss_gradient = -exact_gradient(sbn, (coefficient * log_pq).sum())
    mean = estimates.mean(0)
    standard_error = estimates.std(0) / estimates.size(0) ** 0.5
    tolerance = NUM_STANDARD_ERRORS * standard_error + ROUNDING_TOLERANCE
    assert ((mean - expected_loss_gradient).abs() <= tolerance).all()
    # and the finite-K expectation is *not* the exact gradient: the test has power
    exact_loss_gradient = -exact_gradient(sbn, exact_log_bound(exact).sum())
    assert ((expected_loss_gradient - exact_loss_gradient).abs() > tolerance).any()


def test_mean_gradient_at_large_k_approaches_exact_gradient_with_derived_bias():
    r"""E[grad] = d log p~* + (p / (K p~*)) (d log p~* - E_{p(h|x)} d log pq) + O(K^-2).

    The self-normalised ratio's delta-method bias, with E_q[omega^2 g] = sum_h p(x,h) g(h).
    """
    num_particles = 100
    sbn, data = TinySBN(), distinct_binary_data(NUM_DATA_POINTS)
    estimates = grouped_gradient_estimates(
        sbn, data, num_particles, num_groups=40, replicates_per_group=100
    )
    exact = exact_particles(sbn, data)
    log_bound = exact_log_bound(exact)
    log_pq = exact.model_log_prob + exact.guide_log_prob
    top_down_posterior = torch.softmax(exact.model_log_prob.detach(), dim=0)  # p(h | x)
    variance_ratio = (exact_log_marginal(exact) - log_bound).exp().detach()  # p / p~*
    bias_direction = log_bound - (top_down_posterior * log_pq).sum(0)
    exact_loss_gradient = -exact_gradient(sbn, log_bound.sum())
    predicted_loss_gradient = -exact_gradient(
        sbn, (log_bound + variance_ratio * bias_direction / num_particles).sum()
    )
    mean = estimates.mean(0)
    standard_error = estimates.std(0) / estimates.size(0) ** 0.5
    tolerance = NUM_STANDARD_ERRORS * standard_error + ROUNDING_TOLERANCE
    assert ((mean - predicted_loss_gradient).abs() <= tolerance).all()
    relative_error = (mean - exact_loss_gradient).norm() / exact_loss_gradient.norm()
    bias_bound = (predicted_loss_gradient - exact_loss_gradient).norm() / exact_loss_gradient.norm()
    noise_bound = NUM_STANDARD_ERRORS * standard_error.norm() / exact_loss_gradient.norm()
    assert relative_error < bias_bound + noise_bound


def test_differentiable_loss_matches_loss_and_grads(sbn, data):
    objective = BiHMELBO(num_particles=7)
    objective.loss(sbn.model, sbn.guide, data)  # guess max_plate_nesting: it draws samples too
    pyro.set_rng_seed(5)
    sbn.zero_grad()
    loss = objective.loss_and_grads(sbn.model, sbn.guide, data)
    grads = parameter_vector_grad(sbn).clone()
    pyro.set_rng_seed(5)
    differentiable = objective.differentiable_loss(sbn.model, sbn.guide, data)
    assert differentiable.item() == pytest.approx(loss, rel=1e-12)
    torch.testing.assert_close(exact_gradient(sbn, differentiable), grads)
    pyro.set_rng_seed(5)
    assert objective.loss(sbn.model, sbn.guide, data) == pytest.approx(loss, rel=1e-12)


def test_gradient_is_scaled_by_subsample_scale(sbn, data):
    num_particles, num_data = 4, 7 * data.size(0)
    objective = BiHMELBO(num_particles=num_particles)
    draws = guide_draws(sbn, data, num_particles)
    guide = DrawPool(draws)(sbn.guide)
    full = exact_gradient(sbn, objective.differentiable_loss(sbn.model, guide, data))
    guide = DrawPool(draws)(sbn.guide)
    scaled = exact_gradient(
        sbn, objective.differentiable_loss(sbn.model, guide, data, num_data=num_data)
    )
    torch.testing.assert_close(scaled, num_data / data.size(0) * full)


# ------------------------------------------------------------------------ training


def sample_teacher_data(num_points: int) -> torch.Tensor:
    teacher = TinySBN(seed=7, name="teacher")  # its own names: the student keeps its parameters
    placeholder = torch.zeros(num_points, 4, dtype=torch.float64)
    trace = pyro.poutine.trace(pyro.poutine.uncondition(teacher.model)).get_trace(placeholder)
    return trace.nodes["x"]["value"].detach()


def test_svi_training_raises_exact_bound(sbn):
    num_steps, window = 300, 50
    data = sample_teacher_data(256)
    with torch.no_grad():
        initial_bound = exact_log_bound(exact_particles(sbn, data)).mean()
    optimizer = pyro.optim.Adam({"lr": 0.05})
    svi = pyro.infer.SVI(sbn.model, sbn.guide, optimizer, BiHMELBO(num_particles=10))
    losses = torch.tensor([svi.step(data) for _ in range(num_steps)])
    with torch.no_grad():
        final_bound = exact_log_bound(exact_particles(sbn, data)).mean()
    assert losses[-window:].mean() < losses[:window].mean()
    assert final_bound > initial_bound

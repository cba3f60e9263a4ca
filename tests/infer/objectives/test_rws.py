"""ReweightedWakeSleep against exact enumeration on TinySBN.

Replicates are vectorised: the minibatch of B distinct data points is repeated R
times in one call, the per-data-point surrogate losses are summed over groups of
replicates, and one batched backward pass (``is_grads_batched``) gives one
gradient per group. Group means are i.i.d., so their spread gives the standard
error, and every statistical assertion is "within NUM_STANDARD_ERRORS".

The exact K-sample expectations (``exact_expectations.py``) and replicate gradients
(``monte_carlo_checks.py``) are shared with ``test_vimco.py``.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_dgm.infer.estimators.exact import all_binary_configurations
from pyro_dgm.infer.importance import WeightedParticles
from pyro_dgm.infer.objectives.rws import ReweightedWakeSleep
from tests.infer.exact_expectations import ExactKSample, exact_particles
from tests.infer.gradients import flat_gradient
from tests.infer.monte_carlo_checks import (
    NUM_STANDARD_ERRORS,
    MonteCarloMean,
    replicate_gradients,
)
from tests.infer.small_models import (
    NUM_DATA_POINTS,
    SUBSAMPLE_FACTOR,
    TinySBN,
    distinct_binary_data,
)
from tests.infer.training_checks import assert_svi_improves_the_exact_likelihood

GUIDE_FIT_STEPS = 20
GUIDE_FIT_LEARNING_RATE = 0.05
"""A guide fitted this far (exact KL 7.0 -> 1.4 nats) leaves the O(1/K) bias of
self-normalised weights large at K = 2 yet near the noise at K = 128."""


# ----------------------------------------------------------------------------- helpers


def leading_bias(particles: WeightedParticles, objective: torch.Tensor, params) -> torch.Tensor:
    r"""First-order bias :math:`b_1` of self-normalised IS.

    :math:`\mathbb E[\hat g_K] = g + b_1/K + O(K^{-2})`.

    For :math:`\hat g_K = \sum_k \tilde w_k g(h_k)` and :math:`\hat w = p(h|x)/q(h|x)`,
    :math:`b_1 = -\mathbb E_{p(h|x)}[\hat w\,(g - \mathbb E_{p(h|x)} g)]` (delta method).
    ``objective[c, b]`` is the per-configuration quantity whose gradient is g.
    """
    posterior = torch.softmax(particles.model_log_prob, dim=0).detach()
    second_moment = (posterior**2 / particles.guide_log_prob.exp()).detach()  # E_p[ŵ] per point
    weighted = flat_gradient((second_moment * objective).sum(), params)
    centred = sum(
        second_moment[:, b].sum() * flat_gradient((posterior[:, b] * objective[:, b]).sum(), params)
        for b in range(objective.size(1))
    )
    return -(weighted - centred)


def fit_guide(sbn: TinySBN, x: torch.Tensor, num_steps: int = GUIDE_FIT_STEPS) -> None:
    """Move the guide towards p(h|x) by Adam on the exact sum_b KL(p(h|x_b) || q(h|x_b))."""
    optimizer = torch.optim.Adam(sbn.guide_parameters(), lr=GUIDE_FIT_LEARNING_RATE)
    for _ in range(num_steps):
        particles = exact_particles(sbn, x)
        posterior = torch.softmax(particles.model_log_prob, dim=0).detach()
        cross_entropy = -(posterior * particles.guide_log_prob).sum()
        optimizer.zero_grad()
        cross_entropy.backward()
        optimizer.step()


def wake_terms(sbn, data, num_particles, num_replicates, **kwargs):
    objective = ReweightedWakeSleep(num_particles=num_particles, **kwargs)
    return objective.terms(sbn.model, sbn.guide, data.repeat(num_replicates, 1))


# ----------------------------------------------------------------------------- wake phase


@pytest.mark.parametrize("num_particles, num_replicates", [(2, 4000), (3, 2000)])
def test_wake_gradients_match_exact_k_sample_expectation(sbn, data, num_particles, num_replicates):
    exact = ExactKSample.of(exact_particles(sbn, data), num_particles)
    model_params, guide_params = sbn.model_parameters(), sbn.guide_parameters()
    terms = wake_terms(sbn, data, num_particles, num_replicates)

    wake_theta = replicate_gradients(terms.wake_theta, model_params)
    wake_theta.assert_matches(-flat_gradient(exact.expected_wake_theta_objective().sum(), model_params))
    wake_phi = replicate_gradients(terms.wake_phi, guide_params)
    wake_phi.assert_matches(-flat_gradient(exact.expected_wake_phi_objective().sum(), guide_params))


def test_per_minibatch_weights_give_a_different_answer(sbn):
    """Pyro's RWS normalises one weight per minibatch (issue #2220): measurably wrong.

    Six distinct data points make the product of their weights degenerate, so the
    per-minibatch estimator is far from the exact K-sample expectation while ours
    matches it.
    """
    num_points, num_particles, num_pyro_replicates = 6, 2, 600
    data = distinct_binary_data(num_points)
    model_params = sbn.model_parameters()
    exact = -flat_gradient(
        ExactKSample.of(exact_particles(sbn, data), num_particles)
        .expected_wake_theta_objective()
        .sum(),
        model_params,
    )
    pyro_rws = pyro.infer.ReweightedWakeSleep(num_particles=num_particles, max_plate_nesting=1)
    pyro_grads = torch.stack(
        [
            flat_gradient(pyro_rws._loss(sbn.model, sbn.guide, (data,), {})[0], model_params)
            for _ in range(
                num_pyro_replicates
            )  # one weight per call: replicates cannot share a batch
        ]
    )
    pyro_mean = MonteCarloMean(
        pyro_grads.mean(0), pyro_grads.std(0) / math.sqrt(num_pyro_replicates)
    )
    terms = wake_terms(sbn, data, num_particles, 4000)
    ours = replicate_gradients(terms.wake_theta, model_params, points_per_replicate=num_points)

    ours.assert_matches(exact)
    assert pyro_mean.z_scores(exact).max() > 2 * NUM_STANDARD_ERRORS


@pytest.fixture(scope="module")
def module_fitted_sbn() -> TinySBN:
    sbn = TinySBN()
    fit_guide(sbn, distinct_binary_data(NUM_DATA_POINTS))
    return sbn


@pytest.fixture(scope="module")
def wake_estimates_by_num_particles(module_fitted_sbn):
    """MC means of wake-θ and wake-φ gradients for growing K (fewer replicates as K grows)."""
    data = distinct_binary_data(NUM_DATA_POINTS)
    schedule = {2: 4000, 8: 2000, 32: 1000, 128: 400}
    estimates = {}
    for num_particles, num_replicates in schedule.items():
        pyro.set_rng_seed(num_particles)
        terms = wake_terms(module_fitted_sbn, data, num_particles, num_replicates)
        estimates[num_particles] = (
            replicate_gradients(terms.wake_theta, module_fitted_sbn.model_parameters()),
            replicate_gradients(terms.wake_phi, module_fitted_sbn.guide_parameters()),
        )
    return estimates


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["wake_theta", "wake_phi"])
def test_wake_gradients_converge_to_their_limit(
    module_fitted_sbn, wake_estimates_by_num_particles, phase
):
    r"""wake-θ -> ∇θ log p(x), wake-φ -> -∇φ KL(p(h|x) || q(h|x)); bias b1/K shrinking."""
    fitted_sbn = module_fitted_sbn
    particles = exact_particles(fitted_sbn, distinct_binary_data(NUM_DATA_POINTS))
    posterior = torch.softmax(particles.model_log_prob, dim=0).detach()
    if phase == "wake_theta":
        params = fitted_sbn.model_parameters()
        limit = -flat_gradient(torch.logsumexp(particles.model_log_prob, dim=0).sum(), params)
        per_configuration = particles.model_log_prob
    else:
        params = fitted_sbn.guide_parameters()
        limit = -flat_gradient((posterior * particles.guide_log_prob).sum(), params)
        per_configuration = particles.guide_log_prob
    bias_coefficient = -leading_bias(particles, per_configuration, params)  # of the loss gradient
    index = 0 if phase == "wake_theta" else 1
    estimates = {k: v[index] for k, v in wake_estimates_by_num_particles.items()}
    bias_norms = [(est.mean - limit).norm().item() for est in estimates.values()]

    smallest, largest = min(estimates), max(estimates)
    assert estimates[smallest].z_scores(limit).max() > NUM_STANDARD_ERRORS  # the bias is real
    assert bias_norms[0] > bias_norms[1] > bias_norms[2]  # and shrinks with K
    estimates[largest].assert_matches(limit, allowance=bias_coefficient.abs() / largest)


# ----------------------------------------------------------------------------- sleep phase


class TrailingDimsSBN(TinySBN):
    """TinySBN whose guide sizes its data plate from x.shape[-2], so S > 1 dreams fit."""

    def guide(self, x: torch.Tensor, num_data: int | None = None) -> None:
        pyro.module(self.name, self)
        batch = x.shape[-2]
        with pyro.plate("data", num_data or batch, subsample_size=batch):
            h1 = pyro.sample(
                "h1", dist.Bernoulli(logits=x @ self.q1_weight + self.q1_bias).to_event(1)
            )
            pyro.sample("h2", dist.Bernoulli(logits=h1 @ self.q2_weight + self.q2_bias).to_event(1))


def exact_sleep(sbn: TinySBN):
    """Enumerate x (4 pixels) and h: E_p(x,h)[log q(h|x)] and its variance; (C, 16) joint."""
    all_x = all_binary_configurations(4, dtype=torch.float64)
    particles = exact_particles(sbn, all_x)
    joint = particles.model_log_prob.exp().detach()
    assert torch.isclose(joint.sum(), torch.tensor(1.0, dtype=joint.dtype))
    mean = (joint * particles.guide_log_prob).sum()
    variance = (joint * particles.guide_log_prob.detach() ** 2).sum() - mean.detach() ** 2
    return mean, variance


@pytest.mark.parametrize("num_sleep_particles, model_class", [(1, TinySBN), (3, TrailingDimsSBN)])
def test_sleep_gradient_matches_exact_expectation(data, num_sleep_particles, model_class):
    sbn = model_class()
    guide_params = sbn.guide_parameters()
    exact_mean, _ = exact_sleep(sbn)
    objective = ReweightedWakeSleep(
        num_particles=2, insomnia=0.0, num_sleep_particles=num_sleep_particles
    )
    terms = objective.terms(sbn.model, sbn.guide, data.repeat(2000, 1))  # data: a shape template
    estimate = replicate_gradients(terms.sleep_phi, guide_params)
    estimate.assert_matches(-NUM_DATA_POINTS * flat_gradient(exact_mean, guide_params))


def test_sleep_phase_leaves_model_parameters_alone(sbn, data):
    terms = ReweightedWakeSleep(num_particles=4, insomnia=0.5).terms(sbn.model, sbn.guide, data)
    assert flat_gradient(terms.sleep_phi.sum(), sbn.model_parameters()).abs().max() == 0
    assert flat_gradient(terms.wake_phi.sum(), sbn.model_parameters()).abs().max() == 0
    assert flat_gradient(terms.wake_theta.sum(), sbn.guide_parameters()).abs().max() == 0
    assert flat_gradient(terms.sleep_phi.sum(), sbn.guide_parameters()).abs().max() > 0


@pytest.mark.parametrize("insomnia", [0.0, 0.3, 1.0])
def test_loss_and_grads_mix_the_phases(sbn, data, insomnia):
    """.grad = -wake-θ on the model, -(insomnia·wake-φ + (1-insomnia)·sleep-φ) on the guide."""
    objective = ReweightedWakeSleep(num_particles=4, insomnia=insomnia, max_plate_nesting=1)
    pyro.set_rng_seed(1)
    loss = objective.loss_and_grads(sbn.model, sbn.guide, data)
    model_grad = torch.cat([p.grad.reshape(-1) for p in sbn.model_parameters()])
    guide_grad = torch.cat([p.grad.reshape(-1) for p in sbn.guide_parameters()])
    pyro.set_rng_seed(1)
    terms = objective.terms(sbn.model, sbn.guide, data)
    expected_guide = insomnia * flat_gradient(terms.wake_phi.sum(), sbn.guide_parameters())
    if insomnia < 1:
        expected_guide = expected_guide + (1 - insomnia) * flat_gradient(
            terms.sleep_phi.sum(), sbn.guide_parameters()
        )
    else:
        assert terms.sleep_phi is None  # no dreams drawn
    assert torch.allclose(model_grad, flat_gradient(terms.wake_theta.sum(), sbn.model_parameters()))
    assert torch.allclose(guide_grad, expected_guide)
    assert loss == pytest.approx(terms.wake_theta.sum().item())
    assert objective.last_losses.wake_theta == pytest.approx(loss)


# ----------------------------------------------------------------------------- scaling


@pytest.mark.parametrize("num_data_factor", [None, SUBSAMPLE_FACTOR])
def test_losses_are_unbiased_for_the_full_data_set(sbn, data, num_data_factor):
    num_particles, num_replicates = 2, 2000
    template = data.repeat(num_replicates, 1)
    num_points = template.size(0)
    num_data = None if num_data_factor is None else num_data_factor * num_points
    scale = 1.0 if num_data is None else num_data / num_points
    objective = ReweightedWakeSleep(num_particles=num_particles, insomnia=0.5)
    objective.loss(sbn.model, sbn.guide, template, num_data)
    losses = objective.last_losses

    exact = ExactKSample.of(exact_particles(sbn, data), num_particles)
    with torch.no_grad():
        expected_wake = -scale * num_replicates * exact.expected_bound().sum()
        wake_se = scale * math.sqrt(num_replicates * exact.variance_of_bound().sum())
        sleep_mean, sleep_variance = exact_sleep(sbn)
        expected_sleep = -scale * num_points * sleep_mean
        sleep_se = scale * math.sqrt(num_points * sleep_variance)
    assert abs(losses.wake_theta - expected_wake) < NUM_STANDARD_ERRORS * wake_se
    assert abs(losses.sleep_phi - expected_sleep) < NUM_STANDARD_ERRORS * sleep_se
    assert 1.0 <= losses.effective_sample_size <= num_particles


# ----------------------------------------------------------------------------- errors, SVI


def test_guide_missing_a_site_is_named(sbn, data):
    def guide_without_h2(x, num_data=None):
        pyro.module(sbn.name, sbn)
        with pyro.plate("data", x.size(0)):
            pyro.sample("h1", dist.Bernoulli(logits=x @ sbn.q1_weight + sbn.q1_bias).to_event(1))

    with pytest.raises(ValueError, match="'h2'"):
        ReweightedWakeSleep(num_particles=3).loss(sbn.model, guide_without_h2, data)


def test_sleep_needs_to_find_the_observed_tensor(sbn, data):
    def model_observing_a_copy(x, num_data=None):
        sbn.model(x.clone(), num_data)

    objective = ReweightedWakeSleep(num_particles=3, insomnia=0.0)
    with pytest.raises(ValueError, match="site 'x'.*dream_inputs"):
        objective.loss(model_observing_a_copy, sbn.guide, data)
    objective = ReweightedWakeSleep(
        num_particles=3,
        insomnia=0.0,
        dream_inputs=lambda dreams, args, kwargs: ((dreams["x"],), kwargs),
    )
    assert math.isfinite(objective.loss(model_observing_a_copy, sbn.guide, data))


@pytest.mark.parametrize(
    "bad", [{"insomnia": 1.5}, {"num_sleep_particles": 0}, {"num_particles": 0}]
)
def test_invalid_arguments(bad):
    with pytest.raises(ValueError):
        ReweightedWakeSleep(**bad)


def test_svi_training_improves_the_exact_likelihood():
    objective = ReweightedWakeSleep(num_particles=10, insomnia=0.5)
    assert_svi_improves_the_exact_likelihood(objective)
    assert 1.0 <= objective.last_losses.effective_sample_size <= 10

"""Tests of the DVAE/DVAE++ models with an RBM prior, their guides and the binary limit."""

from __future__ import annotations

import itertools
import math

import pyro
import pytest
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

from pyro_dgm.data import embedded_mnist, static_binarize
from pyro_dgm.distributions import BinaryLimit
from pyro_dgm.infer import log_likelihood
from pyro_dgm.infer.objectives.dvae import DVAEELBO
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.models.annealing import DVAESchedule
from pyro_dgm.models.directed_prior import build_directed_dvae
from pyro_dgm.models.dvae import DiscreteVAE, build_dvae, build_dvae_pp, equal_group_sizes, rbm_layout
from pyro_dgm.models.dvae_base import binary_limit_pair, sample_images
from pyro_dgm.models.dvae_guides import GUIDES, HierarchicalSmoothedGuide, build_guide
from pyro_dgm.models.dvae_smoothing import SMOOTHERS, Smoothing, is_spike, is_tempered

BETA = 5.0
NUM_PIXELS = 3
BATCH = 2
NUM_PARTICLES = 4
EXACT_FP64 = 1e-10  # hand formula vs the model in float64: round-off only
NUM_SE = 4  # statistical assertions: this many standard errors
TRAIN_DIGITS = 200
TRAIN_STEPS = 120
WINDOW = 20  # the loss is compared over the first and the last WINDOW steps


def tiny_model(**kwargs) -> DiscreteVAE:
    """3 pixels, a 2 + 2 RBM with random parameters, float64."""
    model = DiscreteVAE(NUM_PIXELS, 2, 2, beta=BETA, **kwargs).double()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return model


def tiny_data() -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def log_sigmoid_bernoulli(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bern(x | sigma(logits)) summed over the last dim, written out."""
    return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)


def overlapping_exponential_log_r(zeta: torch.Tensor, z: torch.Tensor, beta: float) -> torch.Tensor:
    """DVAE++ Sec. 3: r(zeta|0) = beta e^{-beta zeta}/(1 - e^{-beta}), r(zeta|1) = beta e^{beta(zeta-1)}/(1 - e^{-beta})."""
    exponent = torch.where(z.bool(), beta * (zeta - 1), -beta * zeta)
    return (math.log(beta) + exponent - math.log(1 - math.exp(-beta))).sum(-1)


def rbm_log_prob_by_enumeration(model: DiscreteVAE, z: torch.Tensor) -> torch.Tensor:
    """a1.z1 + a2.z2 + z1' W z2 - log sum_z' exp(same), over all 16 states."""

    def negative_energy(state: torch.Tensor) -> torch.Tensor:
        z1, z2 = state[..., :2], state[..., 2:]
        return z1 @ model.bias1 + z2 @ model.bias2 + ((z1 @ model.weight) * z2).sum(-1)

    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    return negative_energy(z) - negative_energy(states).logsumexp(0)


def linear_logits(layer, context: torch.Tensor) -> torch.Tensor:
    (linear,) = layer.net
    return context @ linear.weight.T + linear.bias


def standard_error_of_mean(values: torch.Tensor) -> torch.Tensor:
    return values.std() / math.sqrt(values.numel())


# ----------------------------------------------------------------------------- densities


def test_log_joint_matches_hand_formula():
    """log p(x, z, zeta) = log RBM(z) + sum_j log r(zeta_j | z_j) + log p(x | zeta)."""
    model, x = tiny_model(), tiny_data()
    z = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    zeta = torch.tensor([[0.9, 0.2, 0.05, 0.7], [0.3, 0.6, 0.8, 0.99]], dtype=torch.float64)
    values = {"z": z, "zeta1": zeta[:, :2], "zeta2": zeta[:, 2:]}
    model_trace = poutine.trace(poutine.condition(model, data=values)).get_trace(x)
    model_trace.compute_log_prob()
    log_joint = sum(site["log_prob"] for site in model_trace.nodes.values() if site["type"] == "sample")
    expected = (
        rbm_log_prob_by_enumeration(model, z)
        + overlapping_exponential_log_r(zeta, z, BETA)
        + log_sigmoid_bernoulli(x, linear_logits(model.decoder, zeta))
    )
    assert torch.allclose(log_joint, expected, atol=EXACT_FP64)


def test_continuous_layer_log_density_matches_hand_formula():
    """A Gaussian layer below the RBM: log N(h | mu(zeta), sigma(zeta)) with (mu, log sigma) = A zeta + b."""
    model, x = tiny_model(continuous_sizes=(2,)), tiny_data()
    zeta = torch.tensor([[0.9, 0.2, 0.05, 0.7], [0.3, 0.6, 0.8, 0.99]], dtype=torch.float64)
    hidden = torch.tensor([[0.5, -1.0], [2.0, 0.1]], dtype=torch.float64)
    values = {"z": torch.ones(BATCH, 4, dtype=torch.float64), "zeta1": zeta[:, :2], "zeta2": zeta[:, 2:], "continuous1": hidden}
    model_trace = poutine.trace(poutine.condition(model, data=values)).get_trace(x)
    model_trace.compute_log_prob()
    loc, log_scale = linear_logits(model.continuous_priors[0], zeta).chunk(2, -1)
    expected_gaussian = (-0.5 * ((hidden - loc) / log_scale.exp()) ** 2 - log_scale - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert torch.allclose(model_trace.nodes["continuous1"]["log_prob"], expected_gaussian, atol=EXACT_FP64)
    decoder_context = torch.cat([zeta, hidden], -1)
    expected_decoder = log_sigmoid_bernoulli(x, linear_logits(model.decoder, decoder_context))
    assert torch.allclose(model_trace.nodes["x"]["log_prob"], expected_decoder, atol=EXACT_FP64)


def test_binary_limit_log_likelihood_matches_enumeration():
    """At beta = inf, log p(x) = logsumexp_z [log RBM(z) + log p(x | zeta = z)]; IW estimate within SE."""
    model, x = tiny_model(), tiny_data()
    guide = HierarchicalSmoothedGuide(model.layout, beta=BETA).double()
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    log_joint = rbm_log_prob_by_enumeration(model, states).unsqueeze(-1) + log_sigmoid_bernoulli(
        x, linear_logits(model.decoder, states).unsqueeze(-2)
    )
    exact = log_joint.logsumexp(0)
    model_fn, guide_fn = binary_limit_pair(model, guide)
    estimate = log_likelihood(model_fn, guide_fn, x, num_samples=20_000, keep_log_weights=True)
    weights = (estimate.log_weights - estimate.log_likelihood).exp()  # w / mean(w), per data point
    standard_error = weights.std(0) / math.sqrt(estimate.num_samples)  # delta method for log mean w
    assert ((estimate.log_likelihood - exact).abs() < NUM_SE * standard_error).all()


def test_binary_limit_guide_sets_zeta_equal_to_z():
    model, x = tiny_model(), tiny_data()
    guide = build_guide("factorial", model.layout, beta=BETA).double()
    _, guide_fn = binary_limit_pair(model, guide)
    guide_trace = poutine.trace(guide_fn).get_trace(x)
    zeta = torch.cat([guide_trace.nodes["zeta1"]["value"], guide_trace.nodes["zeta2"]["value"]], -1)
    assert torch.equal(zeta, guide_trace.nodes["z"]["value"])
    assert isinstance(guide_trace.nodes["zeta1"]["fn"].base_dist, BinaryLimit)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("guide_kind", sorted(GUIDES))
@pytest.mark.parametrize(
    "build",
    [
        lambda kind: build_dvae_pp(NUM_PIXELS, 3, 2, num_groups=3, continuous_sizes=(2, 3), guide=kind, hidden_sizes=(5,)),
        lambda kind: build_directed_dvae(NUM_PIXELS, (3, 2), elbo="joint", continuous_sizes=(2,), guide=kind),
        lambda kind: build_directed_dvae(NUM_PIXELS, (3,), elbo="marginal", guide=kind),
    ],
    ids=["rbm", "directed-joint", "directed-marginal"],
)
def test_sites_broadcast_under_a_particle_plate(build, guide_kind):
    model, guide = build(guide_kind)
    x = torch.bernoulli(torch.full((BATCH, NUM_PIXELS), 0.5))
    with pyro.plate("particles", NUM_PARTICLES, dim=-2):
        guide_trace = poutine.trace(guide).get_trace(x)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x)
    model_trace.compute_log_prob()
    for name, site in model_trace.nodes.items():
        if site["type"] == "sample" and name != "data":
            expected = (NUM_PARTICLES, BATCH) if name != "x" else (BATCH,)
            assert site["value"].shape[: len(expected)] == expected, name
            assert site["log_prob"].shape == (NUM_PARTICLES, BATCH), name
    objective = Trace_ELBO(num_particles=NUM_PARTICLES, vectorize_particles=True, max_plate_nesting=1)
    assert math.isfinite(objective.loss(model, guide, x))


def test_sample_images_are_pixel_probabilities():
    model, _ = build_dvae_pp(NUM_PIXELS, 3, 2, continuous_sizes=(2,))
    images = sample_images(model, 5)
    assert images.shape == (5, NUM_PIXELS)
    assert ((images >= 0) & (images <= 1)).all()
    samples = model.sample(5)
    assert samples["z"].shape == (5, 5) and samples["continuous1"].shape == (5, 2)


def test_equal_groups_are_the_rbm_sides_for_two_groups():
    assert equal_group_sizes(8, 2) == [4, 4]
    assert equal_group_sizes(7, 3) == [3, 2, 2]
    layout = rbm_layout(NUM_PIXELS, 3, 4, group_sizes=(3, 4))
    assert [group.units for group in layout.groups] == [slice(0, 3), slice(3, 7)]
    with pytest.raises(ValueError, match="group_sizes"):
        rbm_layout(NUM_PIXELS, 3, 4, group_sizes=(3, 3))


# ----------------------------------------------------------------------------- smoothers


@pytest.mark.parametrize("smoother", sorted(set(SMOOTHERS) - {"binary_limit"}))
def test_every_smoother_trains_with_its_objective(smoother):
    """Overlapping smoothers with DVAEPlusPlusELBO, spike smoothers with DVAEELBO."""
    model, guide = build_dvae_pp(NUM_PIXELS, 2, 2, smoother=smoother, beta=BETA)
    objective_class = DVAEELBO if is_spike(smoother) else DVAEPlusPlusELBO
    objective = objective_class(num_particles=NUM_PARTICLES, vectorize_particles=True, num_chains=8, num_sweeps=2)
    svi = SVI(model, guide, Adam({"lr": 1e-2}), objective)
    x = torch.bernoulli(torch.full((BATCH, NUM_PIXELS), 0.5))
    kwargs = {"beta": 2 * BETA} if is_tempered(smoother) else {}
    assert all(math.isfinite(svi.step(x, **kwargs)) for _ in range(3))


def test_smoothing_rejects_beta_where_it_has_none():
    assert Smoothing.named("spike_and_slab", BETA).beta is None
    with pytest.raises(ValueError, match="no inverse temperature"):
        Smoothing("mixture_of_ramps").at(beta=BETA)
    with pytest.raises(ValueError, match="positive finite"):
        Smoothing("overlapping_exponential", math.inf)
    with pytest.raises(ValueError, match="unknown smoother"):
        build_dvae(NUM_PIXELS, smoother="gumbel")


# ----------------------------------------------------------------------------- warm-up


@pytest.mark.parametrize(
    "objective",
    [Trace_ELBO(num_particles=NUM_PARTICLES, vectorize_particles=True), DVAEPlusPlusELBO(num_particles=NUM_PARTICLES, vectorize_particles=True)],
    ids=["Trace_ELBO", "DVAEPlusPlusELBO"],
)
def test_kl_weight_scales_the_kl_term_only(objective):
    """loss(w) = -E log p(x | zeta) + w KL for common random numbers: linear in w with the same intercept."""
    model, x = tiny_model(), tiny_data()
    guide = HierarchicalSmoothedGuide(model.layout, beta=BETA).double()

    def loss(kl_weight: float) -> float:
        pyro.set_rng_seed(1)
        return objective.loss(model, guide, x, kl_weight=kl_weight)

    loss(1.0)  # the first call also guesses max_plate_nesting, drawing random numbers
    full, half, quarter = loss(1.0), loss(0.5), loss(0.25)
    assert full - half == pytest.approx(2 * (half - quarter), abs=1e-9)
    assert full != pytest.approx(half)
    with pytest.raises(ValueError, match="kl_weight"):
        loss(0.0)


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def mnist_digits() -> torch.Tensor:
    return static_binarize(embedded_mnist("train")[:TRAIN_DIGITS], seed=0)


@pytest.mark.parametrize("guide_kind", sorted(GUIDES))
@pytest.mark.parametrize("objective_name", ["DVAEPlusPlusELBO", "Trace_ELBO"])
def test_both_guides_train_on_mnist(mnist_digits, guide_kind, objective_name):
    """The loss per digit falls: mean of the first 20 steps exceeds the last 20 by NUM_SE standard errors."""
    model, guide = build_dvae_pp(784, 8, 8, guide=guide_kind)
    if objective_name == "DVAEPlusPlusELBO":
        objective = DVAEPlusPlusELBO(num_chains=50, num_sweeps=5)
    else:
        objective = Trace_ELBO()
    svi = SVI(model, guide, Adam({"lr": 3e-3}), objective)
    schedule = DVAESchedule(beta_start=BETA, beta_end=2 * BETA, warmup_fraction=0.0)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for step in range(TRAIN_STEPS):
        batch = mnist_digits[torch.randperm(TRAIN_DIGITS, generator=generator)[:50]]
        losses.append(svi.step(batch, num_data=TRAIN_DIGITS, **schedule(step, TRAIN_STEPS)) / TRAIN_DIGITS)
    first, last = torch.tensor(losses[:WINDOW]), torch.tensor(losses[-WINDOW:])
    margin = NUM_SE * math.hypot(standard_error_of_mean(first), standard_error_of_mean(last))
    assert first.mean() - last.mean() > margin


# ----------------------------------------------------------------------------- wrong guides and data


def test_wrong_data_shape_names_x():
    model, guide = build_dvae_pp(NUM_PIXELS, 2, 2)
    for module in (model, guide):
        with pytest.raises(ValueError, match="x must have shape"):
            module(torch.zeros(BATCH, NUM_PIXELS + 1))


def test_guide_with_another_beta_fails_naming_the_site():
    model, _ = build_dvae_pp(NUM_PIXELS, 2, 2, beta=BETA)
    guide = build_guide("hierarchical", model.layout, beta=2 * BETA)
    svi = SVI(model, guide, Adam({"lr": 1e-2}), DVAEPlusPlusELBO())
    with pytest.raises(ValueError, match="site 'zeta1'.*beta"):
        svi.step(torch.zeros(BATCH, NUM_PIXELS))


@pytest.mark.filterwarnings("ignore:Found vars in model but not guide")
def test_guide_missing_a_site_fails_naming_it():
    model, guide = build_dvae_pp(NUM_PIXELS, 2, 2)

    partial_guide = poutine.block(guide, hide=["zeta2"])  # samples zeta2 but does not record it
    svi = SVI(model, partial_guide, Adam({"lr": 1e-2}), DVAEPlusPlusELBO())
    with pytest.raises(ValueError, match="zeta2"):
        svi.step(torch.zeros(BATCH, NUM_PIXELS))


def test_guide_of_the_wrong_size_fails_naming_the_site():
    """A guide built for a 3 + 2 RBM against a 2 + 2 model: the model names 'zeta1' under Trace_ELBO."""
    model, _ = build_dvae_pp(NUM_PIXELS, 2, 2)
    guide = build_guide("factorial", rbm_layout(NUM_PIXELS, 3, 2))
    svi = SVI(model, guide, Adam({"lr": 1e-2}), Trace_ELBO())
    with pytest.raises(ValueError, match="site '(z|zeta1)'"):
        svi.step(torch.zeros(BATCH, NUM_PIXELS))


def test_a_user_written_guide_drops_in():
    """A plain function with its own parameters, sampling the same sites, trains the model unchanged."""
    model, _ = build_dvae_pp(NUM_PIXELS, 2, 2)
    smoothing = Smoothing("overlapping_exponential", BETA)

    def guide(x, num_data=None, *, beta=None, kl_weight=1.0, binary_limit=False):
        logits = pyro.param("user_logits", torch.zeros(4))
        with pyro.plate("data", num_data or len(x), subsample_size=len(x)), poutine.scale(scale=kl_weight):
            q1, q2 = smoothing.at(beta)(logits[:2]), smoothing.at(beta)(logits[2:])
            zeta1 = pyro.sample("zeta1", q1.expand((len(x), 2)).to_event(1))
            zeta2 = pyro.sample("zeta2", q2.expand((len(x), 2)).to_event(1))
            nu = torch.cat([q1.posterior_probs(zeta1), q2.posterior_probs(zeta2)], -1)
            pyro.sample("z", pyro.distributions.Bernoulli(probs=nu).to_event(1))

    svi = SVI(model, guide, Adam({"lr": 1e-2}), DVAEPlusPlusELBO())
    for _ in range(3):
        svi.step(torch.ones(BATCH, NUM_PIXELS), kl_weight=0.5)
    assert not torch.equal(pyro.param("user_logits").detach(), torch.zeros(4))


def test_binary_limit_pair_uses_a_supplied_log_partition():
    """An estimate of log Z (e.g. from AIS) replaces the exact one: log p(x) moves by exactly the difference."""
    model, x = tiny_model(), tiny_data()
    guide = HierarchicalSmoothedGuide(model.layout, beta=BETA).double()
    exact_log_partition = model.prior().log_partition.detach()
    estimates = []
    for log_partition in (None, exact_log_partition + 1.0):
        pyro.set_rng_seed(2)
        estimates.append(log_likelihood(*binary_limit_pair(model, guide, log_partition), x, num_samples=10).log_likelihood)
    assert torch.allclose(estimates[1], estimates[0] - 1.0, atol=EXACT_FP64)

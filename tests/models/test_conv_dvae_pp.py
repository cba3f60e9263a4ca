"""The convolutional DVAE++: pixel pyramid, hand-checked densities, particles, baselines, training."""

import itertools
import math

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

from pyro_dgm.data import load_dataset, static_binarize
from pyro_dgm.infer.estimators.log_likelihood import log_likelihood
from pyro_dgm.infer.objectives.dvae import DVAEELBO
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.models.conv_decoder import PixelPyramid, grid_side
from pyro_dgm.models.conv_dvae_pp import (
    TABLE3_BASELINES,
    ConvDVAEPP,
    ConvDVAEPPConfig,
    observed_site,
    table3_config,
)
from pyro_dgm.nn.se_resnet import apply_to_images

TINY = {
    "image_shape": (1, 8, 8),
    "local_side": 4,
    "hidden_channels": 4,
    "local_channels": 2,
    "num_global_units": 4,
    "global_features": 8,
}
"""A model small enough to step in milliseconds: 8x8 images, 4 global units, 2x4x4 local groups."""

OBJECTIVES = {"dvae_pp": DVAEPlusPlusELBO, "dvae": DVAEELBO, "trace_elbo": Trace_ELBO}

NORMALISATION_ATOL = 1e-12
"""logsumexp of 2^10 float64 log-probabilities of order 10: round-off only."""

NUM_SE = 3
"""The loss must fall by this many standard errors of the windows' means."""


def _objective(config: ConvDVAEPPConfig, **kwargs):
    if config.objective == "trace_elbo":
        return Trace_ELBO(**kwargs)
    return OBJECTIVES[config.objective](num_sweeps=2, num_chains=10, **kwargs)


def _binary_images(batch_size: int, shape=(1, 8, 8)) -> torch.Tensor:
    return (torch.rand((batch_size,) + shape) < 0.3).float()


def _traces(vae: ConvDVAEPP, x: torch.Tensor, num_particles: int | None = None):
    def with_particles(fn):
        def run():
            if num_particles is None:
                return fn(x)
            with pyro.plate("particles", num_particles, dim=-2):
                return fn(x)

        return run

    guide_trace = poutine.trace(with_particles(vae.guide)).get_trace()
    model_trace = poutine.trace(poutine.replay(with_particles(vae.model), trace=guide_trace)).get_trace()
    model_trace.compute_log_prob()
    return model_trace, guide_trace


# ----- pixel pyramid -----------------------------------------------------------------


@pytest.mark.parametrize("image_shape", [(1, 28, 28), (3, 8, 8), (2, 5, 7)])
@pytest.mark.parametrize("conditional", [True, False])
def test_pyramid_groups_partition_the_real_pixels(image_shape, conditional):
    pyramid = PixelPyramid(image_shape, conditional)
    positions = torch.cat([pyramid.grid_positions(i) for i in range(pyramid.num_groups)])
    assert positions.unique().numel() == positions.numel()  # no pixel twice
    assert positions.numel() == image_shape[1] * image_shape[2]  # every real pixel once
    images = torch.rand((4,) + image_shape)
    canvas = pyramid.pad(images)
    assert canvas.shape[-1] == grid_side(*image_shape[1:]) and torch.equal(pyramid.crop(canvas), images)
    rebuilt = torch.zeros_like(canvas)
    for index in range(pyramid.num_groups):
        rebuilt = pyramid.scatter(rebuilt, pyramid.gather(canvas, index), index)
    assert torch.equal(rebuilt, canvas)  # gather and scatter round-trip


def test_mnist_pyramid_scales_and_sizes():
    pyramid = PixelPyramid((1, 28, 28))
    assert pyramid.sides == [4, 8, 16, 32]
    assert [pyramid.group_size(i) for i in range(4)] == [9, 40, 147, 588]  # 3x3, 7x7 - 3x3, ...


def test_coarser_image_holds_only_earlier_groups():
    pyramid = PixelPyramid((1, 16, 16))
    canvas = torch.zeros(1, 1, 16, 16)
    for index in range(pyramid.num_groups):
        canvas = pyramid.scatter(canvas, torch.full((1, pyramid.group_size(index)), float(index + 1)), index)
    for index in range(1, pyramid.num_groups):
        assert pyramid.coarser_image(canvas, index).max() <= index  # labels of groups < index only


# ----- densities against hand computations ----------------------------------------------


def test_model_log_densities_match_hand_computations():
    vae = ConvDVAEPP(ConvDVAEPPConfig(**TINY)).double()
    x = _binary_images(3).double()
    model_trace, _ = _traces(vae, x)
    nodes = model_trace.nodes
    # RBM prior, by enumerating its 2^4 states: log p(z) = -E(z) - log Z
    prior = vae.global_prior
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)

    def negative_energy(z):
        return z[..., :2] @ prior.bias1 + z[..., 2:] @ prior.bias2 + ((z[..., :2] @ prior.weight) * z[..., 2:]).sum(-1)

    z = nodes["z"]["value"]
    expected = negative_energy(z) - torch.logsumexp(negative_energy(states), 0)
    torch.testing.assert_close(nodes["z"]["log_prob"], expected)
    # overlapping exponential r(zeta | z) (DVAE++ Sec. 3): beta e^{-beta zeta} / (1 - e^{-beta}), mirrored for z = 1
    beta = vae.beta
    zeta = torch.cat([nodes["zeta1"]["value"], nodes["zeta2"]["value"]], -1)
    distance = torch.where(z == 1, 1 - zeta, zeta)
    log_r = (torch.log(beta) - beta * distance - torch.log(-torch.expm1(-beta))).sum(-1)
    torch.testing.assert_close(nodes["zeta1"]["log_prob"] + nodes["zeta2"]["log_prob"], log_r)
    # decoder: every pixel scored once, by the head of the scale where it first appears
    zeta_map = vae.prior_global_map(zeta)
    local = [nodes["h1"]["value"], nodes["h2"]["value"]]
    features = apply_to_images(vae.latent_features, torch.cat([zeta_map, *local], -3))
    by_side = vae.decoder.features_by_side(features)
    expected = torch.zeros(3, dtype=torch.float64)
    for index, side in enumerate([4, 8]):
        inputs = by_side[side]
        if index:  # the 4x4 subsampled image, nearest-upsampled
            coarse = x[..., ::2, ::2].repeat_interleave(2, -1).repeat_interleave(2, -2)
            inputs = torch.cat([inputs, coarse], -3)
        logits = vae.decoder.heads[index](inputs)[:, 0]
        stride = 8 // side
        for row, column in itertools.product(range(8), range(8)):
            first_scale = 0 if row % 2 == 0 and column % 2 == 0 else 1
            if first_scale == index:
                logit = logits[:, row // stride, column // stride]
                pixel = x[:, 0, row, column]
                expected += pixel * torch.nn.functional.logsigmoid(logit) + (1 - pixel) * torch.nn.functional.logsigmoid(-logit)
    torch.testing.assert_close(nodes["x0"]["log_prob"] + nodes["x1"]["log_prob"], expected)


def test_multiscale_likelihood_is_normalised_over_all_images():
    """Sum of p(x | zeta, h) over all 2^10 images of 2x5 pixels (padded to 8x8, two scales) is 1."""
    config = ConvDVAEPPConfig(**{**TINY, "image_shape": (1, 2, 5)})
    vae = ConvDVAEPP(config).double()
    num_images = 2**10
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=10)), dtype=torch.float64)
    images = images.reshape(num_images, 1, 2, 5)
    guide_trace = poutine.trace(vae.guide).get_trace(images[:1])
    latents = {name: site["value"] for name, site in guide_trace.nodes.items() if site["type"] == "sample"}
    latents = {name: value.expand((num_images,) + value.shape[1:]) for name, value in latents.items() if name != "data"}
    model_trace = poutine.trace(poutine.condition(vae.model, data=latents)).get_trace(images)
    model_trace.compute_log_prob()
    log_likelihood_ = sum(model_trace.nodes[name]["log_prob"] for name in vae.observed_sites)
    assert vae.observed_sites == ["x0", "x1"]
    assert torch.logsumexp(log_likelihood_, 0).item() == pytest.approx(0.0, abs=NORMALISATION_ATOL)


# ----- shapes under particles, generation, errors ---------------------------------------


@pytest.mark.parametrize("baseline", sorted(TABLE3_BASELINES))
def test_model_and_guide_broadcast_over_a_particle_plate(baseline):
    vae = ConvDVAEPP(table3_config(baseline, **TINY))
    model_trace, guide_trace = _traces(vae, _binary_images(5), num_particles=3)
    for trace in (model_trace, guide_trace):
        for name, site in trace.nodes.items():
            if site["type"] == "sample" and not site["is_observed"] and name not in ("data", "particles"):
                assert site["fn"].batch_shape == (3, 5), name
    for name in vae.observed_sites:
        assert model_trace.nodes[name]["log_prob"].shape == (3, 5)
    assert model_trace.nodes["h1"]["value"].shape[:2] == (3, 5)


def test_discretized_logistic_model_scores_colour_images_and_generates_on_the_grid():
    config = ConvDVAEPPConfig(**{**TINY, "image_shape": (3, 8, 8)}, likelihood="discretized_logistic", num_mixtures=2)
    vae = ConvDVAEPP(config)
    x = torch.randint(0, 256, (4, 3, 8, 8)).float() / 255
    model_trace, _ = _traces(vae, x, num_particles=2)
    assert model_trace.nodes["x1"]["log_prob"].shape == (2, 4)
    assert torch.isfinite(model_trace.nodes["x1"]["log_prob"]).all()
    samples = vae.generate(2)
    assert samples.shape == (2, 3, 8, 8)
    torch.testing.assert_close(samples * 255, (samples * 255).round())


def test_unconditional_decoder_has_one_site_and_flat_rows_are_accepted():
    vae = ConvDVAEPP(ConvDVAEPPConfig(**TINY, conditional_decoder=False))
    assert vae.observed_sites == [observed_site(0, conditional=False)] == ["x"]
    model_trace, _ = _traces(vae, _binary_images(2).flatten(1))
    assert model_trace.nodes["x"]["fn"].event_shape == (64,)
    assert vae.generate(3).shape == (3, 1, 8, 8)


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.zeros(2, 1, 7, 8), r"x must have shape \(batch, 1, 8, 8\)"),
        (torch.zeros(2, 3, 8, 8), "x must have shape"),
        (torch.zeros(2, 63), "x must have shape"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.long), "x must be a floating-point"),
        (torch.full((2, 1, 8, 8), 0.5), "x must hold values 0/1"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.float64), "x is torch.float64"),
    ],
)
def test_wrong_images_are_value_errors_naming_x(x, message):
    vae = ConvDVAEPP(ConvDVAEPPConfig(**TINY))
    with pytest.raises(ValueError, match=message):
        vae.model(x)
    with pytest.raises(ValueError, match=message):
        vae.guide(x)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image_shape": (8, 8)}, "image_shape"),
        ({"local_side": 6}, "local_side"),
        ({"local_side": 16}, "local_side"),
        ({"global_latent": "gaussian"}, "global_latent"),
        ({"local_latent": "rbm"}, "local_latent"),
        ({"smoothing": "power"}, "smoothing"),
        ({"num_global_groups": 5}, "num_global_groups"),
        ({"beta": 0.0}, "beta"),
        ({"num_blocks": 0}, "num_blocks"),
    ],
)
def test_invalid_configurations_are_value_errors_naming_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        ConvDVAEPPConfig(**{**TINY, **overrides})


def test_each_configuration_names_its_objective():
    objectives = {name: table3_config(name, **TINY).objective for name in TABLE3_BASELINES}
    assert objectives == {
        "all_continuous": "trace_elbo",
        "rbm_rolfe": "dvae",
        "dvae_pp": "dvae_pp",
        "rbm_bernoulli_local": "dvae_pp",
        "all_bernoulli": "dvae_pp",
    }


# ----- training ---------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", sorted(TABLE3_BASELINES))
def test_each_table3_baseline_takes_a_vectorised_training_step(baseline):
    vae = ConvDVAEPP(table3_config(baseline, **TINY))
    objective = _objective(vae.config, num_particles=2, vectorize_particles=True, max_plate_nesting=1)
    svi = SVI(vae.model, vae.guide, Adam({"lr": 1e-3}), objective)
    before = [parameter.detach().clone() for parameter in vae.parameters()]
    loss = svi.step(_binary_images(4))
    assert math.isfinite(loss)
    assert any(not torch.equal(old, new) for old, new in zip(before, vae.parameters()))


def test_training_on_embedded_mnist_lowers_the_loss_and_gives_a_finite_iw_estimate():
    x = static_binarize(load_dataset("embedded_mnist", "train")[:200], seed=0)
    config = ConvDVAEPPConfig(**{**TINY, "image_shape": (1, 28, 28), "local_side": 8})
    vae = ConvDVAEPP(config)
    svi = SVI(vae.model, vae.guide, Adam({"lr": 3e-3}), _objective(config))
    window, batch_size = 4, 20
    losses = []
    for step in range(3 * window):
        batch = x[(step * batch_size) % x.size(0) :][:batch_size]
        losses.append(svi.step(batch) / batch_size)
    first, last = torch.tensor(losses[:window]), torch.tensor(losses[-window:])
    standard_error = math.sqrt(first.var() / window + last.var() / window)
    assert last.mean() < first.mean() - NUM_SE * standard_error
    estimate = log_likelihood(vae.model, vae.guide, x[:4], num_samples=8, chunk_size=4, data_plate="data")
    assert estimate.log_likelihood.shape == (4,) and torch.isfinite(estimate.log_likelihood).all()

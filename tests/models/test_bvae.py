"""Bidirectional VAE and its twin: sharing, exact parameter counts, objectives, metrics."""

import itertools
import math

import matplotlib.image
import pyro
import pyro.distributions as dist
import pytest
import scipy.ndimage
import torch
from pyro.infer import SVI, RenyiELBO, Trace_ELBO, TraceMeanField_ELBO
from pyro.optim import Adam

from pyro_dgm.data import dynamic_binarize, embedded_mnist
from pyro_dgm.diagnostics.bvae_metrics import (
    active_units,
    importance_weighted_nll,
    latent_classifier_accuracy,
    latent_interpolation,
    psnr,
    ssim,
)
from pyro_dgm.diagnostics.plots_images import save_image_grid, tile_grid
from pyro_dgm.infer.importance import log_mean_exp
from pyro_dgm.infer.objectives.tcvae import TCVAE_ELBO, aggregate_log_weights, minibatch_kl_decomposition
from pyro_dgm.models.bvae import BidirectionalVAE, UnidirectionalVAE
from pyro_dgm.nn.bidirectional import BidirectionalLinear
from pyro_dgm.nn.bidirectional_conv import BidirectionalConv2d
from pyro_dgm.nn.bidirectional_networks import bidirectional_mlp, bidirectional_resnet

EXACT_RTOL = 1e-12
"""Float64 identities that hold term by term (sums of a few hundred terms)."""

FLOAT32_RTOL = 1e-5
"""Two float32 evaluations of the same few-thousand-term loss agree to rounding (~1e-6 relative)."""

NUM_SIGMA = 4.0
"""Statistical tests accept deviations up to this many standard errors."""

PNG_GREY_TOLERANCE = 2 / 255
"""A grey level survives the 256-entry colormap lookup and 8-bit storage within one level each."""

LOSS_WINDOW = 20
"""First/last steps averaged when checking that training lowers the loss."""


def num_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def binary_batch(size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return dynamic_binarize(embedded_mnist("train")[:size], generator)


# --- architecture ------------------------------------------------------------------------


def test_parameter_counts_exact_for_mlp():
    """784 ↔ 16 network, J = 4 latents.

    BVAE: N (16·784 + 16 + 784) + W (4·16 + 4 + 16) + V (4·16 + 4) = 13496.
    Twin: encoder (16·784 + 16) + (4·16 + 4) + (4·16 + 4) = 12696,
          decoder (16·4 + 16) + (784·16 + 784) = 13408; total 26104.
    """
    bvae = BidirectionalVAE(bidirectional_mlp([784, 16]), latent_dim=4)
    twin = UnidirectionalVAE(bidirectional_mlp([784, 16]), latent_dim=4)
    assert num_parameters(bvae) == 13496
    assert num_parameters(twin) == 26104


def test_twin_has_exactly_one_more_copy_of_every_shared_weight():
    bvae = BidirectionalVAE(bidirectional_resnet(channels=(4, 8), hidden_channels=4), latent_dim=5)
    twin = UnidirectionalVAE(bidirectional_resnet(channels=(4, 8), hidden_channels=4), latent_dim=5)
    shared = sum(
        m.weight.numel() for m in bvae.modules() if isinstance(m, (BidirectionalLinear, BidirectionalConv2d))
    )
    assert num_parameters(twin) - num_parameters(bvae) == shared


def test_decoder_is_the_backward_pass_of_the_encoder_network():
    """Algorithm 1 line 6: logits = N^T(W^T z), here N = [Linear 784→16, G-NoVa]."""
    bvae = BidirectionalVAE(bidirectional_mlp([784, 16]), latent_dim=4)
    linear, activation = bvae.encoder.body[0], bvae.encoder.body[1].activation
    mean_head = bvae.encoder.mean_head
    z = torch.randn(3, 4)
    hidden = activation(z @ mean_head.weight + mean_head.reverse_bias)
    expected = hidden @ linear.weight + linear.reverse_bias
    torch.testing.assert_close(bvae.decoder(z).base_dist.logits, expected)
    x = torch.rand(3, 784)
    features = activation(x @ linear.weight.T + linear.forward_bias)
    torch.testing.assert_close(bvae.encoder(x).mean, features @ mean_head.weight.T + mean_head.forward_bias)


@pytest.mark.parametrize("vae_class, encoder_moves", [(BidirectionalVAE, True), (UnidirectionalVAE, False)])
def test_decoder_step_moves_encoder_only_when_bidirectional(vae_class, encoder_moves):
    vae = vae_class(bidirectional_mlp([784, 16]), latent_dim=4)
    x, z = binary_batch(8), torch.randn(8, 4)
    before = vae.encoder(x).mean.detach().clone()
    optimizer = torch.optim.SGD(vae.parameters(), lr=0.01)
    (-vae.decoder(z).log_prob(x).sum()).backward()  # a decoder-only loss
    optimizer.step()
    change = (vae.encoder(x).mean - before).abs().max().item()
    assert (change > 1e-4) if encoder_moves else (change == 0.0)


def test_distributions_carry_particle_dims():
    bvae = BidirectionalVAE(bidirectional_resnet(channels=(4, 8), hidden_channels=4), latent_dim=3)
    posterior = bvae.encoder(torch.rand(2, 5, 784))
    assert (posterior.batch_shape, posterior.event_shape) == ((2, 5), (3,))
    likelihood = bvae.decoder(torch.randn(7, 5, 3))
    assert (likelihood.batch_shape, likelihood.event_shape) == ((7, 5), (784,))


def test_arguments_are_validated_naming_them():
    bvae = BidirectionalVAE(bidirectional_mlp([784, 16]), latent_dim=4)
    with pytest.raises(ValueError, match="x must have shape"):
        bvae.model(torch.rand(3, 100))
    with pytest.raises(ValueError, match="beta"):
        bvae.guide(torch.rand(3, 784), beta=0.0)
    with pytest.raises(ValueError, match="likelihood"):
        BidirectionalVAE(bidirectional_mlp([784, 16]), latent_dim=4, likelihood="gaussian")
    with pytest.raises(ValueError, match="z must have shape"):
        bvae.decoder(torch.randn(3, 5))


# --- objectives --------------------------------------------------------------------------


def gaussian_kl_to_standard(posterior: dist.Independent) -> torch.Tensor:
    """KL(N(μ, σ²) || N(0, 1)) summed over units, closed form (Kingma & Welling, App. B)."""
    loc, scale = posterior.base_dist.loc, posterior.base_dist.scale
    return 0.5 * (loc**2 + scale**2 - 1 - 2 * torch.log(scale)).sum(-1)


@pytest.mark.parametrize("beta", [0.5, 1.5])
def test_beta_scales_exactly_the_kl_term(beta):
    """Same draws: loss(β) − loss(1) = (β − 1) Σ_b KL(q(z|x_b) || p(z)) under TraceMeanField_ELBO."""
    vae = BidirectionalVAE(bidirectional_mlp([784, 16]), latent_dim=4)
    x = binary_batch(10)
    elbo = TraceMeanField_ELBO()
    pyro.set_rng_seed(3)
    loss_beta = elbo.loss(vae.model, vae.guide, x, beta=beta)
    pyro.set_rng_seed(3)
    loss_one = elbo.loss(vae.model, vae.guide, x)
    kl = gaussian_kl_to_standard(vae.encoder(x)).sum().item()
    assert loss_beta - loss_one == pytest.approx((beta - 1) * kl, rel=FLOAT32_RTOL * loss_one / kl)


def test_renyi_alpha0_is_the_per_data_point_iwae_bound():
    """Pyro's RenyiELBO(alpha=0) forms one weight per data point: Σ_b log mean_k w_kb, not log mean_k Π_b w_kb."""
    vae = BidirectionalVAE(bidirectional_mlp([784, 16]), latent_dim=4)
    x = binary_batch(6)
    elbo = RenyiELBO(alpha=0, num_particles=7, vectorize_particles=True, max_plate_nesting=1)
    pyro.set_rng_seed(4)
    loss = elbo.loss(vae.model, vae.guide, x)
    pyro.set_rng_seed(4)
    model_trace, guide_trace = next(elbo._get_traces(vae.model, vae.guide, (x,), {}))
    log_weights = (
        model_trace.nodes["z"]["log_prob"] + model_trace.nodes["x"]["log_prob"] - guide_trace.nodes["z"]["log_prob"]
    )
    assert log_weights.shape == (7, 6)
    assert loss == pytest.approx(-log_mean_exp(log_weights, 0).sum().item(), rel=FLOAT32_RTOL)


def log_normal_density(value: float, loc: float, scale: float) -> float:
    return -0.5 * ((value - loc) / scale) ** 2 - math.log(scale) - 0.5 * math.log(2 * math.pi)


def random_factorised_posterior(num_data: int, num_units: int):
    loc = torch.randn(num_data, num_units, dtype=torch.float64)
    scale = 0.5 + torch.rand(num_data, num_units, dtype=torch.float64)
    z = loc + scale * torch.randn_like(loc)
    return loc, scale, z, dist.Normal(0.0, 1.0).log_prob(z).sum(-1)


def test_decomposition_is_the_definition_when_the_batch_is_the_data_set():
    """M = N: q(z) = (1/N) Σ_n q(z|x_n), q(z_d) = (1/N) Σ_n q(z_d|x_n) (Chen et al. Eq. 2), by explicit loops.

    "stratified" is exact; "mws" (weights 1/(NM)) is offset by ln N per density estimate.
    """
    num_data, num_units = 4, 3
    loc, scale, z, log_prior = random_factorised_posterior(num_data, num_units)
    posterior = dist.Normal(loc, scale).to_event(1)
    stratified = minibatch_kl_decomposition(z, posterior, log_prior, num_data, estimator="stratified")
    mws = minibatch_kl_decomposition(z, posterior, log_prior, num_data, estimator="mws")
    offset = math.log(num_data)
    for i in range(num_data):
        per_unit = [[log_normal_density(z[i, d].item(), loc[n, d].item(), scale[n, d].item()) for d in range(num_units)] for n in range(num_data)]
        log_q_joint = math.log(sum(math.exp(sum(row)) for row in per_unit) / num_data)
        log_q_product = sum(math.log(sum(math.exp(per_unit[n][d]) for n in range(num_data)) / num_data) for d in range(num_units))
        mi, tc = sum(per_unit[i]) - log_q_joint, log_q_joint - log_q_product
        kl_dw = log_q_product - log_prior[i].item()
        for value, expected in [
            (stratified.mutual_information, mi),
            (stratified.total_correlation, tc),
            (stratified.dimension_wise_kl, kl_dw),
            (mws.mutual_information, mi + offset),
            (mws.total_correlation, tc + (num_units - 1) * offset),
            (mws.dimension_wise_kl, kl_dw - num_units * offset),
        ]:
            assert value[i].item() == pytest.approx(expected, rel=EXACT_RTOL, abs=EXACT_RTOL)
    kl_term = posterior.log_prob(z) - log_prior
    torch.testing.assert_close(stratified.kl, kl_term, rtol=EXACT_RTOL, atol=0)
    torch.testing.assert_close(mws.kl, kl_term, rtol=EXACT_RTOL, atol=0)


def test_stratified_weights_are_unbiased_over_all_minibatches():
    """Averaging Σ_j ω_ij f(x_j) over every minibatch of size M that contains x_i gives (1/N) Σ_n f(x_n) exactly."""
    num_data, batch_size, own = 5, 3, 2
    values = torch.rand(num_data, dtype=torch.float64)
    weights = aggregate_log_weights(batch_size, num_data, "stratified", torch.float64).exp()[0]  # row of the own point
    others = [n for n in range(num_data) if n != own]
    estimates = [
        weights[0] * values[own] + sum(weights[1 + k] * values[n] for k, n in enumerate(rest))
        for rest in itertools.combinations(others, batch_size - 1)
    ]
    assert torch.stack(estimates).mean().item() == pytest.approx(values.mean().item(), rel=EXACT_RTOL)


def test_identical_posteriors_have_no_mutual_information_and_no_total_correlation():
    loc, scale, _, _ = random_factorised_posterior(1, 3)
    loc, scale = loc.expand(5, 3), scale.expand(5, 3)
    z = loc + scale * torch.randn(5, 3, dtype=torch.float64)
    log_prior = dist.Normal(0.0, 1.0).log_prob(z).sum(-1)
    terms = minibatch_kl_decomposition(z, dist.Normal(loc, scale).to_event(1), log_prior, 5, "stratified")
    zeros = torch.zeros(5, dtype=torch.float64)
    torch.testing.assert_close(terms.mutual_information, zeros, rtol=0, atol=EXACT_RTOL)
    torch.testing.assert_close(terms.total_correlation, zeros, rtol=0, atol=EXACT_RTOL)


@pytest.mark.parametrize(
    "alpha, beta, gamma, estimator",
    [(1.0, 1.0, 1.0, "mws"), (1.0, 3.0, 1.0, "mws"), (2.0, 0.5, 0.25, "mws"), (1.0, 3.0, 1.0, "stratified")],
)
def test_tcvae_loss_is_elbo_plus_reweighted_decomposition(alpha, beta, gamma, estimator):
    """Same draws: TC loss − ELBO loss = (α−1)MI + (β−1)TC + (γ−1)KL_dw, and MI + TC + KL_dw is the ELBO's KL term."""
    vae = BidirectionalVAE(bidirectional_mlp([784, 16]), latent_dim=4)
    x = binary_batch(8)
    objective = TCVAE_ELBO(dataset_size=100, alpha=alpha, beta=beta, gamma=gamma, estimator=estimator)
    pyro.set_rng_seed(5)
    loss_tc = objective.loss(vae.model, vae.guide, x)
    pyro.set_rng_seed(5)
    loss_elbo = Trace_ELBO().loss(vae.model, vae.guide, x)
    pyro.set_rng_seed(5)
    model_trace, guide_trace = next(objective._get_traces(vae.model, vae.guide, (x,), {}))
    terms = objective.decomposition(model_trace, guide_trace)
    kl_term = guide_trace.nodes["z"]["log_prob"] - model_trace.nodes["z"]["log_prob"]
    torch.testing.assert_close(terms.kl, kl_term)
    extra = ((alpha - 1) * terms.mutual_information + (beta - 1) * terms.total_correlation + (gamma - 1) * terms.dimension_wise_kl).sum().item()
    assert loss_tc - loss_elbo == pytest.approx(extra, abs=FLOAT32_RTOL * abs(loss_elbo))


def training_losses(vae, objective, num_steps: int, **step_kwargs) -> torch.Tensor:
    """Per-data-point losses of SVI on dynamically binarised embedded MNIST, batches of 100."""
    data = embedded_mnist("train")
    generator = torch.Generator().manual_seed(0)
    svi = SVI(vae.model, vae.guide, Adam({"lr": 1e-3}), objective)
    losses = []
    for _ in range(num_steps):
        batch = dynamic_binarize(data[torch.randint(0, len(data), (100,), generator=generator)], generator)
        losses.append(svi.step(batch, **step_kwargs) / len(batch))
    return torch.tensor(losses)


def assert_loss_falls(losses: torch.Tensor) -> None:
    first, last = losses[:LOSS_WINDOW], losses[-LOSS_WINDOW:]
    standard_error = math.sqrt((first.var() + last.var()).item() / LOSS_WINDOW)
    assert first.mean() - last.mean() > NUM_SIGMA * standard_error, (first.mean(), last.mean(), standard_error)


@pytest.mark.parametrize(
    "vae_class, objective, step_kwargs, num_steps",
    [
        (BidirectionalVAE, Trace_ELBO(), {}, 120),
        (UnidirectionalVAE, Trace_ELBO(), {}, 120),
        (BidirectionalVAE, Trace_ELBO(), {"beta": 0.5}, 120),
        (BidirectionalVAE, TCVAE_ELBO(dataset_size=3000, beta=1.5), {}, 120),
        (BidirectionalVAE, RenyiELBO(alpha=0, num_particles=3, vectorize_particles=True, max_plate_nesting=1), {}, 80),
    ],
    ids=["bvae-elbo", "twin-elbo", "bvae-beta0.5", "bvae-tcvae", "bvae-iwae"],
)
def test_training_lowers_the_loss(vae_class, objective, step_kwargs, num_steps):
    vae = vae_class(bidirectional_mlp([784, 128]), latent_dim=8)
    assert_loss_falls(training_losses(vae, objective, num_steps, **step_kwargs))


@pytest.mark.slow
@pytest.mark.parametrize("vae_class", [BidirectionalVAE, UnidirectionalVAE])
def test_residual_vae_training_lowers_the_loss(vae_class):
    vae = vae_class(bidirectional_resnet(channels=(8, 16), hidden_channels=8, num_blocks=1), latent_dim=8)
    assert_loss_falls(training_losses(vae, Trace_ELBO(), 80))


@pytest.mark.cuda
def test_svi_step_runs_on_cuda():
    vae = BidirectionalVAE(bidirectional_resnet(channels=(4, 8), hidden_channels=4), latent_dim=4).cuda()
    svi = SVI(vae.model, vae.guide, Adam({"lr": 1e-3}), Trace_ELBO())
    assert math.isfinite(svi.step(binary_batch(10).cuda()))


# --- metrics -----------------------------------------------------------------------------


def test_iw_nll_matches_quadrature_for_one_latent():
    """J = 1: log p(x) = log ∫ N(z; 0, 1) p(x|z) dz by a fine Riemann sum; the K-sample estimate
    lies within NUM_SIGMA standard errors, SE² = (E_q[w²]/p(x)² − 1)/K (delta method), also by quadrature."""
    vae = BidirectionalVAE(bidirectional_mlp([12, 6]), latent_dim=1).double()
    x = torch.bernoulli(torch.full((5, 12), 0.3, dtype=torch.float64))
    num_samples = 4000
    nll = importance_weighted_nll(vae, x, num_samples=num_samples, chunk_size=1000)
    grid = torch.linspace(-10, 10, 20001, dtype=torch.float64).unsqueeze(-1)  # (G, 1)
    spacing = (grid[1] - grid[0]).item()
    with torch.no_grad():
        log_joint = dist.Normal(0.0, 1.0).log_prob(grid) + vae.decoder(grid.unsqueeze(1)).log_prob(x)  # (G, B)
        log_q = vae.encoder(x).log_prob(grid.unsqueeze(1))  # (G, B)
    log_marginal = torch.logsumexp(log_joint, 0) + math.log(spacing)
    log_second_moment = torch.logsumexp(2 * log_joint - log_q, 0) + math.log(spacing)
    standard_error = torch.sqrt(torch.expm1(log_second_moment - 2 * log_marginal) / num_samples)
    assert ((nll + log_marginal).abs() < NUM_SIGMA * standard_error).all()


def test_active_units_counts_dims_with_variance_at_least_epsilon():
    """Columns of ±√v have population variance exactly v: v = 0.5, 0.0101, 0.0099, 0 → 2 active units."""
    variances = torch.tensor([0.5, 0.0101, 0.0099, 0.0], dtype=torch.float64)
    signs = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(50).unsqueeze(-1)
    means = 3.0 + signs * variances.sqrt()
    assert active_units(means) == 2
    assert active_units(means, threshold=0.6) == 0


def test_psnr_known_value():
    target = torch.zeros(2, 1, 4, 4)
    assert torch.allclose(psnr(target + 0.1, target), torch.full((2,), 20.0))  # 10 log10(1 / 0.01)


def test_ssim_of_an_image_with_itself_is_one():
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(ssim(x, x), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12)


def test_ssim_of_constant_images_is_the_luminance_term():
    """σ_x = σ_y = σ_xy = 0: SSIM = (2ab + C1)/(a² + b² + C1) (Wang et al. Eq. 13)."""
    a, b = 0.2, 0.7
    x = torch.full((1, 1, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 1, 16, 16), b, dtype=torch.float64)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a**2 + b**2 + c1)
    assert ssim(x, y).item() == pytest.approx(expected, rel=1e-10)


def test_ssim_matches_an_independent_scipy_computation():
    x = torch.rand(2, 1, 20, 24, dtype=torch.float64)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    radius = 5  # 11×11 window, σ = 1.5: scipy's radius is int(truncate·σ + 0.5)
    crop = (slice(radius, -radius), slice(radius, -radius))
    expected = []
    for image_x, image_y in zip(x[:, 0].numpy(), y[:, 0].numpy()):
        def blur(image):
            return scipy.ndimage.gaussian_filter(image, sigma=1.5, truncate=radius / 1.5)[crop]
        mx, my = blur(image_x), blur(image_y)
        vx, vy, cxy = blur(image_x**2) - mx**2, blur(image_y**2) - my**2, blur(image_x * image_y) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        expected.append((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())
    torch.testing.assert_close(ssim(x, y), torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=0)


def test_classifier_separates_separable_features_and_is_at_chance_on_noise():
    generator = torch.Generator().manual_seed(0)
    centres = 5.0 * torch.eye(4)
    train_labels = torch.randint(0, 4, (400,), generator=generator)
    test_labels = torch.randint(0, 4, (400,), generator=generator)
    train = centres[train_labels] + 0.3 * torch.randn(400, 4, generator=generator)
    test = centres[test_labels] + 0.3 * torch.randn(400, 4, generator=generator)
    assert latent_classifier_accuracy(train, train_labels, test, test_labels) == 1.0
    # Features independent of the test labels: accuracy ~ Binomial(n, 1/4)/n.
    noise_test_labels = torch.randint(0, 4, (2000,), generator=generator)
    noise_test = torch.randn(2000, 4, generator=generator)
    accuracy = latent_classifier_accuracy(train, train_labels, noise_test, noise_test_labels)
    assert abs(accuracy - 0.25) < NUM_SIGMA * math.sqrt(0.25 * 0.75 / 2000)


def test_interpolation_endpoints_and_png_grid(tmp_path):
    vae = BidirectionalVAE(bidirectional_mlp([784, 16]), latent_dim=4)
    x_start, x_end = binary_batch(4).split(2)
    grid = latent_interpolation(vae, x_start, x_end, num_steps=5)
    assert grid.shape == (2, 5, 784)
    with torch.no_grad():
        torch.testing.assert_close(grid[:, 0], vae.decoder(vae.encoder(x_start).mean).mean)
        torch.testing.assert_close(grid[:, -1], vae.decoder(vae.encoder(x_end).mean).mean)
    images = grid.reshape(2, 5, 28, 28)
    path = save_image_grid(grid.reshape(10, 784), tmp_path / "interpolation.png", num_columns=5, scale=1)
    saved = torch.from_numpy(matplotlib.image.imread(path))
    expected = torch.from_numpy(tile_grid(images.numpy()))
    assert saved.shape[:2] == expected.shape
    torch.testing.assert_close(saved[..., 0].double(), expected.double(), rtol=0, atol=PNG_GREY_TOLERANCE)
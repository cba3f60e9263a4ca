r"""Evaluation metrics of the BVAE paper (Kosko & Adigun, Sec. IV-E) for Gaussian-latent VAEs.

* IW NLL — :math:`-\log \frac1K \sum_k p(x, z_k)/q(z_k \mid x)` per data point
  (Burda et al. 2016), through :func:`pyro_dgm.infer.estimators.log_likelihood.log_likelihood`;
* active units (Eq. 41, Burda et al.) — latent dims whose posterior mean varies
  over the data: :math:`\mathrm{AU} = \sum_d \mathbb I[\operatorname{Cov}_x(\mathbb E_{q(z \mid x)}[z_d]) \ge \epsilon]`;
* PSNR and SSIM (Wang et al. 2004) of reconstructions against targets;
* downstream accuracy of a multinomial logistic regression on the posterior means
  ("simple linear classifiers" for MNIST, Sec. IV-C);
* latent interpolation grids (Sec. IV-B4), saved as PNG.

The VAE functions take any object with ``encoder(x)`` / ``decoder(z)`` returning
distributions and ``model``/``guide`` methods, e.g.
:class:`~pyro_dgm.models.bvae.BidirectionalVAE`. FID is not implemented (it needs
an Inception network).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from torch.distributions import Distribution

from pyro_dgm.infer.estimators.log_likelihood import log_likelihood

ACTIVE_UNIT_THRESHOLD = 0.01
r""":math:`\epsilon` of Eq. (41) (Burda et al. 2016)."""

SSIM_WINDOW_SIZE = 11
SSIM_WINDOW_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
"""Wang et al. (2004), Sec. III-C: 11×11 circular-symmetric Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03."""

PIXEL_RANGE = 1.0
"""Dynamic range L of pixels in [0, 1]."""

FEATURE_STD_FLOOR = 1e-6
"""Standardising a constant feature divides by this instead of 0."""

CLASSIFIER_L2_STRENGTH = 1e-3
"""Ridge penalty of the logistic regression; keeps the optimum finite on separable data."""

CLASSIFIER_MAX_ITERATIONS = 200
"""L-BFGS iterations of the (convex) logistic-regression fit."""

IMAGE_DIMS = 4
"""Image metrics take batches (N, C, H, W)."""


class AutoencoderLike(Protocol):
    """What the metrics need of a VAE: distribution-valued encoder/decoder and a Pyro model/guide."""

    encoder: Callable[[torch.Tensor], Distribution]
    decoder: Callable[[torch.Tensor], Distribution]

    def model(self, x: torch.Tensor) -> Any: ...

    def guide(self, x: torch.Tensor) -> Any: ...


# --- latent statistics ---------------------------------------------------------------


def posterior_means(vae: AutoencoderLike, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    r""":math:`\mathbb E_{q(z \mid x_n)}[z]` for every row of ``x``, shape (N, J), without gradients."""
    with torch.no_grad():
        return torch.cat([vae.encoder(chunk).mean for chunk in x.split(batch_size)])


def latent_activity(latent_means: torch.Tensor) -> torch.Tensor:
    r""":math:`\operatorname{Cov}_x(\mathbb E_q[z_d])` per dim: the variance of each column of (N, J) means.

    The population variance (divide by N), as in Burda et al.'s code.
    """
    if latent_means.dim() != 2 or latent_means.size(0) < 2:
        raise ValueError(f"latent_means must have shape (N >= 2, J), got {tuple(latent_means.shape)}")
    return latent_means.var(dim=0, correction=0)


def active_units(latent_means: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    r"""Number of active latent units, Eq. (41): dims with :math:`\operatorname{Cov}_x(\mathbb E_q[z_d]) \ge \epsilon`."""
    return int((latent_activity(latent_means) >= threshold).sum())


# --- likelihood ----------------------------------------------------------------------


def importance_weighted_nll(
    vae: AutoencoderLike, x: torch.Tensor, num_samples: int = 1000, batch_size: int = 100, chunk_size: int = 100
) -> torch.Tensor:
    r"""IW estimate of :math:`-\ln p(x_n)` for every row of ``x`` (B, D), in nats, shape (N,).

    :math:`K` = ``num_samples`` draws from the guide per data point, ``chunk_size``
    of them per vectorised pass, ``batch_size`` data points at a time. The estimate
    is an upper bound in expectation, tightening as K grows.
    """
    estimates = [
        log_likelihood(
            vae.model, vae.guide, chunk, num_samples=num_samples, chunk_size=chunk_size, data_plate="data"
        ).log_likelihood
        for chunk in x.split(batch_size)
    ]
    return -torch.cat(estimates)


# --- reconstructions -----------------------------------------------------------------


def reconstruct(vae: AutoencoderLike, x: torch.Tensor, sample_latent: bool = True) -> torch.Tensor:
    r"""Decoder mean :math:`\mathbb E[x \mid z]` at :math:`z \sim q(z \mid x)` (or at its mean), no gradients.

    The paper decodes "after the latent sampling" (Sec. IV-B1), the default.
    """
    with torch.no_grad():
        posterior = vae.encoder(x)
        z = posterior.sample() if sample_latent else posterior.mean
        return vae.decoder(z).mean


def _check_image_pair(first: torch.Tensor, second: torch.Tensor, names: tuple[str, str]) -> None:
    if first.dim() != IMAGE_DIMS:
        raise ValueError(f"{names[0]} must be a batch of images (N, C, H, W), got shape {tuple(first.shape)}")
    if second.shape != first.shape:
        raise ValueError(
            f"{names[1]} must have the shape of {names[0]} {tuple(first.shape)}, got {tuple(second.shape)}"
        )


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = PIXEL_RANGE) -> torch.Tensor:
    r"""Peak signal-to-noise ratio :math:`10 \log_{10}(L^2 / \mathrm{MSE})` per image, in dB, shape (N,)."""
    _check_image_pair(reconstruction, target, ("reconstruction", "target"))
    mse = (reconstruction - target).pow(2).flatten(1).mean(-1)
    return 10.0 * torch.log10(data_range**2 / mse)


def gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r"""Normalised 1-D Gaussian :math:`w_i \propto e^{-i^2 / 2\sigma^2}`, :math:`i = -(s-1)/2 \ldots (s-1)/2`."""
    offsets = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = PIXEL_RANGE,
    window_size: int = SSIM_WINDOW_SIZE,
    sigma: float = SSIM_WINDOW_SIGMA,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
) -> torch.Tensor:
    r"""Mean structural similarity (Wang et al. 2004, Eq. 13 and 17) per image, shape (N,).

    .. math::

        \mathrm{SSIM}(x, y) = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
                                   {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)},
        \qquad C_1 = (K_1 L)^2,\ C_2 = (K_2 L)^2,

    with local statistics under a Gaussian window, evaluated at every position where
    the window fits inside the image ("valid", as in the authors' MATLAB code),
    averaged over positions and channels.

    :param x, y: images (N, C, H, W) with H, W ≥ ``window_size``.
    :param data_range: L, the dynamic range of the pixels.
    """
    _check_image_pair(x, y, ("x", "y"))
    channels, height, width = x.shape[1:]
    if min(height, width) < window_size:
        raise ValueError(f"x: images must be at least {window_size}x{window_size}, got {height}x{width}")
    window = gaussian_window(window_size, sigma, x.dtype, x.device)
    rows = window.view(1, 1, window_size, 1).expand(channels, 1, window_size, 1)
    columns = window.view(1, 1, 1, window_size).expand(channels, 1, 1, window_size)

    def local_mean(image: torch.Tensor) -> torch.Tensor:  # separable Gaussian filter, valid positions
        return F.conv2d(F.conv2d(image, rows, groups=channels), columns, groups=channels)

    mean_x, mean_y = local_mean(x), local_mean(y)
    variance_x = local_mean(x * x) - mean_x**2
    variance_y = local_mean(y * y) - mean_y**2
    covariance = local_mean(x * y) - mean_x * mean_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (variance_x + variance_y + c2)
    )  # Wang et al. Eq. (13)
    return ssim_map.flatten(1).mean(-1)  # Eq. (17), mean SSIM


# --- downstream classification -------------------------------------------------------


def latent_classifier_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    l2_strength: float = CLASSIFIER_L2_STRENGTH,
    max_iterations: int = CLASSIFIER_MAX_ITERATIONS,
) -> float:
    r"""Test accuracy of a multinomial logistic regression fitted on (standardised) latent features.

    Minimises :math:`\frac1N \sum_n -\ln \mathrm{softmax}(W f_n + b)_{y_n} + \frac{\lambda}{2}\|W\|^2`
    with L-BFGS from zero (a convex problem, so the fit is deterministic).
    Features are standardised with the training set's mean and standard deviation.
    """
    if train_features.dim() != 2 or test_features.dim() != 2 or train_features.size(1) != test_features.size(1):
        raise ValueError(
            "train_features and test_features must be (N, J) matrices with the same J, got "
            f"{tuple(train_features.shape)} and {tuple(test_features.shape)}"
        )
    for features, labels, name in ((train_features, train_labels, "train_labels"), (test_features, test_labels, "test_labels")):
        if labels.shape != features.shape[:1]:
            raise ValueError(f"{name} must have shape ({features.size(0)},), got {tuple(labels.shape)}")
    mean = train_features.mean(0)
    std = train_features.std(0).clamp_min(FEATURE_STD_FLOOR)
    train = ((train_features - mean) / std).detach()
    test = ((test_features - mean) / std).detach()
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    weight = torch.zeros(train.size(1), num_classes, dtype=train.dtype, device=train.device, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=train.dtype, device=train.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(train @ weight + bias, train_labels) + 0.5 * l2_strength * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        predictions = (test @ weight + bias).argmax(-1)
    return float((predictions == test_labels).double().mean())


# --- interpolation -------------------------------------------------------------------


def latent_interpolation(vae: AutoencoderLike, x_start: torch.Tensor, x_end: torch.Tensor, num_steps: int = 10) -> torch.Tensor:
    r"""Decoded convex combinations of latent means (Sec. IV-B4), shape (P, num_steps, D).

    For each pair :math:`(x_a, x_b)` (rows of ``x_start``/``x_end``) and
    :math:`t_s = s/(S-1)`: :math:`\mathbb E[x \mid z_s]` with
    :math:`z_s = (1 - t_s)\,\mathbb E_q[z \mid x_a] + t_s\,\mathbb E_q[z \mid x_b]`.
    """
    if x_start.shape != x_end.shape or x_start.dim() != 2:
        raise ValueError(
            f"x_start and x_end must be (P, D) with the same shape, got {tuple(x_start.shape)} and {tuple(x_end.shape)}"
        )
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps must be an int >= 2, got {num_steps!r}")
    with torch.no_grad():
        z_start, z_end = vae.encoder(x_start).mean, vae.encoder(x_end).mean
        t = torch.linspace(0, 1, num_steps, dtype=z_start.dtype, device=z_start.device).view(1, -1, 1)
        z = (1 - t) * z_start.unsqueeze(1) + t * z_end.unsqueeze(1)  # (P, S, J)
        return vae.decoder(z).mean

"""The mixture of discretised logistics: normalisation, hand values, sampling, validation."""

import math

import pytest
import torch

from pyro_dgm.distributions.discretized_logistic import (
    MAX_INTENSITY,
    NUM_INTENSITIES,
    DiscretizedLogisticMixture,
)

FLOAT64_SUM_TOLERANCE = 1e-12
"""256 masses in float64 sum to 1 up to a few hundred ulps of rounding."""


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def _random_mixture(batch_shape, num_components=4) -> DiscretizedLogisticMixture:
    shape = tuple(batch_shape) + (num_components,)
    logits = 2 * torch.randn(shape, dtype=torch.float64)
    loc = 1.6 * torch.rand(shape, dtype=torch.float64) - 0.3  # some locations off [0, 1]
    log_scale = torch.empty(shape, dtype=torch.float64).uniform_(-9.0, 1.0)  # sub-bin to wide
    return DiscretizedLogisticMixture(logits, loc, log_scale)


def test_masses_sum_to_one_over_the_256_intensities_for_every_pixel_and_channel():
    mixture = _random_mixture((3, 5, 5))  # (channels, height, width)
    grid = mixture.enumerate_support()
    assert grid.shape == (NUM_INTENSITIES, 3, 5, 5)
    total = mixture.log_prob(grid).exp().sum(0)
    torch.testing.assert_close(total, torch.ones_like(total), atol=FLOAT64_SUM_TOLERANCE, rtol=0)


def test_log_prob_matches_the_hand_computed_bin_masses():
    weights = [0.25, 0.75]
    locs, scales = [0.3, 0.9], [0.05, 0.2]
    mixture = DiscretizedLogisticMixture(
        torch.tensor(weights, dtype=torch.float64).log(),
        torch.tensor(locs, dtype=torch.float64),
        torch.tensor(scales, dtype=torch.float64).log(),
    )
    half = 0.5 / 255

    def component_mass(x: float, loc: float, scale: float) -> float:
        upper = 1.0 if x == 1.0 else _sigmoid((x + half - loc) / scale)
        lower = 0.0 if x == 0.0 else _sigmoid((x - half - loc) / scale)
        return upper - lower

    for intensity in (0, 1, 77, 128, 254, 255):
        x = intensity / 255
        expected = sum(w * component_mass(x, m, s) for w, m, s in zip(weights, locs, scales))
        actual = mixture.log_prob(torch.tensor(x, dtype=torch.float64)).exp().item()
        assert actual == pytest.approx(expected, rel=1e-10), intensity


def test_sample_frequencies_match_the_masses():
    mixture = DiscretizedLogisticMixture(
        torch.tensor([0.0, 0.5]), torch.tensor([0.1, 0.12]), torch.tensor([-4.0, -3.5])
    )
    num_samples = 20000
    samples = mixture.sample((num_samples,))
    counts = torch.bincount((samples * MAX_INTENSITY).round().long(), minlength=NUM_INTENSITIES).double()
    probs = mixture.log_prob(mixture.enumerate_support()).exp().double()
    standard_error = (probs * (1 - probs) / num_samples).sqrt()
    frequency = counts / num_samples
    assert ((frequency - probs).abs() <= 5 * standard_error + 1e-4).all()  # fixed seed, 5 SE per bin


def test_extreme_parameters_give_finite_log_probs_and_gradients():
    loc = torch.tensor([0.9], dtype=torch.float32, requires_grad=True)
    log_scale = torch.tensor([-8.0], requires_grad=True)  # far below one bin
    mixture = DiscretizedLogisticMixture(torch.zeros(1), loc, log_scale)
    values = torch.tensor([0.0, 1.0, 128.0, 230.0, 255.0]) / 255
    log_prob = mixture.log_prob(values)
    assert torch.isfinite(log_prob).all()
    log_prob.sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(log_scale.grad).all()


def test_shapes_expand_and_to_event():
    mixture = _random_mixture((2, 6))
    assert mixture.batch_shape == (2, 6) and mixture.event_shape == ()
    expanded = mixture.expand((4, 2, 6))
    assert expanded.sample().shape == (4, 2, 6)
    image = mixture.to_event(2)
    assert image.log_prob(mixture.sample((7,))).shape == (7,)
    assert mixture.mean.shape == (2, 6)


def test_values_off_the_intensity_grid_are_rejected():
    mixture = DiscretizedLogisticMixture(torch.zeros(2), torch.zeros(2), torch.zeros(2), validate_args=True)
    with pytest.raises(ValueError):
        mixture.log_prob(torch.tensor(0.5 / 255))
    with pytest.raises(ValueError):
        mixture.log_prob(torch.tensor(1.5))


def test_variance_and_entropy_equal_sums_over_hand_computed_masses():
    weights, locs, scales = [0.25, 0.75], [0.3, 0.9], [0.05, 0.2]
    mixture = DiscretizedLogisticMixture(
        torch.tensor(weights, dtype=torch.float64).log(),
        torch.tensor(locs, dtype=torch.float64),
        torch.tensor(scales, dtype=torch.float64).log(),
    )
    half = 0.5 / MAX_INTENSITY
    masses = []
    for intensity in range(NUM_INTENSITIES):
        x = intensity / MAX_INTENSITY
        upper = [1.0 if intensity == MAX_INTENSITY else _sigmoid((x + half - m) / s) for m, s in zip(locs, scales)]
        lower = [0.0 if intensity == 0 else _sigmoid((x - half - m) / s) for m, s in zip(locs, scales)]
        masses.append(sum(w * (u - l) for w, u, l in zip(weights, upper, lower)))
    grid = [k / MAX_INTENSITY for k in range(NUM_INTENSITIES)]
    mean = math.fsum(p * x for p, x in zip(masses, grid))
    variance = math.fsum(p * (x - mean) ** 2 for p, x in zip(masses, grid))
    entropy = -math.fsum(p * math.log(p) for p in masses if p > 0)
    assert mixture.mean.item() == pytest.approx(mean, rel=1e-10)
    assert mixture.variance.item() == pytest.approx(variance, rel=1e-10)
    assert mixture.entropy().item() == pytest.approx(entropy, rel=1e-10)


def test_entropy_of_a_sub_bin_scale_is_finite():
    # far from its location the masses underflow to exactly 0 (their log-masses stay finite)
    mixture = DiscretizedLogisticMixture(torch.zeros(1), torch.tensor([0.5]), torch.tensor([-12.0]))
    assert bool((mixture.log_prob(mixture.enumerate_support()).exp() == 0).any())
    assert math.isfinite(mixture.entropy().item()) and mixture.entropy().item() >= 0
    assert mixture.variance.item() >= 0

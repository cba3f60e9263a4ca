"""Image grids: exact tiling, PNG pixel sizes, figures of trained models, and errors on bad images.

The figures of model outputs come from the tiny models of ``trained_models.py``: samples
of a DVAE++ and of a BiHM's p*, BiHM inpainting by Gibbs sampling, and the persistent
RBM chains of the DVAE++ decoded with the RBM state held fixed within a cell.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_dgm.bihm.gibbs_sampling import inpaint, sample_p_star
from pyro_dgm.diagnostics.plots_images import (
    EDGE_MARGIN_PIXELS,
    HIDDEN_PIXEL_RGB,
    PADDING,
    PADDING_VALUE,
    TOP_MARGIN_PIXELS,
    as_images,
    labelled_grid_size,
    save_chain_evolution,
    save_image_grid,
    save_inpainting_grid,
    tile_grid,
)
from pyro_dgm.models.dvae import sample_images
from tests.diagnostics import png_checks
from tests.diagnostics.trained_models import binarized_test_digits, decode_rbm_states, record_chain_states

MIN_PNG_BYTES = 1024
"""A rendered grid of digits is several KB; an empty or failed render is far smaller."""
GREY_LEVEL_TOLERANCE = 2 / 255
"""The gray colormap maps [0, 1] to 256 table entries, then to 8-bit RGB: two levels of slack."""
DIGIT_SIDE = 28
P_STAR_SWEEPS = 10
"""Gibbs sweeps from model samples to p* samples (BiHM Fig. 1B)."""
MIN_SAMPLE_SPREAD = 0.01
"""Mean over pixels of the standard deviation across samples: about 0 if every sample were alike
(a collapsed model); the trained models give 0.03 (DVAE++ pixel means) and more (binary p* samples)."""
INPAINTING_SWEEPS = 20
"""Gibbs sweeps of the inpainting chains (BiHM Fig. 2 uses 100; the tiny net mixes faster)."""


def png_size(path):
    """(height, width) of a PNG, after checking it is a real, non-trivial image."""
    return png_checks.png_size(path, MIN_PNG_BYTES)


def random_digits(num_images, side=8):
    return torch.rand(num_images, side * side)


def test_tile_grid_places_tiles_exactly():
    tiles = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    canvas = tile_grid(tiles, padding=1, pad_value=-1.0)
    assert canvas.shape == (2 * 3 + 1, 3 * 3 + 1)
    np.testing.assert_array_equal(canvas[4:6, 7:9], tiles[1, 2])  # row 1, column 2
    assert (canvas[0] == -1).all() and (canvas[:, 3] == -1).all()


def test_as_images_layouts():
    assert as_images(torch.rand(5, 784)).shape == (5, 28, 28)
    assert as_images(torch.rand(5, 12), image_shape=(3, 4)).shape == (5, 3, 4)
    assert as_images(torch.rand(5, 1, 6, 6)).shape == (5, 6, 6)
    assert as_images(torch.rand(5, 3, 6, 6)).shape == (5, 6, 6, 3)
    assert as_images(torch.rand(5, 3 * 16), image_shape=(3, 4, 4)).shape == (5, 4, 4, 3)


def test_image_grid_png_is_pixel_exact(tmp_path):
    images = random_digits(10)
    path = save_image_grid(images, tmp_path / "sub" / "samples.png", num_columns=4, scale=3)
    rows, columns = 3, 4
    side = 8
    assert png_size(path) == (3 * (rows * (side + PADDING) + PADDING), 3 * (columns * (side + PADDING) + PADDING))
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"), dtype=float) / 255
    # blank cells of the last row are padding grey; tile (0, 0) holds image 0
    assert np.allclose(pixels[-3 * (side + PADDING):, -3 * (side + PADDING):], PADDING_VALUE, atol=GREY_LEVEL_TOLERANCE)
    first = pixels[3 * PADDING: 3 * (PADDING + side): 3, 3 * PADDING: 3 * (PADDING + side): 3]
    np.testing.assert_allclose(first, images[0].reshape(side, side).numpy(), atol=GREY_LEVEL_TOLERANCE)


def test_colour_image_grid(tmp_path):
    path = save_image_grid(torch.rand(4, 3, 8, 8), tmp_path / "colour.png", scale=2)
    assert png_size(path) == (2 * (2 * 9 + 1), 2 * (2 * 9 + 1))


@pytest.mark.parametrize("source", ["dvae_pp", "bihm_p_star"])
def test_image_grid_of_model_samples(request, tmp_path, source):
    """Samples of a trained model (DVAE++ pixel means, or BiHM p* after Gibbs sweeps), tile by tile."""
    num_rows, num_columns, scale = 3, 8, 2
    num_samples = num_rows * num_columns
    if source == "dvae_pp":
        samples = sample_images(request.getfixturevalue("trained_dvae_pp").model, num_samples)
    else:
        trained = request.getfixturevalue("trained_bihm")
        samples = sample_p_star(trained.model, trained.guide, num_chains=num_samples, num_sweeps=P_STAR_SWEEPS).x
    assert samples.shape == (num_samples, DIGIT_SIDE * DIGIT_SIDE)
    assert samples.std(dim=0).mean() > MIN_SAMPLE_SPREAD  # the samples differ from one another
    path = save_image_grid(samples, tmp_path / f"{source}.png", num_columns=num_columns, scale=scale)
    pixels = png_checks.png_pixels(path, MIN_PNG_BYTES)
    tiles = samples.reshape(num_rows, num_columns, DIGIT_SIDE, DIGIT_SIDE).numpy()
    expected = tile_grid(tiles).repeat(scale, axis=0).repeat(scale, axis=1)
    assert pixels.shape[:2] == expected.shape
    np.testing.assert_allclose(png_checks.grey_levels(pixels), expected, atol=GREY_LEVEL_TOLERANCE)


def test_inpainting_grid_of_the_trained_bihm(trained_bihm, tmp_path):
    """BiHM Fig. 2 from the trained net: bottom halves filled in by Gibbs sampling from p*."""
    num_images, num_completions, scale = 4, 3, 2
    originals = binarized_test_digits(num_images)
    observed = torch.zeros(DIGIT_SIDE, DIGIT_SIDE, dtype=torch.bool)
    observed[: DIGIT_SIDE // 2] = True  # the model sees the top half
    observed = observed.flatten()
    starts = originals.repeat_interleave(num_completions, dim=0) * observed  # hidden pixels start at 0
    state = inpaint(trained_bihm.model, trained_bihm.guide, starts, observed, num_sweeps=INPAINTING_SWEEPS)
    completions = state.x.reshape(num_images, num_completions, -1)
    # the shown pixels stay clamped; the hidden ones were sampled (they no longer all hold their start, 0)
    torch.testing.assert_close(completions[..., observed], originals[:, None, observed].expand(-1, num_completions, -1))
    assert completions[..., ~observed].sum(dim=-1).min() > 0
    path = save_inpainting_grid(originals, observed, completions, tmp_path / "inpaint.png", scale=scale)
    pixels = png_checks.png_pixels(path, MIN_PNG_BYTES)
    side = DIGIT_SIDE + PADDING
    canvas = (scale * (num_images * side + PADDING), scale * ((2 + num_completions) * side + PADDING))
    assert pixels.shape[:2] == labelled_grid_size(*canvas, has_row_labels=False)
    # the masked column (tile column 1) paints exactly the hidden pixels of every image red
    hidden_tiles = np.zeros((num_images, 2 + num_completions, DIGIT_SIDE, DIGIT_SIDE), dtype=bool)
    hidden_tiles[:, 1] = ~observed.reshape(DIGIT_SIDE, DIGIT_SIDE).numpy()
    expected_red = tile_grid(hidden_tiles, pad_value=False).repeat(scale, axis=0).repeat(scale, axis=1)
    red = png_checks.colour_mask(pixels, HIDDEN_PIXEL_RGB)
    top, left = TOP_MARGIN_PIXELS, EDGE_MARGIN_PIXELS  # the canvas inside the labelled figure
    np.testing.assert_array_equal(red[top: top + canvas[0], left: left + canvas[1]], expected_red)
    assert red.sum() == expected_red.sum()  # and nowhere else
    # a flat mask per image is accepted too
    per_image = observed.reshape(1, -1).expand(num_images, -1)
    assert png_size(save_inpainting_grid(originals, per_image, completions, tmp_path / "flat.png")) == pixels.shape[:2]


def test_chain_evolution_decodes_every_shown_state_in_order(tmp_path):
    num_steps, num_chains, num_units = 12, 3, 5
    states = torch.bernoulli(torch.full((num_steps, num_chains, num_units), 0.5))
    weights = torch.randn(num_units, 64)
    calls = []

    def decode(z):
        calls.append(z.clone())
        return torch.sigmoid(z @ weights + torch.randn(len(z), 64))

    path = save_chain_evolution(
        states, decode, tmp_path / "evolution.png", steps=[0, 5, 11], decodes_per_state=2, scale=2
    )
    # one vectorised call; each shown state repeated decodes_per_state times, chains inner
    (batch,) = calls
    assert batch.shape == (3 * num_chains * 2, num_units)
    torch.testing.assert_close(batch[0], states[0, 0])
    torch.testing.assert_close(batch[1], states[0, 0])
    torch.testing.assert_close(batch[2], states[0, 1])
    torch.testing.assert_close(batch[-1], states[11, 2])
    canvas = (2 * (num_chains * 9 + 1), 2 * (3 * 2 * 9 + 1))
    assert png_size(path) == labelled_grid_size(*canvas)
    rows_path = save_chain_evolution(
        states, decode, tmp_path / "rows.png", decodes_per_state=2, time_along="rows",
        step_numbers=range(0, 1200, 100),
    )
    shown_steps = 10  # MAX_EVOLUTION_STEPS of the 12 recorded
    assert png_size(rows_path) == labelled_grid_size(2 * (shown_steps * 9 + 1), 2 * (num_chains * 2 * 9 + 1))


def test_chain_evolution_of_the_trained_dvae_pp_rbm(trained_dvae_pp, tmp_path):
    """DVAE Fig. 5 from the trained RBM's persistent chains: one RBM state per cell, several decodings."""
    num_steps, num_chains, decodes_per_state, sweeps_per_step, scale = 8, 3, 3, 10, 2
    states = record_chain_states(trained_dvae_pp, num_steps, sweeps_per_step)[:, :num_chains]
    assert not torch.equal(states[0], states[-1])  # the chains move
    decoded = []

    def decode(z):
        images = decode_rbm_states(trained_dvae_pp.model, z, trained_dvae_pp.final_beta)
        decoded.append(images)
        return images

    sweep_numbers = range(sweeps_per_step, (num_steps + 1) * sweeps_per_step, sweeps_per_step)
    path = save_chain_evolution(
        states, decode, tmp_path / "chains.png", step_numbers=sweep_numbers,
        decodes_per_state=decodes_per_state, time_along="rows", scale=scale,
    )
    pixels = png_checks.png_pixels(path, MIN_PNG_BYTES)
    side = DIGIT_SIDE + PADDING
    canvas = (scale * (num_steps * side + PADDING), scale * (num_chains * decodes_per_state * side + PADDING))
    assert pixels.shape[:2] == labelled_grid_size(*canvas)
    png_checks.assert_not_blank(pixels)
    # the decodings of one RBM state differ (zeta ~ r(zeta | z) is redrawn) but far less than states do
    (images,) = decoded
    cells = images.reshape(num_steps * num_chains, decodes_per_state, -1)
    within_cells = (cells - cells.mean(dim=1, keepdim=True)).abs().mean()
    between_cells = (cells.mean(dim=1) - cells.mean(dim=(0, 1))).abs().mean()
    assert 0 < within_cells < between_cells / 2


@pytest.mark.parametrize(
    "images, message",
    [
        (torch.rand(3, 10), "not a square number"),
        (torch.rand(3, 2, 4, 4), "2 channels"),
        (torch.rand(3, 16) + 1.5, r"pixel values in \[0, 1\]"),
        (torch.full((3, 16), float("nan")), "images contains NaN"),
        (torch.rand(16), "images must have 2 or 3 or 4 dimensions"),
    ],
)
def test_bad_images(tmp_path, images, message):
    with pytest.raises(ValueError, match=message):
        save_image_grid(images, tmp_path / "bad.png")


def test_bad_inpainting_and_chain_arguments(tmp_path):
    originals = random_digits(3)
    with pytest.raises(ValueError, match="completions has 2 rows"):
        save_inpainting_grid(originals, torch.ones(64), torch.rand(2, 1, 64), tmp_path / "x.png")
    with pytest.raises(ValueError, match="observed_mask has shape"):
        save_inpainting_grid(originals, torch.ones(2, 64), torch.rand(3, 1, 64), tmp_path / "x.png")
    with pytest.raises(ValueError, match="path must name a .png file"):
        save_image_grid(originals, tmp_path / "x.jpg")
    states = torch.zeros(4, 2, 3)
    with pytest.raises(ValueError, match="decode returned 1 images for 8 states"):
        save_chain_evolution(states, lambda z: torch.rand(1, 64), tmp_path / "x.png")
    with pytest.raises(ValueError, match="step_numbers has 2 entries"):
        save_chain_evolution(states, lambda z: torch.rand(len(z), 64), tmp_path / "x.png", step_numbers=[0, 1])
    with pytest.raises(ValueError, match="time_along"):
        save_chain_evolution(states, lambda z: torch.rand(len(z), 64), tmp_path / "x.png", time_along="diagonal")

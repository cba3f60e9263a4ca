"""Image grids: exact tiling, PNG pixel sizes, and errors on bad images."""

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_dgm.diagnostics.plots_images import (
    PADDING,
    PADDING_VALUE,
    as_images,
    labelled_grid_size,
    save_chain_evolution,
    save_image_grid,
    save_inpainting_grid,
    tile_grid,
)

MIN_PNG_BYTES = 1024
"""A rendered grid of digits is several KB; an empty or failed render is far smaller."""
GREY_LEVEL_TOLERANCE = 2 / 255
"""The gray colormap maps [0, 1] to 256 table entries, then to 8-bit RGB: two levels of slack."""


def png_size(path):
    """(height, width) of a PNG, after checking it is a real, non-trivial image."""
    assert path.stat().st_size > MIN_PNG_BYTES
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.height, image.width


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


def test_inpainting_grid(tmp_path):
    originals = random_digits(3)
    mask = torch.ones(8, 8, dtype=torch.bool)
    mask[4:] = False
    completions = torch.rand(3, 2, 64)
    path = save_inpainting_grid(originals, mask, completions, tmp_path / "inpaint.png", scale=2)
    canvas = (2 * (3 * 9 + 1), 2 * ((2 + 2) * 9 + 1))
    assert png_size(path) == labelled_grid_size(*canvas, has_row_labels=False)
    # a flat mask per image is accepted too
    per_image = mask.reshape(1, 64).expand(3, 64)
    assert save_inpainting_grid(originals, per_image, completions, tmp_path / "flat.png").is_file()


def test_chain_evolution(tmp_path):
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

"""Image grids: model samples, inpainting, and the evolution of RBM Markov chains.

Images come as tensors (any device) of shape ``(N, D)`` with ``D`` a square number
or ``image_shape`` given, ``(N, H, W)``, or ``(N, C, H, W)`` with ``C`` = 1 or 3, with
values in [0, 1] (pixel means or binary samples). Tiles are laid out on one canvas
with :data:`PADDING` pixels of :data:`PADDING_VALUE` grey between them and enlarged by
an integer ``scale`` with nearest-neighbour repetition, so every model pixel stays a
crisp square.

- :func:`save_image_grid`: a plain grid, written pixel-exact (no axes): the PNG is
  ``rows*(H+1)+1`` by ``columns*(W+1)+1`` pixels times ``scale``;
- :func:`save_inpainting_grid`: BiHM Fig. 2: per data point the original, the masked
  input (hidden pixels in :data:`HIDDEN_PIXEL_RGB`) and independent completions;
- :func:`save_chain_evolution`: DVAE Fig. 5: decoded RBM states of persistent chains
  along the Gibbs steps, several decodings of the *same* RBM state side by side so the
  variation due to the RBM is separated from that of the decoder.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from matplotlib import image as matplotlib_image

from pyro_dgm.diagnostics._tensors import ArrayLike, as_tensor, checked_tensor, to_numpy
from pyro_dgm.diagnostics.plots import PathLike, new_figure, png_path, save_figure

PADDING = 1
"""Pixels (before scaling) between tiles and around the grid."""
PADDING_VALUE = 0.5
"""Mid grey: separates tiles of white-on-black and black-on-white images alike."""
HIDDEN_PIXEL_RGB = (0.8, 0.15, 0.15)
"""Colour of the pixels hidden from the model in the masked column of an inpainting grid."""
PIXEL_RANGE_TOLERANCE = 1e-5
"""Pixel values may leave [0, 1] by float rounding (e.g. of a sigmoid) by this much."""
DEFAULT_SCALE = 2
"""Screen pixels per model pixel."""
LABEL_FONT_SIZE = 7
LEFT_MARGIN_PIXELS = 56
"""Room for row labels left of a labelled grid."""
TOP_MARGIN_PIXELS = 22
"""Room for column labels above a labelled grid."""
EDGE_MARGIN_PIXELS = 4
"""Blank border right of and below a labelled grid."""
MAX_EVOLUTION_STEPS = 10
"""Recorded steps shown by :func:`save_chain_evolution` when ``steps`` is not given."""


def as_images(
    images: ArrayLike, name: str = "images", image_shape: Sequence[int] | None = None
) -> np.ndarray:
    """Images as a NumPy array ``(N, H, W)`` (grey) or ``(N, H, W, 3)`` (colour) in [0, 1].

    Args:
        images: ``(N, D)``, ``(N, H, W)`` or ``(N, C, H, W)`` with ``C`` in {1, 3}.
        name: argument name used in error messages.
        image_shape: ``(H, W)`` or ``(C, H, W)`` to unflatten ``(N, D)``; by default a
            square ``D = H * W`` is read as one grey channel.
    """
    images = checked_tensor(images, name, ndim=(2, 3, 4))
    if images.dim() == 2:
        num_pixels = images.size(1)
        if image_shape is None:
            side = math.isqrt(num_pixels)
            if side * side != num_pixels:
                raise ValueError(
                    f"{name} has D={num_pixels} pixels, not a square number: pass image_shape"
                )
            image_shape = (side, side)
        if math.prod(image_shape) != num_pixels:
            raise ValueError(f"image_shape {tuple(image_shape)} does not hold the D={num_pixels} pixels of {name}")
        images = images.reshape(images.size(0), *image_shape)
    if images.dim() == 4:
        channels = images.size(1)
        if channels not in (1, 3):
            raise ValueError(f"{name} has {channels} channels (dim 1): expected 1 or 3")
        images = images[:, 0] if channels == 1 else images.permute(0, 2, 3, 1)
    low, high = images.min().item(), images.max().item()
    if low < -PIXEL_RANGE_TOLERANCE or high > 1 + PIXEL_RANGE_TOLERANCE:
        raise ValueError(f"{name} must hold pixel values in [0, 1], got range [{low:.3g}, {high:.3g}]")
    return np.clip(to_numpy(images), 0.0, 1.0)


def to_rgb(images: np.ndarray) -> np.ndarray:
    """A batch from :func:`as_images` in colour: grey ``(N, H, W)`` → ``(N, H, W, 3)``."""
    return images if images.ndim == 4 else np.repeat(images[..., None], 3, axis=-1)


def tile_grid(tiles: np.ndarray, padding: int = PADDING, pad_value: float = PADDING_VALUE) -> np.ndarray:
    """Lay out ``tiles`` of shape ``(R, C, H, W[, 3])`` as one ``(R*(H+p)+p, C*(W+p)+p[, 3])`` canvas."""
    rows, columns, height, width = tiles.shape[:4]
    channels = tiles.shape[4:]
    padded = np.full((rows, columns, height + padding, width + padding, *channels), pad_value, tiles.dtype)
    padded[:, :, :height, :width] = tiles
    canvas = padded.swapaxes(1, 2).reshape(rows * (height + padding), columns * (width + padding), *channels)
    border = [(padding, 0), (padding, 0)] + [(0, 0)] * len(channels)
    return np.pad(canvas, border, constant_values=pad_value)


def _enlarge(canvas: np.ndarray, scale: int) -> np.ndarray:
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return canvas.repeat(scale, axis=0).repeat(scale, axis=1)


def _rows_of(images: np.ndarray, num_columns: int) -> np.ndarray:
    """``(N, H, W[, 3])`` → ``(ceil(N/columns), columns, H, W[, 3])``, blank cells in padding grey."""
    num_rows = -(-len(images) // num_columns)
    blank = np.full((num_rows * num_columns - len(images), *images.shape[1:]), PADDING_VALUE, images.dtype)
    return np.concatenate([images, blank]).reshape(num_rows, num_columns, *images.shape[1:])


def save_image_grid(
    images: ArrayLike,
    path: PathLike,
    *,
    num_columns: int | None = None,
    image_shape: Sequence[int] | None = None,
    scale: int = DEFAULT_SCALE,
) -> Path:
    """Write ``images`` as a pixel-exact grid PNG (e.g. samples of :math:`p(x)` or :math:`p^*(x)`).

    Args:
        images: see :func:`as_images`.
        path: ``.png`` file to write (folders are created).
        num_columns: tiles per row; :math:`\\lceil\\sqrt N\\rceil` by default.
        image_shape: see :func:`as_images`.
        scale: screen pixels per image pixel.

    Returns:
        The path written. The PNG measures ``scale*(rows*(H+1)+1)`` by
        ``scale*(columns*(W+1)+1)`` pixels.
    """
    tiles = as_images(images, "images", image_shape)
    num_columns = num_columns if num_columns is not None else math.ceil(math.sqrt(len(tiles)))
    if num_columns < 1:
        raise ValueError(f"num_columns must be positive, got {num_columns}")
    canvas = _enlarge(tile_grid(_rows_of(tiles, num_columns)), scale)
    path = png_path(path)
    matplotlib_image.imsave(path, canvas, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return path


def _left_margin(has_row_labels: bool) -> int:
    return LEFT_MARGIN_PIXELS if has_row_labels else EDGE_MARGIN_PIXELS


def labelled_grid_size(canvas_height: int, canvas_width: int, has_row_labels: bool = True) -> tuple[int, int]:
    """Pixel ``(height, width)`` of the PNG of a labelled grid around a canvas of that size."""
    return (
        TOP_MARGIN_PIXELS + canvas_height + EDGE_MARGIN_PIXELS,
        _left_margin(has_row_labels) + canvas_width + EDGE_MARGIN_PIXELS,
    )


def _save_labelled_grid(
    tiles: np.ndarray,
    path: PathLike,
    *,
    scale: int,
    column_labels: Sequence[tuple[float, str]],
    row_labels: Sequence[tuple[float, str]],
) -> Path:
    """Tile ``(R, C, H, W[, 3])``; labels are (tile-column / tile-row position, text) pairs."""
    canvas = _enlarge(tile_grid(tiles), scale)
    canvas_height, canvas_width = canvas.shape[:2]
    height, width = labelled_grid_size(canvas_height, canvas_width, bool(row_labels))
    figure = new_figure(width, height)
    axes = figure.add_axes(
        (
            _left_margin(bool(row_labels)) / width,
            EDGE_MARGIN_PIXELS / height,
            canvas_width / width,
            canvas_height / height,
        )
    )
    axes.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    tile_height = (tiles.shape[2] + PADDING) * scale
    tile_width = (tiles.shape[3] + PADDING) * scale
    border = PADDING * scale

    def centre(position: float, step: int) -> float:  # pixel centre of a (fractional) tile index
        return border + position * step + (step - border) / 2 - 0.5

    axes.set_xticks([centre(p, tile_width) for p, _ in column_labels], [t for _, t in column_labels])
    axes.set_yticks([centre(p, tile_height) for p, _ in row_labels], [t for _, t in row_labels])
    axes.xaxis.tick_top()
    axes.tick_params(labelsize=LABEL_FONT_SIZE, length=0, pad=2)
    for spine in axes.spines.values():
        spine.set_visible(False)
    return save_figure(figure, path)


def save_inpainting_grid(
    originals: ArrayLike,
    observed_mask: ArrayLike,
    completions: ArrayLike,
    path: PathLike,
    *,
    image_shape: Sequence[int] | None = None,
    scale: int = DEFAULT_SCALE,
) -> Path:
    """Write an inpainting figure (BiHM Fig. 2): original | masked | completions, one row per image.

    Args:
        originals: ``N`` images (see :func:`as_images`).
        observed_mask: True where a pixel was shown to the model; one mask for all
            images (the shape of one image, or ``(D,)``) or one per image (``N`` leading).
        completions: ``(N, S, ...)``: ``S`` independent completions of every image
            (e.g. after Gibbs sampling of the hidden pixels), each in any image layout.
        path: ``.png`` file to write.

    Returns:
        The path written; see :func:`labelled_grid_size` (no row labels) for its pixel size.
    """
    originals = as_images(originals, "originals", image_shape)
    num_images = len(originals)
    completions_tensor = checked_tensor(completions, "completions", ndim=(3, 4, 5))
    if completions_tensor.size(0) != num_images:
        raise ValueError(
            f"completions has {completions_tensor.size(0)} rows (dim 0) for {num_images} originals"
        )
    num_completions = completions_tensor.size(1)
    flat = completions_tensor.reshape(num_images * num_completions, *completions_tensor.shape[2:])
    completed = to_rgb(as_images(flat, "completions", image_shape))
    if completed.shape[1:3] != originals.shape[1:3]:
        raise ValueError(
            f"completions are {completed.shape[1:3]} images but originals are {originals.shape[1:3]}"
        )
    completed = completed.reshape(num_images, num_completions, *completed.shape[1:])
    mask = as_tensor(observed_mask, "observed_mask").bool()
    image_hw = originals.shape[1:3]
    if mask.shape[-1] == math.prod(image_hw) and mask.shape[-2:] != image_hw:
        mask = mask.reshape(*mask.shape[:-1], *image_hw)
    if mask.shape not in (image_hw, (num_images, *image_hw)):
        raise ValueError(
            f"observed_mask has shape {tuple(mask.shape)}: expected one image {image_hw}, "
            f"(D,), or one per original ({num_images}, ...)"
        )
    mask = np.broadcast_to(mask.cpu().numpy(), (num_images, *image_hw))

    original_rgb = to_rgb(originals)
    masked_rgb = np.where(mask[..., None], original_rgb, np.asarray(HIDDEN_PIXEL_RGB, original_rgb.dtype))
    tiles = np.concatenate(
        [original_rgb[:, None], masked_rgb[:, None], completed.astype(original_rgb.dtype)], axis=1
    )
    column_labels = [(0, "original"), (1, "masked")] + [
        (2 + s, f"#{s + 1}") for s in range(num_completions)
    ]
    return _save_labelled_grid(tiles, path, scale=scale, column_labels=column_labels, row_labels=[])


def save_chain_evolution(
    states: ArrayLike,
    decode: Callable[[torch.Tensor], torch.Tensor],
    path: PathLike,
    *,
    steps: Sequence[int] | None = None,
    step_numbers: Sequence[int] | None = None,
    decodes_per_state: int = 1,
    time_along: Literal["columns", "rows"] = "columns",
    image_shape: Sequence[int] | None = None,
    scale: int = DEFAULT_SCALE,
) -> Path:
    """Write the evolution of RBM chains as decoded images (DVAE Fig. 5).

    Each cell shows ``decodes_per_state`` decodings of one RBM state: the RBM sample is
    held fixed across the cell, so variation inside a cell comes from the continuous
    latents / decoder and variation between cells from the Gibbs chain. Long runs of
    the same digit along a chain indicate well-separated RBM modes.

    Args:
        states: ``(num_steps, num_chains, num_units)`` recorded RBM states.
        decode: maps ``(M, num_units)`` states (device and dtype of ``states``) to ``M``
            images in [0, 1] (see :func:`as_images`), e.g. the decoder mean of
            :math:`p(x \\mid z)` after sampling the continuous latents. Called once, under
            :func:`torch.no_grad`, with every shown state repeated ``decodes_per_state``
            times consecutively.
        path: ``.png`` file to write.
        steps: indices into the recorded steps to show; up to :data:`MAX_EVOLUTION_STEPS`
            evenly spaced ones by default.
        step_numbers: the Gibbs iteration of each *recorded* step, for the labels
            (``0..num_steps-1`` by default), e.g. ``range(0, 1000, 100)``.
        decodes_per_state: images per RBM state (5 in DVAE Fig. 5).
        time_along: ``"columns"``: one row per chain, Gibbs steps left to right;
            ``"rows"``: one row per Gibbs step, chains side by side (the paper's layout).
        image_shape: see :func:`as_images`.

    Returns:
        The path written; see :func:`labelled_grid_size` for its pixel size.
    """
    states = checked_tensor(states, "states", ndim=3)
    num_steps, num_chains, num_units = states.shape
    if steps is None:
        count = min(num_steps, MAX_EVOLUTION_STEPS)
        steps = np.linspace(0, num_steps - 1, count).round().astype(int).tolist()
    steps = [int(s) for s in steps]
    if not steps or min(steps) < -num_steps or max(steps) >= num_steps:
        raise ValueError(f"steps must be non-empty indices into the {num_steps} recorded steps, got {steps}")
    step_numbers = list(range(num_steps)) if step_numbers is None else [int(n) for n in step_numbers]
    if len(step_numbers) != num_steps:
        raise ValueError(f"step_numbers has {len(step_numbers)} entries for {num_steps} recorded steps")
    if decodes_per_state < 1:
        raise ValueError(f"decodes_per_state must be positive, got {decodes_per_state}")
    if time_along not in ("columns", "rows"):
        raise ValueError(f"time_along must be 'columns' or 'rows', got {time_along!r}")

    shown = states[steps]  # (T, num_chains, num_units)
    repeated = shown.reshape(-1, num_units).repeat_interleave(decodes_per_state, dim=0)
    with torch.no_grad():
        decoded = decode(repeated)
    images = as_images(decoded, "decode(states)", image_shape)
    if len(images) != len(repeated):
        raise ValueError(f"decode returned {len(images)} images for {len(repeated)} states")
    # (T, chains, decodes, H, W[, 3])
    images = images.reshape(len(steps), num_chains, decodes_per_state, *images.shape[1:])
    cell_centre = (decodes_per_state - 1) / 2
    step_labels = [f"t={step_numbers[s]}" for s in steps]
    chain_labels = [f"chain {c}" for c in range(num_chains)]
    if time_along == "columns":
        tiles = images.transpose(1, 0, 2, *range(3, images.ndim))
        tiles = tiles.reshape(num_chains, len(steps) * decodes_per_state, *images.shape[3:])
        columns = [(t * decodes_per_state + cell_centre, label) for t, label in enumerate(step_labels)]
        rows = list(enumerate(chain_labels))
    else:
        tiles = images.reshape(len(steps), num_chains * decodes_per_state, *images.shape[3:])
        columns = [(c * decodes_per_state + cell_centre, label) for c, label in enumerate(chain_labels)]
        rows = list(enumerate(step_labels))
    return _save_labelled_grid(tiles, path, scale=scale, column_labels=columns, row_labels=rows)

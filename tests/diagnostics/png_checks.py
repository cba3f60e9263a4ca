"""Checks on written PNGs: they decode, have the promised size, and show something."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import image as matplotlib_image

COLOUR_TOLERANCE = 0.02
"""Per-channel slack when matching a colour: 8-bit PNG rounding is 0.002, the next colour far away."""
MIN_SATURATION = 0.2
"""Black text, grey grid lines and white background have equal R, G, B; curves are coloured."""
MIN_DISTINCT_GREY_LEVELS = 16
"""A decoded digit grid has many grey levels; a blank or constant canvas has one or two."""


def png_pixels(path: Path, min_bytes: int) -> np.ndarray:
    """The RGB(A) pixels of the PNG at ``path``, decoded by matplotlib, floats in [0, 1], shape (H, W, C).

    Fails if the file is smaller than ``min_bytes`` (an empty or failed render) or is not
    a PNG matplotlib can decode.
    """
    assert path.stat().st_size > min_bytes, f"{path} has only {path.stat().st_size} bytes"
    assert path.read_bytes().startswith(b"\x89PNG"), f"{path} is not a PNG"
    pixels = matplotlib_image.imread(path, format="png")
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4), pixels.shape
    return pixels


def png_size(path: Path, min_bytes: int) -> tuple[int, int]:
    """``(height, width)`` in pixels of a decodable, non-trivial PNG."""
    return png_pixels(path, min_bytes).shape[:2]


def grey_levels(pixels: np.ndarray) -> np.ndarray:
    """Luminance of decoded pixels (mean of R, G, B), shape (H, W)."""
    return pixels[..., :3].mean(axis=-1)


def assert_not_blank(pixels: np.ndarray) -> None:
    """The image holds many distinct grey levels, as a grid of model outputs does."""
    levels = np.unique(np.round(grey_levels(pixels) * 255))
    assert len(levels) >= MIN_DISTINCT_GREY_LEVELS, f"only {len(levels)} grey levels: blank image"


def count_coloured(pixels: np.ndarray, min_saturation: float = MIN_SATURATION) -> int:
    """Number of coloured pixels (channels differ by ``min_saturation``): curves, not text, axes or grid."""
    rgb = pixels[..., :3]
    return int((rgb.max(axis=-1) - rgb.min(axis=-1) >= min_saturation).sum())


def colour_mask(pixels: np.ndarray, rgb: tuple[float, float, float], tolerance: float = COLOUR_TOLERANCE) -> np.ndarray:
    """Where the R, G and B of ``pixels`` are each within ``tolerance`` of ``rgb``, shape (H, W)."""
    return (np.abs(pixels[..., :3] - np.asarray(rgb)) <= tolerance).all(axis=-1)

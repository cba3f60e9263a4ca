"""Figure plumbing shared by the plot modules: Agg canvases, PNG output, validation.

Figures are built with :class:`matplotlib.figure.Figure` on an explicit
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, never through
:mod:`matplotlib.pyplot`: nothing is registered with pyplot's figure manager (so
there is nothing to close and no display is ever needed), the global backend is left
alone, and plotting is safe inside a training process. Every plotting function writes
a PNG and returns its path; the figure is cleared before returning.

The plots themselves live in :mod:`pyro_dgm.diagnostics.plots_images` (sample grids,
inpainting, RBM chain evolution) and :mod:`pyro_dgm.diagnostics.plots_curves`
(learning curves, estimates against K, running log-partition estimates).
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
"""Dots per inch of every saved figure: sizes in pixels are sizes in inches times 100."""

PathLike = str | os.PathLike


def new_figure(width_pixels: int, height_pixels: int) -> Figure:
    """A figure of exactly ``width_pixels`` x ``height_pixels`` at :data:`DPI`, on an Agg canvas."""
    figure = Figure(figsize=(width_pixels / DPI, height_pixels / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def png_path(path: PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` ending in ``.png``, with its folder created."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must name a .png file, got '{path}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(figure: Figure, path: PathLike) -> Path:
    """Write ``figure`` as a PNG at its own size (no tight bounding box), clear it, return the path."""
    path = png_path(path)
    figure.savefig(path, dpi=DPI, format="png")
    figure.clear()
    return path

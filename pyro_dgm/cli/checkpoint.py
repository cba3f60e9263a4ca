"""Checkpoints that make an interrupted run continue to the result of an uninterrupted one.

A checkpoint holds everything a training step depends on:

* the state dicts of the experiment's modules (model and guide networks);
* the Pyro optimiser's per-parameter states (``PyroOptim.get_state``), which
  include learning-rate scheduler states;
* the objective's own state where it has one (e.g. persistent Gibbs chains of an
  RBM prior, through ``objective.state_dict()``);
* the data loader's position (:meth:`pyro_dgm.data.BinarizedBatches.state_dict`);
* every random number generator the step draws from: Python's, NumPy's, torch's
  CPU generator and, when present, each CUDA device's;
* the step and epoch counters and the metrics written so far.

Files are written atomically (a temporary file in the same folder, then
:func:`os.replace`), so a crash while saving never leaves a truncated checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyro
import torch

CHECKPOINT_FORMAT_VERSION = 1
"""Bumped whenever the layout below changes; older files are refused with a clear error."""


def capture_rng_state() -> dict[str, Any]:
    """The state of every generator a training step may draw from."""
    state = dict(pyro.util.get_rng_state())
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states are restored when a GPU is present)."""
    pyro.util.set_rng_state({key: state[key] for key in ("torch", "random", "numpy")})
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Run the block, then put every generator back where it was: the block draws no number of the run's."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the format version) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save({"format_version": CHECKPOINT_FORMAT_VERSION, **payload}, stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: the file is not a pyro_dgm checkpoint of this format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = torch.load(path, map_location=map_location, weights_only=False)
    version = payload.get("format_version") if isinstance(payload, dict) else None
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"{path} is not a pyro_dgm checkpoint of format version {CHECKPOINT_FORMAT_VERSION} "
            f"(found {version!r})"
        )
    return payload

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
:func:`os.replace`), so a crash while saving never leaves a truncated checkpoint; they
are read with ``torch.load(weights_only=True)``, so reading one never runs code; and
every way a file can be wrong (empty, truncated, foreign, another model) is a one-line
:class:`~pyro_dgm.cli.run_directory.RunFolderError` that names it.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy
import pyro
import torch

from pyro_dgm.cli.run_directory import RunFolderError, write_atomically

CHECKPOINT_FORMAT_VERSION = 1
"""Bumped whenever the layout below changes; older files are refused with a clear error."""

MAX_DETAIL_CHARS = 240
"""Longest excerpt of PyTorch's state-dict mismatch report kept in a one-line error."""

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
    """Write ``payload`` (plus the format version) to ``path`` atomically (see :func:`write_atomically`)."""
    versioned = {"format_version": CHECKPOINT_FORMAT_VERSION, **payload}
    write_atomically(path, lambda stream: torch.save(versioned, stream))


def _rng_state_types() -> list[Any]:
    """The non-tensor types a checkpoint stores besides builtins: NumPy's RNG state (an ``ndarray``)."""
    try:
        from numpy._core.multiarray import _reconstruct  # NumPy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, numpy.ndarray, numpy.dtype, type(numpy.dtype(numpy.uint32))]


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, unpickling nothing but data.

    The file is loaded with ``torch.load(weights_only=True)``: tensors, builtins and the
    allow-listed NumPy RNG-state types (:func:`_rng_state_types`). Anything else (a class
    whose unpickling could run code) is refused, so opening a checkpoint someone sent you
    cannot execute it.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        RunFolderError: empty, truncated or corrupt file; objects outside the allow-list;
            not a pyro_dgm checkpoint of this format version. One line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise RunFolderError(f"{path} is empty (a write that never finished?); it holds no checkpoint")
    try:
        with torch.serialization.safe_globals(_rng_state_types()):
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights_only" not in str(error).lower() and "weights only" not in str(error).lower():
            raise RunFolderError(f"{path} is not a readable checkpoint: {_first_line(error)}") from None
        raise RunFolderError(
            f"{path} holds objects other than tensors, numbers and RNG states ({', '.join(_unsafe_globals(path))}); "
            "refusing to unpickle it, since that could run arbitrary code"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, IndexError, KeyError) as error:
        # IndexError, KeyError: what the legacy unpickler raises on some stray bytes (b"truncated": IndexError)
        raise RunFolderError(f"{path} is not a readable checkpoint (truncated or corrupt: {_first_line(error)})") from None
    version = payload.get("format_version") if isinstance(payload, dict) else None
    if version != CHECKPOINT_FORMAT_VERSION:
        raise RunFolderError(
            f"{path} is not a pyro_dgm checkpoint of format version {CHECKPOINT_FORMAT_VERSION} "
            f"(found {version!r})"
        )
    return payload


def _unsafe_globals(path: Path) -> list[str]:
    """The global names in ``path``'s pickle outside the allow-list (``?`` if the file cannot be scanned)."""
    try:
        allowed = {f"{kind.__module__}.{kind.__qualname__}" for kind in _rng_state_types()}
        return [name for name in torch.serialization.get_unsafe_globals_in_checkpoint(path) if name not in allowed]
    except Exception:  # a file torch.load refused may not even be a zip archive: the names are a courtesy
        return ["?"]


ARCHITECTURE_KEYS = ("model", "guide", "layers", "hidden", "rbm_units", "groups", "smoother", "beta", "objective")
"""Configuration keys a checkpoint's weights and objective state depend on."""


def check_checkpoint_fits(payload: dict[str, Any], config: dict[str, Any], path: str | os.PathLike) -> None:
    """Refuse, in one line, a checkpoint written for another model, architecture or objective than ``config``'s.

    Checkpoints record the configuration of their run (``payload["config"]``); older ones
    without it are checked by :func:`load_module_states` instead.
    """
    written = payload.get("config")
    if not isinstance(written, dict):
        return
    if written.get("model") != config.get("model"):
        raise RunFolderError(
            f"{path} was written by model '{written.get('model')}', this run is '{config.get('model')}'"
        )
    for key in ARCHITECTURE_KEYS:
        if key in written and key in config and written[key] != config[key]:
            raise RunFolderError(
                f"{path} was written with {key} {written[key]!r}, this run has {key} {config[key]!r}"
            )


def load_module_states(modules: dict[str, torch.nn.Module], payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Copy the checkpoint's state dicts into ``modules`` in place; a mismatch is a one-line error."""
    states = payload.get("modules")
    if not isinstance(states, dict):
        raise RunFolderError(f"{path} holds no module weights")
    for name in modules:
        if name not in states:
            raise RunFolderError(f"{path} has no weights for module '{name}' (it holds: {', '.join(states)})")
    for name, module in modules.items():
        try:
            module.load_state_dict(states[name])
        except RuntimeError as error:
            details = "; ".join(line.strip() for line in str(error).splitlines()[1:] if line.strip())
            raise RunFolderError(
                f"{path} does not fit this run's {type(module).__name__} ('{name}'): {_shorten(details)}"
            ) from None


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 3] + "..."

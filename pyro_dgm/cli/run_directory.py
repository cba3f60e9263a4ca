"""The folder of one training run: its configuration, per-epoch metrics and checkpoint.

Layout::

    <run>/config.json       the full configuration the run was started with
    <run>/metrics.jsonl     one JSON object per finished epoch (appended)
    <run>/checkpoint.pt     the latest checkpoint (see :mod:`pyro_dgm.cli.checkpoint`)
    <run>/samples.png       written by ``pyro-dgm sample``
    <run>/gibbs_chains.json R-hat and ESS of the p* Gibbs chains of ``pyro-dgm sample --gibbs``
    <run>/evaluation_*.json written by ``pyro-dgm evaluate``
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_IDENTITY_KEYS = ("model", "objective", "dataset")
"""Keys every ``config.json`` holds: what was trained, how, on what."""


class RunFolderError(ValueError):
    """A file of the run folder cannot be read, trusted or written; the one-line message names it and says why."""


def _temporaries(path: Path) -> list[Path]:
    return list(path.parent.glob(f".{path.name}.*.tmp"))


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(stream)`` on a temporary file beside ``path``, then move it onto ``path``.

    A crash, a full disk or a kill while writing leaves the previous file untouched: the
    move (:func:`os.replace`) is atomic. Temporaries left behind by an earlier process
    killed mid-write are removed after a successful write.

    Raises:
        RunFolderError: the folder cannot be written (read-only, disk full, ...).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise RunFolderError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise RunFolderError(f"cannot write {path}: {error.strerror or error}; the file there is unchanged") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    for stale in _temporaries(path):
        stale.unlink(missing_ok=True)


def _write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda stream: stream.write(text.encode()))


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (in nested dicts and lists too) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


class RunDirectory:
    """Paths and small readers/writers for one run folder."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def write_config(self, config: dict[str, Any]) -> None:
        _write_text_atomically(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def write_json(self, name: str, record: dict[str, Any]) -> Path:
        """Write ``record`` to ``<run>/<name>`` as strict JSON (NaN and infinities become null)."""
        path = self.path / name
        _write_text_atomically(path, json.dumps(finite_or_none(record), indent=2, allow_nan=False) + "\n")
        return path

    def read_config(self) -> dict[str, Any]:
        """The run's configuration; a file that is not a JSON object naming model, objective and dataset is refused."""
        if not self.config_path.is_file():
            raise FileNotFoundError(f"{self.path} is not a run folder: it has no {CONFIG_FILE}")
        try:
            config = json.loads(self.config_path.read_bytes())
        except json.JSONDecodeError as error:
            raise RunFolderError(
                f"{self.config_path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
            ) from None
        except (UnicodeDecodeError, OSError) as error:
            raise RunFolderError(f"cannot read {self.config_path}: {error}") from None
        missing = [key for key in RUN_IDENTITY_KEYS if key not in config] if isinstance(config, dict) else None
        if missing is None or missing:
            raise RunFolderError(
                f"{self.config_path} is not a run configuration: expected a JSON object with the keys "
                f"{', '.join(RUN_IDENTITY_KEYS)}" + (f" (missing: {', '.join(missing)})" if missing else "")
            )
        return config

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace the metrics file by ``records`` (used on resume: the checkpoint is authoritative)."""
        _write_text_atomically(self.metrics_path, "".join(json.dumps(record, sort_keys=True) + "\n" for record in records))

    def append_metrics(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with self.metrics_path.open("a") as stream:
            stream.write(json.dumps(record, sort_keys=True) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

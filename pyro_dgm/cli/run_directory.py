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
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"


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
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    def write_json(self, name: str, record: dict[str, Any]) -> Path:
        """Write ``record`` to ``<run>/<name>`` as strict JSON (NaN and infinities become null)."""
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / name
        path.write_text(json.dumps(finite_or_none(record), indent=2, allow_nan=False) + "\n")
        return path

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise FileNotFoundError(f"{self.path} is not a run folder: it has no {CONFIG_FILE}")
        return json.loads(self.config_path.read_text())

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace the metrics file by ``records`` (used on resume: the checkpoint is authoritative)."""
        self.path.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
        self.metrics_path.write_text(text)

    def append_metrics(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with self.metrics_path.open("a") as stream:
            stream.write(json.dumps(record, sort_keys=True) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

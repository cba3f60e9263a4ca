"""Which result files in ``benchmarks/results/`` still describe the code at HEAD.

A result is *fresh* when every library file it recorded (``provenance.library_files``:
path to git blob hash, see :mod:`benchmarks.provenance`) has the same content now, or
every difference is acknowledged in ``benchmarks/results/acknowledged_changes.json``:

.. code-block:: json

    {"superseded": {"speed_small.json": "why the file no longer counts"},
     "changes": [{"file": "pyro_dgm/...py", "from": "<blob>", "to": "<blob>",
                  "reason": "why this change cannot move the recorded numbers"}]}

Acknowledgements chain: a file may go A -> B -> C through two entries. A superseded
result is kept for history and is not checked. The test
``tests/benchmarks/test_results_fresh.py`` fails on any result that is neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.provenance import REPOSITORY, git_blob_hash

RESULTS_DIR = REPOSITORY / "benchmarks" / "results"
ACKNOWLEDGEMENTS = RESULTS_DIR / "acknowledged_changes.json"


@dataclass(frozen=True)
class Staleness:
    """Why one result file is not fresh: files changed without an acknowledgement."""

    result: str
    reasons: tuple[str, ...]


def load_acknowledgements(path: Path = ACKNOWLEDGEMENTS) -> dict[str, Any]:
    if not path.is_file():
        return {"superseded": {}, "changes": []}
    record = json.loads(path.read_text())
    return {"superseded": record.get("superseded", {}), "changes": record.get("changes", [])}


def reachable(file: str, recorded: str, current: str, changes: list[dict[str, str]]) -> bool:
    """Whether acknowledged changes of ``file`` lead from blob ``recorded`` to blob ``current``."""
    seen, frontier = {recorded}, [recorded]
    while frontier:
        blob = frontier.pop()
        if blob == current:
            return True
        for change in changes:
            if change["file"] == file and change["from"] == blob and change["to"] not in seen:
                seen.add(change["to"])
                frontier.append(change["to"])
    return False


def result_files(results_dir: Path = RESULTS_DIR) -> list[Path]:
    return sorted(path for path in results_dir.rglob("*.json") if path != ACKNOWLEDGEMENTS)


def staleness(path: Path, acknowledgements: dict[str, Any], repository: Path = REPOSITORY) -> Staleness | None:
    """``None`` if the result at ``path`` is fresh or superseded, else what makes it stale."""
    name = path.relative_to(RESULTS_DIR).as_posix() if path.is_relative_to(RESULTS_DIR) else path.name
    if name in acknowledgements["superseded"]:
        return None
    record = json.loads(path.read_text())
    files = record.get("provenance", {}).get("library_files") if isinstance(record, dict) else None
    if not files:
        return Staleness(name, ("records no library_files: rerun it or mark it superseded",))
    reasons = []
    for file, recorded in files.items():
        current_path = repository / file
        current = git_blob_hash(current_path) if current_path.is_file() else "deleted"
        if current != recorded and not reachable(file, recorded, current, acknowledgements["changes"]):
            reasons.append(f"{file} changed ({recorded[:10]} -> {current[:10]}) without an acknowledgement")
    return Staleness(name, tuple(reasons)) if reasons else None


def stale_results(results_dir: Path = RESULTS_DIR) -> list[Staleness]:
    acknowledgements = load_acknowledgements()
    found = (staleness(path, acknowledgements) for path in result_files(results_dir))
    return [item for item in found if item is not None]


def main() -> int:
    stale = stale_results()
    for item in stale:
        print(f"{item.result}:", *item.reasons, sep="\n  ")
    print(f"{len(result_files())} result files, {len(stale)} stale")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())

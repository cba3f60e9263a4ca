"""Which result files in ``benchmarks/results/`` still describe the code at HEAD.

A result is *fresh* when every library file it recorded (``provenance.library_files``:
path to git blob hash, see :mod:`benchmarks.provenance`) has the same content now, or
every difference is acknowledged in ``benchmarks/results/acknowledged_changes.json``:

.. code-block:: json

    {"superseded": {"speed_small.json": "why the file no longer counts"},
     "changes": [{"file": "pyro_dgm/...py", "from": "<blob>", "to": "<blob>",
                  "reason": "why this change cannot move the recorded numbers"}],
     "moves": [{"from": "pyro_dgm/old/path.py", "to": "pyro_dgm/new/path.py",
                "reason": "why the file moved"}]}

Acknowledgements chain: a file may go A -> B -> C through two entries. A moved file is
followed to its current path (through every move, in one place: ``moves``) and compared
there: a move alone changes no content, so a file moved as it was stays fresh, and a file
moved *and* edited needs a change entry too (under its old or its new path). A superseded
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
        return {"superseded": {}, "changes": [], "moves": []}
    record = json.loads(path.read_text())
    return {
        "superseded": record.get("superseded", {}),
        "changes": record.get("changes", []),
        "moves": record.get("moves", []),
    }


def moved_path(file: str, moves: list[dict[str, str]]) -> list[str]:
    """The paths ``file`` has had: itself, then where each acknowledged move took it (the last is current)."""
    paths = [file]
    destinations = {move["from"]: move["to"] for move in moves}
    while paths[-1] in destinations:
        if destinations[paths[-1]] in paths:
            raise ValueError(f"the moves of {file} go round in a circle: {paths}")
        paths.append(destinations[paths[-1]])
    return paths


def reachable(file: str | list[str], recorded: str, current: str, changes: list[dict[str, str]]) -> bool:
    """Whether acknowledged changes of ``file`` (or of any of its paths) lead from blob ``recorded`` to ``current``."""
    paths = {file} if isinstance(file, str) else set(file)
    seen, frontier = {recorded}, [recorded]
    while frontier:
        blob = frontier.pop()
        if blob == current:
            return True
        for change in changes:
            if change["file"] in paths and change["from"] == blob and change["to"] not in seen:
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
        paths = moved_path(file, acknowledgements.get("moves", []))
        current_path = repository / paths[-1]
        current = git_blob_hash(current_path) if current_path.is_file() else "deleted"
        if current != recorded and not reachable(paths, recorded, current, acknowledgements["changes"]):
            where = file if len(paths) == 1 else f"{file} (now {paths[-1]})"
            reasons.append(f"{where} changed ({recorded[:10]} -> {current[:10]}) without an acknowledgement")
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

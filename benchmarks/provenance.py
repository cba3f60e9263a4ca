"""What every result file records about where it came from: code, command, data, machine.

A number in ``docs/benchmarks.md`` is only as good as the link back to the code and data
that produced it. :func:`provenance` gathers that link once per run:

* the git commit of the working tree and whether it had uncommitted changes in the
  library (``pyro_dgm/``) or the harness (``benchmarks/``);
* the exact command line;
* the SHA-256 of every data file read;
* the machine: CPU model, cores, torch threads, library versions, load average;
* the library files the result's code ran, with their git blob hashes (``library_files``),
  found by tracing a short probe of the configuration (:func:`library_files_run_by`), or
  every library module imported where no probe is given.

The last item is what keeps a number tied to its code without needing the git history:
``tests/benchmarks/test_results_fresh.py`` recomputes the blob hash of each recorded file
and fails when one differs, unless ``benchmarks/results/acknowledged_changes.json`` names
that change (file, old and new hash) with the reason it cannot move the result, or the
result is marked superseded there.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pyro
import torch

REPOSITORY = Path(__file__).resolve().parents[1]
"""The checkout this harness runs from."""

LIBRARY_PATHS = ("pyro_dgm",)
"""Paths whose changes make a recorded result stale (the harness's own edits do not)."""

HASH_CHUNK_BYTES = 1 << 20


def git(*arguments: str) -> str | None:
    """Output of ``git <arguments>`` in the repository, or ``None`` outside a checkout."""
    try:
        completed = subprocess.run(
            ["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip()


def current_commit() -> str | None:
    """The commit the working tree is on."""
    return git("rev-parse", "HEAD")


def uncommitted_library_changes() -> list[str]:
    """Files under :data:`LIBRARY_PATHS` that differ from the commit (a result is then not reproducible)."""
    status = git("status", "--porcelain", "--", *LIBRARY_PATHS)
    return [line[3:] for line in status.splitlines()] if status else []


def git_blob_hash(path: Path) -> str:
    """The hash git gives the file's content (``git hash-object``), computed here without git."""
    content = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def library_files_run_by(function: Callable[[], Any]) -> dict[str, str]:
    """Repository-relative path to blob hash of every library file with code that ``function()`` ran.

    Traced with :func:`sys.setprofile` (a Python call event per function entered), so
    it is meant for a short probe: one training step and one small evaluation of the
    configuration a result comes from. Torch's and Pyro's own files are not recorded.
    """
    library_roots = tuple(str(REPOSITORY / path) + os.sep for path in LIBRARY_PATHS)
    seen: set[str] = set()

    def record(frame, event, argument):  # noqa: ARG001 (the profiler's signature)
        if event == "call":
            filename = frame.f_code.co_filename
            if filename.startswith(library_roots):
                seen.add(filename)

    previous = sys.getprofile()
    sys.setprofile(record)
    try:
        function()
    finally:
        sys.setprofile(previous)
    return {Path(name).relative_to(REPOSITORY).as_posix(): git_blob_hash(Path(name)) for name in sorted(seen)}


def used_library_files() -> dict[str, str]:
    """Repository-relative path to blob hash of every imported module under :data:`LIBRARY_PATHS`."""
    files = {}
    for module in list(sys.modules.values()):
        location = getattr(module, "__file__", None)
        if not location:
            continue
        path = Path(location).resolve()
        try:
            relative = path.relative_to(REPOSITORY)
        except ValueError:
            continue
        if relative.parts and relative.parts[0] in LIBRARY_PATHS and path.suffix == ".py":
            files[relative.as_posix()] = git_blob_hash(path)
    return dict(sorted(files.items()))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_hashes(paths: Iterable[Path]) -> dict[str, str]:
    """File name to SHA-256 of each data file read."""
    return {path.name: sha256_of(path) for path in sorted(paths)}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else ``platform.processor()``."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> float | None:
    """The 1-minute load average (``None`` where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    """What the timings depend on: CPU, threads, library versions, load."""
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "python": platform.python_version(),
        "load_average": load_average(),
    }


def provenance(
    data_files: Iterable[Path], argv: Sequence[str] | None = None, library_files: dict[str, str] | None = None
) -> dict[str, Any]:
    """The record every result file carries (see the module docstring).

    ``library_files``: the files the result's code paths ran (:func:`library_files_run_by`);
    default: every library module imported (:func:`used_library_files`), a superset.
    """
    return {
        "commit": current_commit(),
        "uncommitted_library_changes": uncommitted_library_changes(),
        "command": " ".join([Path(sys.executable).name, *(sys.argv if argv is None else argv)]),
        "data_sha256": data_hashes(data_files),
        "machine": machine(),
        "library_files": used_library_files() if library_files is None else library_files,
    }

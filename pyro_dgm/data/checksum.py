"""SHA-256 checksums: pinned in the registry, or recorded on first use in a manifest.

Two kinds of reference hash protect a data file:

* **pinned** — a SHA-256 written in :mod:`pyro_dgm.data.registry` from a copy we have
  seen. For gzip files it may be pinned on the *decompressed* payload
  (:attr:`~pyro_dgm.data.registry.RemoteFile.sha256_after_gunzip`), because the same
  payload is served re-compressed by different mirrors (the MNIST ``.gz`` files we
  hold differ byte-wise from the 1998 originals while their IDX payloads agree);
* **recorded** — for files nobody here has seen, the registry holds ``None`` and the
  first good copy's hash is written to a per-folder JSON manifest (trust on first
  use, with a warning that no pinned checksum exists); later loads verify against it.

A mismatch raises :class:`ChecksumMismatchError` naming the path and both hashes.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import os
import tempfile
from pathlib import Path

HASH_CHUNK_BYTES = 1 << 20
"""Read files in 1 MiB chunks: hashing a 170 MB archive never holds it in memory."""

MANIFEST_FILENAME = "sha256_manifest.json"
"""Name of the trust-on-first-use manifest kept in each dataset folder."""


class ChecksumMismatchError(RuntimeError):
    """A data file's SHA-256 differs from the pinned or recorded one."""

    def __init__(self, path: str | os.PathLike, expected: str, actual: str, reference: str, advice: str):
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"SHA-256 mismatch for {self.path}: expected {expected} ({reference}), "
            f"got {actual}. {advice}"
        )


def sha256_of_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the bytes of ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_gunzipped(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the decompressed payload of the gzip file ``path``."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(HASH_CHUNK_BYTES), b""):
                digest.update(chunk)
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path} is not a readable gzip file: {error}") from error
    return digest.hexdigest()


class ChecksumManifest:
    """The trust-on-first-use record of one folder: ``{filename: {"sha256", "source", "recorded"}}``.

    Stored as ``<folder>/sha256_manifest.json`` and rewritten atomically (temporary
    file + :func:`os.replace`), so a crash never leaves a half-written manifest.
    """

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / MANIFEST_FILENAME

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.is_file():
            return {}
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"checksum manifest {self.path} is not valid JSON: {error}") from error
        if not isinstance(entries, dict):
            raise ValueError(f"checksum manifest {self.path} must hold a JSON object")
        return entries

    def recorded_sha256(self, filename: str) -> str | None:
        """The hash recorded for ``filename``, or ``None`` if it was never recorded."""
        entry = self._read().get(filename)
        return None if entry is None else entry["sha256"]

    def record(self, filename: str, sha256: str, source: str) -> None:
        """Record ``sha256`` as the trusted hash of ``filename`` (obtained from ``source``)."""
        entries = self._read()
        entries[filename] = {
            "sha256": sha256,
            "source": source,
            "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".manifest.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                json.dump(entries, stream, indent=2, sort_keys=True)
                stream.write("\n")
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

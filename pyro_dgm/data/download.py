"""Make a dataset's files present and verified in a folder, downloading when allowed.

For every file a split needs:

* present → verified (pinned SHA-256, else the folder's trust-on-first-use manifest);
* missing and downloads allowed → each mirror is tried in turn: the body is streamed to
  a temporary file in the target folder (with a :mod:`tqdm` progress bar on a
  terminal), its SHA-256 is verified, and only then is it renamed into place with
  :func:`os.replace` (atomic on one file system: a reader never sees half a file);
* missing and no download possible (``download=False``, ``root=`` given, every mirror
  unreachable) → :class:`DatasetUnavailableError`, whose message lists exactly which
  files to put in which folder and where they come from.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from pyro_dgm.data.cache import DATA_HOME_ENV
from pyro_dgm.data.checksum import (
    HASH_CHUNK_BYTES,
    ChecksumManifest,
    ChecksumMismatchError,
    sha256_of_file,
    sha256_of_gunzipped,
)
from pyro_dgm.data.spec import RemoteFile

DOWNLOAD_TIMEOUT_SECONDS = 15.0
"""Socket timeout per blocking operation: a slow mirror has time to answer, while an
offline machine (or a silent firewall) fails within seconds instead of hanging."""

NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError)
"""What a failed download raises (``HTTPError`` is a ``URLError``; ``socket.timeout`` is ``TimeoutError``)."""

USER_AGENT = "pyro-dgm-data-loader"
"""Some dataset hosts answer 403 to urllib's default User-Agent."""


class DatasetUnavailableError(FileNotFoundError):
    """A dataset's files are missing and could not be downloaded; the message says what to do."""


class UnpinnedChecksumWarning(UserWarning):
    """A data file has no pinned SHA-256: it is trusted on first use, or not verified at all."""


def download_to_temporary(url: str, folder: Path, filename: str, timeout: float) -> tuple[Path, str]:
    """Stream ``url`` into a temporary file in ``folder``; return its path and SHA-256.

    The temporary file is removed if the transfer fails. Raises one of
    :data:`NETWORK_ERRORS` when the host cannot be reached or answers with an error.
    """
    folder.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    descriptor, temporary_name = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
    temporary = Path(temporary_name)
    digest = hashlib.sha256()
    received = 0
    try:
        with os.fdopen(descriptor, "wb") as sink, urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=filename, disable=None, leave=False) as progress:
                for chunk in iter(lambda: response.read(HASH_CHUNK_BYTES), b""):
                    sink.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.update(len(chunk))
            if total is not None and received != total:
                raise http.client.IncompleteRead(b"", total - received)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary, digest.hexdigest()


def verify_file(
    path: Path,
    remote: RemoteFile,
    manifest: ChecksumManifest,
    *,
    shown_path: Path,
    origin: str,
    record: bool,
    advice: str,
    file_sha256: str | None = None,
) -> None:
    """Check ``path`` against the pinned hash, else the manifest; record it on first use.

    Args:
        path: the bytes to check (a temporary download, or the file in place).
        remote: the registry entry (pinned hash, or ``None``).
        manifest: the folder's trust-on-first-use manifest.
        shown_path: the path named in errors (the final location of a download).
        origin: where the bytes came from (a URL or "file placed in the folder").
        record: write a first-seen hash to the manifest (only in folders we own).
        advice: what the user should do on a mismatch.
        file_sha256: the hash of ``path`` if already computed while downloading.

    Raises:
        ChecksumMismatchError: naming ``shown_path``, the expected and the actual hash.
    """
    if remote.sha256 is not None:
        actual = sha256_of_gunzipped(path) if remote.sha256_after_gunzip else (file_sha256 or sha256_of_file(path))
        if actual != remote.sha256:
            what = "pinned in pyro_dgm's registry" + (", of the gunzipped payload" if remote.sha256_after_gunzip else "")
            raise ChecksumMismatchError(shown_path, remote.sha256, actual, what, advice)
        return
    actual = file_sha256 or sha256_of_file(path)
    recorded = manifest.recorded_sha256(remote.name)
    if recorded is not None:
        if actual != recorded:
            raise ChecksumMismatchError(shown_path, recorded, actual, f"recorded on first use in {manifest.path}", advice)
        return
    if record:
        manifest.record(remote.name, actual, origin)
        warnings.warn(
            f"{remote.name} has no pinned SHA-256 in pyro_dgm; trusting this first copy "
            f"(from {origin}) and recording sha256 {actual} in {manifest.path}; later loads are checked against it.",
            UnpinnedChecksumWarning,
            stacklevel=3,
        )
    else:
        warnings.warn(
            f"{shown_path} has no pinned SHA-256 and no manifest entry in its folder: it is used unverified.",
            UnpinnedChecksumWarning,
            stacklevel=3,
        )


def _download(remote: RemoteFile, folder: Path, manifest: ChecksumManifest, timeout: float) -> list[tuple[str, Exception]]:
    """Try each mirror of ``remote``; on success the verified file is in ``folder`` and ``[]`` is returned.

    Returns the ``(url, error)`` of every failed attempt otherwise. A checksum mismatch
    is not a network failure: it raises at once (the bytes were discarded).
    """
    destination = folder / remote.name
    failures: list[tuple[str, Exception]] = []
    for url in remote.urls:
        try:
            temporary, file_sha256 = download_to_temporary(url, folder, remote.name, timeout)
        except NETWORK_ERRORS as error:
            failures.append((url, error))
            continue
        try:
            verify_file(
                temporary,
                remote,
                manifest,
                shown_path=destination,
                origin=url,
                record=True,
                advice=f"The download from {url} was discarded; try again, or place a good copy in {folder}.",
                file_sha256=file_sha256,
            )
            os.replace(temporary, destination)
        finally:
            temporary.unlink(missing_ok=True)
        return []
    return failures


def _unavailable_message(
    dataset: str,
    folder: Path,
    missing: Sequence[tuple[RemoteFile, Sequence[tuple[str, Exception]]]],
    why_not_downloaded: str,
    source: str,
    owns_folder: bool,
) -> str:
    lines = [f"Dataset {dataset!r} needs {len(missing)} file(s) that are not in {folder}:"]
    for remote, failures in missing:
        lines.append(f"  {remote.name}")
        if remote.urls:
            lines.append(f"      from {remote.urls[0]}")
            lines.extend(f"        or {url}" for url in remote.urls[1:])
        else:
            lines.append("      no download location is known (see Source below)")
        lines.extend(f"      download failed: {url}: {error}" for url, error in failures)
    lines.append(f"They were not downloaded: {why_not_downloaded}.")
    if owns_folder:
        lines.append(
            f"Put these files, unchanged, in {folder} (or pass root= a folder that holds them, "
            f"or set {DATA_HOME_ENV} to choose the cache root)."
        )
    else:
        lines.append(f"Put these files, unchanged, in {folder} (or leave root=None to use the cache folder and download).")
    lines.append(f"Source: {source}")
    return "\n".join(lines)


def ensure_local_files(
    dataset: str,
    files: Sequence[RemoteFile],
    folder: str | os.PathLike,
    *,
    download: bool,
    owns_folder: bool,
    source: str,
    timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
) -> dict[str, Path]:
    """Make every file in ``files`` present and verified in ``folder``.

    Args:
        dataset: dataset name, for messages.
        files: the files needed.
        folder: where they live.
        download: fetch missing files from their mirrors.
        owns_folder: ``folder`` is our cache (first-seen hashes are recorded in its
            manifest); ``False`` for a user's ``root=`` folder, which is only read.
        source: where the data comes from, for the error message.
        timeout: socket timeout in seconds for each download.

    Returns:
        File name to path.

    Raises:
        DatasetUnavailableError: some files are missing and could not be downloaded.
        ChecksumMismatchError: a file (present or downloaded) fails verification.
    """
    folder = Path(folder)
    manifest = ChecksumManifest(folder)
    missing: list[tuple[RemoteFile, list[tuple[str, Exception]]]] = []
    for remote in files:
        path = folder / remote.name
        if path.is_file():
            verify_file(
                path,
                remote,
                manifest,
                shown_path=path,
                origin=f"a file placed in {folder}",
                record=owns_folder,
                advice=(
                    "Delete it to download a fresh copy, or replace it with a good one."
                    if owns_folder
                    else "Replace it with a good copy."
                ),
            )
        elif download and remote.urls:
            failures = _download(remote, folder, manifest, timeout)
            if failures:
                missing.append((remote, failures))
        else:
            missing.append((remote, []))
    if missing:
        if not download:
            why = (
                "download=False was passed" if owns_folder else "root= was given, and a root folder is used as it is, never downloaded into"
            )
        elif any(failures for _, failures in missing):
            why = "every mirror failed (no network, or the host refused)"
        else:
            why = "no download location is known for them"
        if not folder.is_dir():
            why += f"; the folder {folder} does not exist"
        message = _unavailable_message(dataset, folder, missing, why, source, owns_folder)
        last_error = next((failures[-1][1] for _, failures in reversed(missing) if failures), None)
        raise DatasetUnavailableError(message) from last_error
    return {remote.name: folder / remote.name for remote in files}

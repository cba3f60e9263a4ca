"""Download, checksum and cache behaviour, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import urllib.request
import warnings

import numpy as np
import pytest
import torch

from pyro_dgm.data import (
    ChecksumMismatchError,
    DatasetPart,
    DatasetSpec,
    DatasetUnavailableError,
    RemoteFile,
    UnpinnedChecksumWarning,
    load_dataset,
)
from pyro_dgm.data.checksum import MANIFEST_FILENAME
from pyro_dgm.data.csv01 import read_csv01
from pyro_dgm.data.spec import whole

FILENAME = "tiny.train.data"
TABLE = np.array([[0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 1], [1, 1, 1, 1]], dtype=np.float32)
CONTENT = "".join(",".join(str(int(v)) for v in row) + "\n" for row in TABLE).encode()
CONTENT_SHA256 = hashlib.sha256(CONTENT).hexdigest()


def tiny_spec(urls: tuple[str, ...], sha256: str | None) -> DatasetSpec:
    return DatasetSpec(
        name="tiny",
        example_shape=(TABLE.shape[1],),
        binary=True,
        files=(RemoteFile(FILENAME, urls, sha256=sha256),),
        parts={"train": DatasetPart((FILENAME,), read_csv01, TABLE.shape[0])},
        splits={"train": whole("train")},
        source="a table written by the test",
        licence="none",
        size_reference="the test",
    )


def test_download_with_pinned_hash_verifies_and_caches(local_server, cache_root, register):
    (local_server.folder / FILENAME).write_bytes(CONTENT)
    register(tiny_spec((local_server.url(FILENAME),), CONTENT_SHA256))

    pixels = load_dataset("tiny")

    assert torch.equal(pixels, torch.from_numpy(TABLE))
    assert (cache_root / "tiny" / FILENAME).read_bytes() == CONTENT
    assert sorted(p.name for p in (cache_root / "tiny").iterdir()) == [FILENAME]  # no temporary left behind
    load_dataset("tiny")  # second load: served from the cache
    assert local_server.requests == [f"/{FILENAME}"]


def test_first_download_records_hash_then_later_loads_verify_against_it(local_server, cache_root, register):
    (local_server.folder / FILENAME).write_bytes(CONTENT)
    register(tiny_spec((local_server.url(FILENAME),), None))

    with pytest.warns(UnpinnedChecksumWarning, match="no pinned SHA-256"):
        load_dataset("tiny")
    manifest = json.loads((cache_root / "tiny" / MANIFEST_FILENAME).read_text())
    assert manifest[FILENAME]["sha256"] == CONTENT_SHA256
    assert manifest[FILENAME]["source"] == local_server.url(FILENAME)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verified against the manifest now: no second warning
        load_dataset("tiny")

    cached = cache_root / "tiny" / FILENAME
    tampered = CONTENT.replace(b"0,1,1,0", b"1,1,1,0")
    cached.write_bytes(tampered)
    with pytest.raises(ChecksumMismatchError) as error:
        load_dataset("tiny")
    message = str(error.value)
    assert CONTENT_SHA256 in message and hashlib.sha256(tampered).hexdigest() in message and str(cached) in message


def test_corrupted_download_raises_with_both_hashes_and_is_discarded(local_server, cache_root, register):
    corrupted = CONTENT[:-2] + b"0\n"
    (local_server.folder / FILENAME).write_bytes(corrupted)
    register(tiny_spec((local_server.url(FILENAME),), CONTENT_SHA256))

    with pytest.raises(ChecksumMismatchError) as error:
        load_dataset("tiny")

    message = str(error.value)
    assert CONTENT_SHA256 in message
    assert hashlib.sha256(corrupted).hexdigest() in message
    assert str(cache_root / "tiny" / FILENAME) in message
    assert error.value.expected == CONTENT_SHA256
    assert list((cache_root / "tiny").iterdir()) == []  # neither the file nor a temporary remains


def test_unreachable_host_raises_helpful_message(closed_port_url, cache_root, register):
    url = f"{closed_port_url}/{FILENAME}"
    register(tiny_spec((url,), CONTENT_SHA256))

    with pytest.raises(DatasetUnavailableError) as error:
        load_dataset("tiny")

    message = str(error.value)
    folder = cache_root / "tiny"
    assert FILENAME in message and url in message
    assert f"Put these files, unchanged, in {folder}" in message
    assert "a table written by the test" in message  # where the data come from
    assert isinstance(error.value, FileNotFoundError)


def test_next_mirror_is_tried_after_a_404(local_server, cache_root, register):
    (local_server.folder / FILENAME).write_bytes(CONTENT)
    register(tiny_spec((local_server.url("missing/" + FILENAME), local_server.url(FILENAME)), CONTENT_SHA256))

    assert torch.equal(load_dataset("tiny"), torch.from_numpy(TABLE))
    assert local_server.requests == [f"/missing/{FILENAME}", f"/{FILENAME}"]


def test_root_is_used_as_is_without_any_download(local_server, tmp_path, cache_root, register):
    (local_server.folder / FILENAME).write_bytes(CONTENT)
    register(tiny_spec((local_server.url(FILENAME),), CONTENT_SHA256))
    root = tmp_path / "my_data"
    root.mkdir()
    (root / FILENAME).write_bytes(CONTENT)

    assert torch.equal(load_dataset("tiny", root=root), torch.from_numpy(TABLE))
    assert local_server.requests == []
    assert sorted(p.name for p in root.iterdir()) == [FILENAME]  # nothing written into root
    assert not cache_root.exists()


def test_root_still_verifies_pinned_hash(local_server, tmp_path, register):
    register(tiny_spec((local_server.url(FILENAME),), CONTENT_SHA256))
    root = tmp_path / "my_data"
    root.mkdir()
    (root / FILENAME).write_bytes(CONTENT.replace(b"1,1,1,1", b"1,1,1,0"))

    with pytest.raises(ChecksumMismatchError, match=CONTENT_SHA256):
        load_dataset("tiny", root=root)


def test_root_with_unpinned_file_warns_that_it_is_unverified(tmp_path, register, closed_port_url):
    register(tiny_spec((f"{closed_port_url}/{FILENAME}",), None))
    root = tmp_path / "my_data"
    root.mkdir()
    (root / FILENAME).write_bytes(CONTENT)

    with pytest.warns(UnpinnedChecksumWarning, match="unverified"):
        load_dataset("tiny", root=root)
    assert sorted(p.name for p in root.iterdir()) == [FILENAME]  # no manifest written into a user folder


def test_missing_file_in_root_raises_without_network(local_server, tmp_path, register):
    register(tiny_spec((local_server.url(FILENAME),), CONTENT_SHA256))
    root = tmp_path / "empty"
    root.mkdir()

    with pytest.raises(DatasetUnavailableError, match="root= was given") as error:
        load_dataset("tiny", root=root)
    assert f"in {root}" in str(error.value)
    assert local_server.requests == []


def test_download_false_raises_without_network(local_server, cache_root, register, monkeypatch):
    register(tiny_spec((local_server.url(FILENAME),), CONTENT_SHA256))

    def refuse(*args, **kwargs):
        raise AssertionError("download=False must not open a connection")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(DatasetUnavailableError, match="download=False") as error:
        load_dataset("tiny", download=False)
    assert FILENAME in str(error.value) and str(cache_root / "tiny") in str(error.value)

"""The IDX parser on the project's real MNIST files, and the embedded subset taken from them."""

from __future__ import annotations

import gzip
import urllib.request

import numpy as np
import pytest
import torch

from pyro_dgm.data import ChecksumMismatchError, embedded_mnist, embedded_mnist_labels, load_dataset
from pyro_dgm.data.embedded import EMBEDDED_MNIST_FILE, read_embedded_mnist
from pyro_dgm.data.idx import read_idx, read_idx_images, read_idx_labels
from pyro_dgm.data import make_embedded

MNIST_TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
"""Digits 0-9 in MNIST's training and test label files (LeCun & Cortes)."""

EMBEDDED_SIZE_LIMIT_BYTES = 2 * 1024 * 1024
"""The embedded file must stay well under 2 MB (it ships in every wheel)."""


def test_idx_images_and_labels_on_real_files(mnist_idx_dir):
    train = read_idx_images([mnist_idx_dir / "train-images-idx3-ubyte.gz"])
    test = read_idx_images([mnist_idx_dir / "t10k-images-idx3-ubyte.gz"])
    assert train.shape == (60_000, 784) and test.shape == (10_000, 784)
    assert train.dtype == np.float32
    for images in (train, test):
        assert images.min() == 0.0 and images.max() == 1.0
        grey_levels = images * 255
        assert np.array_equal(grey_levels, np.round(grey_levels))  # exactly value / 255
    train_labels = read_idx_labels(mnist_idx_dir / "train-labels-idx1-ubyte.gz")
    test_labels = read_idx_labels(mnist_idx_dir / "t10k-labels-idx1-ubyte.gz")
    assert np.bincount(train_labels).tolist() == MNIST_TRAIN_LABEL_COUNTS
    assert np.bincount(test_labels).tolist() == MNIST_TEST_LABEL_COUNTS


def test_mnist_splits_from_root(mnist_idx_dir):
    train_full = load_dataset("mnist", "train_full", root=mnist_idx_dir)
    train = load_dataset("mnist", "train", root=mnist_idx_dir)
    valid = load_dataset("mnist", "valid", root=mnist_idx_dir)
    assert train.shape == (50_000, 784) and valid.shape == (10_000, 784)
    assert torch.equal(torch.cat([train, valid]), train_full)
    assert load_dataset("mnist", "test", root=mnist_idx_dir).shape == (10_000, 784)


def test_pinned_payload_hash_accepts_recompressed_copy_and_rejects_changed_pixels(mnist_idx_dir, tmp_path):
    """The MNIST pin is on the IDX payload: another gzip wrapper of the same bytes passes, one changed pixel fails."""
    payload = gzip.decompress((mnist_idx_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    recompressed = tmp_path / "recompressed"
    recompressed.mkdir()
    (recompressed / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(payload, compresslevel=1, mtime=12345))
    assert torch.equal(load_dataset("mnist", "test", root=recompressed), load_dataset("mnist", "test", root=mnist_idx_dir))

    changed = tmp_path / "changed"
    changed.mkdir()
    tampered = bytearray(payload)
    tampered[-1] ^= 0xFF
    (changed / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(tampered), compresslevel=1))
    with pytest.raises(ChecksumMismatchError, match="gunzipped payload"):
        load_dataset("mnist", "test", root=changed)


def test_embedded_images_are_the_idx_rows_they_name(mnist_idx_dir):
    source_images = {
        "train": read_idx(mnist_idx_dir / "train-images-idx3-ubyte.gz").reshape(60_000, 784),
        "t10k": read_idx(mnist_idx_dir / "t10k-images-idx3-ubyte.gz").reshape(10_000, 784),
    }
    source_labels = {
        "train": read_idx_labels(mnist_idx_dir / "train-labels-idx1-ubyte.gz"),
        "t10k": read_idx_labels(mnist_idx_dir / "t10k-labels-idx1-ubyte.gz"),
    }
    row_ranges = {"train": ("train", 0, 50_000), "valid": ("train", 50_000, 60_000), "test": ("t10k", 0, 10_000)}
    for split, (prefix, first, end) in row_ranges.items():
        embedded = read_embedded_mnist(split)
        rows = embedded["source_rows"]
        assert rows.min() >= first and rows.max() < end and np.unique(rows).size == rows.size
        assert np.array_equal(embedded["images"], source_images[prefix][rows])
        assert np.array_equal(embedded["labels"], source_labels[prefix][rows])


def test_make_embedded_regenerates_the_shipped_file(mnist_idx_dir, tmp_path):
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    make_embedded.main(["--idx-dir", str(mnist_idx_dir), "--output", str(first)])
    make_embedded.main(["--idx-dir", str(mnist_idx_dir), "--output", str(second)])
    assert first.read_bytes() == second.read_bytes()  # deterministic bytes
    with np.load(first) as regenerated:
        for split in ("train", "valid", "test"):
            shipped = read_embedded_mnist(split)
            for field in ("images", "labels", "source_rows"):
                assert np.array_equal(regenerated[f"{split}_{field}"], shipped[field])


def test_embedded_mnist_needs_no_network_and_no_files(tmp_path, monkeypatch, cache_root):
    def refuse(*args, **kwargs):
        raise AssertionError("embedded_mnist must not open a connection")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    expected_sizes = {"train": 3000, "valid": 1000, "test": 1000}
    for split, size in expected_sizes.items():
        pixels = load_dataset("embedded_mnist", split)
        assert pixels.shape == (size, 784) and pixels.dtype == torch.float32
        assert torch.equal(pixels, embedded_mnist(split))
        assert pixels.min() == 0 and pixels.max() == 1
        assert torch.bincount(embedded_mnist_labels(split)).tolist() == [size // 10] * 10  # class-balanced
    assert not cache_root.exists()


def test_embedded_file_is_small_and_licensed():
    from importlib import resources

    folder = resources.files("pyro_dgm.data").joinpath("embedded")
    assert len(folder.joinpath(EMBEDDED_MNIST_FILE).read_bytes()) < EMBEDDED_SIZE_LIMIT_BYTES
    licence = folder.joinpath("LICENSE_MNIST.txt").read_text()
    assert "Yann LeCun" in licence and "Corinna Cortes" in licence and "CC BY-SA 3.0" in licence


def test_embedded_unknown_split_names_split():
    with pytest.raises(ValueError, match="split must be one of"):
        embedded_mnist("training")

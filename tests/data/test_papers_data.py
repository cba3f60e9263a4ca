"""The papers' own data: binarised MNIST in its MATLAB form and the UCI sets, with pinned hashes.

The small-file tests write their own files; the tests on the project's copies
(``../shared/data`` beside the repository) skip when those are absent.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from pyro_dgm.data import ChecksumMismatchError, load_dataset
from pyro_dgm.data.registry import DATASETS, UCI_SHA256
from pyro_dgm.data.spec import RemoteFile

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PIXELS = 28 * 28


def tiny_mat_form(sizes: dict[str, int]):
    """``binarized_mnist`` whose MATLAB form holds ``sizes`` images per split and pins no hash."""
    spec = DATASETS["binarized_mnist"]
    (mat_form,) = spec.alternative_forms
    files = tuple(RemoteFile(remote.name, ()) for remote in mat_form.files)
    parts = {split: dataclasses.replace(part, num_examples=sizes[split]) for split, part in mat_form.parts.items()}
    amat_parts = {split: dataclasses.replace(part, num_examples=sizes[split]) for split, part in spec.parts.items()}
    mat_form = dataclasses.replace(mat_form, name="tiny_binarized", files=files, parts=parts)
    return dataclasses.replace(spec, name="tiny_binarized", parts=amat_parts, alternative_forms=(mat_form,))


def write_mat(folder: Path, split: str, images: np.ndarray) -> None:
    scipy.io.savemat(folder / f"binarized_mnist_{split}.mat", {"X": images.astype(np.uint8)})


def test_mat_form_is_read_row_major_and_preferred_when_present(tmp_path, register):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 2, size=(3, PIXELS))
    images[0, :28] = 1  # the first image's top row is lit: row-major keeps it a row
    images[0, 28:] = 0
    write_mat(tmp_path, "test", images)
    register(tiny_mat_form({"train": 4, "valid": 2, "test": 3}))

    with pytest.warns(UserWarning, match="unverified"):
        test = load_dataset("tiny_binarized", "test", root=tmp_path)

    assert torch.equal(test, torch.tensor(images, dtype=torch.float32))
    assert test[0].view(28, 28)[0].sum() == 28 and test[0].view(28, 28)[1:].sum() == 0


def test_amat_form_is_read_when_no_mat_file_is_there(tmp_path, register):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 2, size=(3, PIXELS))
    (tmp_path / "binarized_mnist_test.amat").write_text("\n".join(" ".join(map(str, row)) for row in images) + "\n")
    register(tiny_mat_form({"train": 4, "valid": 2, "test": 3}))

    with pytest.warns(UserWarning, match="unverified"):
        test = load_dataset("tiny_binarized", "test", root=tmp_path)

    assert torch.equal(test, torch.tensor(images, dtype=torch.float32))


def test_tampered_mat_file_fails_its_pinned_hash(tmp_path):
    write_mat(tmp_path, "test", np.zeros((10_000, PIXELS)))
    with pytest.raises(ChecksumMismatchError, match="binarized_mnist_test.mat"):
        load_dataset("binarized_mnist", "test", root=tmp_path)


@pytest.fixture
def binarized_mnist_root() -> Path:
    folder = SHARED_DATA / "binarized_mnist"
    if not (folder / "binarized_mnist_test.mat").is_file():
        pytest.skip(f"binarised MNIST .mat files not found in {folder}")
    return folder


@pytest.fixture
def uci_root() -> Path:
    folder = SHARED_DATA / "uci"
    if not (folder / "dna.test.data").is_file():
        pytest.skip(f"UCI files not found in {folder}")
    return folder


def test_project_copy_of_binarized_mnist_loads_with_pinned_hashes(binarized_mnist_root):
    sizes = {"train": 50_000, "valid": 10_000, "test": 10_000}
    mean_pixel = {"train": 0.1306, "valid": 0.1311, "test": 0.1325}  # DATA_SOURCES.md
    for split, size in sizes.items():
        images = load_dataset("binarized_mnist", split, root=binarized_mnist_root)
        assert images.shape == (size, PIXELS)
        assert images.mean().item() == pytest.approx(mean_pixel[split], abs=5e-5)


@pytest.mark.parametrize("name", sorted(UCI_SHA256))
def test_project_copy_of_uci_sets_loads_with_pinned_hashes(uci_root, name):
    num_variables = DATASETS[name].example_shape[0]
    for split in ("train", "valid", "test"):
        data = load_dataset(name, split, root=uci_root)
        assert data.shape == (DATASETS[name].parts[split].num_examples, num_variables)
        assert set(data.unique().tolist()) <= {0.0, 1.0}

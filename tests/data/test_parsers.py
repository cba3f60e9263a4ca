"""Each parser on a tiny file written by the test, loaded through a registry entry pointing at a temp root."""

from __future__ import annotations

import dataclasses
import io
import pickle
import tarfile

import numpy as np
import pytest
import scipy.io
import torch

from pyro_dgm.data import DatasetSizeError, load_dataset
from pyro_dgm.data.amat import read_amat
from pyro_dgm.data.cifar import CIFAR10_TEST_MEMBERS, CIFAR10_TRAIN_MEMBERS
from pyro_dgm.data.idx import read_idx
from pyro_dgm.data.registry import DATASETS
from pyro_dgm.data.spec import SplitPiece, whole

SIDE = 28
PIXELS = SIDE * SIDE


def shrunk(name: str, sizes: dict[str, int], new_name: str, splits=None):
    """The registry entry ``name`` with its real readers and file names (hashes unpinned: the test
    writes its own small files), but parts of ``sizes`` examples."""
    spec = DATASETS[name]
    files = tuple(dataclasses.replace(remote, sha256=None, sha256_after_gunzip=False) for remote in spec.files)
    parts = {part: dataclasses.replace(spec.parts[part], num_examples=size) for part, size in sizes.items()}
    splits = splits or {part: whole(part) for part in sizes}
    return dataclasses.replace(spec, name=new_name, files=files, parts=parts, splits=splits, alternative_forms=())


def held_out_splits(num_train: int) -> dict:
    """train = the first ``num_train`` rows of part "training", valid = the rest, test = part "test"."""
    return {"train": (SplitPiece("training", 0, num_train),), "valid": (SplitPiece("training", num_train),), "test": whole("test")}


def test_amat_binarized_mnist_layout(tmp_path, register):
    rng = np.random.default_rng(0)
    tables = {split: rng.integers(0, 2, size=(n, PIXELS)) for split, n in (("train", 4), ("valid", 2), ("test", 3))}
    for split, table in tables.items():
        lines = "\n".join(" ".join(str(v) for v in row) for row in table) + "\n"
        (tmp_path / f"binarized_mnist_{split}.amat").write_text(lines)
    register(
        shrunk(
            "binarized_mnist",
            {"train": 4, "valid": 2, "test": 3},
            "tiny_amat",
            splits={"train": whole("train"), "train_full": (SplitPiece("train"), SplitPiece("valid")), "test": whole("test")},
        )
    )

    with pytest.warns(UserWarning, match="unverified"):
        test = load_dataset("tiny_amat", "test", root=tmp_path)
        train_full = load_dataset("tiny_amat", "train_full", root=tmp_path)

    assert test.dtype == torch.float32 and torch.equal(test, torch.tensor(tables["test"], dtype=torch.float32))
    assert torch.equal(train_full, torch.tensor(np.concatenate([tables["train"], tables["valid"]]), dtype=torch.float32))


def test_text_table_fallback_agrees_with_fast_path(tmp_path):
    rng = np.random.default_rng(1)
    table = rng.integers(0, 2, size=(5, 7))
    fast = tmp_path / "fast.amat"
    slow = tmp_path / "slow.amat"
    fast.write_text("\n\n".join(" ".join(str(v) for v in row) for row in table))  # blank lines, no final newline
    slow.write_text("\n".join("\t".join(f"{v:.1f}" for v in row) for row in table) + "\n")  # "1.0": loadtxt path
    assert np.array_equal(read_amat([fast]), table)
    assert np.array_equal(read_amat([slow]), table)


def test_text_table_ragged_rows_name_the_line(tmp_path):
    path = tmp_path / "ragged.amat"
    path.write_text("0 1 1\n1 0 1\n1 1\n")
    with pytest.raises(ValueError, match="line 3 has 2 values"):
        read_amat([path])


def test_csv_uci_layout_and_nade_size_check(tmp_path, register):
    rng = np.random.default_rng(2)
    num_variables = DATASETS["dna"].example_shape[0]
    tables = {split: rng.integers(0, 2, size=(n, num_variables)) for split, n in (("train", 6), ("valid", 2), ("test", 3))}
    for split, table in tables.items():
        (tmp_path / f"dna.{split}.data").write_text("".join(",".join(map(str, row)) + "\n" for row in table))
    register(shrunk("dna", {"train": 6, "valid": 2, "test": 3}, "tiny_csv"))

    with pytest.warns(UserWarning):
        valid = load_dataset("tiny_csv", "valid", root=tmp_path)
    assert torch.equal(valid, torch.tensor(tables["valid"], dtype=torch.float32))

    register(shrunk("dna", {"train": 5, "valid": 2, "test": 3}, "tiny_csv_wrong_split"))
    with pytest.warns(UserWarning), pytest.raises(DatasetSizeError, match="holds 6 examples, expected 5") as error:
        load_dataset("tiny_csv_wrong_split", "train", root=tmp_path)
    assert "Van Haaren" in str(error.value)  # the registry's note on the DEBD dna split is shown


def test_csv_non_binary_value_is_rejected(tmp_path, register):
    (tmp_path / "dna.test.data").write_text("0,1,2\n1,0,1\n")
    spec = shrunk("dna", {"test": 2}, "tiny_bad_csv")
    register(dataclasses.replace(spec, example_shape=(3,)))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        load_dataset("tiny_bad_csv", "test", root=tmp_path)


def test_mat_omniglot_layout_is_column_major_images_along_columns(tmp_path, register):
    """MATLAB writes ``image(:)`` column by column; the loader must return row-major images."""
    rng = np.random.default_rng(3)
    train_images = rng.random((5, SIDE, SIDE))
    test_images = rng.random((2, SIDE, SIDE))
    as_matlab_columns = lambda images: np.stack([image.T.reshape(-1) for image in images], axis=1)  # (784, N)
    scipy.io.savemat(tmp_path / "chardata.mat", {"data": as_matlab_columns(train_images), "testdata": as_matlab_columns(test_images)})
    register(
        shrunk(
            "omniglot",
            {"training": 5, "test": 2},
            "tiny_omniglot",
            splits=held_out_splits(3),
        )
    )

    with pytest.warns(UserWarning):
        valid = load_dataset("tiny_omniglot", "valid", root=tmp_path)
        test = load_dataset("tiny_omniglot", "test", root=tmp_path)
    assert torch.equal(valid, torch.tensor(train_images[3:].reshape(2, PIXELS), dtype=torch.float32))
    assert torch.equal(test, torch.tensor(test_images.reshape(2, PIXELS), dtype=torch.float32))


def test_mat_caltech_layout_rows_are_images(tmp_path, register):
    rng = np.random.default_rng(4)
    images = {split: rng.integers(0, 2, size=(n, SIDE, SIDE)) for split, n in (("train", 3), ("valid", 2), ("test", 2))}
    rows = {key: np.stack([image.T.reshape(-1) for image in images[split]]).astype(np.uint8)
            for split, key in (("train", "train_data"), ("valid", "val_data"), ("test", "test_data"))}
    scipy.io.savemat(tmp_path / "caltech101_silhouettes_28_split1.mat", rows)
    register(shrunk("caltech101_silhouettes", {"train": 3, "valid": 2, "test": 2}, "tiny_caltech"))

    with pytest.warns(UserWarning):
        train = load_dataset("tiny_caltech", "train", root=tmp_path)
    assert torch.equal(train, torch.tensor(images["train"].reshape(3, PIXELS), dtype=torch.float32))


def test_mat_missing_variable_names_the_key(tmp_path, register):
    scipy.io.savemat(tmp_path / "chardata.mat", {"other": np.zeros((PIXELS, 2))})
    register(shrunk("omniglot", {"test": 2}, "tiny_omniglot_bad"))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no variable 'testdata'"):
        load_dataset("tiny_omniglot_bad", "test", root=tmp_path)


def _cifar_batch_bytes(pixels: np.ndarray) -> bytes:
    # protocol 3 stores bytes keys natively, as the original Python 2 pickles did with str
    return pickle.dumps({b"data": pixels, b"labels": list(range(len(pixels)))}, protocol=3)


def _write_tar(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))


def test_cifar_tarball_layout(tmp_path, register):
    rng = np.random.default_rng(5)
    batches = {member: rng.integers(0, 256, size=(2, 3072), dtype=np.uint8) for member in CIFAR10_TRAIN_MEMBERS + CIFAR10_TEST_MEMBERS}
    _write_tar(tmp_path / "cifar-10-python.tar.gz", {m: _cifar_batch_bytes(p) for m, p in batches.items()})
    register(
        shrunk(
            "cifar10",
            {"training": 10, "test": 2},
            "tiny_cifar",
            splits=held_out_splits(8),
        )
    )

    with pytest.warns(UserWarning):
        train = load_dataset("tiny_cifar", "train", root=tmp_path)
        test = load_dataset("tiny_cifar", "test", root=tmp_path)

    expected_train = np.concatenate([batches[m] for m in CIFAR10_TRAIN_MEMBERS])[:8].reshape(8, 3, 32, 32) / np.float32(255)
    assert train.shape == (8, 3, 32, 32) and train.dtype == torch.float32
    assert torch.equal(train, torch.from_numpy(expected_train.astype(np.float32)))
    assert torch.equal(test, torch.from_numpy((batches[CIFAR10_TEST_MEMBERS[0]].reshape(2, 3, 32, 32) / np.float32(255)).astype(np.float32)))
    # channel planes: pixel (row 0, col 1) of the green plane is byte 1024 + 1 of the row
    assert test[0, 1, 0, 1].item() == pytest.approx(batches[CIFAR10_TEST_MEMBERS[0]][0, 1025] / 255)


def test_cifar_pickle_that_calls_code_is_refused(tmp_path, register):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    _write_tar(tmp_path / "cifar-10-python.tar.gz", {CIFAR10_TEST_MEMBERS[0]: pickle.dumps({b"data": Exploit()}, protocol=3)})
    register(shrunk("cifar10", {"test": 1}, "tiny_cifar_exploit"))
    with pytest.warns(UserWarning), pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        load_dataset("tiny_cifar_exploit", "test", root=tmp_path)


def test_idx_header_length_mismatch_is_rejected(tmp_path):
    header = bytes([0, 0, 0x08, 2]) + np.array([3, 4], dtype=">u4").tobytes()
    good = tmp_path / "good.idx"
    good.write_bytes(header + bytes(range(12)))
    assert np.array_equal(read_idx(good), np.arange(12, dtype=np.uint8).reshape(3, 4))
    bad = tmp_path / "bad.idx"
    bad.write_bytes(header + bytes(range(11)))
    with pytest.raises(ValueError, match="announces shape \\(3, 4\\)"):
        read_idx(bad)

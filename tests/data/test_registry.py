"""The registry's contents, its validation, and the front-door argument checks."""

from __future__ import annotations

import pytest

from pyro_dgm.data.registry import DATASETS
from pyro_dgm.data import DatasetPart, DatasetSpec, RemoteFile, SplitPiece, available_datasets, dataset_info, load_dataset
from pyro_dgm.data.cache import DATA_HOME_ENV, data_home, dataset_cache_dir
from pyro_dgm.data.csv01 import read_csv01

REQUIRED_DATASETS = {
    "mnist", "fashion_mnist", "binarized_mnist", "omniglot", "caltech101_silhouettes",
    "adult", "connect4", "dna", "mushrooms", "nips", "ocr_letters", "rcv1", "web",
    "cifar10", "embedded_mnist",
}


def test_every_dataset_is_registered_with_consistent_info():
    assert REQUIRED_DATASETS <= set(available_datasets())
    for name in available_datasets():
        info = dataset_info(name)
        assert info.name == name and info.source and info.licence and info.size_reference
        assert all(size > 0 for size in info.split_sizes.values())
        assert set(info.urls) == set(info.files) == set(info.pinned_sha256)


def test_image_set_split_layouts():
    mnist = dataset_info("mnist").split_sizes
    assert mnist == {"train": 50_000, "valid": 10_000, "train_full": 60_000, "test": 10_000}
    assert dataset_info("fashion_mnist").split_sizes == mnist
    assert dataset_info("binarized_mnist").split_sizes == mnist
    assert dataset_info("omniglot").split_sizes == {"train": 23_000, "valid": 1_345, "train_full": 24_345, "test": 8_070}
    assert dataset_info("cifar10").example_shape == (3, 32, 32)
    assert dataset_info("embedded_mnist").files == ()


def test_only_files_the_project_holds_are_pinned():
    held = {  # the copies beside the repository (../shared/data), whose hashes were computed here
        "mnist": {"train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"},
        **{name: {f"{name}.{split}.data" for split in ("train", "valid", "test")} for name in ("dna", "mushrooms", "nips")},
    }
    for name in available_datasets():
        pins = {f: sha for f, sha in dataset_info(name).pinned_sha256.items() if sha is not None}
        assert set(pins) == held.get(name, set()), f"{name} has a pinned hash nobody here could compute"
    (mat_form,) = DATASETS["binarized_mnist"].alternative_forms
    assert all(remote.sha256 is not None for remote in mat_form.files)


def test_unknown_name_and_split_name_the_argument():
    with pytest.raises(ValueError, match="name must be one of"):
        load_dataset("mnits")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("embedded_mnist", "training")
    with pytest.raises(ValueError, match="name must be one of"):
        dataset_info("nope")


def test_spec_validation_rejects_inconsistent_entries():
    part = DatasetPart(("a.data",), read_csv01, 10)
    common = dict(example_shape=(3,), binary=True, files=(RemoteFile("a.data", ()),), source="s", licence="l", size_reference="r")
    with pytest.raises(ValueError, match="selects rows \\[5, 11\\)"):
        DatasetSpec(name="bad", parts={"p": part}, splits={"s": (SplitPiece("p", 5, 11),)}, **common)
    with pytest.raises(ValueError, match="undeclared files"):
        DatasetSpec(name="bad", parts={"p": DatasetPart(("b.data",), read_csv01, 10)}, splits={"s": (SplitPiece("p"),)}, **common)
    with pytest.raises(ValueError, match="unknown part"):
        DatasetSpec(name="bad", parts={"p": part}, splits={"s": (SplitPiece("q"),)}, **common)
    with pytest.raises(ValueError, match="sha256"):
        RemoteFile("a.data", (), sha256="ABC")


def test_cache_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_HOME_ENV, str(tmp_path / "here"))
    assert data_home() == tmp_path / "here"
    assert dataset_cache_dir("mnist") == tmp_path / "here" / "mnist"
    monkeypatch.delenv(DATA_HOME_ENV)
    assert data_home().name == "pyro_dgm"

"""The front door: :func:`load_dataset`, :func:`available_datasets`, :func:`dataset_info`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pyro_dgm.data.cache import dataset_cache_dir
from pyro_dgm.data.download import ensure_local_files
from pyro_dgm.data.registry import DATASETS, get_dataset_spec
from pyro_dgm.data.spec import DatasetSpec


class DatasetSizeError(ValueError):
    """A parsed file does not hold the number of examples (or variables) the registry expects."""


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`dataset_info` reports about a dataset.

    Attributes:
        name: registry name.
        example_shape: shape of one example (``(784,)``, ``(3, 32, 32)``, ...).
        binary: pixels are exactly 0/1 as loaded; otherwise grey levels in [0, 1].
        split_sizes: split name to number of examples.
        files: file names the dataset needs (empty for the embedded subset).
        urls: file name to its download mirrors.
        pinned_sha256: file name to its pinned SHA-256 (``None``: trusted on first use).
        source: where the data comes from.
        licence: the terms the source states (or that none are stated).
        size_reference: where the expected sizes come from.
        notes: anything a user must know.
    """

    name: str
    example_shape: tuple[int, ...]
    binary: bool
    split_sizes: dict[str, int]
    files: tuple[str, ...]
    urls: dict[str, tuple[str, ...]]
    pinned_sha256: dict[str, str | None]
    source: str
    licence: str
    size_reference: str
    notes: str


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """Shape, splits and their sizes, files, mirrors, checksums, source and licence of dataset ``name``."""
    spec = get_dataset_spec(name)
    return DatasetInfo(
        name=spec.name,
        example_shape=spec.example_shape,
        binary=spec.binary,
        split_sizes={split: spec.split_size(split) for split in spec.splits},
        files=tuple(remote.name for remote in spec.files),
        urls={remote.name: remote.urls for remote in spec.files},
        pinned_sha256={remote.name: remote.sha256 for remote in spec.files},
        source=spec.source,
        licence=spec.licence,
        size_reference=spec.size_reference,
        notes=spec.notes,
    )


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> torch.Tensor:
    """Pixels of one split of a dataset, float32 in [0, 1].

    Grey datasets (``mnist``, ``fashion_mnist``, ``omniglot``, ``cifar10``,
    ``embedded_mnist``) keep their grey levels so they can be binarised dynamically
    (:class:`~pyro_dgm.data.BinarizedBatches`); the binary ones (``binarized_mnist``,
    ``caltech101_silhouettes``, the UCI sets) are exactly 0/1. Shape ``(N, D)``, or
    ``(N, 3, 32, 32)`` for CIFAR-10.

    Args:
        name: one of :func:`available_datasets`.
        split: one of the dataset's splits (``dataset_info(name).split_sizes``), usually
            ``"train"``, ``"valid"``, ``"test"``, and ``"train_full"`` = train + valid.
        root: a folder that already holds the dataset's files, used as it is: nothing
            is downloaded or written there; pinned checksums are still verified (and
            a manifest found there is honoured). ``None``: the cache folder
            (:func:`~pyro_dgm.data.cache.dataset_cache_dir`).
        download: fetch missing files into the cache folder.

    Raises:
        ValueError: unknown ``name`` or ``split``; a file whose content is not what
            the dataset promises (size, shape, values outside [0, 1] or not 0/1).
        DatasetSizeError: a file holds another number of examples than the registry
            (e.g. a mirror with a different split).
        DatasetUnavailableError: files are missing and could not be downloaded; the
            message lists them, their mirrors and the folder to put them in.
        ChecksumMismatchError: a file fails its SHA-256 check (both hashes and the path are named).
    """
    spec = get_dataset_spec(name)
    if split not in spec.splits:
        raise ValueError(f"split must be one of {sorted(spec.splits)} for dataset {name!r}, got {split!r}")
    paths: dict[str, Path] = {}
    folder = Path(root).expanduser() if root is not None else dataset_cache_dir(name)
    spec = spec.form_in_folder(split, folder)
    needed_files = spec.files_for_split(split)
    if needed_files:
        paths = ensure_local_files(
            name,
            needed_files,
            folder,
            download=download and root is None,
            owns_folder=root is None,
            source=spec.source + (f"\nNote: {spec.notes}" if spec.notes else ""),
        )
    parsed: dict[str, np.ndarray] = {}
    pieces = []
    for piece in spec.splits[split]:
        if piece.part not in parsed:
            parsed[piece.part] = _read_part(spec, piece.part, paths)
        pieces.append(parsed[piece.part][piece.start : piece.stop])
    pixels = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))


def _read_part(spec: DatasetSpec, part_name: str, paths: dict[str, Path]) -> np.ndarray:
    """Parse one part and check it against the registry: size, example shape, value range."""
    part = spec.parts[part_name]
    files = [paths[filename] for filename in part.files]
    shown = ", ".join(str(path) for path in files) or "the embedded file"
    array = np.asarray(part.reader(files))
    if array.shape[0] != part.num_examples:
        raise DatasetSizeError(
            f"dataset {spec.name!r}, part {part_name!r}: {shown} holds {array.shape[0]} examples, "
            f"expected {part.num_examples} ({spec.size_reference}). The file belongs to another split "
            f"or is truncated."
            + (f" {spec.notes}" if spec.notes else "")
        )
    if tuple(array.shape[1:]) != spec.example_shape:
        raise DatasetSizeError(
            f"dataset {spec.name!r}, part {part_name!r}: {shown} holds examples of shape "
            f"{tuple(array.shape[1:])}, expected {spec.example_shape}"
        )
    if not bool(((array >= 0) & (array <= 1)).all()):
        raise ValueError(f"dataset {spec.name!r}: {shown} holds values outside [0, 1] (or NaN)")
    if spec.binary and not bool(((array == 0) | (array == 1)).all()):
        raise ValueError(f"dataset {spec.name!r} is binary, but {shown} holds values other than 0 and 1")
    return array

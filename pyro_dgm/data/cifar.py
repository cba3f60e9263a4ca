"""CIFAR-10, python version: ``cifar-10-python.tar.gz`` (Krizhevsky, 2009).

The archive holds pickled batches ``cifar-10-batches-py/data_batch_{1..5}`` (training,
10000 images each) and ``test_batch``. Each is a dict with ``b"data"``, a uint8
``(10000, 3072)`` array whose rows are the red, green and blue 32x32 planes in
row-major order, and ``b"labels"``. The pickles are read with an unpickler that
accepts only the numpy array machinery, so a tampered archive cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_MEMBERS = tuple(f"{CIFAR10_FOLDER}/data_batch_{index}" for index in range(1, 6))
CIFAR10_TEST_MEMBERS = (f"{CIFAR10_FOLDER}/test_batch",)
CIFAR10_IMAGE_SHAPE = (3, 32, 32)
"""Channels (R, G, B), height, width."""

GREY_LEVELS = 255
"""Largest uint8 value: intensity in [0, 1] is ``value / 255``."""

_ALLOWED_PICKLE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)
"""The only callables a CIFAR batch pickle needs: numpy array reconstruction (pickle protocols 2-5)."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which a data batch never needs")
        return super().find_class(module, name)


def _load_batch(archive: tarfile.TarFile, member: str, archive_path: Path) -> np.ndarray:
    try:
        stream = archive.extractfile(member)
    except KeyError as error:
        raise ValueError(f"{archive_path} has no member {member!r}") from error
    if stream is None:
        raise ValueError(f"{archive_path}: member {member!r} is not a regular file")
    batch = _ArrayOnlyUnpickler(io.BytesIO(stream.read()), encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch:
        raise ValueError(f"{archive_path}: member {member!r} is not a CIFAR batch (no b'data' entry)")
    pixels = np.asarray(batch[b"data"])
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != np.prod(CIFAR10_IMAGE_SHAPE):
        raise ValueError(f"{archive_path}: member {member!r} holds {pixels.dtype} {pixels.shape}, expected uint8 (N, 3072)")
    return pixels


def read_cifar10(paths: Sequence[Path], members: Sequence[str]) -> np.ndarray:
    """Images of the given batches of the CIFAR-10 archive, float32 ``(N, 3, 32, 32)`` in [0, 1]."""
    (path,) = paths
    with tarfile.open(path, mode="r:*") as archive:
        pixels = np.concatenate([_load_batch(archive, member, path) for member in members])
    return pixels.reshape(-1, *CIFAR10_IMAGE_SHAPE).astype(np.float32) / GREY_LEVELS

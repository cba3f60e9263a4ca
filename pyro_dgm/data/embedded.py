"""A class-balanced 5000-image MNIST subset shipped inside the package.

``embedded/mnist_subset.npz`` (about 0.8 MB) makes every example, test and quick
start work with no network and no data folder. Splits: ``train`` 3000 images drawn
from MNIST ``train`` (the first 50000 training images), ``valid`` 1000 from MNIST
``valid`` (the last 10000), ``test`` 1000 from the 10000 test images; 300/100/100 per
digit. Pixels are MNIST's grey levels, unchanged, so the subset can be binarised
dynamically like full MNIST. Licence: CC BY-SA 3.0 (``embedded/LICENSE_MNIST.txt``).
Regenerate with ``python -m pyro_dgm.data.make_embedded --idx-dir <folder of IDX files>``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from pyro_dgm.data.idx import GREY_LEVELS

EMBEDDED_MNIST_FILE = "mnist_subset.npz"
EMBEDDED_MNIST_SPLITS = ("train", "valid", "test")


@functools.lru_cache(maxsize=1)
def _read_archive() -> dict[str, np.ndarray]:
    resource = resources.files("pyro_dgm.data").joinpath("embedded", EMBEDDED_MNIST_FILE)
    with resource.open("rb") as stream, np.load(stream, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    for array in arrays.values():
        array.flags.writeable = False  # shared by every caller through the cache
    return arrays


def read_embedded_mnist(split: str) -> dict[str, np.ndarray]:
    """The raw arrays of ``split``: ``images`` (uint8 ``(N, 784)``), ``labels`` (uint8), ``source_rows``.

    ``source_rows`` are the rows of the IDX file the images were taken from
    (``train-images`` for ``train``/``valid``, ``t10k-images`` for ``test``). Read-only.
    """
    _check_split(split)
    arrays = _read_archive()
    return {field: arrays[f"{split}_{field}"] for field in ("images", "labels", "source_rows")}


def embedded_mnist(split: str = "train") -> torch.Tensor:
    """Grey pixels of the embedded MNIST subset, float32 ``(N, 784)`` in [0, 1] (``value / 255``)."""
    images = read_embedded_mnist(split)["images"]
    return torch.from_numpy(images.astype(np.float32) / GREY_LEVELS)


def embedded_mnist_labels(split: str = "train") -> torch.Tensor:
    """Digit labels of the embedded MNIST subset, int64 ``(N,)``."""
    return torch.from_numpy(read_embedded_mnist(split)["labels"].astype(np.int64))


def read_embedded_split(paths: Sequence[Path], split: str) -> np.ndarray:
    """Registry reader: the embedded split as float32 ``(N, 784)`` (needs no files; ``paths`` is empty)."""
    return embedded_mnist(split).numpy()


def _check_split(split: str) -> None:
    if split not in EMBEDDED_MNIST_SPLITS:
        raise ValueError(f"split must be one of {EMBEDDED_MNIST_SPLITS}, got {split!r}")

"""Regenerate ``pyro_dgm/data/embedded/mnist_subset.npz`` from the MNIST IDX files.

Run from a checkout, pointing at a folder holding the four MNIST ``*-ubyte.gz`` files::

    python -m pyro_dgm.data.make_embedded --idx-dir ../shared/data/mnist

The subset is class-balanced and fixed by :data:`SELECTION_SEED`:

* ``train`` — 300 images per digit from rows [0, 50000) of ``train-images`` (MNIST ``train``);
* ``valid`` — 100 per digit from rows [50000, 60000) of ``train-images`` (MNIST ``valid``);
* ``test``  — 100 per digit from ``t10k-images`` (MNIST ``test``).

Within a split the images keep their order in the source file. Pixels are stored as
the original uint8 grey levels, with labels and the source row of every image, so a
test can check each embedded image against its IDX row. The archive is written with
fixed timestamps and a fixed member order, so the same inputs give the same bytes
(with the same zlib).
"""

from __future__ import annotations

import argparse
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pyro_dgm.data.idx import read_idx, read_idx_labels

SELECTION_SEED = 20160601
"""Seed of the subset selection; any fixed value works, this one is never changed so the file is stable."""

NUM_CLASSES = 10
MNIST_TRAIN_ROWS = 50_000
"""MNIST ``train`` is the first 50000 rows of ``train-images``; ``valid`` the remaining 10000."""

EMBEDDED_SPLITS: dict[str, tuple[str, int, int | None, int]] = {
    "train": ("train", 0, MNIST_TRAIN_ROWS, 300),
    "valid": ("train", MNIST_TRAIN_ROWS, None, 100),
    "test": ("t10k", 0, None, 100),
}
"""Split to (IDX file prefix, first source row, end source row, images per class)."""

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
"""Earliest date a zip entry can hold: a constant timestamp keeps the archive's bytes reproducible."""

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "embedded" / "mnist_subset.npz"


def select_balanced_rows(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` rows of every class, drawn without replacement, returned in ascending order."""
    chosen = [rng.choice(np.flatnonzero(labels == digit), size=per_class, replace=False) for digit in range(NUM_CLASSES)]
    return np.sort(np.concatenate(chosen))


def build_subset(idx_dir: Path) -> dict[str, np.ndarray]:
    """The arrays of the embedded file: ``<split>_images`` (uint8 ``(N, 784)``), ``_labels``, ``_source_rows``."""
    rng = np.random.default_rng(SELECTION_SEED)
    arrays: dict[str, np.ndarray] = {}
    for split, (prefix, first_row, end_row, per_class) in EMBEDDED_SPLITS.items():
        images = read_idx(idx_dir / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx_labels(idx_dir / f"{prefix}-labels-idx1-ubyte.gz")
        end_row = labels.shape[0] if end_row is None else end_row
        rows = first_row + select_balanced_rows(labels[first_row:end_row], per_class, rng)
        arrays[f"{split}_images"] = images[rows].reshape(rows.size, -1)
        arrays[f"{split}_labels"] = labels[rows].astype(np.uint8)
        arrays[f"{split}_source_rows"] = rows.astype(np.int32)
    return arrays


def write_reproducible_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` (readable by :func:`numpy.load`) whose bytes depend only on ``arrays``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(arrays):
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIMESTAMP)
            entry.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(entry, mode="w") as stream:
                np.lib.format.write_array(stream, np.ascontiguousarray(arrays[name]), allow_pickle=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idx-dir", type=Path, required=True, help="folder with the four MNIST *-ubyte.gz files")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    arrays = build_subset(args.idx_dir)
    write_reproducible_npz(args.output, arrays)
    sizes = ", ".join(f"{name[: -len('_images')]} {array.shape[0]}" for name, array in arrays.items() if name.endswith("_images"))
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes): {sizes}")


if __name__ == "__main__":
    main()

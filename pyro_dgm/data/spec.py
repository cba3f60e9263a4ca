"""How a dataset is described: its files, the arrays stored in them, and its splits.

A :class:`DatasetSpec` is pure description; :mod:`pyro_dgm.data.registry` holds one
per dataset and :func:`pyro_dgm.data.load_dataset` interprets them. The layers are

* :class:`RemoteFile` — one file: name, mirror URLs, pinned SHA-256 (or ``None``);
* :class:`DatasetPart` — one array stored in some of those files (e.g. MNIST's 60000
  training images), its reader, and the number of examples it must hold;
* splits — named concatenations of slices of parts (:class:`SplitPiece`), e.g.
  MNIST ``valid`` = the last 10000 of the 60000 training images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

Reader = Callable[[Sequence[Path]], np.ndarray]
"""A parser: the part's files, in the order declared, to a float32 array in [0, 1]."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    Attributes:
        name: file name inside the dataset folder.
        urls: mirrors tried in order; empty when no download location is known.
        sha256: pinned hex SHA-256, or ``None`` when no copy has been seen (then the
            first good copy is recorded in the folder's manifest, trust on first use).
        sha256_after_gunzip: the pinned hash is of the decompressed payload of a gzip
            file (mirrors re-compress the same payload into different bytes).
    """

    name: str
    urls: tuple[str, ...]
    sha256: str | None = None
    sha256_after_gunzip: bool = False

    def __post_init__(self) -> None:
        if self.sha256 is not None and (
            len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)
        ):
            raise ValueError(f"sha256 of {self.name!r} must be 64 lower-case hex digits, got {self.sha256!r}")
        if self.sha256_after_gunzip and self.sha256 is None:
            raise ValueError(f"sha256_after_gunzip of {self.name!r} needs a pinned sha256")


@dataclass(frozen=True)
class DatasetPart:
    """One array stored in the files.

    Attributes:
        files: names of the :class:`RemoteFile` entries the reader needs, in order.
        reader: parses those files into a float32 array of shape ``(num_examples, *example_shape)``.
        num_examples: the size the array must have; a file with another size is
            rejected (this is how a mirror with a different split is caught).
    """

    files: tuple[str, ...]
    reader: Reader
    num_examples: int


@dataclass(frozen=True)
class SplitPiece:
    """Rows ``[start, stop)`` of part ``part`` (``stop=None``: to the end)."""

    part: str
    start: int = 0
    stop: int | None = None

    def size(self, parts: Mapping[str, DatasetPart]) -> int:
        """Number of examples this piece selects."""
        total = parts[self.part].num_examples
        stop = total if self.stop is None else self.stop
        return stop - self.start


@dataclass(frozen=True)
class DatasetSpec:
    """Everything :func:`~pyro_dgm.data.load_dataset` needs to know about one dataset.

    Attributes:
        name: registry key.
        example_shape: shape of one example, ``(D,)`` for flat sets, ``(C, H, W)`` for CIFAR-10.
        binary: pixels are exactly 0/1 in the files (checked on load); otherwise grey in [0, 1].
        files: the files, with mirrors and checksums.
        parts: the arrays stored in the files.
        splits: split name to the pieces it concatenates.
        source: where the data comes from (shown in errors and by ``dataset_info``).
        licence: the terms the source states, or that none are stated.
        size_reference: where the expected part sizes come from.
        notes: anything a user must know (e.g. a mirror with a different split).
        alternative_forms: the same data stored in other files (e.g. binarised MNIST as
            ``.mat`` instead of ``.amat`` text), each a spec with the same example shape
            and splits; :func:`~pyro_dgm.data.load_dataset` reads the first form whose files
            are all in the folder, else this one.
    """

    name: str
    example_shape: tuple[int, ...]
    binary: bool
    files: tuple[RemoteFile, ...]
    parts: Mapping[str, DatasetPart]
    splits: Mapping[str, tuple[SplitPiece, ...]]
    source: str
    licence: str
    size_reference: str
    notes: str = field(default="")
    alternative_forms: tuple["DatasetSpec", ...] = field(default=())

    def __post_init__(self) -> None:
        for form in self.alternative_forms:
            if (form.example_shape, form.binary) != (self.example_shape, self.binary):
                raise ValueError(f"dataset {self.name!r}: an alternative form must hold examples of the same shape and kind")
        file_names = {remote.name for remote in self.files}
        if len(file_names) != len(self.files):
            raise ValueError(f"dataset {self.name!r}: files must have distinct names")
        for part_name, part in self.parts.items():
            missing = [name for name in part.files if name not in file_names]
            if missing:
                raise ValueError(f"dataset {self.name!r}: part {part_name!r} reads undeclared files {missing}")
            if part.num_examples <= 0:
                raise ValueError(f"dataset {self.name!r}: part {part_name!r} must hold at least one example")
        for split_name, pieces in self.splits.items():
            if not pieces:
                raise ValueError(f"dataset {self.name!r}: split {split_name!r} has no pieces")
            for piece in pieces:
                if piece.part not in self.parts:
                    raise ValueError(f"dataset {self.name!r}: split {split_name!r} uses unknown part {piece.part!r}")
                total = self.parts[piece.part].num_examples
                stop = total if piece.stop is None else piece.stop
                if not 0 <= piece.start < stop <= total:
                    raise ValueError(
                        f"dataset {self.name!r}: split {split_name!r} selects rows "
                        f"[{piece.start}, {stop}) of part {piece.part!r}, which has {total}"
                    )

    @property
    def example_size(self) -> int:
        """Number of pixels (or variables) per example."""
        return math.prod(self.example_shape)

    def split_size(self, split: str) -> int:
        """Number of examples in ``split``."""
        return sum(piece.size(self.parts) for piece in self.splits[split])

    def form_in_folder(self, split: str, folder: Path) -> "DatasetSpec":
        """The first form (this spec, then :attr:`alternative_forms`) whose files for ``split`` are all in ``folder``;
        this spec when none is complete (its error then lists what is missing)."""
        for form in (self, *self.alternative_forms):
            if all((folder / remote.name).is_file() for remote in form.files_for_split(split)):
                return form
        return self

    def files_for_split(self, split: str) -> tuple[RemoteFile, ...]:
        """The files ``split`` needs, in declaration order (others are never fetched)."""
        needed = {name for piece in self.splits[split] for name in self.parts[piece.part].files}
        return tuple(remote for remote in self.files if remote.name in needed)


def whole(part: str) -> tuple[SplitPiece, ...]:
    """A split that is all of ``part``."""
    return (SplitPiece(part),)

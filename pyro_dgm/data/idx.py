"""IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.

Layout (LeCun et al., "THE MNIST DATABASE of handwritten digits", file formats):
two zero bytes, a type code (``0x08`` = unsigned byte, ...), the number of
dimensions ``k``, then ``k`` big-endian uint32 sizes, then the values in row-major
(C) order, big-endian. Images are ``(N, 28, 28)`` uint8 with 0 = background and
255 = full ink; labels are ``(N,)`` uint8.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"
"""First two bytes of every gzip stream."""

IDX_VALUE_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code to (big-endian) element type."""

IDX_HEADER_BYTES = 4
DIMENSION_BYTES = 4

GREY_LEVELS = 255
"""Largest uint8 grey value: pixel intensity in [0, 1] is ``value / 255``."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in the IDX file ``path`` (gzip-compressed or not), in native byte order."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        raw = gzip.decompress(raw)
    if len(raw) < IDX_HEADER_BYTES or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_VALUE_TYPES:
        raise ValueError(f"{path} is not an IDX file (header {raw[:IDX_HEADER_BYTES].hex()})")
    value_type = IDX_VALUE_TYPES[raw[2]]
    num_dims = raw[3]
    shape_end = IDX_HEADER_BYTES + DIMENSION_BYTES * num_dims
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=num_dims, offset=IDX_HEADER_BYTES))
    expected_bytes = shape_end + value_type.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected_bytes:
        raise ValueError(f"{path}: IDX header announces shape {shape} ({expected_bytes} bytes) but the file has {len(raw)}")
    values = np.frombuffer(raw, dtype=value_type, offset=shape_end).reshape(shape)
    return values.astype(value_type.newbyteorder("="), copy=True)


def read_idx_images(paths: Sequence[Path]) -> np.ndarray:
    """Grey images from one IDX image file, flattened row-major: float32 ``(N, H*W)`` in [0, 1]."""
    (path,) = paths
    images = read_idx(path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
    return images.reshape(images.shape[0], -1).astype(np.float32) / GREY_LEVELS


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Class labels from an IDX label file, as int64 ``(N,)``."""
    labels = read_idx(path)
    if labels.ndim != 1:
        raise ValueError(f"{path}: expected a 1-d label file, got shape {labels.shape}")
    return labels.astype(np.int64)

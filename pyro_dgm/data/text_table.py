"""Text tables of 0/1 values, one example per line (shared by the ``.amat`` and CSV parsers).

The binary benchmark files hold tens of millions of single-character tokens
(binarized MNIST: 50000 x 784), which :func:`numpy.loadtxt` parses in tens of
seconds. When every token is a single ``0`` or ``1`` — the case for all the files
in the registry — the table is read in one vectorised pass over the bytes: the
digit bytes *are* the values, and the count of digits per line gives the width.
Any other content (``1.0``, ``-1``, multi-digit tokens) falls back to
:func:`numpy.loadtxt`, so the result never depends on which path ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ZERO, ONE, NEWLINE = ord("0"), ord("1"), ord("\n")
WHITESPACE = tuple(ord(c) for c in " \t\r\n")


def read_binary_text_table(path: str | os.PathLike, delimiter: str | None) -> np.ndarray:
    """Read a table of numbers, one row per non-empty line, as float32 ``(N, D)``.

    Args:
        path: the text file.
        delimiter: the field separator, or ``None`` for runs of whitespace.

    Raises:
        ValueError: rows of different lengths (naming the file and line), or an empty file.
    """
    path = Path(path)
    text = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    is_digit = (text == ZERO) | (text == ONE)
    is_separator = np.isin(text, WHITESPACE)
    if delimiter is not None:
        is_separator |= text == ord(delimiter)
    only_single_digit_tokens = not (~is_digit & ~is_separator).any() and not (is_digit[:-1] & is_digit[1:]).any()
    if not only_single_digit_tokens:
        return _read_with_loadtxt(path, delimiter)
    line_of_byte = np.cumsum(text == NEWLINE) - (text == NEWLINE)  # a newline belongs to the line it ends
    digits_per_line = np.bincount(line_of_byte[is_digit])
    non_empty = np.flatnonzero(digits_per_line)
    if non_empty.size == 0:
        raise ValueError(f"{path} holds no data rows")
    widths = digits_per_line[non_empty]
    ragged = np.flatnonzero(widths != widths[0])
    if ragged.size:
        line = int(non_empty[ragged[0]]) + 1
        raise ValueError(f"{path}: line {line} has {int(widths[ragged[0]])} values, the first row has {int(widths[0])}")
    values = (text[is_digit] - ZERO).astype(np.float32)
    return values.reshape(non_empty.size, int(widths[0]))


def _read_with_loadtxt(path: Path, delimiter: str | None) -> np.ndarray:
    try:
        table = np.loadtxt(path, delimiter=delimiter, dtype=np.float32, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: not a numeric table: {error}") from error
    if table.size == 0:
        raise ValueError(f"{path} holds no data rows")
    return table

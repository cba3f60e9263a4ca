"""Comma-separated 0/1 files: the UCI binary sets of the NADE paper, DEBD mirror.

``<name>.{train,valid,test}.data`` hold one example per line, its binary variables
separated by commas, no header (github.com/arranger1044/DEBD). The split sizes must
match Larochelle & Murray (2011, Table 1); :func:`pyro_dgm.data.load_dataset` checks
them, because a mirror may carry another split of the same data (DEBD's ``dna`` is
the 1600/400/1186 split of Van Haaren & Davis, 2012, not NADE's 1400/600/1186).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pyro_dgm.data.text_table import read_binary_text_table


def read_csv01(paths: Sequence[Path]) -> np.ndarray:
    """The examples of one comma-separated 0/1 file as float32 ``(N, D)``."""
    (path,) = paths
    return read_binary_text_table(path, delimiter=",")

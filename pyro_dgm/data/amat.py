"""``.amat`` files: the static binarization of MNIST by Larochelle & Murray (2011).

Each line is one 28x28 image, 784 whitespace-separated 0/1 values in row-major
order; ``binarized_mnist_{train,valid,test}.amat`` hold 50000/10000/10000 images,
sampled once from the MNIST grey levels (Salakhutdinov & Murray, 2008).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pyro_dgm.data.text_table import read_binary_text_table


def read_amat(paths: Sequence[Path]) -> np.ndarray:
    """The images of one ``.amat`` file as float32 ``(N, D)`` (exactly 0/1 for the MNIST files)."""
    (path,) = paths
    return read_binary_text_table(path, delimiter=None)

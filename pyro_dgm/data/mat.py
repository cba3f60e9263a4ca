"""MATLAB ``.mat`` files (Omniglot, Caltech-101 Silhouettes, static binarised MNIST), read with :func:`scipy.io.loadmat`.

MATLAB stores arrays column-major, so a 28x28 image saved as a 784-vector
(``image(:)``) lists its pixels column by column. Reading that vector row-major, as
numpy does, shows the image transposed; :func:`column_major_to_row_major` undoes it,
which is what the published loaders do with ``reshape(..., order="F")``
(Burda et al.'s IWAE code for Omniglot ``chardata.mat``). After it, every flat
dataset in :mod:`pyro_dgm.data` uses the same row-major pixel order as MNIST.
Files written from numpy (the MATLAB form of Larochelle's binarised MNIST) are
already row-major: ``column_major=False`` reads them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io


def column_major_to_row_major(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reorder flat images ``(N, H*W)`` from column-major to row-major pixel order.

    Column-major index of pixel ``(r, c)`` is ``r + H c``; as a C-order ``(N, W, H)``
    array that is element ``[n, c, r]``, so a transpose of the last two axes gives
    ``[n, r, c]``, i.e. row-major. Same as numpy's ``reshape(order="F")`` per image.
    """
    num_images = images.shape[0]
    return images.reshape(num_images, width, height).transpose(0, 2, 1).reshape(num_images, height * width)


def read_mat_images(
    paths: Sequence[Path],
    key: str,
    *,
    images_along_columns: bool,
    height: int,
    width: int,
    column_major: bool = True,
) -> np.ndarray:
    """Images stored under ``key`` in one ``.mat`` file, as float32 ``(N, H*W)`` row-major.

    Args:
        paths: the one ``.mat`` file.
        key: the MATLAB variable name (``"data"``, ``"testdata"``, ``"train_data"``, ...).
        images_along_columns: the variable is ``(H*W, N)`` (Omniglot) rather than ``(N, H*W)``.
        height: image height.
        width: image width.
        column_major: each stored image lists its pixels column by column (MATLAB's
            ``image(:)``); ``False`` for images already stored row-major.
    """
    (path,) = paths
    contents = scipy.io.loadmat(path, variable_names=[key])
    if key not in contents:
        available = sorted(name for name, _, _ in scipy.io.whosmat(path))
        raise ValueError(f"{path} has no variable {key!r}; it holds {available}")
    images = np.asarray(contents[key])
    if images.ndim != 2:
        raise ValueError(f"{path}: variable {key!r} should be a matrix, got shape {images.shape}")
    if images_along_columns:
        images = images.T
    if images.shape[1] != height * width:
        raise ValueError(f"{path}: variable {key!r} has {images.shape[1]} pixels per image, expected {height * width}")
    if column_major:
        images = column_major_to_row_major(images, height, width)
    return images.astype(np.float32)

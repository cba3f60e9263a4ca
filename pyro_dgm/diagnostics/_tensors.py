"""Checked conversion of tensors to NumPy at the ArviZ and matplotlib boundaries.

Every public function of :mod:`pyro_dgm.diagnostics` accepts tensors on any device
(or array-likes); this is the one place they are detached, moved to the CPU and
validated, with errors that name the offending argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray | Sequence


def as_tensor(value: ArrayLike, name: str) -> torch.Tensor:
    """``value`` as a floating tensor on its own device (array-likes go to the CPU)."""
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a tensor or a numeric array, got {type(value)}") from error
    if not value.dtype.is_floating_point:
        value = value.to(torch.get_default_dtype())
    return value


def check_values(
    value: torch.Tensor, name: str, *, ndim: int | tuple[int, ...] | None = None,
    min_ndim: int | None = None, allow_neg_inf: bool = False,
) -> torch.Tensor:
    """Raise ``ValueError`` naming ``name`` if ``value`` has the wrong rank, NaNs or infinities.

    ``ndim``: the allowed ranks; ``min_ndim``: the smallest allowed rank;
    ``allow_neg_inf`` admits :math:`-\\infty` (a log-weight of a particle with zero weight).
    """
    if min_ndim is not None and value.dim() < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(value.shape)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if value.dim() not in allowed:
            expected = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {expected} dimensions, got shape {tuple(value.shape)}")
    if value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)})")
    if torch.isnan(value).any():
        raise ValueError(f"{name} contains NaN")
    bad_inf = torch.isposinf(value) if allow_neg_inf else torch.isinf(value)
    if bad_inf.any():
        kind = "+inf" if allow_neg_inf else "infinite values"
        raise ValueError(f"{name} contains {kind}")
    return value


def checked_tensor(
    value: ArrayLike, name: str, *, ndim: int | tuple[int, ...] | None = None,
    min_ndim: int | None = None, allow_neg_inf: bool = False,
) -> torch.Tensor:
    """:func:`as_tensor` followed by :func:`check_values`."""
    return check_values(
        as_tensor(value, name), name, ndim=ndim, min_ndim=min_ndim, allow_neg_inf=allow_neg_inf
    )


def to_numpy(value: torch.Tensor) -> np.ndarray:
    """A CPU NumPy copy of ``value`` (already checked), for ArviZ or matplotlib.

    float32 and float64 keep their precision (long chains of many units stay compact);
    lower precisions are widened to float32, which NumPy and ArviZ handle everywhere.
    """
    if value.dtype not in (torch.float32, torch.float64):
        value = value.to(torch.float32)
    return value.detach().cpu().numpy().copy()

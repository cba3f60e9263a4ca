r"""The data plate and the data/latent checks shared by every model and guide.

Every program of :mod:`pyro_dgm.models` puts its sites in one plate over data points,
``pyro.plate("data", N, subsample_size=B, dim=-1)`` (:func:`data_plate`), checks its
input with :func:`check_data` and each latent value with :func:`check_latent_value`, so
that a wrong shape, dtype or device is an error naming the tensor or the site.
"""

from __future__ import annotations

import pyro
import torch
from torch import nn

DATA_PLATE_NAME = "data"
"""Name of the plate over data points shared by the model and every guide."""

DATA_PLATE_DIM = -1
"""The data plate's dim: the rightmost batch dim, so particles can sit to its left."""


def check_data(x: torch.Tensor, num_features: int, module: nn.Module) -> int:
    """Raise ``ValueError`` naming ``x`` unless it is a (batch, D) tensor ``module`` can read.

    Checks the shape, that ``x`` is floating point, and that it lives on the device
    and has the dtype of ``module``'s parameters. Returns the batch size.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor of shape (batch, {num_features}), got {type(x).__name__}")
    if x.dim() != 2 or x.size(-1) != num_features:
        raise ValueError(
            f"x must have shape (batch, {num_features}) (one flattened binary vector per "
            f"row), got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor of 0/1 values, got dtype {x.dtype}")
    parameter = next(module.parameters())
    if x.device != parameter.device or x.dtype != parameter.dtype:
        raise ValueError(
            f"x is {x.dtype} on {x.device} but {type(module).__name__}'s parameters are "
            f"{parameter.dtype} on {parameter.device}; call .to(x) on the module"
        )
    return x.size(0)


def data_plate(batch_size: int, num_data: int | None, device: torch.device) -> pyro.plate:
    r"""The plate over data points: ``pyro.plate("data", N, subsample_size=B, dim=-1)``.

    Given ``num_data`` :math:`N \ge B` (the size of the full data set of which the
    batch is a minibatch), Pyro scales every log-density inside the plate by
    :math:`N / B`, so losses estimate the full-data objective; ``None`` means the
    batch *is* the data set (scale 1). The batch is passed in, so the plate is given
    the indices ``0..B-1`` instead of drawing a random subsample of ``range(N)``
    (a ``randperm(N)`` per call that nothing would use).
    """
    size = batch_size if num_data is None else num_data
    if isinstance(size, bool) or not isinstance(size, int) or size < batch_size:
        raise ValueError(
            f"num_data must be an int >= the batch size {batch_size} (the number of data "
            f"points the batch is drawn from), got {num_data!r}"
        )
    return pyro.plate(
        DATA_PLATE_NAME, size, subsample=torch.arange(batch_size, device=device), dim=DATA_PLATE_DIM
    )


def check_latent_value(name: str, value: torch.Tensor, batch_size: int, num_units: int) -> None:
    """Raise ``ValueError`` naming site ``name`` unless ``value`` has shape (..., B, H).

    Called on every latent right after its sample statement, so a guide that samples
    a wrong-shaped value fails there, naming the site, rather than in a matrix product.
    """
    if value.dim() < 2 or value.shape[-2:] != (batch_size, num_units):
        raise ValueError(
            f"site '{name}' has a value of shape {tuple(value.shape)}, but the model expects "
            f"(..., {batch_size}, {num_units}): {batch_size} data points x {num_units} units, "
            "optionally with particle dims on the left"
        )

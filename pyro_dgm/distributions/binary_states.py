"""All configurations of a few binary units, for exact sums over small discrete spaces."""

from __future__ import annotations

import torch


def all_binary_configurations(
    num_bits: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """All 2^num_bits binary vectors, shape (2^num_bits, num_bits), most significant bit first."""
    codes = torch.arange(2**num_bits, device=device)
    shifts = torch.arange(num_bits - 1, -1, -1, device=device)
    return ((codes.unsqueeze(-1) >> shifts) & 1).to(dtype)

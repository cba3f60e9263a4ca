"""All configurations of a few binary units, for exact sums over small discrete spaces."""

from __future__ import annotations

import functools

import torch


def all_binary_configurations(
    num_bits: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """All 2^num_bits binary vectors, shape (2^num_bits, num_bits), most significant bit first."""
    codes = torch.arange(2**num_bits, device=device)
    shifts = torch.arange(num_bits - 1, -1, -1, device=device)
    return ((codes.unsqueeze(-1) >> shifts) & 1).to(dtype)


CACHED_CONFIGURATION_TABLES = 8
"""How many (num_bits, dtype, device) tables :func:`cached_binary_configurations` keeps: an
RBM's enumeration uses two (its chunks' high and low bits) in the forward and backward pass."""


@functools.lru_cache(maxsize=CACHED_CONFIGURATION_TABLES)
def cached_binary_configurations(num_bits: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """:func:`all_binary_configurations`, built once per (num_bits, dtype, device) and then shared.

    For callers that enumerate the same state space at every training step (the exact
    log Z of an RBM, forward and backward). The returned tensor is shared: never modify it.
    """
    return all_binary_configurations(num_bits, dtype, device)

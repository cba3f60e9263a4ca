"""All configurations of a few binary units, for exact sums over small discrete spaces."""

from __future__ import annotations

import functools

import torch

MAX_ENUMERATED_EVENT_UNITS = 16
"""Most binary units whose :math:`2^n` joint states a distribution's ``enumerate_support`` lists.

At 16 units that is 2^20 elements (4 MiB in float32) per batch element before Pyro's
enumeration broadcasts it against the rest of the model, and every extra unit doubles it.
Above it ``has_enumerate_support`` is False (as for ``Bernoulli(...).to_event(1)``, which
never enumerates): sum such a layer out unit by unit in the model, or use a sampled guide.
"""


def all_binary_configurations(
    num_bits: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """All 2^num_bits binary vectors, shape (2^num_bits, num_bits), most significant bit first."""
    codes = torch.arange(2**num_bits, device=device)
    shifts = torch.arange(num_bits - 1, -1, -1, device=device)
    return ((codes.unsqueeze(-1) >> shifts) & 1).to(dtype)


def enumerate_binary_support(
    owner: str, num_units: int, batch_shape: torch.Size, expand: bool, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The support of a distribution over ``num_units`` binary units, for ``enumerate_support``.

    Shape (2^n, *batch_shape, n), or (2^n, 1, ..., 1, n) with ``expand=False`` (Pyro's
    enumeration broadcasts it), states in the order of :func:`all_binary_configurations`.

    :param owner: the distribution's name, for the error above :data:`MAX_ENUMERATED_EVENT_UNITS` units.
    """
    if num_units > MAX_ENUMERATED_EVENT_UNITS:
        raise NotImplementedError(
            f"{owner}.enumerate_support: {num_units} units have 2^{num_units} joint states; enumeration is "
            f"limited to {MAX_ENUMERATED_EVENT_UNITS} units (MAX_ENUMERATED_EVENT_UNITS)"
        )
    states = all_binary_configurations(num_units, dtype, device)
    states = states.reshape((states.size(0),) + (1,) * len(batch_shape) + (num_units,))
    return states.expand((states.size(0),) + batch_shape + (num_units,)) if expand else states


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

"""Checks of integer arguments shared by every layer of the package (it imports nothing of ours)."""

from __future__ import annotations


def check_int(name: str, value: int, minimum: int = 1) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")

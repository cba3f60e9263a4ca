"""Who decides whether a distribution validates: its own ``validate_args``, or the global switch.

torch stores ``validate_args`` on the instance only when it is given; with ``None`` the
instance reads the class attribute ``Distribution._validate_args`` at each call, which
:func:`pyro.enable_validation` and ``pyro.validation_enabled(...)`` set. The helpers here keep
that behaviour through constructors and :meth:`expand` (torch's own ``expand`` freezes it).
"""

from __future__ import annotations

from torch.distributions import Distribution

VALIDATE_ARGS = "_validate_args"
"""The attribute torch reads: an instance's own when set, else the class's (the global switch)."""


def set_validation_flag(distribution: Distribution, validate_args: bool | None) -> None:
    """Give ``distribution`` its own flag, or (``None``) none, so that it follows the global switch."""
    if validate_args is None:
        distribution.__dict__.pop(VALIDATE_ARGS, None)
    else:
        setattr(distribution, VALIDATE_ARGS, validate_args)


def own_validation_flag(distribution: Distribution) -> bool | None:
    """The flag ``distribution`` was given, or ``None`` if it follows the global switch."""
    return distribution.__dict__.get(VALIDATE_ARGS)

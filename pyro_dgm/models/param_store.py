"""Registering a module's parameters in Pyro's param store, without silent aliasing."""

from __future__ import annotations

import pyro
from pyro.params.param_store import param_with_module_name
from torch import nn


def register_module(name: str, module: nn.Module) -> None:
    """``pyro.module(name, module)``, refusing to alias a different module's parameters.

    ``pyro.module`` returns the param store's tensor when a name is already taken, so a
    second module registered under the same name would be silently left untrained
    (the optimiser would update the first module's tensors). We raise instead.
    """
    store = pyro.get_param_store()
    first = next(module.named_parameters(), None)
    if first is not None:
        first_name = param_with_module_name(name, first[0])
        if first_name in store and store[first_name] is first[1]:
            pyro.module(name, module)  # registered before as itself (every training step): no clash
            return
    for param_name, parameter in module.named_parameters():
        full_name = param_with_module_name(name, param_name)
        if full_name in store and store[full_name] is not parameter:
            raise ValueError(
                f"the Pyro param store already holds '{full_name}' from another module: give "
                f"this {type(module).__name__} a distinct name= or call pyro.clear_param_store()"
            )
    pyro.module(name, module)

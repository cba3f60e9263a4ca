"""The ``pyro-dgm`` command."""

"""The ``pyro-dgm`` command: train, evaluate, sample, inpaint (``docs/cli.md``).

The top layer: it turns command-line options into models (:mod:`.registry`), runs
:class:`~pyro_dgm.cli.trainer.Trainer`, writes run folders and checkpoints, and reports.

May import: every other package of :mod:`pyro_dgm`; nothing imports it.
"""

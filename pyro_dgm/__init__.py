"""pyro_dgm: deep generative models with discrete latent variables, in Pyro syntax.

Subpackages (imports point downward only):

- :mod:`pyro_dgm.distributions` — RBM prior and the smoothing transformations;
- :mod:`pyro_dgm.nn` — network building blocks;
- :mod:`pyro_dgm.models` — ready-made model/guide pairs;
- :mod:`pyro_dgm.infer` — objectives (ELBO subclasses) and estimators;
- :mod:`pyro_dgm.diagnostics` — ArviZ conversion, PSIS, plots;
- :mod:`pyro_dgm.data` — datasets;
- :mod:`pyro_dgm.cli` — the ``pyro-dgm`` command.
"""

__version__ = "0.1.0"

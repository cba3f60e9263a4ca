"""pyro_dgm: deep generative models with discrete latent variables, in Pyro syntax.

Subpackages, as layers, top first (a module imports only from its own layer and those
below; side-by-side packages are independent; ``docs/architecture.md``):

- :mod:`pyro_dgm.cli` — the ``pyro-dgm`` command;
- :mod:`pyro_dgm.bihm` — BiHM's tools for sigmoid belief nets (Z², sampling from p*,
  inpainting) | :mod:`pyro_dgm.diagnostics` — ArviZ conversion, PSIS, chain diagnostics, plots;
- :mod:`pyro_dgm.infer` — :mod:`~pyro_dgm.infer.estimators` (log-likelihood, log Z) over
  :mod:`~pyro_dgm.infer.objectives` (ELBO subclasses) over the importance-weighting core;
- :mod:`pyro_dgm.models` — ready-made model/guide pairs;
- :mod:`pyro_dgm.nn` — network building blocks;
- :mod:`pyro_dgm.distributions` — RBM prior and the smoothing transformations;
- :mod:`pyro_dgm.data` — datasets | :mod:`pyro_dgm.compilation` — compiled kernels.

May import: nothing (this module holds the version only, so every layer may read it).
"""

__version__ = "0.1.0"

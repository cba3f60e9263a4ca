"""The module paths of :mod:`pyro_dgm.infer` before the layout of issue 17, kept for one release.

Objectives, estimators and BiHM's tools for sigmoid belief nets used to share the folder
``pyro_dgm/infer/``; they now live in :mod:`pyro_dgm.infer.objectives`,
:mod:`pyro_dgm.infer.estimators` and :mod:`pyro_dgm.bihm` (``docs/architecture.md``).
Importing an old path still works and gives the module at its new path, the same object
(so a monkeypatch or an ``isinstance`` check through either name sees the same thing),
with a :class:`DeprecationWarning` that names the new path. :data:`MOVED_MODULES` is the
whole list; :class:`MovedModuleFinder` serves it, so no file is left at an old path.
Nothing in the package imports an old path. The package-level names
(``from pyro_dgm.infer import BiHMELBO, log_likelihood``) are not moved and do not warn.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

MOVED_MODULES: dict[str, str] = {
    "pyro_dgm.infer.ais": "pyro_dgm.infer.estimators.ais",
    "pyro_dgm.infer.bihm": "pyro_dgm.infer.objectives.bihm",
    "pyro_dgm.infer.bihm_gibbs": "pyro_dgm.bihm.gibbs_sampling",
    "pyro_dgm.infer.dvae": "pyro_dgm.infer.objectives.dvae",
    "pyro_dgm.infer.dvae_pp": "pyro_dgm.infer.objectives.dvae_pp",
    "pyro_dgm.infer.dvae_sharp": "pyro_dgm.infer.objectives.dvae_sharp",
    "pyro_dgm.infer.exact": "pyro_dgm.infer.estimators.exact",
    "pyro_dgm.infer.fused_bernoulli": "pyro_dgm.bihm.fused_bernoulli",
    "pyro_dgm.infer.log_likelihood": "pyro_dgm.infer.estimators.log_likelihood",
    "pyro_dgm.infer.parallel_tempering": "pyro_dgm.infer.estimators.parallel_tempering",
    "pyro_dgm.infer.partition": "pyro_dgm.infer.estimators.bihm_partition",
    "pyro_dgm.infer.random_bits": "pyro_dgm.bihm.random_bits",
    "pyro_dgm.infer.rbm_log_partition_term": "pyro_dgm.infer.objectives.rbm_log_partition_term",
    "pyro_dgm.infer.rbm_partition": "pyro_dgm.infer.estimators.rbm_partition",
    "pyro_dgm.infer.rws": "pyro_dgm.infer.objectives.rws",
    "pyro_dgm.infer.sbn_importance": "pyro_dgm.bihm.sbn_importance",
    "pyro_dgm.infer.sbn_partition": "pyro_dgm.bihm.sbn_partition",
    "pyro_dgm.infer.smoothed_exact": "pyro_dgm.infer.estimators.smoothed_exact",
    "pyro_dgm.infer.smoothed_kl": "pyro_dgm.infer.objectives.smoothed_kl",
    "pyro_dgm.infer.smoothed_latents": "pyro_dgm.infer.objectives.smoothed_latents",
    "pyro_dgm.infer.tcvae": "pyro_dgm.infer.objectives.tcvae",
    "pyro_dgm.infer.tempered_rbm": "pyro_dgm.infer.estimators.tempered_rbm",
    "pyro_dgm.infer.vimco": "pyro_dgm.infer.objectives.vimco",
    "pyro_dgm.infer.weight_penalty": "pyro_dgm.infer.objectives.weight_penalty",
}
"""Old dotted path -> new dotted path, for every module that moved."""


def moved_module_warning(old: str, new: str) -> str:
    """The text of the :class:`DeprecationWarning` for importing ``old``."""
    return f"{old} moved to {new}; import it from there (the old path will be removed in the next release)"


class _MovedModuleLoader(importlib.abc.Loader):
    """Loads an old path as the module at its new path (the import system's ``sys.modules`` replacement)."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # a placeholder module, replaced in exec_module

    def exec_module(self, module: ModuleType) -> None:
        # stacklevel 2: the frame after the import machinery's, i.e. the import statement
        warnings.warn(moved_module_warning(module.__name__, self.new), DeprecationWarning, stacklevel=2)
        sys.modules[module.__name__] = importlib.import_module(self.new)


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths of :data:`MOVED_MODULES`; every other name is left to the other finders."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED_MODULES.get(fullname)
        return None if new is None else importlib.machinery.ModuleSpec(fullname, _MovedModuleLoader(new))


def install() -> None:
    """Put one :class:`MovedModuleFinder` at the end of ``sys.meta_path`` (a real file at an old path would win)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())

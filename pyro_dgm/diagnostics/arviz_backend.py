r"""The ArviZ line this installation uses, chosen once at import time.

ArviZ exists in two lines with different APIs:

- **legacy** — the ``arviz`` package before 1.0 (``arviz.InferenceData``,
  ``arviz.psislw`` with ``reff``, the samples on the last axis);
- **split** — the packages ``arviz-base`` and ``arviz-stats`` (0.8 on Python 3.11, and the
  1.x line that the ``arviz`` 1.x meta-package installs on Python >= 3.12): groups are
  nodes of an ``xarray.DataTree``, there is no ``from_pyro``, and the array-level
  ``psislw`` takes *negated* log-weights (it is written for PSIS-LOO, whose ratios are
  :math:`1/p(y_i \mid \theta)`) and raises where the legacy one returns
  :math:`\hat k = \infty`.

Everything :mod:`pyro_dgm.diagnostics` asks of ArviZ goes through :class:`ArvizBackend`:
building the container of groups, PSIS, rank :math:`\hat R`, bulk/tail ESS and reading
a netcdf file back. The groups themselves are plain ``xarray.Dataset`` objects built
here, so both lines hold the same variables, dims and coordinates.

The split line is used when ``arviz_base`` and ``arviz_stats`` import, else ``arviz``
older than 1.0; the environment variable ``PYRO_DGM_ARVIZ`` (``legacy`` or ``split``)
forces one. :data:`ACTIVE` holds the choice, made (and ArviZ imported) at its first use,
not at import; :func:`available_backends` lists every line that imports here (the tests
run the diagnostics against each).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import xarray

ENVIRONMENT_VARIABLE = "PYRO_DGM_ARVIZ"
"""Forces a line: ``legacy`` (``arviz`` < 1) or ``split`` (``arviz-base`` + ``arviz-stats``)."""

LEGACY, SPLIT = "legacy", "split"
LINES = (SPLIT, LEGACY)
"""Line names in order of preference."""

FIRST_SPLIT_ARVIZ_MAJOR = 1
"""``arviz`` from this major version on is a meta-package over the split line."""

MIN_PARETO_TAIL_LENGTH = 5
"""Both lines fit the generalised Pareto tail only with at least this many tail draws."""

IID_RELATIVE_EFFICIENCY = 1.0
"""``reff`` / ``r_eff`` of PSIS: importance particles are independent draws from q."""

SAMPLE_DIMS = ("chain", "draw")


class ArvizBackend(Protocol):
    """What :mod:`pyro_dgm.diagnostics` needs of an ArviZ line."""

    name: str

    def make_tree(self, groups: Mapping[str, xarray.Dataset], attrs: Mapping[str, Any]) -> Any:
        """The line's container (``InferenceData`` / ``DataTree``) holding ``groups``, with root ``attrs``."""
        ...

    def group_names(self, data: Any) -> list[str]:
        """Names of the groups of a container made by :meth:`make_tree`."""
        ...

    def psislw(self, log_weights_by_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PSIS of float64 log-weights ``(B, K)``: self-normalised smoothed log-weights ``(B, K)`` and k-hat ``(B,)``.

        :math:`\\hat k = \\infty` where the tail cannot be fitted (too short, or constant).
        """
        ...

    def rhat(self, dataset: xarray.Dataset) -> xarray.Dataset:
        """Rank-normalised split R-hat of every variable of dims ``(chain, draw, ...)``."""
        ...

    def ess(self, dataset: xarray.Dataset, method: str) -> xarray.Dataset:
        """``bulk`` or ``tail`` ESS of every variable of dims ``(chain, draw, ...)``."""
        ...

    def read_netcdf(self, path: str) -> Any:
        """A container written by ``to_netcdf`` of :meth:`make_tree`'s result."""
        ...


class LegacyArviz:
    """``arviz`` < 1: ``InferenceData`` and ``arviz.psislw``."""

    name = LEGACY

    def __init__(self) -> None:
        import arviz

        if int(arviz.__version__.split(".")[0]) >= FIRST_SPLIT_ARVIZ_MAJOR:
            raise ImportError(f"arviz {arviz.__version__} is the split line, not the legacy one")
        self.arviz = arviz

    def make_tree(self, groups: Mapping[str, xarray.Dataset], attrs: Mapping[str, Any]) -> Any:
        data = self.arviz.InferenceData(**groups)
        data.attrs.update(attrs)  # InferenceData keeps root attributes for netcdf
        return data

    def group_names(self, data: Any) -> list[str]:
        return list(data.groups())

    def psislw(self, log_weights_by_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            smoothed, khat = self.arviz.psislw(log_weights_by_data, reff=IID_RELATIVE_EFFICIENCY)
        return np.asarray(smoothed), np.asarray(khat)

    def rhat(self, dataset: xarray.Dataset) -> xarray.Dataset:
        return self.arviz.rhat(dataset, method="rank")

    def ess(self, dataset: xarray.Dataset, method: str) -> xarray.Dataset:
        return self.arviz.ess(dataset, method=method)

    def read_netcdf(self, path: str) -> Any:
        return self.arviz.from_netcdf(path)


class SplitArviz:
    """``arviz-base`` + ``arviz-stats``: ``xarray.DataTree`` and ``arviz_stats`` diagnostics."""

    name = SPLIT

    def __init__(self) -> None:
        import arviz_stats
        from arviz_stats.base import array_stats

        self.arviz_stats = arviz_stats
        self.array_stats = array_stats

    def make_tree(self, groups: Mapping[str, xarray.Dataset], attrs: Mapping[str, Any]) -> Any:
        tree = xarray.DataTree.from_dict(dict(groups))
        tree.attrs.update(attrs)
        return tree

    def group_names(self, data: Any) -> list[str]:
        return list(data.children)

    def psislw(self, log_weights_by_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        smoothed = np.empty_like(log_weights_by_data)
        khat = np.empty(log_weights_by_data.shape[0])
        for index, column in enumerate(log_weights_by_data):
            smoothed[index], khat[index] = self._psislw_one(column)
        return smoothed, khat

    def _psislw_one(self, log_weights: np.ndarray) -> tuple[np.ndarray, float]:
        """One data point; a tail the fit refuses gives k-hat = inf and the raw normalised weights, as in 0.x."""
        try:
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                # arviz-stats negates its input (PSIS-LOO ratios are 1/p(y|theta)): hand it -log w.
                smoothed, khat = self.array_stats.psislw(-log_weights, r_eff=IID_RELATIVE_EFFICIENCY)
        except ValueError:  # "All tail values are the same" / "n_draws_tail must be at least 5"
            finite_max = np.max(log_weights)
            shifted = log_weights - finite_max
            return shifted - math.log(np.sum(np.exp(shifted))), math.inf
        return np.asarray(smoothed), float(khat)

    def rhat(self, dataset: xarray.Dataset) -> xarray.Dataset:
        return self.arviz_stats.rhat(dataset, sample_dims=list(SAMPLE_DIMS), method="rank")

    def ess(self, dataset: xarray.Dataset, method: str) -> xarray.Dataset:
        return self.arviz_stats.ess(dataset, sample_dims=list(SAMPLE_DIMS), method=method)

    def read_netcdf(self, path: str) -> Any:
        return xarray.open_datatree(path)


BACKEND_CLASSES: dict[str, type] = {SPLIT: SplitArviz, LEGACY: LegacyArviz}


def load_backend(name: str) -> ArvizBackend:
    """The backend of line ``name``; ImportError if its packages are not installed."""
    if name not in BACKEND_CLASSES:
        raise ValueError(f"unknown ArviZ line '{name}'; choose one of: {', '.join(LINES)}")
    return BACKEND_CLASSES[name]()


def available_backends() -> dict[str, ArvizBackend]:
    """Every line that imports in this environment, by name, in order of preference."""
    backends = {}
    for name in LINES:
        try:
            backends[name] = load_backend(name)
        except ImportError:
            continue
    return backends


def select_backend() -> ArvizBackend:
    """The line forced by ``PYRO_DGM_ARVIZ``, else the first of :data:`LINES` that imports."""
    forced = os.environ.get(ENVIRONMENT_VARIABLE)
    if forced:
        return load_backend(forced)
    for name in LINES:  # the first that imports; the others are not imported at all
        try:
            return load_backend(name)
        except ImportError:
            continue
    raise ImportError("pyro_dgm.diagnostics needs ArviZ: install 'arviz-base' and 'arviz-stats', or 'arviz<1'")


ACTIVE: ArvizBackend
"""The line in use, chosen at first use (:func:`__getattr__`); replace it (e.g. with pytest's
``monkeypatch``) to run against another one."""


def __getattr__(name: str) -> Any:
    """:data:`ACTIVE` on first access: :func:`select_backend`, then kept as a module attribute.

    ArviZ takes seconds to import (``arviz-stats`` ~4 s of a ~15 s ``pyro-dgm`` start on
    the 2-core test machine); commands that never diagnose, such as ``pyro-dgm train``,
    do not pay for it.
    """
    if name == "ACTIVE":
        backend = globals()["ACTIVE"] = select_backend()
        return backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

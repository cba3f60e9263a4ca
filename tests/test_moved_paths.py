"""The paths that moved in the layout of issue 17 still work for one release, and warn; the new ones do not.

``docs/architecture.md`` has the layout. Old module paths are served by
:mod:`pyro_dgm.infer._moved_modules`; ``traces_to_inference_data`` moved between two
modules of :mod:`pyro_dgm.diagnostics`. The package itself uses only the new paths, so
importing it, and each of its modules, warns about none of them.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings

import pytest

import pyro_dgm.infer
from pyro_dgm.diagnostics import arviz_conversion, chain_diagnostics
from pyro_dgm.infer._moved_modules import MOVED_MODULES, moved_module_warning
from tests.test_import_layers import PACKAGE_DIR, module_names


def forget(monkeypatch: pytest.MonkeyPatch, dotted: str) -> None:
    """Make the next import of ``dotted`` run the import system again (restored after the test)."""
    monkeypatch.delitem(sys.modules, dotted, raising=False)
    parent, _, child = dotted.rpartition(".")
    monkeypatch.delattr(sys.modules[parent], child, raising=False)


def deprecations(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(item.message) for item in record if issubclass(item.category, DeprecationWarning)]


@pytest.mark.parametrize("old, new", sorted(MOVED_MODULES.items()))
def test_an_old_module_path_gives_the_new_module_and_warns(monkeypatch, old, new):
    forget(monkeypatch, old)
    with pytest.warns(DeprecationWarning) as record:
        module = importlib.import_module(old)
    assert deprecations(record) == [moved_module_warning(old, new)]
    assert module is importlib.import_module(new)  # one module object: patching either name patches both
    assert module.__name__ == new and module.__spec__.name == new
    assert module.__file__ == str(module_names(PACKAGE_DIR)[new])


def test_the_warning_points_at_the_import_statement(monkeypatch):
    forget(monkeypatch, "pyro_dgm.infer.sbn_partition")
    with pytest.warns(DeprecationWarning) as record:
        from pyro_dgm.infer import sbn_partition  # noqa: F401  (the old spelling, on purpose)
    assert [item.filename for item in record] == [__file__]


def test_the_old_paths_name_no_file_and_the_new_ones_exist():
    modules = module_names(PACKAGE_DIR)
    assert not set(MOVED_MODULES) & set(modules), "a file at an old path would shadow its alias"
    assert set(MOVED_MODULES.values()) <= set(modules)


def test_traces_to_inference_data_moved_to_arviz_conversion_and_warns_at_its_old_path():
    with pytest.warns(DeprecationWarning, match="arviz_conversion.traces_to_inference_data"):
        old = chain_diagnostics.traces_to_inference_data
    assert old is arviz_conversion.traces_to_inference_data
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        chain_diagnostics.not_a_name  # noqa: B018


def test_the_package_level_names_of_infer_do_not_warn():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        names = {name: getattr(pyro_dgm.infer, name) for name in pyro_dgm.infer.__all__}
    assert not deprecations(record)
    assert names["log_likelihood"].__module__ == "pyro_dgm.infer.estimators.log_likelihood"


IMPORT_EVERY_MODULE = """
import importlib, json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    for name in json.loads(sys.argv[1]):
        importlib.import_module(name)
print(json.dumps([f"{item.filename}:{item.lineno}: {item.message}" for item in record
                  if issubclass(item.category, DeprecationWarning) and "pyro_dgm" in str(item.message)]))
"""


def test_importing_the_package_and_every_module_warns_about_no_moved_path():
    """In a fresh interpreter: a module imported earlier in this session would not warn again."""
    names = ["pyro_dgm", *module_names(PACKAGE_DIR)]
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE, json.dumps(names)],
        capture_output=True, text=True, check=True, cwd=PACKAGE_DIR.parent,
    )
    assert json.loads(completed.stdout.splitlines()[-1]) == []

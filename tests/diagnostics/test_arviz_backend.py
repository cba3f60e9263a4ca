"""The ArviZ line is chosen at first use, the first line that imports, and only that one is imported."""

import subprocess
import sys

import pytest

from pyro_dgm.diagnostics import arviz_backend


def test_the_cli_starts_without_importing_arviz():
    """ArviZ takes seconds to import; ``pyro-dgm train`` never needs it."""
    probe = (
        "import sys, pyro_dgm.cli.main\n"
        "print(sorted(m for m in ('arviz', 'arviz_base', 'arviz_stats') if m in sys.modules))\n"
        "from pyro_dgm.diagnostics import arviz_backend\n"
        "arviz_backend.ACTIVE\n"
        "print(any(m in sys.modules for m in ('arviz', 'arviz_stats')))\n"
    )
    printed = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()
    assert printed == ["[]", "True"]


def _recording_backends(monkeypatch, importable):
    constructed = []

    def backend_class(name):
        def construct():
            constructed.append(name)
            if name not in importable:
                raise ImportError(f"no {name} here")
            return name
        return construct

    monkeypatch.setattr(arviz_backend, "BACKEND_CLASSES", {name: backend_class(name) for name in arviz_backend.LINES})
    monkeypatch.delenv(arviz_backend.ENVIRONMENT_VARIABLE, raising=False)
    return constructed


@pytest.mark.parametrize("importable, chosen", [(("split", "legacy"), "split"), (("legacy",), "legacy")])
def test_the_first_line_that_imports_is_chosen_and_the_rest_not_imported(monkeypatch, importable, chosen):
    constructed = _recording_backends(monkeypatch, importable)
    assert arviz_backend.select_backend() == chosen
    assert constructed == list(arviz_backend.LINES[: arviz_backend.LINES.index(chosen) + 1])


def test_no_arviz_is_an_import_error_saying_what_to_install(monkeypatch):
    _recording_backends(monkeypatch, importable=())
    with pytest.raises(ImportError, match="install 'arviz-base' and 'arviz-stats', or 'arviz<1'"):
        arviz_backend.select_backend()


def test_an_unknown_attribute_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'ACTIVE_LINE'"):
        arviz_backend.ACTIVE_LINE  # noqa: B018

"""Session fixtures for the plot tests (tiny models trained once, see ``trained_models.py``) and the ArviZ line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyro_dgm.diagnostics import arviz_backend
from tests.diagnostics.trained_models import (
    TrainedBiHM,
    TrainedDVAEPlusPlus,
    train_bihm,
    train_dvae_pp,
    train_with_cli,
)


@pytest.fixture(scope="session")
def trained_bihm() -> TrainedBiHM:
    """A 784-32-16 sigmoid belief net trained with BiHMELBO (about 2 s)."""
    return train_bihm()


@pytest.fixture(scope="session")
def trained_dvae_pp() -> TrainedDVAEPlusPlus:
    """A DVAE++ with an 8+8 RBM prior trained with DVAEPlusPlusELBO (about 2 s)."""
    return train_dvae_pp()


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of a tiny ``pyro-dgm train`` (config, metrics.jsonl, checkpoint; about 2 s)."""
    return train_with_cli(tmp_path_factory.mktemp("cli_run") / "run")


def _legacy_line_is_replaced() -> bool:
    """True where ``arviz`` >= 1 is installed: it takes the module name of the legacy line."""
    try:
        import arviz
    except ImportError:
        return False
    return int(arviz.__version__.split(".")[0]) >= arviz_backend.FIRST_SPLIT_ARVIZ_MAJOR


@pytest.fixture(params=arviz_backend.LINES)
def arviz_line(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per ArviZ line, with :data:`arviz_backend.ACTIVE` set to it.

    Both lines must be installed (the ``test`` extra brings the split one), except that
    the legacy line is skipped where ``arviz`` >= 1 has replaced it (Python >= 3.12).
    """
    name = request.param
    try:
        backend = arviz_backend.load_backend(name)
    except ImportError as error:
        if name == arviz_backend.LEGACY and _legacy_line_is_replaced():
            pytest.skip("arviz >= 1 is installed: the legacy line cannot be")
        pytest.fail(f"ArviZ line '{name}' is not installed ({error}); pip install -e '.[test]'")
    monkeypatch.setattr(arviz_backend, "ACTIVE", backend)
    return name

"""Session fixtures for the plot tests: tiny models trained once (see ``trained_models.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

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

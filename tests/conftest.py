"""Shared test configuration: fixed seeds, and CUDA tests that skip cleanly without a GPU."""

import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _fixed_seed_and_clean_param_store():
    """Every test starts from the same RNG state and an empty Pyro parameter store."""
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip_cuda)

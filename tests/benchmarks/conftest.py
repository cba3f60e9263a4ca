"""Fixtures of the benchmark-script tests."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, as the benchmark scripts run (on 2 shared cores more only contend)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

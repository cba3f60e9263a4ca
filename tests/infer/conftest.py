"""Fixtures shared by the objective tests: TinySBN and a minibatch of distinct data points."""

import pytest
import torch

from tests.infer.small_models import NUM_DATA_POINTS, TinySBN, distinct_binary_data


@pytest.fixture
def sbn() -> TinySBN:
    return TinySBN()


@pytest.fixture
def data() -> torch.Tensor:
    return distinct_binary_data(NUM_DATA_POINTS)

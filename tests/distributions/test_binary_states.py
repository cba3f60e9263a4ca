"""The enumerated binary states, and their cache shared by every exact log Z."""

import torch

from pyro_dgm.distributions.binary_states import all_binary_configurations, cached_binary_configurations


def test_cached_configurations_are_built_once_and_equal_the_fresh_ones():
    first = cached_binary_configurations(5, torch.float64, torch.device("cpu"))
    assert cached_binary_configurations(5, torch.float64, torch.device("cpu")) is first
    assert torch.equal(first, all_binary_configurations(5, torch.float64))
    other_dtype = cached_binary_configurations(5, torch.bool, torch.device("cpu"))
    assert other_dtype.dtype == torch.bool and torch.equal(other_dtype, first.bool())

"""Random float64 RBMs for the log-Z estimators, and their exact log Z by enumeration."""

from __future__ import annotations

import torch

from pyro_dgm.distributions.rbm import RBM, exact_log_partition


def random_rbm(num_units1, num_units2, weight_scale, bias_scale=0.5, batch_shape=()) -> RBM:
    """Biases ~ N(0, bias_scale^2), couplings ~ N(0, weight_scale^2), drawn in that order."""
    return RBM(
        bias_scale * torch.randn(*batch_shape, num_units1, dtype=torch.float64),
        bias_scale * torch.randn(*batch_shape, num_units2, dtype=torch.float64),
        weight_scale * torch.randn(*batch_shape, num_units1, num_units2, dtype=torch.float64),
    )


def exact_log_partition_of(rbm: RBM) -> torch.Tensor:
    return exact_log_partition(rbm.bias1, rbm.bias2, rbm.weight)

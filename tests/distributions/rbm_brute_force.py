"""The RBM straight from its definition: -E(z1, z2) and p(z1, z2) over all 2^(n1+n2) states."""

from __future__ import annotations

import torch

from pyro_dgm.infer.estimators.exact import all_binary_configurations


def brute_force_neg_energy(bias1, bias2, weight):
    """All states (S, n1+n2) and -E of each, (S, *batch), straight from the definition."""
    n1, n2 = bias1.size(-1), bias2.size(-1)
    batch_shape = torch.broadcast_shapes(bias1.shape[:-1], bias2.shape[:-1], weight.shape[:-2])
    bias1 = bias1.expand(*batch_shape, n1)
    bias2 = bias2.expand(*batch_shape, n2)
    weight = weight.expand(*batch_shape, n1, n2)
    states = all_binary_configurations(n1 + n2, dtype=bias1.dtype)
    z1, z2 = states[:, :n1], states[:, n1:]
    neg_energy = (
        torch.einsum("si,...i->s...", z1, bias1)
        + torch.einsum("sj,...j->s...", z2, bias2)
        + torch.einsum("si,...ij,sj->s...", z1, weight, z2)
    )
    return states, neg_energy


def brute_force_probabilities(bias1, bias2, weight):
    states, neg_energy = brute_force_neg_energy(bias1, bias2, weight)
    return states, torch.softmax(neg_energy, dim=0)

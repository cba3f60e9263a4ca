r"""Exact enumeration of the binary latents of small models: the ground truth for tests.

For a model/guide pair whose latent sites are binary and small enough
(:data:`MAX_ENUMERATED_BITS` bits per data point in all), every configuration
:math:`h \in \{0,1\}^n` is fed to the guide in one vectorised pass, so

.. math::

    \log p(x_b) = \operatorname{logsumexp}_h \log p(x_b, h), \qquad
    \log \tilde p^*(x_b) = 2 \operatorname{logsumexp}_h \tfrac12[\log p(x_b, h) + \log q(h \mid x_b)]

and any expectation under q are exact sums, differentiable by autograd. This is
how the stochastic objectives of :mod:`pyro_dgm.infer` are proven correct.
"""

from __future__ import annotations

import math

import torch
from pyro.poutine.messenger import Messenger

from pyro_dgm.distributions.binary_states import all_binary_configurations
from pyro_dgm.infer.importance import ImportanceWeightedObjective, WeightedParticles

MAX_ENUMERATED_BITS = 16
"""2^16 configurations times a handful of data points keeps exact sums in memory."""


class PresetValues(Messenger):
    """Give the named sample sites fixed values, still as latent (unobserved) sites.

    Unlike ``poutine.replay`` the message is not marked done, so the enclosing
    plates still broadcast the site's distribution to the batch shape.
    """

    def __init__(self, values: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.values = values

    def _pyro_sample(self, msg) -> None:
        if msg["name"] in self.values and not msg["is_observed"]:
            msg["value"] = self.values[msg["name"]]


def enumerate_latents(
    model,
    guide,
    latent_shapes: dict[str, tuple[int, ...]],
    batch_size: int,
    *args,
    data_plate: str | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    **kwargs,
) -> WeightedParticles:
    """Evaluate model and guide at every binary configuration of the named latent sites.

    :param latent_shapes: per-data-point shape of each latent site, in guide order,
        e.g. ``{"h1": (3,), "h2": (2,)}``.
    :param batch_size: B, the number of data points the plate holds in this call.
    :returns: :class:`WeightedParticles` whose K = 2^n rows are the configurations
        (the same configuration for every data point).
    """
    sizes = {name: math.prod(shape) for name, shape in latent_shapes.items()}
    num_bits = sum(sizes.values())
    if num_bits > MAX_ENUMERATED_BITS:
        raise ValueError(
            f"latent_shapes hold {num_bits} bits per data point; exact enumeration "
            f"is limited to {MAX_ENUMERATED_BITS}"
        )
    configurations = all_binary_configurations(num_bits, dtype=dtype, device=device)
    num_configurations = configurations.size(0)
    values = {}
    start = 0
    for name, shape in latent_shapes.items():
        block = configurations[:, start : start + sizes[name]].reshape(
            num_configurations, 1, *shape
        )
        start += sizes[name]
        values[name] = block.expand(num_configurations, batch_size, *shape)
    objective = ImportanceWeightedObjective(
        num_particles=num_configurations, data_plate=data_plate, detach_samples=False
    )
    objective._guess_max_plate_nesting(model, guide, args, kwargs)  # on the unreplayed guide
    return objective.weighted_particles(model, PresetValues(values)(guide), *args, **kwargs)

"""Fixed guide draws: two estimators (or two chunkings of one) fed the very same particles."""

from __future__ import annotations

import torch
from pyro.poutine.messenger import Messenger
from pyro.poutine.plate_messenger import PlateMessenger
from pyro.poutine.runtime import _PYRO_STACK

from pyro_dgm.infer.importance import PARTICLE_PLATE_NAME, ImportanceWeightedObjective


class DrawPool(Messenger):
    """Feed named guide sites successive slices of pre-drawn values, one per particle-plate pass.

    A pass inside Pyro's particle plate of size k takes the next k rows; passes
    outside it (e.g. the max_plate_nesting guess) sample as usual. Two runs fed the
    same pool see the same draws however they split them into chunks. The particle
    plate encloses this messenger, so it is looked up on the effect stack (it joins
    the site's ``cond_indep_stack`` only after this messenger has run).
    """

    def __init__(self, values: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.values = values
        self.offsets = dict.fromkeys(values, 0)

    @staticmethod
    def _num_particles() -> int | None:
        for messenger in _PYRO_STACK:
            if isinstance(messenger, PlateMessenger) and messenger.name == PARTICLE_PLATE_NAME:
                return messenger.size
        return None

    def _pyro_sample(self, msg) -> None:
        name = msg["name"]
        size = self._num_particles()
        if name not in self.values or msg["is_observed"] or size is None:
            return
        start = self.offsets[name]
        msg["value"] = self.values[name][start : start + size]
        self.offsets[name] = start + size


def guide_draws(pair, data: torch.Tensor, num_particles: int) -> dict[str, torch.Tensor]:
    """K vectorised draws of every latent site of pair.guide, shape (K, B, ...) each."""
    particles = ImportanceWeightedObjective(num_particles=num_particles).weighted_particles(
        pair.model, pair.guide, data
    )
    trace = particles.guide_trace
    return {
        name: site["value"].detach()
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"]
    }

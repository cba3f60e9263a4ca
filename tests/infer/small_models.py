"""Tiny sigmoid belief nets whose latents can be enumerated: the ground truth for objective tests.

``TinySBN`` (a 4-3-2 Helmholtz machine whose latents
:func:`pyro_dgm.infer.estimators.exact.enumerate_latents` sums out) lives in
:mod:`pyro_dgm.models.tiny_sbn`, so the docs' examples run from an installed package;
it is re-exported here. ``ExactPosteriorPair`` is a pair whose guide is the exact posterior, and ``tiny_bihm`` a
4-3-2 :class:`SigmoidBeliefNet` with its :class:`BottomUpGuide` (every (x, h) enumerable).
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch

from pyro_dgm.infer.estimators.exact import all_binary_configurations
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide
from pyro_dgm.models.tiny_sbn import NUM_DATA_POINTS, TinySBN, distinct_binary_data, seeded_random_parameters

__all__ = [
    "NUM_DATA_POINTS", "SUBSAMPLE_FACTOR", "ExactPosteriorPair", "TinySBN", "distinct_binary_data",
    "seeded_random_parameters", "tiny_bihm",
]

SUBSAMPLE_FACTOR = 10
"""num_data = 10 x the minibatch: every loss must scale by N/B = 10."""


class ExactPosteriorPair:
    r"""h1 -> h2 -> x (1, 1, 3 bits) with the guide q(h1|x) q(h2|h1,x) = p(h1, h2 | x) exactly.

    Then every weight p(x,h)/q(h|x) equals p(x): IS estimates are exact at any K,
    p~*(x) = p(x) and Z^2 = sum_x p(x) = 1 (BiHM Eq. 1 and 7).
    """

    num_pixels = 3

    def __init__(self, dtype: torch.dtype = torch.float64) -> None:
        generator = torch.Generator().manual_seed(4)
        logits = torch.randn(3, generator=generator, dtype=dtype)
        self.h1_logit, self.h2_logit, self.h2_coupling = logits
        self.x_weight = torch.randn(2, self.num_pixels, generator=generator, dtype=dtype)
        self.x_bias = torch.randn(self.num_pixels, generator=generator, dtype=dtype)
        self.dtype = dtype

    def _x_dist(self, h1: torch.Tensor, h2: torch.Tensor):
        logits = h1 * self.x_weight[0] + h2 * self.x_weight[1] + self.x_bias
        return dist.Bernoulli(logits=logits).to_event(1)

    def _h2_logits(self, h1: torch.Tensor) -> torch.Tensor:
        return self.h2_logit + self.h2_coupling * h1

    def model(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.size(0)):
            h1 = pyro.sample("h1", dist.Bernoulli(logits=self.h1_logit.expand(1)).to_event(1))
            h2 = pyro.sample("h2", dist.Bernoulli(logits=self._h2_logits(h1)).to_event(1))
            pyro.sample("x", self._x_dist(h1, h2), obs=x)

    def log_joint(self, x: torch.Tensor, h1: float, h2: float) -> torch.Tensor:
        """log p(x, h1, h2) for fixed bits, shape x.shape[:-1]."""
        one = torch.ones(1, dtype=self.dtype)
        return (
            dist.Bernoulli(logits=self.h1_logit).log_prob(h1 * one)
            + dist.Bernoulli(logits=self._h2_logits(h1 * one)).log_prob(h2 * one)
            + self._x_dist(h1 * one, h2 * one).log_prob(x)
        )

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(
            torch.stack([self.log_joint(x, a, b) for a in (0.0, 1.0) for b in (0.0, 1.0)]), 0
        )

    def guide(self, x: torch.Tensor) -> None:
        joint = [[self.log_joint(x, a, b) for b in (0.0, 1.0)] for a in (0.0, 1.0)]
        h1_marginal = [torch.logaddexp(*row) for row in joint]
        with pyro.plate("data", x.size(0)):
            h1_logits = (h1_marginal[1] - h1_marginal[0]).unsqueeze(-1)
            h1 = pyro.sample("h1", dist.Bernoulli(logits=h1_logits).to_event(1))
            h2_given_h1 = [(row[1] - row[0]).unsqueeze(-1) for row in joint]
            h2_logits = torch.where(h1 > 0.5, h2_given_h1[1], h2_given_h1[0])
            pyro.sample("h2", dist.Bernoulli(logits=h2_logits).to_event(1))

    def all_data(self) -> torch.Tensor:
        return all_binary_configurations(self.num_pixels, dtype=self.dtype)


TINY_BIHM_LAYER_SIZES = [4, 3, 2]
"""x (4 pixels) <- h1 (3) <- h2 (2): 2^4 x 2^5 = 512 joint states, enumerable."""

TINY_BIHM_PARAMETER_SCALE = 1.5
"""Std of the random weights and biases: far from Z = 1 and from symmetric solutions."""


def tiny_bihm(
    dtype: torch.dtype = torch.float64, seed: int = 3
) -> tuple[SigmoidBeliefNet, BottomUpGuide]:
    """A 4-3-2 sigmoid belief net and bottom-up guide with random N(0, 1.5^2) parameters."""
    generator = torch.Generator().manual_seed(seed)
    model, guide = SigmoidBeliefNet(TINY_BIHM_LAYER_SIZES), BottomUpGuide(TINY_BIHM_LAYER_SIZES)
    with torch.no_grad():
        for parameter in [*model.parameters(), *guide.parameters()]:
            draw = torch.randn(parameter.shape, generator=generator)
            parameter.copy_(TINY_BIHM_PARAMETER_SCALE * draw)
    return model.to(dtype), guide.to(dtype)

"""Tiny sigmoid belief nets whose latents can be enumerated: the ground truth for objective tests.

``TinySBN`` is a two-latent-layer Helmholtz machine, p(h2) p(h1|h2) p(x|h1) top-down
and q(h1|x) q(h2|h1) bottom-up, with few enough latent bits (default 3 + 2) that
:func:`pyro_dgm.infer.exact.enumerate_latents` sums them out exactly. Parameters are
random (fixed seed) so that no weight is symmetric and every gradient is non-trivial.
``ExactPosteriorPair`` is a pair whose guide is the exact posterior, and ``tiny_bihm`` a
4-3-2 :class:`SigmoidBeliefNet` with its :class:`BottomUpGuide` (every (x, h) enumerable).
"""

from __future__ import annotations

from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_dgm.infer.exact import all_binary_configurations
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide

NUM_DATA_POINTS = 3
"""B distinct data points per minibatch, so per-data-point weights matter."""

SUBSAMPLE_FACTOR = 10
"""num_data = 10 x the minibatch: every loss must scale by N/B = 10."""


def seeded_random_parameters(seed: int, dtype: torch.dtype) -> Callable[..., nn.Parameter]:
    """``randn(*shape)``: a standard-normal ``nn.Parameter``, drawn from one seeded stream."""
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> nn.Parameter:
        return nn.Parameter(torch.randn(*shape, generator=generator, dtype=dtype))

    return randn


class TinySBN(nn.Module):
    """x (num_pixels) <- h1 (num_hidden1) <- h2 (num_hidden2), with a bottom-up guide.

    ``name`` is the prefix its parameters take in Pyro's parameter store: two instances
    with different names (e.g. a teacher and a student) can be used in one test.
    """

    def __init__(
        self,
        num_pixels: int = 4,
        num_hidden1: int = 3,
        num_hidden2: int = 2,
        seed: int = 1,
        dtype: torch.dtype = torch.float64,
        name: str = "tiny_sbn",
    ) -> None:
        super().__init__()
        randn = seeded_random_parameters(seed, dtype)
        self.name = name
        self.prior_logits = randn(num_hidden2)
        self.h1_weight, self.h1_bias = randn(num_hidden2, num_hidden1), randn(num_hidden1)
        self.x_weight, self.x_bias = randn(num_hidden1, num_pixels), randn(num_pixels)
        self.q1_weight, self.q1_bias = randn(num_pixels, num_hidden1), randn(num_hidden1)
        self.q2_weight, self.q2_bias = randn(num_hidden1, num_hidden2), randn(num_hidden2)
        self.latent_shapes = {"h1": (num_hidden1,), "h2": (num_hidden2,)}

    def model_parameters(self) -> list[nn.Parameter]:
        return [self.prior_logits, self.h1_weight, self.h1_bias, self.x_weight, self.x_bias]

    def guide_parameters(self) -> list[nn.Parameter]:
        return [self.q1_weight, self.q1_bias, self.q2_weight, self.q2_bias]

    def model(self, x: torch.Tensor, num_data: int | None = None) -> None:
        pyro.module(self.name, self)
        with pyro.plate("data", num_data or x.size(0), subsample_size=x.size(0)):
            h2 = pyro.sample("h2", dist.Bernoulli(logits=self.prior_logits).to_event(1))
            h1 = pyro.sample(
                "h1", dist.Bernoulli(logits=h2 @ self.h1_weight + self.h1_bias).to_event(1)
            )
            pyro.sample(
                "x", dist.Bernoulli(logits=h1 @ self.x_weight + self.x_bias).to_event(1), obs=x
            )

    def guide(self, x: torch.Tensor, num_data: int | None = None) -> None:
        pyro.module(self.name, self)
        with pyro.plate("data", num_data or x.size(0), subsample_size=x.size(0)):
            h1 = pyro.sample(
                "h1", dist.Bernoulli(logits=x @ self.q1_weight + self.q1_bias).to_event(1)
            )
            pyro.sample("h2", dist.Bernoulli(logits=h1 @ self.q2_weight + self.q2_bias).to_event(1))


def distinct_binary_data(
    num_points: int = NUM_DATA_POINTS, num_pixels: int = 4, seed: int = 2, dtype=torch.float64
):
    """A minibatch of distinct binary vectors (distinct, so per-data-point weights matter)."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randperm(2**num_pixels, generator=generator)[:num_points]
    shifts = torch.arange(num_pixels - 1, -1, -1)
    return ((codes.unsqueeze(-1) >> shifts) & 1).to(dtype)


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

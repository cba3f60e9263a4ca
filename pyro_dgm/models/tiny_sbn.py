r"""A tiny sigmoid belief net whose latents can be enumerated: for runnable examples and exact checks.

:class:`TinySBN` is a two-latent-layer Helmholtz machine, :math:`p(h_2)\,p(h_1 \mid h_2)\,p(x \mid h_1)`
top-down and :math:`q(h_1 \mid x)\,q(h_2 \mid h_1)` bottom-up, with few enough latent bits
(default 3 + 2) that :func:`pyro_dgm.infer.estimators.exact.enumerate_latents` sums them out exactly,
so an objective's value and gradient can be compared with the truth in a few lines (see
``docs/objectives/``). Parameters are random (fixed seed) so that no weight is symmetric
and every gradient is non-trivial. :func:`distinct_binary_data` makes a minibatch for it.

Example::

    >>> model = TinySBN()
    >>> x = distinct_binary_data()
    >>> x.shape
    torch.Size([3, 4])
"""

from __future__ import annotations

from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
from torch import nn

NUM_DATA_POINTS = 3
"""B distinct data points per minibatch, so per-data-point weights matter."""


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

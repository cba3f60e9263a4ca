"""Tiny models with smoothed binary latents, and their exact values by quadrature.

``TinySmoothedRBM``'s ground truth is :func:`pyro_dgm.infer.estimators.smoothed_exact.integrate_latents`
on the plain model/guide pair: enumeration over z, Gauss-Legendre quadrature over zeta,
with the exact log Z of the RBM.
"""

from __future__ import annotations

from functools import partial

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.distributions.smoothing_marks import smooths
from pyro_dgm.infer.estimators.smoothed_exact import (
    OVERLAPPING,
    SmoothedGroupSpec,
    integrate_latents,
    smoothed_grid,
)
from tests.infer.gradients import flat_gradient
from tests.infer.small_models import seeded_random_parameters

QUADRATURE_NODES = 6
"""Gauss-Legendre nodes per unit; at beta = 3 the ELBO is within 3e-9 of 12 nodes' value."""

QUADRATURE_TOLERANCE = 1e-7
"""Two quadratures of different integrands agree to their (measured < 1e-8) error."""

BETA = 3.0
"""Inverse temperature of the tiny models' smoothers: smooth enough for a coarse quadrature."""

TWO_SIDES = ((0, 1), (2, 3))
"""Groups = the RBM's two sides (DVAE++ Eq. 7 as printed)."""

MIXED_GROUPS = ((0, 2), (3,), (1,))
"""Three groups that mix the sides: exercises nu-mu, mu-nu and mu-mu couplings."""


class TinySmoothedRBM(nn.Module):
    """x (3 pixels) <- zeta (4 units) <- z ~ RBM(2 + 2), with a hierarchical guide over groups.

    Model: z ~ RBM; per group j, zeta_j ~ r(zeta_j | z_j) marked smooths("z", units_j);
    x ~ Bernoulli(logits = zeta W + c). Guide: per group, zeta_j from the marginal
    smoother with logits linear in (x, zeta_<j); then z ~ Bernoulli(nu).
    """

    def __init__(
        self,
        smoother=partial(OverlappingExponential, BETA),
        groups=TWO_SIDES,
        num_units1: int = 2,
        num_units2: int = 2,
        num_pixels: int = 3,
        seed: int = 1,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        randn = seeded_random_parameters(seed, dtype)
        self.smoother = smoother
        self.groups = [list(units) for units in groups]
        self.bias1, self.bias2 = randn(num_units1), randn(num_units2)
        self.weight = randn(num_units1, num_units2)
        self.decoder_weight = randn(num_units1 + num_units2, num_pixels)
        self.decoder_bias = randn(num_pixels)
        self.encoder_weights, self.encoder_biases = nn.ParameterList(), nn.ParameterList()
        context = num_pixels
        for units in self.groups:
            self.encoder_weights.append(randn(context, len(units)))
            self.encoder_biases.append(randn(len(units)))
            context += len(units)
        self.register_buffer("unit_order", torch.argsort(torch.tensor(sum(self.groups, []))))

    def specs(self) -> list[SmoothedGroupSpec]:
        return [SmoothedGroupSpec(f"zeta{j}", "z", units) for j, units in enumerate(self.groups)]

    def prior_parameters(self) -> list[nn.Parameter]:
        return [self.bias1, self.bias2, self.weight]

    def _by_unit(self, per_group: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(per_group, dim=-1)[..., self.unit_order]

    def model(self, x: torch.Tensor, num_data: int | None = None) -> None:
        pyro.module("tiny_smoothed_rbm", self)
        with pyro.plate("data", num_data or x.size(0), subsample_size=x.size(0)):
            z = pyro.sample("z", RBM(self.bias1, self.bias2, self.weight))
            zetas = []
            for j, units in enumerate(self.groups):
                smoothing = self.smoother(logits=x.new_zeros(len(units)))
                zetas.append(
                    pyro.sample(
                        f"zeta{j}",
                        smoothing.conditional(z[..., units]).to_event(1),
                        infer=smooths("z", units),
                    )
                )
            logits = self._by_unit(zetas) @ self.decoder_weight + self.decoder_bias
            pyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x)

    def guide(self, x: torch.Tensor, num_data: int | None = None) -> None:
        pyro.module("tiny_smoothed_rbm", self)
        with pyro.plate("data", num_data or x.size(0), subsample_size=x.size(0)):
            context, posterior_probs = x, []
            for j in range(len(self.groups)):
                logits = context @ self.encoder_weights[j] + self.encoder_biases[j]
                smoother = self.smoother(logits=logits)
                zeta = pyro.sample(f"zeta{j}", smoother.to_event(1))
                posterior_probs.append(smoother.posterior_probs(zeta))
                context = torch.cat(
                    [context.expand(zeta.shape[:-1] + context.shape[-1:]), zeta], -1
                )
            pyro.sample("z", dist.Bernoulli(probs=self._by_unit(posterior_probs)).to_event(1))


def tiny_data(num_points: int = 2) -> torch.Tensor:
    patterns = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return patterns[:num_points].to(torch.float64)


def exact_quadrature(tiny: TinySmoothedRBM, x: torch.Tensor, atoms=OVERLAPPING, num_data=None):
    grid = smoothed_grid({"z": 4}, tiny.specs(), atoms, QUADRATURE_NODES)
    return integrate_latents(tiny.model, tiny.guide, grid, x.size(0), x, num_data)


def exact_kl(quadrature) -> torch.Tensor:
    """KL(q(z, zeta | x) || p(z, zeta)) per data point: E_q[log q - (log p(x, h) - log p(x | h))]."""
    particles = quadrature.particles
    decoder = particles.model_trace.nodes["x"]["unscaled_log_prob"]
    return quadrature.expectation(particles.guide_log_prob - particles.model_log_prob + decoder)


def exact_loss_and_gradient(tiny, x, parameters=None, **kwargs):
    """-ELBO summed over x, by quadrature, and its gradient in ``parameters`` (default: all)."""
    parameters = list(tiny.parameters()) if parameters is None else parameters
    loss = -exact_quadrature(tiny, x, **kwargs).elbo().sum()
    return loss.detach(), flat_gradient(loss, parameters)

"""Directed factorial priors with smoothed binary latents: DVAE++ Eq. (4) and (5).

Generative model p(z1) r(zeta1 | z1) p(z2 | zeta1) r(zeta2 | z2) p(x | zeta1, zeta2),
inference model q(z1 | x) r(zeta1 | z1) q(z2 | x, zeta1) r(zeta2 | z2) (DVAE++ Fig. 2c-d).

* The *marginal* ELBO (Eq. 5) is the ELBO of the pair with z summed out of both
  programs (Fig. 2e-f): zeta1 ~ p(zeta1) = sum_z r(zeta1 | z) p(z), a smoother's
  marginal, and so on. Trace_ELBO of that plain pair *is* Eq. 5 (single-sample MC KL).
* The *joint* ELBO (Eq. 4) is the ELBO of the (z, zeta) pair; DVAEPlusPlusELBO
  computes its KL terms in closed form (Bernoulli KLs). TraceMeanField_ELBO cannot:
  the guide's z is drawn after zeta, from nu, and is not reparameterised.

Ground truth: enumeration over z and Gauss-Legendre quadrature over zeta.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO
from torch import nn

from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.smoothing_marks import smooths
from pyro_dgm.infer.estimators.smoothed_exact import (
    OVERLAPPING,
    SmoothedGroupSpec,
    at_grid_points,
    integrate_latents,
    smoothed_grid,
    unit_cube_grid,
)
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from tests.infer.gradients import flat_gradient
from tests.infer.monte_carlo_checks import (
    PARTICLES_PER_REPEAT,
    assert_unbiased,
    repeated_loss_and_gradient,
)
from tests.infer.small_models import seeded_random_parameters
from tests.infer.smoothed_models import (
    BETA,
    QUADRATURE_NODES,
    QUADRATURE_TOLERANCE,
    exact_kl,
    tiny_data,
)

NUM_UNITS = 2
"""Units per layer: 2 + 2 binary units, 16 configurations times 6^4 quadrature nodes."""


class TinyDirectedSmoothed(nn.Module):
    """x (3) <- (zeta1, zeta2); z2 | zeta1 <- z1: the joint pair and the marginal pair."""

    def __init__(self, seed: int = 4, num_pixels: int = 3, dtype=torch.float64) -> None:
        super().__init__()
        randn = seeded_random_parameters(seed, dtype)
        self.prior1_logits = randn(NUM_UNITS)
        self.prior2_weight, self.prior2_bias = randn(NUM_UNITS, NUM_UNITS), randn(NUM_UNITS)
        self.decoder_weight, self.decoder_bias = randn(2 * NUM_UNITS, num_pixels), randn(num_pixels)
        self.encoder1_weight, self.encoder1_bias = randn(num_pixels, NUM_UNITS), randn(NUM_UNITS)
        self.encoder2_weight = randn(num_pixels + NUM_UNITS, NUM_UNITS)
        self.encoder2_bias = randn(NUM_UNITS)

    def smoother(self, logits: torch.Tensor) -> OverlappingExponential:
        return OverlappingExponential(BETA, logits=logits)

    def _prior2_logits(self, zeta1: torch.Tensor) -> torch.Tensor:
        return zeta1 @ self.prior2_weight + self.prior2_bias

    def _decode(self, x: torch.Tensor, zeta1: torch.Tensor, zeta2: torch.Tensor) -> None:
        logits = torch.cat([zeta1, zeta2], -1) @ self.decoder_weight + self.decoder_bias
        pyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x)

    def _encode(self, x: torch.Tensor, zeta1: torch.Tensor | None = None) -> OverlappingExponential:
        if zeta1 is None:
            return self.smoother(x @ self.encoder1_weight + self.encoder1_bias)
        context = torch.cat([x.expand(zeta1.shape[:-1] + x.shape[-1:]), zeta1], -1)
        return self.smoother(context @ self.encoder2_weight + self.encoder2_bias)

    # Fig. 2c-d: the joint (z, zeta) pair -----------------------------------------------

    def joint_model(self, x: torch.Tensor) -> None:
        pyro.module("tiny_directed", self)
        with pyro.plate("data", x.size(0)):
            r = self.smoother(torch.zeros(NUM_UNITS, dtype=x.dtype))
            z1 = pyro.sample("z1", dist.Bernoulli(logits=self.prior1_logits).to_event(1))
            zeta1 = pyro.sample("zeta1", r.conditional(z1).to_event(1), infer=smooths("z1"))
            z2 = pyro.sample("z2", dist.Bernoulli(logits=self._prior2_logits(zeta1)).to_event(1))
            zeta2 = pyro.sample("zeta2", r.conditional(z2).to_event(1), infer=smooths("z2"))
            self._decode(x, zeta1, zeta2)

    def joint_guide(self, x: torch.Tensor) -> None:
        pyro.module("tiny_directed", self)
        with pyro.plate("data", x.size(0)):
            q1 = self._encode(x)
            zeta1 = pyro.sample("zeta1", q1.to_event(1))
            pyro.sample("z1", dist.Bernoulli(probs=q1.posterior_probs(zeta1)).to_event(1))
            q2 = self._encode(x, zeta1)
            zeta2 = pyro.sample("zeta2", q2.to_event(1))
            pyro.sample("z2", dist.Bernoulli(probs=q2.posterior_probs(zeta2)).to_event(1))

    # Fig. 2e-f: z summed out of both programs ------------------------------------------

    def marginal_model(self, x: torch.Tensor) -> None:
        pyro.module("tiny_directed", self)
        with pyro.plate("data", x.size(0)):
            zeta1 = pyro.sample("zeta1", self.smoother(self.prior1_logits).to_event(1))
            zeta2 = pyro.sample("zeta2", self.smoother(self._prior2_logits(zeta1)).to_event(1))
            self._decode(x, zeta1, zeta2)

    def marginal_guide(self, x: torch.Tensor) -> None:
        pyro.module("tiny_directed", self)
        with pyro.plate("data", x.size(0)):
            zeta1 = pyro.sample("zeta1", self._encode(x).to_event(1))
            pyro.sample("zeta2", self._encode(x, zeta1).to_event(1))

    # exact values ------------------------------------------------------------------------

    def joint_grid(self):
        specs = [
            SmoothedGroupSpec("zeta1", "z1", range(NUM_UNITS)),
            SmoothedGroupSpec("zeta2", "z2", range(NUM_UNITS)),
        ]
        return smoothed_grid(
            {"z1": NUM_UNITS, "z2": NUM_UNITS}, specs, OVERLAPPING, QUADRATURE_NODES
        )

    def joint_quadrature(self, x):
        return integrate_latents(
            self.joint_model, self.joint_guide, self.joint_grid(), x.size(0), x
        )

    def marginal_quadrature(self, x):
        grid = unit_cube_grid({"zeta1": NUM_UNITS, "zeta2": NUM_UNITS}, QUADRATURE_NODES)
        return integrate_latents(self.marginal_model, self.marginal_guide, grid, x.size(0), x)


def test_both_pairs_describe_the_same_generative_model():
    """Summing z out by hand (the marginal smoother) leaves log p(x) unchanged."""
    tiny, x = TinyDirectedSmoothed(), tiny_data()
    joint, marginal = tiny.joint_quadrature(x), tiny.marginal_quadrature(x)
    for quadrature in (joint, marginal):
        assert torch.allclose(
            quadrature.total_mass(), torch.ones(2, dtype=x.dtype), atol=QUADRATURE_TOLERANCE
        )
    assert torch.allclose(joint.log_evidence(), marginal.log_evidence(), atol=QUADRATURE_TOLERANCE)


def test_marginal_elbo_is_tighter_than_the_joint_elbo():
    """DVAE++ App. D: Eq. (5) >= Eq. (4), and both <= log p(x)."""
    tiny, x = TinyDirectedSmoothed(), tiny_data()
    joint, marginal = tiny.joint_quadrature(x), tiny.marginal_quadrature(x)
    assert (joint.elbo() < marginal.elbo()).all()
    assert (marginal.elbo() < marginal.log_evidence()).all()


def test_closed_form_bernoulli_kls_are_the_joint_kl():
    """E_zeta[KL(q(z1)||p(z1)) + KL(q(z2|zeta1)||p(z2|zeta1))] = KL(q(z, zeta)||p(z, zeta)) (Eq. 4)."""
    tiny, x = TinyDirectedSmoothed(), tiny_data()
    quadrature = tiny.joint_quadrature(x)
    expected = exact_kl(quadrature)
    grid = tiny.joint_grid()
    objective = DVAEPlusPlusELBO(
        num_particles=grid.num_points, max_plate_nesting=1, vectorize_particles=True
    )
    kls = objective.prior_kls(
        tiny.joint_model, at_grid_points(tiny.joint_guide, grid, x.size(0)), x
    )
    assert set(kls) == {"z1", "z2"}
    closed_form = quadrature.expectation(kls["z1"] + kls["z2"])
    assert (expected > 0.1).all()
    assert torch.allclose(closed_form, expected, atol=QUADRATURE_TOLERANCE)


def test_trace_elbo_of_the_marginal_pair_is_the_marginal_elbo():
    """Eq. (5) needs no new code: Trace_ELBO's value and gradient are unbiased for it."""
    tiny, x = TinyDirectedSmoothed(), tiny_data()
    objective = Trace_ELBO(num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True)
    exact = -tiny.marginal_quadrature(x).elbo().sum()
    parameters = list(tiny.parameters())
    losses, gradients = repeated_loss_and_gradient(
        objective, tiny.marginal_model, tiny.marginal_guide, x, parameters
    )
    assert_unbiased(losses.unsqueeze(-1), exact.detach())
    assert_unbiased(gradients, flat_gradient(exact, parameters))


def test_joint_elbo_estimator_is_unbiased_and_beats_trace_elbo():
    """DVAEPlusPlusELBO on the (z, zeta) pair: unbiased for Eq. (4), lower variance than Trace_ELBO."""
    tiny, x = TinyDirectedSmoothed(), tiny_data()
    exact = -tiny.joint_quadrature(x).elbo().sum()
    parameters = list(tiny.parameters())
    exact_gradient = flat_gradient(exact, parameters)
    closed_form = DVAEPlusPlusELBO(num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True)
    trace_elbo = Trace_ELBO(num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True)
    results = {}
    for name, objective in (("closed_form", closed_form), ("trace_elbo", trace_elbo)):
        losses, gradients = repeated_loss_and_gradient(
            objective, tiny.joint_model, tiny.joint_guide, x, parameters
        )
        assert_unbiased(losses.unsqueeze(-1), exact.detach())
        assert_unbiased(gradients, exact_gradient)
        results[name] = (losses.var(), gradients.var(0).sum())
    assert results["closed_form"][0] < results["trace_elbo"][0] / 2
    assert results["closed_form"][1] < results["trace_elbo"][1] / 2

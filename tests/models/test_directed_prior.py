"""Tests of the directed-prior models (DVAE++ Fig. 2c-f): densities, joint vs marginal ELBO."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.infer import Trace_ELBO

from pyro_dgm.infer.estimators.smoothed_exact import OVERLAPPING, SmoothedGroupSpec, integrate_latents, smoothed_grid, unit_cube_grid
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.models.directed_prior import DirectedDiscreteVAE, directed_layout
from pyro_dgm.models.dvae_guides import HierarchicalSmoothedGuide

BETA = 5.0
NUM_PIXELS = 3
LAYER_SIZES = (2, 2)
QUADRATURE_NODES = 6  # Gauss-Legendre nodes per unit: 16 x 6^4 grid points for the joint pair
QUADRATURE_TOLERANCE = 1e-6  # the two pairs' log p(x) agree to quadrature error
EXACT_FP64 = 1e-10
NUM_PARTICLES = 20_000
NUM_SE = 4


def tiny_pairs():
    """Joint and marginal models and guides with the same random parameters, float64."""
    joint = DirectedDiscreteVAE(NUM_PIXELS, LAYER_SIZES, elbo="joint", beta=BETA, name="joint").double()
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for parameter in joint.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    marginal = DirectedDiscreteVAE(NUM_PIXELS, LAYER_SIZES, elbo="marginal", beta=BETA, name="marginal").double()
    marginal.load_state_dict(joint.state_dict())
    joint_guide = HierarchicalSmoothedGuide(joint.layout, beta=BETA, name="joint_guide").double()
    with torch.no_grad():
        for parameter in joint_guide.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    marginal_guide = HierarchicalSmoothedGuide(marginal.layout, beta=BETA, name="marginal_guide").double()
    marginal_guide.load_state_dict(joint_guide.state_dict())
    return (joint, joint_guide), (marginal, marginal_guide)


def tiny_data() -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def exact_quadratures(x: torch.Tensor, pairs):
    (joint, joint_guide), (marginal, marginal_guide) = pairs
    specs = [SmoothedGroupSpec(f"zeta{l}", f"z{l}", range(size)) for l, size in enumerate(LAYER_SIZES, start=1)]
    joint_grid = smoothed_grid({"z1": 2, "z2": 2}, specs, OVERLAPPING, QUADRATURE_NODES)
    marginal_grid = unit_cube_grid({"zeta1": 2, "zeta2": 2}, QUADRATURE_NODES)
    return (
        integrate_latents(joint, joint_guide, joint_grid, x.size(0), x),
        integrate_latents(marginal, marginal_guide, marginal_grid, x.size(0), x),
    )


def log_r(zeta: torch.Tensor, z: float) -> torch.Tensor:
    """Overlapping exponential r(zeta | z) of DVAE++ Sec. 3, elementwise."""
    exponent = BETA * (zeta - 1) if z else -BETA * zeta
    return math.log(BETA) + exponent - math.log(1 - math.exp(-BETA))


def test_marginal_model_density_matches_hand_formula():
    """log p(zeta1) + log p(zeta2 | zeta1) with p(zeta | l) = (1 - sigma(l)) r(zeta|0) + sigma(l) r(zeta|1)."""
    _, (marginal, _) = tiny_pairs()
    x = tiny_data()
    zeta1 = torch.tensor([[0.1, 0.8], [0.5, 0.95]], dtype=torch.float64)
    zeta2 = torch.tensor([[0.3, 0.6], [0.02, 0.4]], dtype=torch.float64)
    model_trace = poutine.trace(poutine.condition(marginal, data={"zeta1": zeta1, "zeta2": zeta2})).get_trace(x)
    model_trace.compute_log_prob()

    def log_marginal(zeta, logits):
        return torch.logaddexp(F.logsigmoid(-logits) + log_r(zeta, 0), F.logsigmoid(logits) + log_r(zeta, 1)).sum(-1)

    (linear,) = marginal.conditional_priors[0].net
    expected1 = log_marginal(zeta1, marginal.top_prior.bias)
    expected2 = log_marginal(zeta2, zeta1 @ linear.weight.T + linear.bias)
    assert torch.allclose(model_trace.nodes["zeta1"]["log_prob"], expected1, atol=EXACT_FP64)
    assert torch.allclose(model_trace.nodes["zeta2"]["log_prob"], expected2, atol=EXACT_FP64)


def test_joint_and_marginal_pairs_have_the_same_evidence_and_ordered_elbos():
    """log p(x) agrees; exact Eq. (4) < Eq. (5) < log p(x) (DVAE++ App. D)."""
    x = tiny_data()
    joint, marginal = exact_quadratures(x, tiny_pairs())
    assert torch.allclose(joint.log_evidence(), marginal.log_evidence(), atol=QUADRATURE_TOLERANCE)
    assert (joint.elbo() < marginal.elbo()).all()
    assert (marginal.elbo() < marginal.log_evidence()).all()


def test_objectives_estimate_the_exact_joint_and_marginal_elbos():
    """DVAEPlusPlusELBO on the joint pair -> Eq. (4), Trace_ELBO on the marginal pair -> Eq. (5), within SE.

    Large-sample check that the marginal ELBO is larger in expectation, as the objectives see it.
    """
    x = tiny_data()
    pairs = tiny_pairs()
    exact_joint, exact_marginal = (quadrature.elbo().sum().item() for quadrature in exact_quadratures(x, pairs))
    (joint, joint_guide), (marginal, marginal_guide) = pairs
    estimates = {}
    for key, objective, model, guide in (
        ("joint", DVAEPlusPlusELBO(num_particles=NUM_PARTICLES, vectorize_particles=True), joint, joint_guide),
        ("marginal", Trace_ELBO(num_particles=NUM_PARTICLES, vectorize_particles=True), marginal, marginal_guide),
    ):
        with torch.no_grad():
            estimates[key] = -objective.loss(model, guide, x)
    # the standard error of one large-sample value, from the SD of single-particle estimates
    joint_sd, marginal_sd = _per_particle_sd(joint, joint_guide, x, DVAEPlusPlusELBO), _per_particle_sd(
        marginal, marginal_guide, x, Trace_ELBO
    )
    assert abs(estimates["joint"] - exact_joint) < NUM_SE * joint_sd / math.sqrt(NUM_PARTICLES)
    assert abs(estimates["marginal"] - exact_marginal) < NUM_SE * marginal_sd / math.sqrt(NUM_PARTICLES)
    assert estimates["marginal"] > estimates["joint"]


def _per_particle_sd(model, guide, x, objective_class, repeats: int = 200) -> float:
    """Standard deviation of the single-particle ELBO estimate."""
    objective = objective_class()
    values = torch.tensor([objective.loss(model, guide, x) for _ in range(repeats)])
    return values.std().item()


def test_layout_names_sites_and_rejects_unknown_elbo():
    assert directed_layout(NUM_PIXELS, (3, 2)).binary_sites == {"z1": [0], "z2": [1]}
    assert directed_layout(NUM_PIXELS, (3,), elbo="marginal").binary_sites == {}
    with pytest.raises(ValueError, match="elbo must be one of"):
        directed_layout(NUM_PIXELS, (3,), elbo="both")
    with pytest.raises(ValueError, match="log_partition"):
        DirectedDiscreteVAE(NUM_PIXELS, (3,))(torch.zeros(2, NUM_PIXELS), log_partition=0.0)

"""DVAEPlusPlusELBO against exact values: enumeration over z, Gauss-Legendre quadrature over zeta.

The ground truth is :func:`pyro_dgm.infer.smoothed_exact.integrate_latents` on the plain
model/guide pair (the definition of the ELBO and of KL(q(z, zeta | x) || p(z, zeta)),
with the exact log Z of the RBM). Statistical checks use R independent repetitions of
the estimator and a tolerance of NUM_STANDARD_ERRORS standard errors of their mean.
"""

from __future__ import annotations

import math
import re
import warnings
from functools import partial
from itertools import combinations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from torch import nn

from pyro_dgm.distributions.binary_limit import BinaryLimit
from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.distributions.spike_and_exponential import SpikeAndExponential
from pyro_dgm.infer.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.infer.exact import all_binary_configurations
from pyro_dgm.infer.log_likelihood import log_likelihood
from pyro_dgm.infer.smoothed_exact import (
    BINARY_LIMIT,
    OVERLAPPING,
    SmoothedGroupSpec,
    at_grid_points,
    integrate_latents,
    smoothed_grid,
)
from pyro_dgm.distributions.smoothing_marks import smooths

NUM_STANDARD_ERRORS = 4.0
"""|mean - exact| < 4 SE: a false alarm per compared number has probability 6e-5."""

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
        generator = torch.Generator().manual_seed(seed)

        def randn(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator, dtype=dtype))

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


def gradients(loss: torch.Tensor, parameters) -> list[torch.Tensor]:
    """d loss / d parameters, zeros for parameters the loss does not depend on."""
    grads = torch.autograd.grad(loss, parameters, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(parameters, grads)]


def flat_gradient(loss: torch.Tensor, parameters) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in gradients(loss, parameters)])


def repeated(estimate, num_repeats: int) -> torch.Tensor:
    """Stack num_repeats independent draws of a (tensor-valued) estimator."""
    return torch.stack(
        [torch.as_tensor(estimate()).detach().reshape(-1) for _ in range(num_repeats)]
    )


ROUNDING_TOLERANCE = 1e-9
"""Components with no sampling noise (e.g. a bias gradient fixed by x) must match to rounding."""


def assert_unbiased(draws: torch.Tensor, exact: torch.Tensor) -> None:
    """|mean - exact| < 4 SE componentwise, SE = sd / sqrt(R) of the R independent draws."""
    mean = draws.mean(0)
    standard_error = draws.std(0) / math.sqrt(draws.size(0))
    deviation = (mean - exact.reshape(-1)).abs()
    assert (
        deviation < NUM_STANDARD_ERRORS * standard_error + ROUNDING_TOLERANCE
    ).all(), f"deviation / SE = {(deviation / standard_error).tolist()}"


# ----- the closed-form KL (Eq. 6-7) is the KL --------------------------------------------


def _closed_form_and_exact_kl(tiny: TinySmoothedRBM, x: torch.Tensor):
    """(E_q[Eq. 7], KL by definition, quadrature mass) per data point, differentiable."""
    quadrature = exact_quadrature(tiny, x)
    grid = smoothed_grid({"z": 4}, tiny.specs(), OVERLAPPING, QUADRATURE_NODES)
    objective = DVAEPlusPlusELBO(
        num_particles=grid.num_points,
        max_plate_nesting=1,
        vectorize_particles=True,
        log_partition_gradient="exact",
    )
    guide_at_grid = at_grid_points(tiny.guide, grid, x.size(0))
    closed_form = objective.prior_kls(tiny.model, guide_at_grid, x)["z"]  # (K, B)
    return quadrature.expectation(closed_form), exact_kl(quadrature), quadrature.total_mass()


@pytest.mark.parametrize("groups", [TWO_SIDES, MIXED_GROUPS], ids=["two_sides", "mixed"])
def test_closed_form_kl_equals_enumerated_kl(groups):
    """E over zeta of Eq. 7 (by quadrature) equals KL(q(z, zeta) || p(z, zeta)) by its definition."""
    tiny, x = TinySmoothedRBM(groups=groups), tiny_data()
    closed_form, expected, mass = _closed_form_and_exact_kl(tiny, x)
    assert torch.allclose(mass, torch.ones_like(mass), atol=QUADRATURE_TOLERANCE)
    assert (expected > 0.1).all()  # a non-trivial KL
    assert torch.allclose(closed_form, expected, atol=QUADRATURE_TOLERANCE)


FINITE_DIFFERENCE_STEP = 1e-5
"""Central differences in float64: truncation ~1e-10, rounding ~1e-16 / 1e-5 = 1e-11."""


def test_closed_form_kl_gradient_matches_finite_differences():
    """Autodiff of E_q[Eq. 7] (exact log Z) = central differences of the KL by definition."""
    tiny, x = TinySmoothedRBM(groups=MIXED_GROUPS), tiny_data()
    parameters = list(tiny.parameters())
    closed_form = _closed_form_and_exact_kl(tiny, x)[0].sum()
    gradient = gradients(closed_form, parameters)
    generator = torch.Generator().manual_seed(3)
    for subset in (tiny.prior_parameters(), parameters):  # the prior alone, then everything
        direction = [
            (
                torch.randn(p.shape, generator=generator, dtype=p.dtype)
                if any(p is q for q in subset)
                else torch.zeros_like(p)
            )
            for p in parameters
        ]
        directional = sum((g * d).sum() for g, d in zip(gradient, direction))
        values = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, d in zip(parameters, direction):
                    p.add_(sign * FINITE_DIFFERENCE_STEP * d)
            values.append(_closed_form_and_exact_kl(tiny, x)[1].sum().detach())
            with torch.no_grad():
                for p, d in zip(parameters, direction):
                    p.sub_(sign * FINITE_DIFFERENCE_STEP * d)
        finite_difference = (values[0] - values[1]) / (2 * FINITE_DIFFERENCE_STEP)
        assert abs(directional.item()) > 0.1
        assert abs(directional.item() - finite_difference.item()) < 1e-6


# ----- the estimator: unbiased value and gradient, lower variance than Trace_ELBO ---------

NUM_REPEATS = 40
"""Independent repetitions of an estimator for its mean and standard error (SE within ~11%)."""

PARTICLES_PER_REPEAT = 250
"""Vectorised particles per repetition: cheap, unlike the per-call tracing overhead."""


def _estimates(objective, model, guide, x, parameters, num_repeats=NUM_REPEATS, **kwargs):
    """(losses (R,), gradients (R, P)) of R independent evaluations of the objective."""
    losses, gradients = [], []
    for _ in range(num_repeats):
        loss = objective.differentiable_loss(model, guide, x, **kwargs)
        losses.append(loss.detach())
        gradients.append(flat_gradient(loss, parameters))
    return torch.stack(losses), torch.stack(gradients)


def _exact_loss_and_gradient(tiny, x, parameters=None, **kwargs):
    parameters = list(tiny.parameters()) if parameters is None else parameters
    loss = -exact_quadrature(tiny, x, **kwargs).elbo().sum()
    return loss.detach(), flat_gradient(loss, parameters)


@pytest.mark.parametrize("groups", [TWO_SIDES, MIXED_GROUPS], ids=["two_sides", "mixed"])
def test_dvae_pp_value_and_gradient_are_unbiased(groups):
    """Mean of loss and reparameterised gradient (exact log Z) within 4 SE of the exact ones."""
    tiny, x = TinySmoothedRBM(groups=groups), tiny_data()
    objective = DVAEPlusPlusELBO(
        num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True, log_partition_gradient="exact"
    )
    losses, gradients = _estimates(objective, tiny.model, tiny.guide, x, list(tiny.parameters()))
    exact_loss, exact_gradient = _exact_loss_and_gradient(tiny, x)
    assert_unbiased(losses.unsqueeze(-1), exact_loss)
    assert_unbiased(gradients, exact_gradient)


def test_trace_elbo_on_the_same_pair_is_unbiased_but_noisier():
    """The pair is a plain Pyro program: Trace_ELBO is unbiased too, with far higher variance."""
    tiny, x = TinySmoothedRBM(), tiny_data()
    exact_loss, exact_gradient = _exact_loss_and_gradient(tiny, x)
    dvae_pp = DVAEPlusPlusELBO(
        num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True, log_partition_gradient="exact"
    )
    trace_elbo = Trace_ELBO(num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True)
    dvae_pp_losses, dvae_pp_gradients = _estimates(
        dvae_pp, tiny.model, tiny.guide, x, list(tiny.parameters())
    )
    trace_losses, trace_gradients = _estimates(
        trace_elbo, tiny.model, tiny.guide, x, list(tiny.parameters())
    )
    assert_unbiased(trace_losses.unsqueeze(-1), exact_loss)
    assert_unbiased(trace_gradients, exact_gradient)
    assert dvae_pp_losses.var() < trace_losses.var() / 2
    assert dvae_pp_gradients.var(0).sum() < trace_gradients.var(0).sum() / 2


PCD_STEPS = 100
PCD_SWEEPS = 5
"""Sweeps per step: on this RBM the SE from batch means of 1, 5, 20 and 100 steps agree
within 3% (measured over 2000 steps), i.e. successive steps are uncorrelated draws."""


def test_persistent_chain_log_partition_gradient_is_unbiased():
    """With PCD for grad log Z the prior's gradient has mean = the exact gradient (within 4 SE)."""
    tiny, x = TinySmoothedRBM(), tiny_data()
    objective = DVAEPlusPlusELBO(
        num_particles=20, vectorize_particles=True, num_chains=200, num_sweeps=PCD_SWEEPS
    )
    prior = tiny.prior_parameters()
    _estimates(objective, tiny.model, tiny.guide, x, prior, num_repeats=5)  # burn in the chains
    assert objective.chains["z"].num_chains == 200
    _, gradients = _estimates(objective, tiny.model, tiny.guide, x, prior, num_repeats=PCD_STEPS)
    _, exact_gradient = _exact_loss_and_gradient(tiny, x, parameters=prior)
    assert objective.log_partition_source == {"z": "exact"}
    assert_unbiased(gradients, exact_gradient)


def test_subsampled_loss_and_gradient_estimate_the_full_data_ones():
    """Random minibatches of 2 of 4 points, plate scale 4/2: unbiased for the full-data ELBO."""
    tiny, x = TinySmoothedRBM(), tiny_data(num_points=4)
    objective = DVAEPlusPlusELBO(
        num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True, log_partition_gradient="exact"
    )
    pairs = list(combinations(range(4), 2))
    losses, gradients = [], []
    for repeat in range(len(pairs) * (NUM_REPEATS // len(pairs) + 1)):  # every pair equally often
        batch = x[list(pairs[repeat % len(pairs)])]
        loss = objective.differentiable_loss(tiny.model, tiny.guide, batch, num_data=4)
        losses.append(loss.detach())
        gradients.append(flat_gradient(loss, list(tiny.parameters())))
    exact_loss, exact_gradient = _exact_loss_and_gradient(tiny, x)
    assert_unbiased(torch.stack(losses).unsqueeze(-1), exact_loss)
    assert_unbiased(torch.stack(gradients), exact_gradient)


# ----- marking: a guide that does not fit the marked prior is an error naming the site -----


def _small_pair(
    marks=(("zeta0", [0, 1]), ("zeta1", [2, 3])),
    guide_sites=(("zeta0", 2), ("zeta1", 2)),
    model_smoother=partial(OverlappingExponential, BETA),
    guide_smoother=partial(OverlappingExponential, BETA),
    prior_site="z",
    flat_guide_sites=(),
    unmarked=(),
    discrete_site_first=False,
):
    """A fixed 2 + 2 RBM pair whose marks and guide sites can be made not to fit."""
    zeros = torch.zeros(2, dtype=torch.float64)

    def model(x):
        with pyro.plate("data", x.size(0)):
            if discrete_site_first:
                pyro.sample("c", dist.Bernoulli(torch.tensor(0.5, dtype=torch.float64)))
            z = pyro.sample("z", RBM(zeros, zeros, torch.zeros(2, 2, dtype=torch.float64)))
            total = 0.0
            for name, units in marks:
                smoothing = model_smoother(logits=torch.zeros(len(units), dtype=torch.float64))
                mark = {} if name in unmarked else smooths(prior_site, units)
                zeta = pyro.sample(
                    name, smoothing.conditional(z[..., units]).to_event(1), infer=mark
                )
                total = total + zeta.sum(-1)
            pyro.sample("x", dist.Bernoulli(logits=total), obs=x[..., 0])

    def guide(x):
        with pyro.plate("data", x.size(0)):
            if discrete_site_first:
                pyro.sample("c", dist.Bernoulli(torch.tensor(0.5, dtype=torch.float64)))
            posterior_probs = []
            for name, size in guide_sites:
                smoother = guide_smoother(logits=torch.zeros(x.size(0), size, dtype=torch.float64))
                zeta = pyro.sample(
                    name, smoother if name in flat_guide_sites else smoother.to_event(1)
                )
                posterior_probs.append(smoother.posterior_probs(zeta))
            probs = torch.cat(posterior_probs, -1)[
                ..., :4
            ]  # the RBM's 4 units, whatever the groups
            pyro.sample("z", dist.Bernoulli(probs=probs).to_event(1))

    return model, guide


def _uniform_guide_site(x):
    with pyro.plate("data", x.size(0)):
        pyro.sample("zeta0", dist.Uniform(0.0, 1.0).expand([x.size(0), 2]).to_event(1))
        pyro.sample(
            "zeta1", OverlappingExponential(BETA, logits=torch.zeros(x.size(0), 2)).to_event(1)
        )
        pyro.sample("z", dist.Bernoulli(probs=0.5 * torch.ones(x.size(0), 4)).to_event(1))


MISMATCHES = {
    "guide_lacks_binary_site": (dict(), ["z"], "'z'"),
    "prior_site_unknown": (dict(prior_site="h"), [], "'zeta0' is marked as smoothing 'h'"),
    "unit_smoothed_twice": (
        dict(
            marks=(("zeta0", [0, 1]), ("zeta1", [1, 2, 3])),
            guide_sites=(("zeta0", 2), ("zeta1", 3)),
        ),
        [],
        "unit 1 of site 'z' is smoothed by both 'zeta0' and 'zeta1'",
    ),
    "unit_not_smoothed": (
        dict(unmarked=("zeta1",)),
        [],
        "units [2, 3] of site 'z' are smoothed by no site",
    ),
    "group_size": (
        dict(flat_guide_sites=("zeta0",)),
        [],
        "site 'zeta0'",  # Pyro's check_model_guide_match, or ours without validation
    ),
    "smoothing_family": (
        dict(model_smoother=partial(SpikeAndExponential, BETA)),
        [],
        "site 'zeta0' smooths with SpikeAndExponential in the model but OverlappingExponential",
    ),
    "smoothing_beta": (
        dict(model_smoother=partial(OverlappingExponential, 2 * BETA)),
        [],
        "site 'zeta0': the smoothing parameter beta differs",
    ),
}


@pytest.mark.filterwarnings("ignore:Found vars in model but not guide")  # Pyro's, before ours
@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_mismatched_guide_is_an_error_naming_the_site(case):
    options, hidden, message = MISMATCHES[case]
    model, guide = _small_pair(**options)
    x = tiny_data()
    with pytest.raises(ValueError, match=re.escape(message)):
        DVAEPlusPlusELBO().loss(model, poutine.block(guide, hide=hidden), x)


def test_discrete_guide_site_before_the_smoothed_ones_is_an_error_naming_it():
    """The closed-form KL would need a score-function term for it."""
    model, guide = _small_pair(discrete_site_first=True)
    with pytest.raises(NotImplementedError, match="guide site 'c' is not reparameterised"):
        DVAEPlusPlusELBO().differentiable_loss(model, guide, tiny_data())


def test_guide_site_that_is_not_a_smoother_is_an_error_naming_it():
    model, _ = _small_pair()
    with pytest.raises(ValueError, match="guide site 'zeta0' must sample the marginal smoother"):
        DVAEPlusPlusELBO().loss(model, _uniform_guide_site, tiny_data())


# ----- training, the binary limit, and RBMs too large to enumerate -------------------------

TRAINING_STEPS = 30
LEARNING_RATE = 0.05
ELBO_GAIN = 3.0
"""Nats the exact ELBO of 4 points must gain; measured: 8.0 (DVAE++), 7.2 (Trace_ELBO) at 20 steps."""


@pytest.mark.parametrize(
    "loss",
    [
        pytest.param(
            lambda: DVAEPlusPlusELBO(num_particles=10, vectorize_particles=True, num_sweeps=5),
            id="dvae_pp",
        ),
        pytest.param(
            lambda: Trace_ELBO(num_particles=10, vectorize_particles=True), id="trace_elbo"
        ),
    ],
)
def test_svi_improves_the_exact_elbo(loss):
    """Both objectives train the same smoothed pair: the exact ELBO (quadrature) goes up."""
    tiny, x = TinySmoothedRBM(), tiny_data(num_points=4)
    before = exact_quadrature(tiny, x).elbo().sum().item()
    svi = SVI(tiny.model, tiny.guide, pyro.optim.Adam({"lr": LEARNING_RATE}), loss())
    for _ in range(TRAINING_STEPS):
        svi.step(x)
    after = exact_quadrature(tiny, x).elbo().sum().item()
    assert after > before + ELBO_GAIN, (before, after)


@pytest.mark.cuda
def test_dvae_pp_trains_on_cuda():
    """Chains, group indices and the closed-form KL follow the parameters' device."""
    device = torch.device("cuda")
    tiny, x = TinySmoothedRBM().to(device), tiny_data().to(device)
    objective = DVAEPlusPlusELBO(num_particles=10, vectorize_particles=True, num_sweeps=5)
    svi = SVI(tiny.model, tiny.guide, pyro.optim.Adam({"lr": LEARNING_RATE}), objective)
    losses = [svi.step(x) for _ in range(3)]
    assert all(math.isfinite(loss) for loss in losses)
    assert objective.chains["z"].chains.device.type == "cuda"
    assert all(p.grad is None or p.grad.device.type == "cuda" for p in tiny.parameters())


def discrete_log_evidence(tiny: TinySmoothedRBM, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log sum_z p(z) p(x | zeta = z) of the binary-limit model, by hand."""
    z = all_binary_configurations(4, dtype=x.dtype)
    log_prior = RBM(tiny.bias1, tiny.bias2, tiny.weight).log_prob(z)  # (16,)
    decoder = dist.Bernoulli(logits=z @ tiny.decoder_weight + tiny.decoder_bias).to_event(1)
    return (log_prior.unsqueeze(-1) + decoder.log_prob(x.unsqueeze(1)).T).logsumexp(0)


def test_binary_limit_is_the_discrete_model():
    """BinaryLimit (zeta = z) turns the pair into the discrete model: exact log p(x) and ELBO."""
    tiny, x = TinySmoothedRBM(smoother=BinaryLimit), tiny_data()
    quadrature = exact_quadrature(tiny, x, atoms=BINARY_LIMIT)
    exact = discrete_log_evidence(tiny, x)
    assert torch.allclose(quadrature.log_evidence(), exact, atol=1e-12)
    estimate = log_likelihood(tiny.model, tiny.guide, x, num_samples=20_000, keep_log_weights=True)
    weights = (estimate.log_weights - estimate.log_weights.max(0).values).exp()
    relative_error = (
        weights.std(0) / weights.mean(0) / math.sqrt(weights.size(0))
    )  # SE of log p-hat
    deviation = (estimate.log_likelihood - exact).abs()
    assert (deviation < NUM_STANDARD_ERRORS * relative_error).all()
    objective = DVAEPlusPlusELBO(num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True)
    losses = repeated(lambda: objective.loss(tiny.model, tiny.guide, x), NUM_REPEATS)
    assert_unbiased(losses, -quadrature.elbo().sum().detach())


def _wide_rbm_pair(log_partition=None, num_units=21):
    """A 21 + 21 RBM (2^21 states on the smaller side: not enumerated), one group."""
    zeros = torch.zeros(num_units, dtype=torch.float64)
    weight = torch.full((num_units, num_units), 0.01, dtype=torch.float64, requires_grad=True)

    def model(x):
        with pyro.plate("data", x.size(0)):
            z = pyro.sample("z", RBM(zeros, zeros, weight, log_partition=log_partition))
            smoothing = OverlappingExponential(
                BETA, logits=torch.zeros(2 * num_units, dtype=torch.float64)
            )
            zeta = pyro.sample("zeta", smoothing.conditional(z).to_event(1), infer=smooths("z"))
            pyro.sample("x", dist.Bernoulli(logits=zeta.mean(-1)), obs=x[..., 0])

    def guide(x):
        with pyro.plate("data", x.size(0)):
            smoother = OverlappingExponential(
                BETA, logits=torch.zeros(x.size(0), 2 * num_units, dtype=torch.float64)
            )
            zeta = pyro.sample("zeta", smoother.to_event(1))
            pyro.sample("z", dist.Bernoulli(probs=smoother.posterior_probs(zeta)).to_event(1))

    return model, guide, weight


SUPPLIED_LOG_PARTITION = 30.0


def test_log_z_of_a_large_rbm_is_omitted_from_the_value_with_one_warning():
    x = tiny_data()
    model, guide, weight = _wide_rbm_pair()
    objective = DVAEPlusPlusELBO(num_chains=10, num_sweeps=1)
    with pytest.warns(UserWarning, match="site 'z' has 21 \\+ 21 units.*omits log Z"):
        pyro.set_rng_seed(5)
        omitted = objective.differentiable_loss(model, guide, x)
    assert objective.log_partition_source == {"z": "omitted"}
    omitted.backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per site
        objective.loss(model, guide, x)
    model, guide, _ = _wide_rbm_pair(log_partition=SUPPLIED_LOG_PARTITION)
    pyro.set_rng_seed(5)
    supplied = objective.differentiable_loss(model, guide, x)
    assert objective.log_partition_source == {"z": "supplied"}
    assert torch.allclose(
        supplied - omitted, torch.tensor(x.size(0) * SUPPLIED_LOG_PARTITION, dtype=x.dtype)
    )
    with pytest.raises(ValueError, match="needs the exact log Z of the RBM at site 'z'"):
        DVAEPlusPlusELBO(log_partition_gradient="exact").loss(model, guide, x)

"""DVAEPlusPlusELBO against exact values: enumeration over z, Gauss-Legendre quadrature over zeta.

The ground truth is :func:`pyro_dgm.infer.estimators.smoothed_exact.integrate_latents` on the plain
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

from pyro_dgm.distributions.binary_limit import BinaryLimit
from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.distributions.smoothing_marks import smooths
from pyro_dgm.distributions.spike_and_exponential import SpikeAndExponential
from pyro_dgm.infer.estimators.exact import all_binary_configurations
from pyro_dgm.infer.estimators.log_likelihood import log_likelihood
from pyro_dgm.infer.estimators.smoothed_exact import BINARY_LIMIT, OVERLAPPING, at_grid_points, smoothed_grid
from pyro_dgm.infer.objectives.dvae import DVAEELBO
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from tests.infer.gradients import flat_gradient, gradients
from tests.infer.monte_carlo_checks import (
    NUM_REPEATS,
    NUM_STANDARD_ERRORS,
    PARTICLES_PER_REPEAT,
    assert_unbiased,
    repeated,
    repeated_loss_and_gradient,
)
from tests.infer.smoothed_models import (
    BETA,
    MIXED_GROUPS,
    QUADRATURE_NODES,
    QUADRATURE_TOLERANCE,
    TWO_SIDES,
    TinySmoothedRBM,
    exact_kl,
    exact_loss_and_gradient,
    exact_quadrature,
    tiny_data,
)

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


@pytest.mark.parametrize("groups", [TWO_SIDES, MIXED_GROUPS], ids=["two_sides", "mixed"])
def test_dvae_pp_value_and_gradient_are_unbiased(groups):
    """Mean of loss and reparameterised gradient (exact log Z) within 4 SE of the exact ones."""
    tiny, x = TinySmoothedRBM(groups=groups), tiny_data()
    objective = DVAEPlusPlusELBO(
        num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True, log_partition_gradient="exact"
    )
    losses, gradients = repeated_loss_and_gradient(
        objective, tiny.model, tiny.guide, x, list(tiny.parameters())
    )
    exact_loss, exact_gradient = exact_loss_and_gradient(tiny, x)
    assert_unbiased(losses.unsqueeze(-1), exact_loss)
    assert_unbiased(gradients, exact_gradient)


def test_trace_elbo_on_the_same_pair_is_unbiased_but_noisier():
    """The pair is a plain Pyro program: Trace_ELBO is unbiased too, with far higher variance."""
    tiny, x = TinySmoothedRBM(), tiny_data()
    exact_loss, exact_gradient = exact_loss_and_gradient(tiny, x)
    dvae_pp = DVAEPlusPlusELBO(
        num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True, log_partition_gradient="exact"
    )
    trace_elbo = Trace_ELBO(num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True)
    dvae_pp_losses, dvae_pp_gradients = repeated_loss_and_gradient(
        dvae_pp, tiny.model, tiny.guide, x, list(tiny.parameters())
    )
    trace_losses, trace_gradients = repeated_loss_and_gradient(
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
        num_particles=20, vectorize_particles=True, num_chains=200, num_sweeps=PCD_SWEEPS,
        log_partition_gradient="persistent",
    )
    prior = tiny.prior_parameters()
    # burn in the chains
    repeated_loss_and_gradient(objective, tiny.model, tiny.guide, x, prior, num_repeats=5)
    assert objective.chains["z"].num_chains == 200
    _, gradients = repeated_loss_and_gradient(
        objective, tiny.model, tiny.guide, x, prior, num_repeats=PCD_STEPS
    )
    _, exact_gradient = exact_loss_and_gradient(tiny, x, parameters=prior)
    assert objective.log_partition_source == {"z": "exact"}
    assert_unbiased(gradients, exact_gradient)


def test_default_uses_the_exact_log_partition_gradient_and_runs_no_chains():
    """Enumerable RBM, no estimate supplied: "auto" is "exact" (same loss and gradient, no chain built)."""
    tiny, x = TinySmoothedRBM(), tiny_data()
    parameters = list(tiny.parameters())
    results = {}
    for mode in ("auto", "exact"):
        objective = DVAEPlusPlusELBO(
            num_particles=PARTICLES_PER_REPEAT, vectorize_particles=True, log_partition_gradient=mode
        )
        pyro.set_rng_seed(3)
        loss = objective.differentiable_loss(tiny.model, tiny.guide, x)
        results[mode] = (loss.detach(), flat_gradient(loss, parameters))
        assert objective.chains == {} and objective.log_partition_source == {"z": "exact"}
    torch.testing.assert_close(results["auto"], results["exact"], rtol=0, atol=0)


def test_default_falls_back_to_chains_when_log_z_is_not_enumerated():
    """A supplied estimate (or a large RBM) has no exact gradient: "auto" runs the chains."""
    x = tiny_data()
    model, guide, weight = _wide_rbm_pair(log_partition=SUPPLIED_LOG_PARTITION)
    objective = DVAEPlusPlusELBO(num_chains=10, num_sweeps=1)
    objective.differentiable_loss(model, guide, x).backward()
    assert objective.log_partition_source == {"z": "supplied"}
    assert objective.chains["z"].num_chains == 10
    assert weight.grad is not None and torch.isfinite(weight.grad).all()


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
    exact_loss, exact_gradient = exact_loss_and_gradient(tiny, x)
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
    objective = DVAEPlusPlusELBO(
        num_particles=10, vectorize_particles=True, num_sweeps=5, log_partition_gradient="persistent"
    )
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


@pytest.mark.parametrize("objective", [DVAEPlusPlusELBO, DVAEELBO])
@pytest.mark.parametrize("num_particles", [-3, 0, 2.5, True])
def test_num_particles_must_be_a_positive_int(objective, num_particles):
    # -3 and 0 used to train as a silent no-op (no particle: loss 0, no gradient)
    with pytest.raises(ValueError, match=re.escape(f"num_particles must be a positive int, got {num_particles!r}")):
        objective(num_particles=num_particles)


def test_guide_drawing_the_binary_site_before_its_zeta_sites_is_an_error():
    model, _ = _small_pair()

    def binary_site_first(x):
        with pyro.plate("data", x.size(0)):
            pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(x.size(0), 4, dtype=torch.float64)).to_event(1))
            for name in ("zeta0", "zeta1"):
                smoother = OverlappingExponential(BETA, logits=torch.zeros(x.size(0), 2, dtype=torch.float64))
                pyro.sample(name, smoother.to_event(1))

    with pytest.raises(ValueError, match=re.escape("guide site 'z' is sampled before ['zeta0', 'zeta1']")):
        DVAEPlusPlusELBO().loss(model, binary_site_first, tiny_data())

"""DVAE# and GumBolt models: every relaxation trains with its objective, evaluates in the binary limit, samples."""

import math

import pyro
import pytest
import torch
from pyro.infer import SVI
from pyro.optim import Adam

from pyro_dgm.distributions import GaussianIntegralRelaxedRBM, GumBoltPosterior, GumBoltPrior, OverlappingRelaxedRBM, RBM
from pyro_dgm.infer import DVAESharpELBO, GumBoltELBO, log_likelihood
from pyro_dgm.models.dvae import PRIOR_SITE
from pyro_dgm.models.dvae_base import binary_limit_pair, sample_images
from pyro_dgm.models.dvae_sharp import RELAXATIONS, RelaxedBoltzmannVAE, build_dvae_sharp, build_gumbolt

NUM_PIXELS = 6
BATCH = 5
PRIORS = {"overlapping": OverlappingRelaxedRBM, "gaussian_integral": GaussianIntegralRelaxedRBM, "gumbolt": GumBoltPrior}


def build(relaxation, guide="hierarchical", **kwargs):
    pyro.clear_param_store()
    torch.manual_seed(0)
    return build_dvae_sharp(NUM_PIXELS, 2, 3, relaxation=relaxation, guide=guide, **kwargs)


def data():
    return torch.bernoulli(torch.full((BATCH, NUM_PIXELS), 0.5))


@pytest.mark.parametrize("relaxation", RELAXATIONS)
@pytest.mark.parametrize("guide", ["hierarchical", "factorial"])
def test_every_relaxation_trains_and_evaluates(relaxation, guide):
    model, guide_module = build(relaxation, guide)
    objective = (GumBoltELBO if relaxation == "gumbolt" else DVAESharpELBO)(num_particles=3, num_chains=4, num_sweeps=2)
    svi = SVI(model, guide_module, Adam({"lr": 1e-2}), objective)
    x = data()
    losses = [svi.step(x, num_data=50, kl_weight=0.5) for _ in range(3)]
    assert all(math.isfinite(loss) for loss in losses)
    model_fn, guide_fn = binary_limit_pair(model, guide_module)
    estimate = log_likelihood(model_fn, guide_fn, x, num_samples=8)
    assert estimate.log_likelihood.shape == (BATCH,) and bool(torch.isfinite(estimate.log_likelihood).all())
    assert sample_images(model, 4).shape == (4, NUM_PIXELS)
    assert sample_images(model, 4, binary_limit=False).shape == (4, NUM_PIXELS)


@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_the_prior_site_holds_zeta_and_the_guide_assembles_it(relaxation):
    model, guide = build(relaxation)
    x = data()
    guide_trace = pyro.poutine.trace(guide).get_trace(x)
    model_trace = pyro.poutine.trace(pyro.poutine.replay(model, trace=guide_trace)).get_trace(x)
    prior = model_trace.nodes[PRIOR_SITE]["fn"]
    assert isinstance(prior, PRIORS[relaxation])
    groups = [guide_trace.nodes[group.site]["value"] for group in model.layout.groups]
    assert torch.equal(guide_trace.nodes[PRIOR_SITE]["value"], torch.cat(groups, -1))
    assert guide.smoothing is model.smoothing
    if relaxation == "gumbolt":
        assert isinstance(guide_trace.nodes["zeta1"]["fn"].base_dist, GumBoltPosterior)
    binary = pyro.poutine.trace(binary_limit_pair(model, guide)[0]).get_trace(x)
    assert isinstance(binary.nodes[PRIOR_SITE]["fn"], RBM)


def test_defaults_follow_dvae_sharp_and_errors_name_the_argument():
    model, _ = build("overlapping")
    assert (model.smoothing.name, model.smoothing.beta) == ("power", 40.0)
    assert build("overlapping", smoother="uniform_exponential")[0].smoothing.beta == 40.0
    gumbolt, _ = build_gumbolt(NUM_PIXELS, 2, 2, beta=4.0)
    assert gumbolt.smoothing.beta == 4.0 and gumbolt.relaxation == "gumbolt"
    with pytest.raises(ValueError, match="unknown relaxation"):
        RelaxedBoltzmannVAE(NUM_PIXELS, relaxation="bethe")
    with pytest.raises(ValueError, match="unknown guide"):
        build("overlapping", guide="ladder")
    with pytest.raises(ValueError, match="inverse temperature"):
        build_gumbolt(NUM_PIXELS, 2, 2, beta=-1.0)


def test_gaussian_integral_shift_keeps_the_precision_positive_definite():
    model, _ = build("gaussian_integral")
    with torch.no_grad():
        model.weight.mul_(0).add_(30.0)  # sigma_max(W) = 30 * sqrt(6) > the floor 40
    prior = model.relaxed_prior(model.smoothing, model.prior())
    assert float(prior.shift) == pytest.approx(30.0 * math.sqrt(6) + 5.0)
    assert bool(torch.linalg.eigvalsh(prior.precision_matrix()).min() > 4.99)

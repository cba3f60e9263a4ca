"""Tests of the sigmoid belief net, its guides and its Bernoulli layers."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO, TraceGraph_ELBO
from pyro.optim import Adam
from torch import nn

from pyro_dgm.data import embedded_mnist, static_binarize
from pyro_dgm.infer.objectives.bihm import BiHMELBO
from pyro_dgm.infer.objectives.rws import ReweightedWakeSleep
from pyro_dgm.infer.objectives.vimco import VIMCO
from pyro_dgm.infer.validation import check_guide_covers_model
from pyro_dgm.models.sbn import BIHM_L1_STRENGTH, SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide, FactorialGuide
from pyro_dgm.nn.bernoulli_layer import (
    BIHM_BIAS_INIT,
    BernoulliLayer,
    FactorialBernoulli,
    glorot_uniform_bound,
)

TINY_SIZES = [3, 2, 2]
SMALL_SIZES = [12, 6, 4, 3]
BIHM_MNIST_SIZES = [784, 300, 200, 100, 75, 50, 35, 30, 25, 20, 15, 10, 10]
NUM_PARTICLES = 5
BATCH = 7
GUIDES = [BottomUpGuide, FactorialGuide]
EXACT_FP64 = 1e-10  # hand formula vs the model in float64: round-off only
NUM_SE = 5  # statistical assertions: this many standard errors


def random_binary(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.bernoulli(torch.full(shape, 0.4, dtype=dtype))


def vectorized_elbo() -> Trace_ELBO:
    return Trace_ELBO(num_particles=NUM_PARTICLES, vectorize_particles=True, max_plate_nesting=1)


def traces(model, guide, *args, **kwargs):
    """(model_trace, guide_trace), the model replayed against the guide."""
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    return model_trace, guide_trace


def bernoulli_log_pmf(value: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """sum_i v_i log p_i + (1 - v_i) log(1 - p_i), over the last dim."""
    return (value * probs.log() + (1 - value) * (1 - probs).log()).sum(-1)


def sbn_probs(layer: BernoulliLayer, context: torch.Tensor) -> torch.Tensor:
    """sigma(W c + b) of a single-affine-map layer, written out."""
    (linear,) = layer.net
    return torch.sigmoid(context @ linear.weight.T + linear.bias)


def randomize_(module: nn.Module) -> nn.Module:
    """Move every parameter off its initial value so biases are not all equal."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_()
    return module


# ----------------------------------------------------------------------------- layers


def test_bernoulli_layer_passes_leading_dims_and_checks_context():
    layer = BernoulliLayer(4, 3, hidden_sizes=[5])
    distribution = layer(torch.zeros(NUM_PARTICLES, BATCH, 4))
    assert distribution.batch_shape == (NUM_PARTICLES, BATCH)
    assert distribution.event_shape == (3,)
    with pytest.raises(ValueError, match="4 features"):
        layer(torch.zeros(BATCH, 5))
    with pytest.raises(ValueError, match="positive ints"):
        BernoulliLayer(4, 0)


def test_factorial_bernoulli_prior_shape():
    prior = FactorialBernoulli(6)
    assert prior().batch_shape == () and prior().event_shape == (6,)
    assert torch.all(prior.bias == BIHM_BIAS_INIT)


def test_init_glorot_uniform_weights_and_minus_one_biases():
    model = SigmoidBeliefNet(BIHM_MNIST_SIZES)
    guide = BottomUpGuide(BIHM_MNIST_SIZES)
    for module in (model, guide):
        for linear in (m for m in module.modules() if isinstance(m, nn.Linear)):
            bound = glorot_uniform_bound(linear.in_features, linear.out_features)
            weight = linear.weight.detach().flatten().double()
            assert weight.abs().max() <= bound
            # Uniform(-a, a): E[w^2] = a^2/3, Var[w^2] = 4 a^4 / 45.
            second_moment_se = math.sqrt(4 / 45) * bound**2 / math.sqrt(weight.numel())
            assert abs(weight.pow(2).mean() - bound**2 / 3) < NUM_SE * second_moment_se
            assert abs(weight.mean()) < NUM_SE * bound / math.sqrt(3 * weight.numel())
            assert torch.all(linear.bias == BIHM_BIAS_INIT)
    assert torch.all(model.prior.bias == BIHM_BIAS_INIT)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("guide_class", GUIDES)
def test_vectorized_particles(guide_class):
    model, guide = SigmoidBeliefNet(SMALL_SIZES), guide_class(SMALL_SIZES)
    x = random_binary(BATCH, SMALL_SIZES[0])
    loss = vectorized_elbo().loss(model, guide, x)
    assert math.isfinite(loss)

    particles = pyro.plate("particles", NUM_PARTICLES, dim=-2)
    model_trace, guide_trace = traces(particles(model), particles(guide), x)
    model_trace.compute_log_prob()
    for layer, size in enumerate(SMALL_SIZES[1:], start=1):
        assert guide_trace.nodes[f"h{layer}"]["value"].shape == (NUM_PARTICLES, BATCH, size)
        assert model_trace.nodes[f"h{layer}"]["log_prob"].shape == (NUM_PARTICLES, BATCH)
    assert model_trace.nodes["x"]["log_prob"].shape == (NUM_PARTICLES, BATCH)


def test_ancestral_sampling():
    model = SigmoidBeliefNet(SMALL_SIZES)
    samples = model.sample(BATCH)
    assert list(samples) == ["h3", "h2", "h1", "x"]
    assert samples["x"].shape == (BATCH, SMALL_SIZES[0])
    assert set(samples["x"].unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="num_samples"):
        model()


@pytest.mark.parametrize("guide_class", GUIDES)
def test_minibatch_scaling(guide_class):
    num_data = 10 * BATCH
    model, guide = SigmoidBeliefNet(SMALL_SIZES), guide_class(SMALL_SIZES)
    x = random_binary(BATCH, SMALL_SIZES[0])
    model_trace, guide_trace = traces(model, guide, x, num_data=num_data)
    for trace in (model_trace, guide_trace):
        trace.compute_log_prob()
        for name, site in trace.nodes.items():
            if site["type"] == "sample" and name != "data":
                assert site["scale"] == num_data / BATCH
                assert torch.allclose(site["log_prob_sum"], site["unscaled_log_prob"].sum() * num_data / BATCH)
    with pytest.raises(ValueError, match="num_data"):
        model(x, num_data=BATCH - 1)


# ----------------------------------------------------------------------------- densities


def test_model_log_joint_equals_hand_formula():
    model = randomize_(SigmoidBeliefNet(TINY_SIZES).double())
    x = random_binary(BATCH, 3, dtype=torch.float64)
    h1, h2 = random_binary(BATCH, 2, dtype=torch.float64), random_binary(BATCH, 2, dtype=torch.float64)
    conditioned = poutine.condition(model, data={"h1": h1, "h2": h2})
    log_joint = poutine.trace(conditioned).get_trace(x).log_prob_sum()

    expected = (
        bernoulli_log_pmf(h2, torch.sigmoid(model.prior.bias))  # p(h2)
        + bernoulli_log_pmf(h1, sbn_probs(model.conditionals[1], h2))  # p(h1 | h2)
        + bernoulli_log_pmf(x, sbn_probs(model.conditionals[0], h1))  # p(x | h1)
    ).sum()
    assert torch.allclose(log_joint, expected, rtol=0, atol=EXACT_FP64)


def test_bottom_up_guide_log_q_equals_hand_formula():
    guide = randomize_(BottomUpGuide(TINY_SIZES).double())
    x = random_binary(BATCH, 3, dtype=torch.float64)
    guide_trace = poutine.trace(guide).get_trace(x)
    h1, h2 = guide_trace.nodes["h1"]["value"], guide_trace.nodes["h2"]["value"]
    expected = (
        bernoulli_log_pmf(h1, sbn_probs(guide.conditionals[0], x))  # q(h1 | x)
        + bernoulli_log_pmf(h2, sbn_probs(guide.conditionals[1], h1))  # q(h2 | h1)
    ).sum()
    assert torch.allclose(guide_trace.log_prob_sum(), expected, rtol=0, atol=EXACT_FP64)


def test_factorial_guide_log_q_equals_hand_formula():
    guide = randomize_(FactorialGuide(TINY_SIZES).double())
    x = random_binary(BATCH, 3, dtype=torch.float64)
    guide_trace = poutine.trace(guide).get_trace(x)
    h1, h2 = guide_trace.nodes["h1"]["value"], guide_trace.nodes["h2"]["value"]
    probs = sbn_probs(guide.network, x)  # one map from x to all 2 + 2 units
    expected = (bernoulli_log_pmf(h1, probs[:, :2]) + bernoulli_log_pmf(h2, probs[:, 2:])).sum()
    assert torch.allclose(guide_trace.log_prob_sum(), expected, rtol=0, atol=EXACT_FP64)


# ----------------------------------------------------------------------------- errors


def test_data_shape_errors_name_x():
    model, guide = SigmoidBeliefNet(SMALL_SIZES), BottomUpGuide(SMALL_SIZES)
    bad_inputs = [
        torch.zeros(BATCH, SMALL_SIZES[0] + 1),
        torch.zeros(SMALL_SIZES[0]),
        torch.zeros(2, BATCH, SMALL_SIZES[0]),
        torch.zeros(BATCH, SMALL_SIZES[0], dtype=torch.long),
        torch.zeros(BATCH, SMALL_SIZES[0], dtype=torch.float64),  # model is float32
    ]
    for bad in bad_inputs:
        for fn in (model, guide):
            with pytest.raises(ValueError, match=r"^x "):
                fn(bad)
    with pytest.raises(ValueError, match=r"\(batch, 12\)"):
        model(torch.zeros(BATCH, 5))
    with pytest.raises(ValueError, match="layer_sizes"):
        SigmoidBeliefNet([784])


def guide_missing_h2(x, num_data=None):
    with pyro.plate("data", x.size(0), dim=-1):
        pyro.sample("h1", dist.Bernoulli(0.5 * torch.ones(x.size(0), 2)).to_event(1))


def guide_extra_h3(x, num_data=None):
    with pyro.plate("data", x.size(0), dim=-1):
        for name in ("h1", "h2", "h3"):
            pyro.sample(name, dist.Bernoulli(0.5 * torch.ones(x.size(0), 2)).to_event(1))


def guide_wrong_shape_h2(x, num_data=None):
    with pyro.plate("data", x.size(0), dim=-1):
        pyro.sample("h1", dist.Bernoulli(0.5 * torch.ones(x.size(0), 2)).to_event(1))
        pyro.sample("h2", dist.Bernoulli(0.5 * torch.ones(x.size(0), 5)).to_event(1))


@pytest.mark.parametrize(
    "bad_guide, site", [(guide_missing_h2, "h2"), (guide_extra_h3, "h3")], ids=["missing", "extra"]
)
def test_wrong_guide_is_named(bad_guide, site):
    model = SigmoidBeliefNet(TINY_SIZES)
    x = random_binary(BATCH, 3)
    with pytest.raises(ValueError, match=site):
        check_guide_covers_model(*traces(model, bad_guide, x))
    # Pyro's own check only warns, naming the site.
    with pyro.settings.context(validate_infer=True, validate_poutine=True):
        with pytest.warns(UserWarning, match=site):
            Trace_ELBO().loss(model, bad_guide, x)


def test_wrong_shape_fails_at_the_site():
    model = SigmoidBeliefNet(TINY_SIZES)
    x = random_binary(BATCH, 3)
    with pytest.raises(ValueError, match=r"site 'h2'.*\(\.\.\., 7, 2\)"):
        traces(model, guide_wrong_shape_h2, x)
    with pyro.settings.context(validate_infer=True, validate_poutine=True):
        with pytest.raises(ValueError, match="site 'h2'"):
            Trace_ELBO().loss(model, guide_wrong_shape_h2, x)


def test_param_store_name_clash_is_an_error():
    x = random_binary(BATCH, 3)
    SigmoidBeliefNet(TINY_SIZES)(x)
    with pytest.raises(ValueError, match="distinct name"):
        SigmoidBeliefNet(TINY_SIZES)(x)
    SigmoidBeliefNet(TINY_SIZES, name="second_sbn")(x)


# ----------------------------------------------------------------------------- guides drop in


def test_user_written_guide_drops_in():
    model = SigmoidBeliefNet(SMALL_SIZES)

    def coin_flip_guide(x, num_data=None):
        with pyro.plate("data", x.size(0), dim=-1):
            for layer, size in enumerate(SMALL_SIZES[1:], start=1):
                pyro.sample(f"h{layer}", dist.Bernoulli(x.new_full((x.size(0), size), 0.5)).to_event(1))

    x = random_binary(BATCH, SMALL_SIZES[0])
    assert math.isfinite(vectorized_elbo().loss(model, coin_flip_guide, x))
    check_guide_covers_model(*traces(model, coin_flip_guide, x))


# ----------------------------------------------------------------------------- penalty


def test_l1_penalty_is_sum_of_absolute_weights():
    model = randomize_(SigmoidBeliefNet(SMALL_SIZES, l1_strength=1.0))
    weights = [c.net[0].weight for c in model.conditionals]
    assert torch.allclose(model.penalty(), sum(w.abs().sum() for w in weights))  # biases excluded

    guide = FactorialGuide(SMALL_SIZES, hidden_sizes=[5], l1_strength=BIHM_L1_STRENGTH)
    weights = [m.weight for m in guide.modules() if isinstance(m, nn.Linear)]
    assert len(weights) == 2
    assert torch.allclose(guide.penalty(), BIHM_L1_STRENGTH * sum(w.abs().sum() for w in weights))
    assert SigmoidBeliefNet(SMALL_SIZES).penalty() == 0


def test_penalty_trains_with_svi_as_documented():
    model = SigmoidBeliefNet(SMALL_SIZES, l1_strength=1.0)
    guide = BottomUpGuide(SMALL_SIZES, l1_strength=1.0)
    elbo = Trace_ELBO()

    def penalised_loss(model, guide, *args, **kwargs):
        return elbo.differentiable_loss(model, guide, *args, **kwargs) + model.penalty() + guide.penalty()

    x = random_binary(BATCH, SMALL_SIZES[0])
    before = (model.penalty() + guide.penalty()).item()
    svi = SVI(model, guide, Adam({"lr": 1e-2}), loss=penalised_loss)
    for _ in range(10):
        svi.step(x)
    assert (model.penalty() + guide.penalty()).item() < before


# ----------------------------------------------------------------------------- training


NUM_DIGITS = 200
TRAIN_SIZES = [784, 50, 20]
LOSS_WINDOW = 20  # compare the mean loss of the first and the last this many steps


def assert_loss_falls(model, guide, loss, num_steps: int, **kwargs) -> None:
    """SVI on 200 binarised digits: the last window's mean loss is below the first's by NUM_SE SEs."""
    x = static_binarize(embedded_mnist("train")[:NUM_DIGITS], seed=0)
    svi = SVI(model, guide, Adam({"lr": 1e-2}), loss)
    losses = torch.tensor([svi.step(x, **kwargs) for _ in range(num_steps)])
    first, last = losses[:LOSS_WINDOW], losses[-LOSS_WINDOW:]
    noise = math.sqrt(first.var() / LOSS_WINDOW + last.var() / LOSS_WINDOW)
    assert first.mean() - last.mean() > NUM_SE * noise


@pytest.mark.parametrize("guide_class", GUIDES)
def test_svi_on_mnist_digits_lowers_the_loss(guide_class):
    model, guide = SigmoidBeliefNet(TRAIN_SIZES), guide_class(TRAIN_SIZES)
    assert_loss_falls(model, guide, TraceGraph_ELBO(), num_steps=100)


@pytest.mark.parametrize(
    "objective_class, options",
    [(BiHMELBO, {}), (ReweightedWakeSleep, {"insomnia": 0.5}), (VIMCO, {})],
    ids=["bihm", "rws", "vimco"],
)
def test_trains_under_importance_weighted_objectives(objective_class, options):
    model, guide = SigmoidBeliefNet(TRAIN_SIZES), BottomUpGuide(TRAIN_SIZES)
    objective = objective_class(num_particles=NUM_PARTICLES, **options)
    assert_loss_falls(model, guide, objective, num_steps=60, num_data=15 * NUM_DIGITS)


# ----------------------------------------------------------------------------- devices and dtypes


def run_on(device: str, dtype: torch.dtype) -> None:
    model = SigmoidBeliefNet(SMALL_SIZES).to(device=device, dtype=dtype)
    guide = BottomUpGuide(SMALL_SIZES).to(device=device, dtype=dtype)
    x = random_binary(BATCH, SMALL_SIZES[0], dtype=dtype).to(device)
    _, guide_trace = traces(model, guide, x, num_data=4 * BATCH)
    assert guide_trace.nodes["h1"]["value"].device == x.device
    assert guide_trace.nodes["h1"]["value"].dtype == dtype
    assert model.sample(3)["x"].device == x.device
    svi = SVI(model, guide, Adam({"lr": 1e-2}), vectorized_elbo())
    assert math.isfinite(svi.step(x, num_data=4 * BATCH))


def test_float64():
    run_on("cpu", torch.float64)


@pytest.mark.cuda
def test_cuda():
    run_on("cuda", torch.float32)

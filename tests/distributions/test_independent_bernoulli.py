"""IndependentBernoulli equals Bernoulli(logits).to_event(1) in every method, and validates alike."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_dgm.distributions import IndependentBernoulli


def reference(logits: torch.Tensor) -> dist.Independent:
    return dist.Bernoulli(logits=logits).to_event(1)


@pytest.fixture
def logits() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (8 * torch.randn(3, 4, 5, dtype=torch.float64, generator=generator)).requires_grad_()


def test_shapes_and_moments_equal_the_reference(logits):
    ours, theirs = IndependentBernoulli(logits), reference(logits)
    assert (ours.batch_shape, ours.event_shape) == (theirs.batch_shape, theirs.event_shape)
    for name in ("mean", "variance", "mode", "entropy"):
        ours_value = getattr(ours, name)
        ours_value = ours_value() if callable(ours_value) else ours_value
        theirs_value = getattr(theirs, name)
        theirs_value = theirs_value() if callable(theirs_value) else theirs_value
        torch.testing.assert_close(ours_value, theirs_value, msg=name)


def test_log_prob_and_its_gradient_equal_the_reference(logits):
    value = torch.bernoulli(torch.full((2, 3, 4, 5), 0.5, dtype=torch.float64))  # broadcasts
    ours = IndependentBernoulli(logits).log_prob(value)
    theirs = reference(logits).log_prob(value)
    torch.testing.assert_close(ours, theirs, rtol=1e-14, atol=1e-12)
    (ours_gradient,) = torch.autograd.grad(ours.sum(), logits)
    (theirs_gradient,) = torch.autograd.grad(theirs.sum(), logits)
    torch.testing.assert_close(ours_gradient, theirs_gradient, rtol=1e-14, atol=1e-14)


def test_saturated_logits_stay_finite():
    logits = torch.tensor([[-1e4, 1e4, 0.0]])
    value = torch.tensor([[1.0, 0.0, 1.0]])
    expected = torch.tensor([-1e4 - 1e4 - torch.log(torch.tensor(2.0)).item()])
    torch.testing.assert_close(IndependentBernoulli(logits).log_prob(value), expected)


def test_expand_broadcasts_like_a_plate():
    logits = torch.randn(5)
    expanded = IndependentBernoulli(logits).expand(torch.Size([7, 2]))
    assert expanded.batch_shape == (7, 2) and expanded.event_shape == (5,)
    assert expanded.sample().shape == (7, 2, 5)
    assert expanded.probs.stride()[:2] == (0, 0)  # sigma computed once, on the unexpanded logits
    torch.testing.assert_close(expanded.probs, torch.sigmoid(logits).expand(7, 2, 5))
    value = torch.ones(7, 2, 5)
    torch.testing.assert_close(expanded.log_prob(value), reference(logits).expand([7, 2]).log_prob(value))


def test_samples_have_the_unit_probabilities():
    """Unit frequencies over 20000 draws within 4 standard errors of sigma(a)."""
    torch.manual_seed(1)
    logits = torch.tensor([-2.0, 0.0, 1.5])
    draws = IndependentBernoulli(logits).sample((20000,))
    probs = torch.sigmoid(logits)
    assert ((draws.mean(0) - probs).abs() < 4 * torch.sqrt(probs * (1 - probs) / 20000)).all()


def test_works_as_a_pyro_site_in_plates():
    logits = torch.randn(4)

    def model():
        with pyro.plate("data", 3):
            return pyro.sample("y", IndependentBernoulli(logits))

    trace = pyro.poutine.trace(model).get_trace()
    trace.compute_log_prob()
    assert trace.nodes["y"]["value"].shape == (3, 4)
    assert trace.nodes["y"]["log_prob"].shape == (3,)


def test_validation_refuses_nan_logits_and_non_binary_values():
    with pytest.raises(ValueError, match="logits"):
        IndependentBernoulli(torch.tensor([0.0, float("nan")]), validate_args=True)
    with pytest.raises(ValueError, match="support"):
        IndependentBernoulli(torch.zeros(2), validate_args=True).log_prob(torch.tensor([0.5, 1.0]))
    IndependentBernoulli(torch.zeros(2), validate_args=False).log_prob(torch.tensor([0.5, 1.0]))  # unchecked
    with pytest.raises(ValueError, match="at least one dim"):
        IndependentBernoulli(torch.tensor(0.0))


@pytest.mark.parametrize("enabled", [True, False])
def test_validation_follows_pyros_switch_by_default(enabled):
    was_enabled = pyro.infer.util.is_validation_enabled()
    pyro.enable_validation(enabled)
    try:
        distribution = IndependentBernoulli(torch.zeros(2))
        assert distribution._validate_args is enabled
        assert distribution.expand(torch.Size([3]))._validate_args is enabled
        if enabled:
            with pytest.raises(ValueError, match="NaN"):
                IndependentBernoulli(torch.tensor([float("nan"), 0.0]))
            with pytest.raises(ValueError, match="last dim"):
                distribution.log_prob(torch.zeros(3))
            with pytest.raises(ValueError, match="does not broadcast"):
                IndependentBernoulli(torch.zeros(4, 2)).log_prob(torch.zeros(3, 2))
    finally:
        pyro.enable_validation(was_enabled)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cheap_checks_agree_with_the_direct_ones(dtype):
    from pyro_dgm.distributions.independent_bernoulli import has_nan, is_binary

    binary = torch.bernoulli(torch.full((50, 40), 0.3, dtype=dtype))
    assert is_binary(binary) and is_binary(torch.zeros(0, dtype=dtype))
    for bad in (0.5, 2.0, -1.0, 1e-40, 1 - 1e-7, float("nan"), float("inf")):
        corrupted = binary.clone()
        corrupted[7, 3] = bad
        assert not is_binary(corrupted), bad
    values = torch.randn(50, 40, dtype=dtype)
    assert not has_nan(values)
    values[0, 0], values[0, 1] = float("inf"), -float("inf")  # the sum is NaN, the values are not
    assert not has_nan(values)
    values[3, 3] = float("nan")
    assert has_nan(values)


def test_an_existing_distribution_follows_the_switch_at_each_call():
    """torch reads its global default at each call: so must a distribution built with validate_args=None."""
    with pyro.validation_enabled(False):
        built_unvalidated = IndependentBernoulli(torch.zeros(2))
    with pyro.validation_enabled(True):
        built_validated = IndependentBernoulli(torch.zeros(2))
        with pytest.raises(ValueError, match=r"Expected value argument .* to be within the support"):
            built_unvalidated.log_prob(torch.tensor([0.5, 1.0]))
        with pytest.raises(ValueError, match="Expected value argument"):
            built_unvalidated.expand((3,)).log_prob(torch.tensor([0.5, 1.0]))
    with pyro.validation_enabled(False):
        built_validated.log_prob(torch.tensor([0.5, 1.0]))  # not checked now
    explicit = IndependentBernoulli(torch.zeros(2), validate_args=True)
    with pyro.validation_enabled(False), pytest.raises(ValueError, match="support"):
        explicit.expand((3,)).log_prob(torch.tensor([0.5, 1.0]))  # its own flag wins, through expand


def test_enumerate_support_lists_the_joint_states_for_trace_enum():
    logits = torch.tensor([[0.3, -1.0, 2.0], [0.0, 4.0, -4.0]], dtype=torch.float64)
    distribution = IndependentBernoulli(logits)
    support = distribution.enumerate_support()
    assert support.shape == (8, 2, 3) and distribution.enumerate_support(expand=False).shape == (8, 1, 3)
    torch.testing.assert_close(distribution.log_prob(support).exp().sum(0), torch.ones(2, dtype=torch.float64))
    assert len({tuple(state.tolist()) for state in support[:, 0]}) == 8


def test_trace_enum_elbo_sums_the_units_out_against_a_hand_sum():
    logits = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    observed = torch.tensor([1.5, -0.5], dtype=torch.float64)
    weight = torch.tensor([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.3]], dtype=torch.float64)

    @pyro.infer.config_enumerate
    def model():
        y = pyro.sample("y", IndependentBernoulli(logits))
        pyro.sample("x", dist.Normal(y @ weight, 1.0).to_event(1), obs=observed)

    loss = pyro.infer.TraceEnum_ELBO(max_plate_nesting=0).loss(model, lambda: None)
    terms = []
    for code in range(8):  # the 2^3 states by hand, not through enumerate_support
        y = torch.tensor([(code >> shift) & 1 for shift in (2, 1, 0)], dtype=torch.float64)
        log_prior = float(reference(logits).log_prob(y))
        terms.append(log_prior + float(dist.Normal(y @ weight, 1.0).to_event(1).log_prob(observed)))
    assert loss == pytest.approx(-float(torch.logsumexp(torch.tensor(terms, dtype=torch.float64), 0)), rel=1e-12)


def test_too_many_units_are_not_enumerated_and_say_so():
    from pyro_dgm.distributions.binary_states import MAX_ENUMERATED_EVENT_UNITS

    distribution = IndependentBernoulli(torch.zeros(MAX_ENUMERATED_EVENT_UNITS + 1))
    assert not distribution.has_enumerate_support
    assert not reference(torch.zeros(3)).has_enumerate_support  # nor is Bernoulli(...).to_event(1), at any size

    def model():
        pyro.sample("y", distribution, infer={"enumerate": "parallel"})

    with pytest.raises(NotImplementedError, match=f"limited to {MAX_ENUMERATED_EVENT_UNITS} units"):
        pyro.infer.TraceEnum_ELBO(max_plate_nesting=0).loss(model, lambda: None)

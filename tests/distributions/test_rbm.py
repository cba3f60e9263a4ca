"""The RBM prior against brute force over all 2^(n1+n2) states, finite differences, TV bounds."""

import pyro
import pytest
import torch
from pyro import poutine

import pyro_dgm.distributions.rbm as rbm_module
from pyro_dgm.distributions.rbm import (
    MAX_ENUMERATED_UNITS,
    RBM,
    exact_log_partition,
)
from pyro_dgm.infer.estimators.exact import all_binary_configurations
from tests.distributions.rbm_brute_force import brute_force_neg_energy, brute_force_probabilities
from tests.total_variation import (
    empirical_probabilities,
    total_variation,
    total_variation_threshold,
)

FLOAT64_RELATIVE_TOLERANCE = 1e-10
"""Exact sums in float64 agree to ~1e-14; 1e-10 leaves room for summation order."""

FLOAT32_RELATIVE_TOLERANCE = 1e-5
"""~100 float32 epsilons (1.2e-7): the enumerated sums have at most a few hundred terms here."""

SAMPLE_SIZE = 20_000
"""Draws per sampling test: the TV threshold is then ~0.045 on 64 states, ~2 ms of sampling."""


def random_parameters(n1, n2, batch_shape=(), dtype=torch.float64, scale=1.0):
    bias1 = scale * torch.randn(*batch_shape, n1, dtype=dtype)
    bias2 = scale * torch.randn(*batch_shape, n2, dtype=dtype)
    weight = scale * torch.randn(*batch_shape, n1, n2, dtype=dtype)
    return bias1, bias2, weight


def ferromagnetic_parameters(n1, n2, coupling=1.5):
    """Positive couplings, biases balancing them: two modes (all off, all on), every unit
    correlated with every other, so a sampler that mixes up bits of one draw is caught."""
    bias1, bias2, weight = random_parameters(n1, n2, scale=0.5)
    return bias1 - coupling * n2 / 2, bias2 - coupling * n1 / 2, weight + coupling


# ----- log Z ----------------------------------------------------------------------------


SHAPES = [
    # (n1, n2, batch shapes of bias1, bias2, weight)
    (5, 3, (), (), ()),
    (2, 6, (), (), ()),
    (1, 5, (), (), ()),
    (5, 1, (), (), ()),
    (3, 4, (2,), (2,), (2,)),
    (4, 2, (3, 1), (), (2,)),  # broadcast to batch (3, 2)
]


@pytest.mark.parametrize("n1, n2, batch1, batch2, batch_weight", SHAPES)
def test_exact_log_partition_equals_brute_force(n1, n2, batch1, batch2, batch_weight):
    bias1 = torch.randn(*batch1, n1, dtype=torch.float64)
    bias2 = torch.randn(*batch2, n2, dtype=torch.float64)
    weight = torch.randn(*batch_weight, n1, n2, dtype=torch.float64)
    _, neg_energy = brute_force_neg_energy(bias1, bias2, weight)
    expected = torch.logsumexp(neg_energy, dim=0)
    rbm = RBM(bias1, bias2, weight)
    assert rbm.batch_shape == expected.shape
    torch.testing.assert_close(rbm.log_partition, expected, rtol=FLOAT64_RELATIVE_TOLERANCE, atol=0)
    for side in (1, 2):  # either block may be enumerated
        actual = exact_log_partition(bias1, bias2, weight, enumerated_side=side)
        torch.testing.assert_close(actual, expected, rtol=FLOAT64_RELATIVE_TOLERANCE, atol=0)


def test_exact_log_partition_float32():
    bias1, bias2, weight = random_parameters(4, 3, (2,), dtype=torch.float32)
    _, neg_energy = brute_force_neg_energy(bias1.double(), bias2.double(), weight.double())
    actual = RBM(bias1, bias2, weight).log_partition
    assert actual.dtype == torch.float32
    torch.testing.assert_close(
        actual.double(), torch.logsumexp(neg_energy, 0), rtol=FLOAT32_RELATIVE_TOLERANCE, atol=0
    )


@pytest.mark.parametrize("chunk_elements", [1, 5, 37])
def test_chunked_equals_unchunked(chunk_elements):
    bias1, bias2, weight = random_parameters(6, 5, (3,))
    for parameter in (bias1, bias2, weight):
        parameter.requires_grad_()
    whole = exact_log_partition(bias1, bias2, weight, chunk_elements=2**30)
    chunked = exact_log_partition(bias1, bias2, weight, chunk_elements=chunk_elements)
    torch.testing.assert_close(chunked, whole, rtol=FLOAT64_RELATIVE_TOLERANCE, atol=0)
    grads_whole = torch.autograd.grad(whole.sum(), (bias1, bias2, weight))
    grads_chunked = torch.autograd.grad(chunked.sum(), (bias1, bias2, weight))
    for chunked_grad, whole_grad in zip(grads_chunked, grads_whole):
        torch.testing.assert_close(
            chunked_grad, whole_grad, rtol=FLOAT64_RELATIVE_TOLERANCE, atol=1e-14
        )


def test_twenty_enumerated_units_agree_with_enumerating_the_other_side():
    """2^20 states in several chunks (the bound, MAX_ENUMERATED_UNITS) against 2^3 states."""
    bias1, bias2, weight = random_parameters(MAX_ENUMERATED_UNITS, 3, scale=0.3)
    for parameter in (bias1, bias2, weight):
        parameter.requires_grad_()
    large = exact_log_partition(bias1, bias2, weight, enumerated_side=1, chunk_elements=2**20)
    small = exact_log_partition(bias1, bias2, weight, enumerated_side=2)
    torch.testing.assert_close(large, small, rtol=FLOAT64_RELATIVE_TOLERANCE, atol=0)
    grads_large = torch.autograd.grad(large, (bias1, bias2, weight))
    grads_small = torch.autograd.grad(small, (bias1, bias2, weight))
    for grad_large, grad_small in zip(grads_large, grads_small):
        torch.testing.assert_close(grad_large, grad_small, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n1, n2, batch1, batch2, batch_weight", SHAPES)
def test_log_partition_gradient_is_expected_sufficient_statistics(
    n1, n2, batch1, batch2, batch_weight
):
    r""":math:`\nabla \log Z = \mathbb{E}_p[-\nabla E] = (\mathbb{E} z_1, \mathbb{E} z_2,
    \mathbb{E} z_1 z_2^\top)`."""
    bias1 = torch.randn(*batch1, n1, dtype=torch.float64, requires_grad=True)
    bias2 = torch.randn(*batch2, n2, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(*batch_weight, n1, n2, dtype=torch.float64, requires_grad=True)
    rbm = RBM(bias1, bias2, weight)
    grads = torch.autograd.grad(rbm.log_partition.sum(), (bias1, bias2, weight))
    with torch.no_grad():
        states, probs = brute_force_probabilities(bias1, bias2, weight)  # (S,), (S, *batch)
        z1, z2 = states[:, :n1], states[:, n1:]
        mean1 = torch.einsum("s...,si->...i", probs, z1)
        mean2 = torch.einsum("s...,sj->...j", probs, z2)
        cross = torch.einsum("s...,si,sj->...ij", probs, z1, z2)
    # the parameters broadcast, so their gradients sum the expectations over the broadcast dims
    for grad, expected, parameter in zip(grads, (mean1, mean2, cross), (bias1, bias2, weight)):
        reduced = expected.sum_to_size(parameter.shape)
        torch.testing.assert_close(grad, reduced, rtol=FLOAT64_RELATIVE_TOLERANCE, atol=1e-14)


@pytest.mark.parametrize("side", [1, 2])
def test_log_partition_gradient_finite_differences(side):
    bias1, bias2, weight = random_parameters(3, 4, (2,))
    parameters = tuple(p.requires_grad_() for p in (bias1, bias2, weight))

    def log_partition(bias1, bias2, weight):
        return exact_log_partition(bias1, bias2, weight, enumerated_side=side, chunk_elements=3)

    assert torch.autograd.gradcheck(log_partition, parameters)


# ----- densities, free energies, conditionals --------------------------------------------


def test_unnormalized_log_prob_and_log_prob_normalised():
    bias1, bias2, weight = random_parameters(3, 4, (2,))
    rbm = RBM(bias1, bias2, weight)
    states, neg_energy = brute_force_neg_energy(bias1, bias2, weight)
    values = states.unsqueeze(1)  # (S, 1, n): broadcast against batch (2,)
    torch.testing.assert_close(
        rbm.unnormalized_log_prob(values), neg_energy, rtol=1e-12, atol=1e-12
    )
    total = torch.logsumexp(rbm.log_prob(values), dim=0).exp()
    torch.testing.assert_close(total, torch.ones(2, dtype=torch.float64), rtol=1e-12, atol=0)


def test_free_energies_match_brute_force():
    n1, n2 = 3, 4
    bias1, bias2, weight = random_parameters(n1, n2, (2,))
    rbm = RBM(bias1, bias2, weight)
    _, neg_energy = brute_force_neg_energy(bias1, bias2, weight)
    table = neg_energy.reshape(2**n1, 2**n2, 2)  # states are z1-major, most significant bit first
    expected1 = -torch.logsumexp(table, dim=1)  # (2^n1, batch)
    expected2 = -torch.logsumexp(table, dim=0)  # (2^n2, batch)
    z1 = all_binary_configurations(n1, torch.float64).unsqueeze(1)
    z2 = all_binary_configurations(n2, torch.float64).unsqueeze(1)
    torch.testing.assert_close(rbm.free_energy1(z1), expected1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(rbm.free_energy2(z2), expected2, rtol=1e-12, atol=1e-12)


def test_conditionals_match_brute_force():
    n1, n2 = 3, 2
    bias1, bias2, weight = random_parameters(n1, n2)
    rbm = RBM(bias1, bias2, weight)
    states, probs = brute_force_probabilities(bias1, bias2, weight)
    joint = probs.reshape(2**n1, 2**n2)
    z1 = all_binary_configurations(n1, torch.float64)
    z2 = all_binary_configurations(n2, torch.float64)
    # p(z2 | z1) for every pair: rows z1, columns z2
    cond2 = rbm.conditional2(z1.unsqueeze(1)).log_prob(z2.unsqueeze(0)).exp()
    torch.testing.assert_close(cond2, joint / joint.sum(1, keepdim=True), rtol=1e-12, atol=1e-14)
    cond1 = rbm.conditional1(z2.unsqueeze(1)).log_prob(z1.unsqueeze(0)).exp()
    torch.testing.assert_close(
        cond1, (joint / joint.sum(0, keepdim=True)).T, rtol=1e-12, atol=1e-14
    )
    assert rbm.conditional2(z1).event_shape == (n2,)


def test_split_and_shapes():
    rbm = RBM(*random_parameters(3, 2, (4,), dtype=torch.float32))
    assert (rbm.num_units1, rbm.num_units2) == (3, 2)
    assert rbm.batch_shape == (4,) and rbm.event_shape == (5,)
    z = rbm.sample((7,))
    assert z.shape == (7, 4, 5) and z.dtype == torch.float32
    z1, z2 = rbm.split(z)
    assert z1.shape == (7, 4, 3) and z2.shape == (7, 4, 2)
    assert rbm.log_prob(z).shape == (7, 4)
    assert rbm.free_energy1(z1).shape == (7, 4)


def test_expand_keeps_values_and_log_partition():
    bias1, bias2, weight = random_parameters(3, 2)
    rbm = RBM(bias1, bias2, weight)
    log_partition = rbm.log_partition  # cached, then carried over by expand
    expanded = rbm.expand((4, 2))
    assert expanded.batch_shape == (4, 2) and expanded.event_shape == (5,)
    assert expanded.weight.shape == (4, 2, 3, 2)
    torch.testing.assert_close(expanded.log_partition, log_partition.expand(4, 2))
    z = rbm.sample((4, 2))
    torch.testing.assert_close(expanded.log_prob(z), rbm.log_prob(z))
    fresh = RBM(bias1, bias2, weight).expand((3,))  # not computed before expanding
    torch.testing.assert_close(fresh.log_partition, log_partition.expand(3))


def test_log_prob_inside_a_pyro_model():
    bias1, bias2, weight = random_parameters(3, 2)
    rbm = RBM(bias1, bias2, weight)
    data = rbm.sample((5,))

    def model():
        with pyro.plate("data", 5):
            pyro.sample("z", RBM(bias1, bias2, weight), obs=data)

    trace = poutine.trace(model).get_trace()
    torch.testing.assert_close(trace.log_prob_sum(), rbm.log_prob(data).sum())


# ----- normalisation beyond the enumeration bound ------------------------------------------


def test_enumeration_bound_and_error_without_an_estimate():
    at_bound = RBM(*random_parameters(MAX_ENUMERATED_UNITS, MAX_ENUMERATED_UNITS + 5))
    assert at_bound.is_enumerable and at_bound.has_log_partition
    too_big = RBM(*random_parameters(MAX_ENUMERATED_UNITS + 1, MAX_ENUMERATED_UNITS + 1))
    assert not too_big.is_enumerable and not too_big.has_log_partition
    with pytest.raises(ValueError, match="log_partition="):
        too_big.log_partition
    with pytest.raises(ValueError, match="log_partition="):
        too_big.log_prob(torch.zeros(2 * MAX_ENUMERATED_UNITS + 2, dtype=torch.float64))


def test_log_partition_override():
    n = MAX_ENUMERATED_UNITS + 1
    bias1, bias2, weight = random_parameters(n, n, (2,))
    estimate = torch.tensor([3.0, 4.0], dtype=torch.float64)
    rbm = RBM(bias1, bias2, weight, log_partition=estimate)
    assert rbm.has_log_partition
    z = torch.zeros(2, 2 * n, dtype=torch.float64)
    z[:, 0] = 1.0
    torch.testing.assert_close(rbm.log_prob(z), bias1[:, 0] - estimate)
    torch.testing.assert_close(rbm.expand((3, 2)).log_partition, estimate.expand(3, 2))
    # a supplied value takes precedence even when the RBM could be enumerated
    small = RBM(*random_parameters(2, 2), log_partition=1.5)
    assert small.log_partition.item() == 1.5
    with pytest.raises(ValueError, match="log_partition"):
        RBM(bias1, bias2, weight, log_partition=torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="log_partition"):
        RBM(bias1, bias2, weight, log_partition=float("nan"), validate_args=True)


# ----- exact sampling ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n1, n2, chunk_elements",
    [(3, 3, rbm_module.CHUNK_ELEMENTS), (3, 3, 12), (4, 2, 8)],  # one chunk; 2 chunks; side 2
)
def test_exact_sample_matches_distribution(n1, n2, chunk_elements, monkeypatch):
    monkeypatch.setattr(rbm_module, "CHUNK_ELEMENTS", chunk_elements)
    bias1, bias2, weight = ferromagnetic_parameters(n1, n2)
    _, probs = brute_force_probabilities(bias1, bias2, weight)
    samples = RBM(bias1, bias2, weight).sample((SAMPLE_SIZE,))
    assert samples.shape == (SAMPLE_SIZE, n1 + n2)
    frequencies = empirical_probabilities(samples)
    threshold = total_variation_threshold(probs, SAMPLE_SIZE)
    assert total_variation(frequencies, probs) < threshold
    # the test has power: a sampler that forgot the bias a1 is rejected by the same threshold
    _, wrong = brute_force_probabilities(torch.zeros_like(bias1), bias2, weight)
    assert total_variation(frequencies, wrong) > threshold


def test_exact_sample_batched():
    bias1, bias2, weight = ferromagnetic_parameters(3, 2)
    bias1 = torch.stack([bias1, -bias1])  # batch of two different RBMs
    _, probs = brute_force_probabilities(bias1, bias2, weight)  # (S, 2)
    samples = RBM(bias1, bias2, weight).sample((SAMPLE_SIZE,))
    assert samples.shape == (SAMPLE_SIZE, 2, 5)
    for b in range(2):
        frequencies = empirical_probabilities(samples[:, b])
        tv = total_variation(frequencies, probs[:, b])
        assert tv < total_variation_threshold(probs[:, b], SAMPLE_SIZE)


# ----- validation ---------------------------------------------------------------------------


def test_invalid_parameters_name_the_argument():
    bias1, bias2, weight = random_parameters(3, 2)
    for name in ("bias1", "bias2", "weight"):
        bad = dict(bias1=bias1, bias2=bias2, weight=weight)
        bad[name] = bad[name].clone()
        bad[name].view(-1)[0] = float("nan")
        with pytest.raises(ValueError, match=name):
            RBM(**bad, validate_args=True)
    with pytest.raises(ValueError, match="weight"):
        RBM(bias1, bias2, weight.T)
    with pytest.raises(ValueError, match="bias1"):
        RBM(bias1.long(), bias2, weight)
    with pytest.raises(ValueError, match="dtype"):
        RBM(bias1.float(), bias2, weight)
    with pytest.raises(ValueError, match="broadcast"):
        RBM(bias1.expand(2, 3), bias2.expand(3, 2), weight)
    with pytest.raises(ValueError, match="weight"):
        RBM(bias1, bias2, weight[0])


def test_invalid_values_name_the_argument():
    rbm = RBM(*random_parameters(3, 2), validate_args=True)
    with pytest.raises(ValueError, match="value"):
        rbm.log_prob(torch.tensor([0.0, 1.0, 0.5, 0.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="z1"):
        rbm.free_energy1(torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="z2"):
        rbm.conditional1(torch.tensor([0.3, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="z"):
        rbm.unnormalized_log_prob(torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="z1"):
        rbm.conditional2(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="enumerated_side"):
        exact_log_partition(rbm.bias1, rbm.bias2, rbm.weight, enumerated_side=3)
    with pytest.raises(ValueError, match="chunk_elements"):
        exact_log_partition(rbm.bias1, rbm.bias2, rbm.weight, chunk_elements=0)


@pytest.mark.cuda
def test_cuda_log_partition_and_sample():
    bias1, bias2, weight = (p.cuda() for p in random_parameters(3, 4, (2,)))
    rbm = RBM(bias1, bias2, weight)
    _, neg_energy = brute_force_neg_energy(bias1.cpu(), bias2.cpu(), weight.cpu())
    torch.testing.assert_close(rbm.log_partition.cpu(), torch.logsumexp(neg_energy, 0))
    assert rbm.sample((3,)).device == bias1.device


def test_expand_remembers_the_unexpanded_rbm():
    """Plates expand twice (data, particles); the original stays reachable, uncopied."""
    rbm = RBM(torch.zeros(3), torch.zeros(2), torch.zeros(3, 2))
    expanded = rbm.expand((4,)).expand((5, 4))
    assert rbm.unexpanded is rbm
    assert expanded.unexpanded is rbm
    assert expanded.batch_shape == (5, 4)

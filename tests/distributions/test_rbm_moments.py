"""RBM moments and enumeration (issue 18 item 4) against the brute-force sum over all 2^(n1+n2) states."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO, config_enumerate

from pyro_dgm.distributions import RBM
from pyro_dgm.distributions.binary_states import MAX_ENUMERATED_EVENT_UNITS
from pyro_dgm.distributions.rbm import MAX_ENUMERATED_UNITS
from tests.distributions.rbm_brute_force import brute_force_probabilities

TOLERANCE = 1e-10


def random_rbm(num_units1: int, num_units2: int, batch_shape=(), seed: int = 0) -> RBM:
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(shape, generator=generator, dtype=torch.float64)

    return RBM(randn(*batch_shape, num_units1), randn(num_units2), randn(num_units1, num_units2))


@pytest.mark.parametrize("num_units1, num_units2", [(2, 3), (4, 2)], ids=["block 1 enumerated", "block 2 enumerated"])
def test_mean_variance_entropy_equal_the_brute_force_sums(num_units1, num_units2):
    rbm = random_rbm(num_units1, num_units2, batch_shape=(2,))
    states, probs = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)  # (S, n), (S, 2)
    mean = torch.einsum("sb,sn->bn", probs, states)
    torch.testing.assert_close(rbm.mean, mean, rtol=TOLERANCE, atol=TOLERANCE)
    torch.testing.assert_close(rbm.variance, mean * (1 - mean), rtol=TOLERANCE, atol=TOLERANCE)
    torch.testing.assert_close(rbm.entropy(), -(probs * probs.log()).sum(0), rtol=TOLERANCE, atol=TOLERANCE)
    expanded = rbm.expand((3, 2))  # computed once on the unexpanded RBM, then broadcast
    torch.testing.assert_close(expanded.mean, mean.expand(3, 2, -1), rtol=TOLERANCE, atol=TOLERANCE)
    torch.testing.assert_close(expanded.entropy(), rbm.entropy().expand(3, 2), rtol=TOLERANCE, atol=TOLERANCE)


def test_moments_of_an_rbm_too_large_to_enumerate_raise_a_clear_error():
    too_many = MAX_ENUMERATED_UNITS + 1
    rbm = RBM(torch.zeros(too_many), torch.zeros(too_many), torch.zeros(too_many, too_many))
    for read in (lambda: rbm.mean, lambda: rbm.variance, rbm.entropy):
        # NotImplementedError: what torch and Pyro (e.g. init_to_mean) expect of an undefined moment
        with pytest.raises(NotImplementedError, match=f"min\\(n1, n2\\) <= {MAX_ENUMERATED_UNITS}"):
            read()


def test_enumerate_support_lists_every_state_once_in_order():
    rbm = random_rbm(2, 3, batch_shape=(2,))
    support = rbm.enumerate_support()
    states, probs = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)
    assert support.shape == (32, 2, 5) and rbm.enumerate_support(expand=False).shape == (32, 1, 5)
    torch.testing.assert_close(support[:, 0], states)
    torch.testing.assert_close(rbm.log_prob(support).exp(), probs, rtol=TOLERANCE, atol=TOLERANCE)


def test_trace_enum_elbo_sums_an_rbm_prior_out():
    r"""-log p(x) = -log sum_z p(z) prod_d N(x_d | z_d, 0.5), by TraceEnum_ELBO and by hand."""
    rbm = random_rbm(2, 2)
    data = torch.tensor([0.9, -0.2, 0.4, 1.3], dtype=torch.float64)

    @config_enumerate
    def model():
        z = pyro.sample("z", rbm)
        pyro.sample("x", dist.Normal(z, 0.5).to_event(1), obs=data)

    loss = TraceEnum_ELBO(max_plate_nesting=0).loss(model, lambda: None)
    states, probs = brute_force_probabilities(rbm.bias1, rbm.bias2, rbm.weight)
    hand = torch.logsumexp(probs.log() + dist.Normal(states, 0.5).log_prob(data).sum(-1), 0)
    assert loss == pytest.approx(-float(hand), rel=1e-12)


def test_an_rbm_with_too_many_units_is_not_enumerated():
    half = MAX_ENUMERATED_EVENT_UNITS // 2 + 1  # exact log Z, but 2^(n1 + n2) joint states is too many
    rbm = RBM(torch.zeros(half), torch.zeros(half), torch.zeros(half, half))
    assert rbm.is_enumerable and not rbm.has_enumerate_support
    with pytest.raises(NotImplementedError, match="MAX_ENUMERATED_EVENT_UNITS"):
        rbm.enumerate_support()

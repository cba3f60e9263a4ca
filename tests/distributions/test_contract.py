"""Every public distribution honours the torch/Pyro contract (issue 18): one generic suite.

Each :class:`~tests.distributions.contract.Case` in :data:`CASES` is one parameter setting of
one class; every check of :mod:`tests.distributions.contract` runs on every case. **A new
distribution joins the suite with one line in CASES** (``test_every_public_class_is_covered``
fails until it does). The last section plants defects in working classes and asserts that
the checks catch them: the suite's power, tested.
"""

from __future__ import annotations

import inspect

import pyro
import pytest
import torch
from torch.distributions import Distribution, constraints

import pyro_dgm.distributions as distributions
from pyro_dgm.distributions import (
    RBM,
    BinaryLimit,
    DiscretizedLogisticMixture,
    IndependentBernoulli,
    MixtureOfRamps,
    OverlappingExponential,
    OverlappingLogistic,
    SmoothingConditional,
    SmoothingTransformation,
    SpikeAndExponential,
    SpikeAndSlab,
    SpikeSmoothingTransformation,
    TemperedSmoothingTransformation,
    exact_log_partition,
)
from tests.distributions import contract
from tests.distributions.contract import Case, Parameters

SPARSE_COUPLED_ROWS = 3
"""Coupled first-block units of the large RBM: its exact log Z enumerates 2^3 states, not 2^21."""


def large_sparse_rbm(parameters: Parameters) -> RBM:
    r"""21 + 21 units (too many to enumerate; sampled by Gibbs) with an exact ``log_partition``.

    Only the first :data:`SPARSE_COUPLED_ROWS` units of block 1 are coupled, so
    :math:`\log Z = \log Z_{\text{coupled}} + \sum_{i \ge 3} \operatorname{softplus}(a_{1,i})`.
    """
    bias1, bias2 = 0.3 * parameters.randn(21), 0.3 * parameters.randn(21)
    weight = torch.zeros(21, 21, dtype=parameters.dtype, device="cpu")
    weight[:SPARSE_COUPLED_ROWS] = 0.5 * parameters.randn(SPARSE_COUPLED_ROWS, 21)
    coupled = exact_log_partition(bias1[:SPARSE_COUPLED_ROWS], bias2, weight[:SPARSE_COUPLED_ROWS])
    uncoupled = torch.nn.functional.softplus(bias1[SPARSE_COUPLED_ROWS:]).sum()
    return RBM(bias1, bias2, weight, log_partition=coupled + uncoupled)


def small_rbm_with_log_partition(parameters: Parameters) -> RBM:
    bias1, bias2, weight = parameters.randn(3), parameters.randn(2), parameters.randn(3, 2)
    return RBM(bias1, bias2, weight, log_partition=exact_log_partition(bias1, bias2, weight))


# One line per setting: scalar and batched, broadcast, logits vs probs, probs 0 and 1, |logits| 30, beta 100.
CASES = [
    Case("IndependentBernoulli(batched)", lambda p: IndependentBernoulli(p.randn(2, 3))),
    Case("IndependentBernoulli(|logits| 30)", lambda p: IndependentBernoulli(p([30.0, -30.0, 0.5, 2.0]))),
    Case("BinaryLimit(probs 0, 0.3, 1)", lambda p: BinaryLimit(probs=p([0.0, 0.3, 1.0]))),
    Case("BinaryLimit(logits, 2x2)", lambda p: BinaryLimit(logits=p.randn(2, 2))),
    Case("OverlappingExponential(beta 5)", lambda p: OverlappingExponential(p(5.0), logits=p.randn(3))),
    Case("OverlappingExponential(beta 100 and 0.5, |logits| 30)", lambda p: OverlappingExponential(p([[100.0], [0.5]]), logits=p([-30.0, 0.0, 30.0]))),
    Case("OverlappingLogistic(probs, beta batched)", lambda p: OverlappingLogistic(p([1.0, 8.0]), probs=p(0.3))),
    Case("SpikeAndExponential(beta 4)", lambda p: SpikeAndExponential(p(4.0), logits=p.randn(3))),
    Case("SpikeAndExponential(beta 100, probs 0.9)", lambda p: SpikeAndExponential(p(100.0), probs=p([0.9]))),
    Case("SpikeAndSlab(probs)", lambda p: SpikeAndSlab(probs=p([0.2, 0.5, 0.95]))),
    Case("MixtureOfRamps(logits, scalar)", lambda p: MixtureOfRamps(logits=p(0.7))),
    Case("MixtureOfRamps(probs 0.5 and 0.99)", lambda p: MixtureOfRamps(probs=p([0.5, 0.99]))),
    Case("SmoothingConditional(overlapping exponential, z 0 and 1)", lambda p: OverlappingExponential(p(3.0), logits=p.randn(2)).conditional(p([[0.0], [1.0]]))),
    Case("SmoothingConditional(spike, z 0: point mass)", lambda p: SpikeAndExponential(p(3.0), logits=p.randn(2)).conditional(p(0.0))),
    Case("SmoothingConditional(spike-and-slab, z 1)", lambda p: SmoothingConditional(SpikeAndSlab(probs=p([0.3, 0.6])), p(1.0))),
    Case("SmoothingConditional(binary limit)", lambda p: BinaryLimit(logits=p.randn(2)).conditional(p([0.0, 1.0]))),
    Case("DiscretizedLogisticMixture(K 2, batched)", lambda p: DiscretizedLogisticMixture(p.randn(2, 2), p([[0.2, 0.7], [0.5, 0.99]]), p([-3.0, -2.0]))),
    Case("DiscretizedLogisticMixture(K 3, sharp)", lambda p: DiscretizedLogisticMixture(p.randn(3), p([0.0, 0.4, 1.0]), p([-7.0, -5.0, -6.0]))),
    Case("RBM(2+3, batched)", lambda p: RBM(p.randn(2, 2), p.randn(3), p.randn(2, 3))),
    Case("RBM(3+2, log Z supplied)", small_rbm_with_log_partition),
    Case("RBM(21+21, not enumerable)", large_sparse_rbm),
]

ABSTRACT_CLASSES = {SmoothingTransformation, SpikeSmoothingTransformation, TemperedSmoothingTransformation}
"""Public bases that supply shared machinery and are not distributions on their own."""


def test_every_public_class_is_covered():
    public = {
        value
        for value in vars(distributions).values()
        if inspect.isclass(value) and issubclass(value, Distribution) and value not in ABSTRACT_CLASSES
    }
    covered = {type(case()) for case in CASES}
    assert public - covered == set(), f"add a Case for {sorted(cls.__name__ for cls in public - covered)}"


cases = pytest.mark.parametrize("case", CASES, ids=str)


@cases
def test_sample_shapes(case):
    contract.check_sample_shapes(case)


@cases
def test_expand(case):
    contract.check_expand(case)


@cases
def test_support_attributes(case):
    contract.check_support_attributes(case)


@cases
def test_support_validation(case):
    contract.check_support_validation(case)


@cases
def test_validation_switch_is_read_at_call_time(case):
    contract.check_validation_switch(case)


@cases
def test_log_prob_is_the_law_of_the_samples(case):
    if not contract.check_law(case):
        pytest.skip("neither enumerable nor one-dimensional: no exact law to test draws against")


@cases
def test_cdf_and_icdf_are_inverse(case):
    if not contract.check_cdf_icdf_inverse(case):
        pytest.skip("no cdf/icdf")


@cases
def test_moments_match_monte_carlo(case):
    if not contract.check_moments(case):
        pytest.skip("defines no mean, variance or entropy")


@cases
def test_pickle_and_deepcopy(case):
    contract.check_pickle_and_deepcopy(case)


@cases
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_results_follow_the_parameters_dtype(case, dtype):
    contract.check_dtype(case, dtype)


@cases
def test_no_tensor_is_made_on_the_default_device(case):
    contract.check_no_default_device(case)


@cases
def test_inside_a_plate_with_trace_elbo(case):
    contract.check_plate_with_trace_elbo(case)


@cases
def test_mask_and_to_event(case):
    contract.check_mask_and_to_event(case)


@cases
def test_trace_enum_elbo_sums_the_latent_out(case):
    if not contract.check_trace_enum_elbo(case):
        pytest.skip("not enumerable")

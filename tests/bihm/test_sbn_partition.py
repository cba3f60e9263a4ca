r"""The fast SBN Z^2 estimator against exact enumeration and the generic Pyro estimator.

On a 4-3-2 BiHM every (x, h) is enumerable (16 x 32 states), so
log Z^2 = log sum_x (sum_h sqrt(p(x,h) q(h|x)))^2 (BiHM Eq. 1 summed over x) and
log p*(x) = log p~*(x) - log Z^2 are exact. Statistical checks use |estimate -
exact| < Z_SCORE_BOUND standard errors with fixed seeds.
"""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from pyro_dgm.bihm.random_bits import RandomBits
from pyro_dgm.bihm.sbn_partition import (
    SigmoidBeliefStack,
    _log_outer_terms,
    _Workspace,
    estimate_sbn_log_partition_squared,
    multiply_adds_per_outer_sample,
    sbn_bihm_log_likelihood,
)
from pyro_dgm.infer.estimators.bihm_partition import estimate_log_partition_squared
from pyro_dgm.infer.estimators.exact import all_binary_configurations
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide
from tests.infer.exact_expectations import exact_log_terms
from tests.infer.small_models import TINY_BIHM_LAYER_SIZES, tiny_bihm

Z_SCORE_BOUND = 4.0
"""|estimate - exact| < 4 standard errors: a false alarm has probability ~6e-5 per check."""

MAX_STANDARD_ERROR = 0.02
"""Each statistical check must be sharp: its standard error below this (in nats)."""

BIHM_MNIST_LAYER_SIZES = [784, 300, 200, 100, 75, 50, 35, 30, 25, 20, 15, 10, 10]
"""BiHM's best MNIST model (Sec. 4)."""


def exact_log_bound(model: SigmoidBeliefNet, guide: BottomUpGuide) -> torch.Tensor:
    r""":math:`\log \tilde p^*(x) = 2 \log \sum_h \sqrt{p(x,h) q(h|x)}` for every x (Eq. 1), (16,)."""
    log_p, log_q = exact_log_terms(model, guide)
    return 2 * torch.logsumexp(0.5 * (log_p + log_q), dim=1)


def exact_log_partition_squared(model: SigmoidBeliefNet, guide: BottomUpGuide) -> torch.Tensor:
    r""":math:`\log Z^2 = \log \sum_x \tilde p^*(x)`."""
    return torch.logsumexp(exact_log_bound(model, guide), dim=0)


@pytest.mark.parametrize("num_inner", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_exact_partition(num_inner, dtype):
    model, guide = tiny_bihm(dtype)
    exact = exact_log_partition_squared(model.double(), guide.double()).item()
    model, guide = model.to(dtype), guide.to(dtype)
    # 10^5 is not a multiple of the chunk size: the remainder chunk is exercised too
    estimate = estimate_sbn_log_partition_squared(
        model,
        guide,
        num_outer=100_000,
        num_inner=num_inner,
        chunk_size=30_000,
        generator=torch.Generator().manual_seed(0),
    )
    assert estimate.num_outer == 100_000 and estimate.num_inner == num_inner
    assert 0 < estimate.standard_error < MAX_STANDARD_ERROR
    assert abs(estimate.log_partition_squared.item() - exact) < Z_SCORE_BOUND * estimate.standard_error.item()
    assert exact < -0.5  # Z^2 clearly below 1: the check would see a Z = 1 bug


def test_agrees_with_generic_pyro_estimator():
    model, guide = tiny_bihm()
    pyro.set_rng_seed(1)
    generic = estimate_log_partition_squared(
        model, guide, torch.zeros(1, 4, dtype=torch.float64), num_outer=40_000, chunk_size=20_000
    )
    fast = estimate_sbn_log_partition_squared(
        model, guide, num_outer=200_000, generator=torch.Generator().manual_seed(1)
    )
    combined = math.hypot(generic.standard_error.item(), fast.standard_error.item())
    assert combined < MAX_STANDARD_ERROR
    assert (
        abs(generic.log_partition_squared.item() - fast.log_partition_squared.item())
        < Z_SCORE_BOUND * combined
    )


def test_outer_terms_match_a_direct_evaluation():
    r"""Per-sample :math:`\log t_j` equals the Eq. 7 term recomputed from the drawn samples.

    Catches any wrong (or missing) normaliser, whatever the sampling distribution.
    """
    model, guide = tiny_bihm()
    stack = SigmoidBeliefStack.from_modules(model, guide)
    num_rows, num_inner = 7, 3
    workspace = _Workspace(stack, num_rows, num_inner)
    with torch.inference_mode(), RandomBits("cpu", torch.Generator().manual_seed(2)) as source:
        log_terms = _log_outer_terms(stack, workspace, source)
    x, first, second = workspace.states
    bernoulli = torch.distributions.Bernoulli

    def log_joint(first, second, x):
        return (
            bernoulli(logits=model.prior.bias).log_prob(second).sum(-1)
            + bernoulli(logits=model.conditionals[1].logits(second)).log_prob(first).sum(-1)
            + bernoulli(logits=model.conditionals[0].logits(first)).log_prob(x).sum(-1)
        )

    def log_guide(first, second, x):
        return bernoulli(logits=guide.conditionals[0].logits(x)).log_prob(first).sum(-1) + bernoulli(
            logits=guide.conditionals[1].logits(first)
        ).log_prob(second).sum(-1)

    with torch.no_grad():
        outer = log_guide(first[:num_rows], second[:num_rows], x) - log_joint(
            first[:num_rows], second[:num_rows], x
        )
        inner_first = first[num_rows:].view(num_inner, num_rows, -1)
        inner_second = second[num_rows:].view(num_inner, num_rows, -1)
        inner = log_joint(inner_first, inner_second, x) - log_guide(inner_first, inner_second, x)
        expected = 0.5 * outer + torch.logsumexp(0.5 * inner, dim=0) - math.log(num_inner)
    torch.testing.assert_close(log_terms, expected)


def test_log_p_star_within_standard_errors_of_exact():
    model, guide = tiny_bihm()
    data = all_binary_configurations(4, dtype=torch.float64)
    num_samples = 100_000
    pyro.set_rng_seed(4)
    estimate = sbn_bihm_log_likelihood(
        model,
        guide,
        data,
        num_samples=num_samples,
        num_outer=200_000,
        generator=torch.Generator().manual_seed(4),
    )
    log_p, log_q = exact_log_terms(model, guide)
    log_bound = exact_log_bound(model, guide)
    exact = log_bound - torch.logsumexp(log_bound, dim=0)  # Eq. 1: p* = p~* / Z^2
    # delta method: sd(log p~*) = 2 sd_q(omega) / (sqrt(K) E_q omega), omega = sqrt(p/q)
    omega_mean = torch.exp(0.5 * log_bound)
    omega_second_moment = torch.exp(torch.logsumexp(log_p, dim=1))  # E_q omega^2 = p(x)
    bound_standard_error = 2 * torch.sqrt((omega_second_moment - omega_mean**2) / num_samples) / omega_mean
    standard_error = torch.sqrt(bound_standard_error**2 + estimate.partition.standard_error**2)
    torch.testing.assert_close(
        estimate.log_p_star, estimate.log_bound - estimate.partition.log_partition_squared
    )
    assert (standard_error < MAX_STANDARD_ERROR).all()
    assert ((estimate.log_p_star - exact).abs() < Z_SCORE_BOUND * standard_error).all()


def test_multiply_add_count_of_bihm_mnist_net():
    sizes = BIHM_MNIST_LAYER_SIZES
    products = [lower * upper for lower, upper in zip(sizes[:-1], sizes[1:])]
    assert sum(products) == 331_050
    assert multiply_adds_per_outer_sample(sizes) == 4 * 331_050 - 784 * 300 == 1_089_000
    assert multiply_adds_per_outer_sample(sizes, num_inner=3) == 2 * 331_050 + 3 * (2 * 331_050 - 784 * 300)


@pytest.mark.parametrize("num_inner", [1, 2])
def test_multiply_add_count_is_what_the_estimator_runs(num_inner):
    """The profiler's matrix-product flop count equals 2 x the documented multiply-adds."""
    sizes = [20, 12, 8, 5]
    model, guide = SigmoidBeliefNet(sizes), BottomUpGuide(sizes)
    num_outer = 64
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as profiler:
        estimate_sbn_log_partition_squared(model, guide, num_outer=num_outer, num_inner=num_inner)
    matmul_flops = sum(
        event.flops for event in profiler.key_averages() if event.key in ("aten::addmm", "aten::mm")
    )
    assert matmul_flops == 2 * num_outer * multiply_adds_per_outer_sample(sizes, num_inner)


def test_generator_makes_it_reproducible():
    model, guide = tiny_bihm()

    def run(seed):
        return estimate_sbn_log_partition_squared(
            model, guide, num_outer=1000, generator=torch.Generator().manual_seed(seed)
        ).log_partition_squared

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_rejects_what_it_cannot_run():
    model, guide = tiny_bihm()
    with pytest.raises(ValueError, match="num_inner"):
        estimate_sbn_log_partition_squared(model, guide, num_outer=10, num_inner=0)
    with pytest.raises(ValueError, match="num_samples"):
        estimate_sbn_log_partition_squared(model, guide, num_outer=0)
    with pytest.raises(ValueError, match="layer sizes differ"):
        estimate_sbn_log_partition_squared(model, BottomUpGuide([4, 3, 3]).double(), num_outer=10)
    with pytest.raises(ValueError, match="hidden layers"):
        estimate_sbn_log_partition_squared(
            SigmoidBeliefNet(TINY_BIHM_LAYER_SIZES, hidden_sizes=[5]),
            BottomUpGuide(TINY_BIHM_LAYER_SIZES),
            num_outer=10,
        )
    with pytest.raises(ValueError, match="BottomUpGuide"):
        estimate_sbn_log_partition_squared(model, model, num_outer=10)
    with pytest.raises(ValueError, match="guide's are"):
        estimate_sbn_log_partition_squared(model, BottomUpGuide(TINY_BIHM_LAYER_SIZES), num_outer=10)
    with pytest.raises(ValueError, match="partition= .* or num_outer="):
        sbn_bihm_log_likelihood(model, guide, torch.zeros(1, 4, dtype=torch.float64))

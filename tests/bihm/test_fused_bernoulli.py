"""The fused sigmoid-belief-layer kernels against torch.distributions, compiled and eager.

Every kernel is checked on logits from -40 to 40 (where a naive sigmoid or softplus
overflows or loses the sign), in float32 and float64, with the uniforms made from
the same random words by the reference, so the drawn samples must agree bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli

from pyro_dgm import compilation
from pyro_dgm.bihm import fused_bernoulli
from pyro_dgm.bihm.random_bits import uniforms_from_bits

ROWS, WIDTH = 37, 19
"""Odd sizes, so vectorised loops have tails."""

ULPS_PER_UNIT = 4
"""Absolute error allowed per unit, in ulps of 1: log(1 + e) instead of log1p costs at
most one (see the module docstring), the reference's own rounding about one more."""

RELATIVE_TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-13}
"""For the rounding of the row sum itself (about WIDTH ulps of its magnitude)."""


@pytest.fixture(params=[True, False], ids=["compiled", "eager"])
def compiled(request, monkeypatch):
    """Compile even these small operands (or run eagerly)."""
    monkeypatch.setattr(compilation, "MIN_COMPILED_ELEMENTS", 0)
    previous = compilation.compilation_enabled()
    compilation.set_compilation(request.param)
    yield request.param
    compilation.set_compilation(previous)


def operands(dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Products spanning [-40, 40] plus a bias, and random int32 words."""
    generator = torch.Generator().manual_seed(seed)
    products = torch.linspace(-40, 40, ROWS * WIDTH, dtype=dtype)[torch.randperm(ROWS * WIDTH, generator=generator)]
    bias = torch.randn(WIDTH, dtype=dtype, generator=generator)
    words = torch.randint(-(2**31), 2**31, (ROWS, WIDTH), dtype=torch.int32, generator=generator)
    return products.view(ROWS, WIDTH), bias, words


def reference_sample(logits: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    return (uniforms_from_bits(words, logits.dtype) < torch.sigmoid(logits)).to(logits.dtype)


def assert_row_sums_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    absolute = WIDTH * ULPS_PER_UNIT * torch.finfo(expected.dtype).eps
    torch.testing.assert_close(actual, expected, rtol=RELATIVE_TOLERANCE[expected.dtype], atol=absolute)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_and_score_draws_by_the_words_and_scores_exactly(compiled, dtype):
    products, bias, words = operands(dtype)
    out = torch.full((ROWS, WIDTH), -1.0, dtype=dtype)
    log_prob = fused_bernoulli.sample_and_score_(products, bias, words, out)
    logits = products + bias
    expected = reference_sample(logits, words)
    assert torch.equal(out, expected)
    assert_row_sums_close(log_prob, Bernoulli(logits=logits).log_prob(expected).sum(-1))
    assert torch.isfinite(log_prob).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_and_dot_returns_the_unnormalised_log_density(compiled, dtype):
    products, bias, words = operands(dtype, seed=1)
    out = torch.empty(ROWS, WIDTH, dtype=dtype)
    dot = fused_bernoulli.sample_and_dot_(products, bias, words, out)
    logits = products + bias
    assert torch.equal(out, reference_sample(logits, words))
    assert_row_sums_close(dot, (out * logits).sum(-1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_score_and_dot_of_given_values(compiled, dtype):
    products, bias, words = operands(dtype, seed=2)
    value = (words > 0).to(dtype)  # any binary values, not drawn from the layer
    logits = products + bias
    assert_row_sums_close(fused_bernoulli.score(products, bias, value), Bernoulli(logits=logits).log_prob(value).sum(-1))
    assert_row_sums_close(fused_bernoulli.dot(products, bias, value), (value * logits).sum(-1))


def test_draws_have_the_layer_probabilities():
    """Each unit is 1 with probability sigma(a): the count over 4000 rows is within 4 SE."""
    generator = torch.Generator().manual_seed(3)
    rows = 4000
    logits = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.5])
    words = torch.randint(-(2**31), 2**31, (rows, logits.numel()), dtype=torch.int32, generator=generator)
    out = torch.empty(rows, logits.numel())
    fused_bernoulli.sample_and_score_(torch.zeros(rows, logits.numel()), logits, words, out)
    probs = torch.sigmoid(logits)
    standard_error = torch.sqrt(probs * (1 - probs) / rows)
    assert ((out.mean(0) - probs).abs() < 4 * standard_error).all()


def test_a_compiler_failure_falls_back_to_eager_for_that_kernel_only(monkeypatch):
    attempts = []

    def failing_compile(*args, **kwargs):
        attempts.append(1)
        raise RuntimeError("no C++ compiler")

    kernel = compilation.fused(fused_bernoulli.dot.eager)
    monkeypatch.setattr(compilation, "MIN_COMPILED_ELEMENTS", 0)
    monkeypatch.setattr(torch, "compile", failing_compile)
    products, bias, words = operands(torch.float64)
    value = (words > 0).double()
    with pytest.warns(RuntimeWarning, match="running it eagerly"):
        result = kernel(products, bias, value)
    torch.testing.assert_close(result, fused_bernoulli.dot.eager(products, bias, value))
    kernel(products, bias, value)  # eager now: no second attempt, no second warning
    assert len(attempts) == 1
    assert compilation.compilation_enabled()


def test_bad_arguments_raise_and_do_not_switch_compilation_off(monkeypatch):
    monkeypatch.setattr(compilation, "MIN_COMPILED_ELEMENTS", 0)
    products, bias, _ = operands(torch.float64)
    with pytest.raises(RuntimeError):
        fused_bernoulli.dot(products, bias, torch.zeros(2, 3, dtype=torch.float64))
    assert compilation.compilation_enabled()


def test_the_fallback_warning_quotes_only_the_first_lines_of_a_long_compiler_error(monkeypatch):
    def failing_compile(*args, **kwargs):
        raise RuntimeError("backend='inductor' raised:\n\nCppCompileError: C++ compile error\n"
                           + "\n".join(f"compiler line {number}" for number in range(200)))

    kernel = compilation.fused(fused_bernoulli.dot.eager)
    monkeypatch.setattr(compilation, "MIN_COMPILED_ELEMENTS", 0)
    monkeypatch.setattr(torch, "compile", failing_compile)
    products, bias, words = operands(torch.float64)
    with pytest.warns(RuntimeWarning) as caught:
        kernel(products, bias, (words > 0).double())
    (message,) = [str(warning.message) for warning in caught]
    assert "CppCompileError: C++ compile error compiler line 0 [... 199 more lines]" in message
    assert "compiler line 1" not in message and "stale Inductor cache" in message

r"""The torch/Pyro distribution contract as plain checks, each ``check_*(case)`` raising ``AssertionError``.

A :class:`Case` builds one distribution from a :class:`Parameters` factory (CPU tensors of one
dtype from a fixed seed), so every check can rebuild it in float64, under another validation
setting, or with ``meta`` as torch's default device. ``test_contract.py`` runs every check on
every registered case, and runs some on planted-defect mutants to show that they fail.

Statistical checks use fixed seeds, float64 and tolerances from the estimator's standard
error (:data:`STANDARD_ERRORS`), plus the Kolmogorov-Smirnov and total-variation bounds below.
"""

from __future__ import annotations

import contextlib
import copy
import math
import pickle
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from scipy.integrate import quad
from torch.distributions import Distribution, kl_divergence

from tests.total_variation import total_variation, total_variation_threshold

PARAMETER_SEED = 2018
"""Seed of the generator that draws a case's random parameters (the same in every dtype)."""

SAMPLE_SEED = 0
"""Seed set before every statistical draw."""

NUM_DRAWS = 20_000
"""Draws per statistical check: a KS/TV resolution of about 0.02, moments to about 1 % of a sd."""

STANDARD_ERRORS = 5.0
"""Monte-Carlo tolerance in standard errors: a correct moment fails with probability 6e-7."""

FALSE_ALARM_PROBABILITY = 1e-6
"""Chance that a correct sampler fails one KS or TV check."""

ROUNDING_ULPS = 256
"""Slack, in units of the dtype's epsilon, for identities that hold up to rounding."""

QUADRATURE_TOLERANCE = 1e-9
"""Absolute tolerance asked of the adaptive quadrature (Gauss-Kronrod, float64)."""

EXACT_SUM_ULPS = 4096
"""Slack, in units of epsilon, between a closed form and a sum of up to 256 float64 terms."""

BREAK_LEVELS = (1e-3, 1e-2, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1 - 1e-3)
"""Levels whose quantiles break the interval of integration (the mass between breaks is then known)."""

QUADRATURE_INTERVALS = 2000
"""Most subintervals the adaptive quadrature may use."""

NORMALISATION_TOLERANCE = 1e-6
"""How far from 1 the total mass (quadrature plus atoms, or an enumeration) may be, in float64."""

SAMPLE_SHAPES = [torch.Size(), torch.Size([2]), torch.Size([2, 3])]
EXPANDED_BATCH_PREFIX = torch.Size([2])
PLATE_SIZE = 3
OUT_OF_SUPPORT_CANDIDATES = (0.5, 2.0, -1.0, math.nan)
"""Values substituted into a sample to leave the support; a check uses those the support refuses."""


class Parameters:
    """Makes a case's parameters: CPU tensors (explicitly, whatever the default device) of one dtype."""

    def __init__(self, dtype: torch.dtype = torch.float32, seed: int = PARAMETER_SEED) -> None:
        self.dtype = dtype
        self._generator = torch.Generator(device="cpu").manual_seed(seed)

    def __call__(self, values) -> torch.Tensor:
        return torch.tensor(values, dtype=self.dtype, device="cpu")

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self._generator, dtype=self.dtype, device="cpu")


@dataclass(frozen=True)
class Case:
    """One parameter setting of one distribution class: ``build(parameters) -> distribution``."""

    name: str
    build: Callable[[Parameters], Distribution]

    def __call__(self, dtype: torch.dtype = torch.float32, seed: int = PARAMETER_SEED) -> Distribution:
        """The distribution with parameters of ``dtype``; another ``seed`` redraws its random parameters."""
        return self.build(Parameters(dtype, seed))

    def __str__(self) -> str:
        return self.name


# ----------------------------------------------------------------------------- utilities


@contextlib.contextmanager
def contract(what: str) -> Iterator[None]:
    """Report any exception inside as a violation of ``what`` (an ``AssertionError``)."""
    try:
        yield
    except NotImplementedError:
        raise
    except Exception as error:  # a crash (or an assertion inside torch or Pyro) is a violation too
        raise AssertionError(f"{what}: {type(error).__name__}: {error}") from error


def optional(method: Callable[[], torch.Tensor]) -> torch.Tensor | None:
    """The method's result, or ``None`` where the distribution does not define it."""
    try:
        return method()
    except NotImplementedError:
        return None


def event_dims(distribution: Distribution) -> tuple[int, ...]:
    return tuple(range(-len(distribution.event_shape), 0))


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str, ulps: float = ROUNDING_ULPS) -> None:
    expected = expected.to(actual.dtype)
    tolerance = ulps * torch.finfo(actual.dtype).eps * (1 + expected.abs())
    both_infinite = torch.isinf(actual) & (actual == expected)
    close = ((actual - expected).abs() <= tolerance) | both_infinite
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert bool(close.all()), f"{what}: largest error {float((actual - expected).abs().max())}"


def out_of_support_value(distribution: Distribution) -> torch.Tensor:
    """A sample with one entry replaced so that it leaves the support."""
    sample = distribution.sample()
    for candidate in OUT_OF_SUPPORT_CANDIDATES:
        value = sample.clone()
        value.view(-1)[0] = candidate
        if not bool(distribution.support.check(value).all()):
            return value
    raise AssertionError(f"no value of OUT_OF_SUPPORT_CANDIDATES leaves {distribution.support}: add one")


def is_one_dimensional(distribution: Distribution) -> bool:
    """Scalar events with a CDF: checked by Kolmogorov-Smirnov and quadrature."""
    return distribution.event_shape == torch.Size() and optional(
        lambda: distribution.cdf(distribution.sample())
    ) is not None


def draws(distribution: Distribution, num_draws: int = NUM_DRAWS) -> torch.Tensor:
    pyro.set_rng_seed(SAMPLE_SEED)
    return distribution.sample((num_draws,))


# ------------------------------------------------------------------- shapes and expand


def check_sample_shapes(case: Case) -> None:
    """``sample``/``rsample`` give sample_shape + batch_shape + event_shape; ``log_prob`` drops the event."""
    distribution = case()
    methods = [distribution.sample] + ([distribution.rsample] if distribution.has_rsample else [])
    for method in methods:
        for sample_shape in SAMPLE_SHAPES:
            expected = sample_shape + distribution.batch_shape + distribution.event_shape
            with contract(f"{case}: {method.__name__}({tuple(sample_shape)})"):
                value = method(sample_shape)
                log_prob = distribution.log_prob(value)
            assert value.shape == expected, f"{case}: {method.__name__}{tuple(sample_shape)} has shape {tuple(value.shape)}, not {tuple(expected)}"
            expected_log_prob = sample_shape + distribution.batch_shape
            assert log_prob.shape == expected_log_prob, f"{case}: log_prob has shape {tuple(log_prob.shape)}, not {tuple(expected_log_prob)}"


def check_expand(case: Case) -> None:
    """``expand`` gives the new batch shape, the same law (log_prob, mean) broadcast, and chains."""
    distribution = case()
    batch_shape = EXPANDED_BATCH_PREFIX + distribution.batch_shape
    with contract(f"{case}: expand"):
        expanded = distribution.expand(batch_shape)
        value = expanded.sample()
        twice = expanded.expand(EXPANDED_BATCH_PREFIX + batch_shape)
    assert type(expanded) is type(distribution), f"{case}: expand returned a {type(expanded).__name__}"
    shapes = (expanded.batch_shape, expanded.event_shape, value.shape, twice.batch_shape)
    expected = (batch_shape, distribution.event_shape, batch_shape + distribution.event_shape, EXPANDED_BATCH_PREFIX + batch_shape)
    assert shapes == expected, f"{case}: expand gave (batch, event, sample, expand twice) shapes {shapes}, not {expected}"
    assert_close(expanded.log_prob(value), distribution.log_prob(value), f"{case}: expanded log_prob")
    for name in ("mean", "variance"):
        moment = optional(lambda: getattr(distribution, name))
        if moment is not None:
            assert_close(getattr(expanded, name), moment.expand(batch_shape + distribution.event_shape), f"{case}: expanded {name}")


# ------------------------------------------------------------------- support and validation


def check_support_attributes(case: Case) -> None:
    """torch's ``test_support_attributes``, plus: draws lie in the support; enumerable means discrete."""
    distribution = case()
    support = distribution.support
    assert support.event_dim == len(distribution.event_shape), f"{case}: support.event_dim {support.event_dim}"
    class_support = type(distribution).support
    for attribute in ("event_dim", "is_discrete"):
        try:
            declared = getattr(class_support, attribute)
        except NotImplementedError:
            continue  # a dependent property that leaves it to the instance
        assert declared == getattr(support, attribute), (
            f"{case}: {type(distribution).__name__}.support.{attribute} is {declared} on the class "
            f"but {getattr(support, attribute)} on the instance"
        )
    assert bool(support.check(distribution.sample((4,))).all()), f"{case}: a draw is outside {support}"
    if distribution.has_enumerate_support:
        assert support.is_discrete, f"{case}: enumerable but the support is not discrete"
        assert bool(support.check(distribution.enumerate_support()).all()), f"{case}: enumerate_support leaves the support"


def check_support_validation(case: Case) -> None:
    """With validation on, an out-of-support value is refused in torch's words; off, it is scored."""
    with pyro.validation_enabled(True):
        distribution = case()
        value = out_of_support_value(distribution)
        try:
            distribution.log_prob(value)
        except ValueError as error:
            assert "Expected value argument" in str(error) and "support" in str(error), (
                f"{case}: the support error does not use torch's wording: {error}"
            )
        else:
            raise AssertionError(f"{case}: log_prob accepted a value outside {distribution.support}")
    with pyro.validation_enabled(False):
        with contract(f"{case}: log_prob of an unchecked value"):
            case().log_prob(value)


def check_validation_switch(case: Case) -> None:
    """``validate_args=None`` follows ``pyro.validation_enabled`` at each call, as torch reads its global default."""
    with pyro.validation_enabled(False):
        built_unvalidated = case()
        value = out_of_support_value(built_unvalidated)
    with pyro.validation_enabled(True):
        built_validated = case()
        try:
            built_unvalidated.log_prob(value)
        except ValueError:
            pass
        else:
            raise AssertionError(f"{case}: built with validation off, it ignores pyro.validation_enabled(True)")
    with pyro.validation_enabled(False):
        with contract(f"{case}: built with validation on, it ignores pyro.validation_enabled(False)"):
            built_validated.log_prob(value)


# ------------------------------------------------------------------- law: log_prob vs samples


def repeated(sorted_values: torch.Tensor) -> torch.Tensor:
    """Which entries equal a neighbour along dim 0 (sorted): in float64 only an atom is hit twice."""
    same_as_next = sorted_values[1:] == sorted_values[:-1]
    result = torch.zeros_like(sorted_values, dtype=torch.bool)
    result[1:] |= same_as_next
    result[:-1] |= same_as_next
    return result


def _ks_distance(sorted_values: torch.Tensor, cdf: torch.Tensor, atom_mass: torch.Tensor) -> float:
    r"""sup |F_n - F| over the draws of one column, from both sides of each jump: F(x-) = F(x) - P(X = x)."""
    num = sorted_values.numel()
    right = torch.searchsorted(sorted_values, sorted_values, right=True).double() / num  # F_n(x)
    left = torch.searchsorted(sorted_values, sorted_values, right=False).double() / num  # F_n(x-)
    return float(torch.maximum((right - cdf).abs(), (left - (cdf - atom_mass)).abs()).max())


def _one_dimensional_law(case: Case, distribution: Distribution) -> None:
    r"""Kolmogorov-Smirnov of the draws against ``cdf``, and total mass: quadrature of the density plus the atoms.

    Densities are w.r.t. counting measure on atoms plus Lebesgue measure elsewhere (the package's
    convention: :math:`\delta_0 + \lambda` for the spikes), so ``log_prob`` at an atom is its mass.
    """
    batch_shape = distribution.batch_shape
    sorted_values = draws(distribution).reshape(NUM_DRAWS, -1).sort(0).values  # (draw, batch element)
    as_batch = sorted_values.reshape((NUM_DRAWS,) + batch_shape)
    cdf = distribution.cdf(as_batch).reshape(NUM_DRAWS, -1)
    atoms = repeated(sorted_values)
    mass = torch.where(atoms, distribution.log_prob(as_batch).reshape(NUM_DRAWS, -1).exp(), torch.zeros_like(cdf))
    critical = math.sqrt(math.log(2 / FALSE_ALARM_PROBABILITY) / 2 / NUM_DRAWS)  # Kolmogorov, asymptotic
    for element in range(sorted_values.size(1)):
        distance = _ks_distance(*(column[:, element].contiguous() for column in (sorted_values, cdf, mass)))
        assert distance <= critical, f"{case}: KS distance {distance:.4f} > {critical:.4f} (batch element {element})"
    # total mass = the integral of the density between the support's ends + each atom seen, once
    low = float(distribution.icdf(torch.zeros((), dtype=cdf.dtype)).min())
    high = float(distribution.icdf(torch.ones((), dtype=cdf.dtype)).max())

    def density(point: float) -> np.ndarray:
        zeta = torch.full(batch_shape, point, dtype=cdf.dtype)
        with pyro.validation_enabled(False):  # a discrete support refuses the points between its atoms
            return distribution.log_prob(zeta).exp().reshape(-1).numpy()

    # QUADPACK (QAGP), one batch element at a time, broken at the element's quantiles so that no
    # subinterval hides a narrow peak from the first rule; its extrapolation (Wynn's epsilon) converges
    # on an integrable singularity at an end (the power-function smoother's zeta^(1/beta - 1)), where
    # quad_vec's plain bisection halves until a node rounds onto the end, where the density is infinite.
    quantiles = distribution.icdf(torch.tensor(BREAK_LEVELS, dtype=cdf.dtype).reshape((-1,) + (1,) * len(batch_shape)))
    quantiles = quantiles.expand((len(BREAK_LEVELS),) + batch_shape).reshape(len(BREAK_LEVELS), -1).detach().numpy()

    def mass_between_ends(element: int) -> float:
        breaks = sorted({float(point) for point in quantiles[:, element] if low < point < high})
        return quad(
            lambda point: float(density(point)[element]), low, high,
            points=breaks or None, epsabs=QUADRATURE_TOLERANCE, epsrel=0.0, limit=QUADRATURE_INTERVALS,
        )[0]

    continuous_mass = np.array([mass_between_ends(element) for element in range(math.prod(batch_shape))])
    first_of_atom = atoms.clone()
    first_of_atom[1:] &= sorted_values[1:] != sorted_values[:-1]
    atom_mass = torch.where(first_of_atom, mass, torch.zeros_like(mass)).sum(0).numpy()
    total = continuous_mass + atom_mass
    assert np.all(np.abs(total - 1) <= NORMALISATION_TOLERANCE), (
        f"{case}: total mass {total} (density {continuous_mass} + atoms {atom_mass})"
    )


def _state_index(values: torch.Tensor, support: torch.Tensor, num_event_dims: int) -> torch.Tensor:
    """Index into ``support`` (S, *batch, *event) of each value (N, *batch, *event): (N, *batch)."""
    matches = values.unsqueeze(1) == support.unsqueeze(0)  # (N, S, *batch, *event)
    if num_event_dims:
        matches = matches.flatten(-num_event_dims).all(-1)
    assert bool(matches.any(1).all()), "a draw is not among the enumerated states"
    return matches.to(torch.uint8).argmax(1)


def _enumerated_law(case: Case, distribution: Distribution) -> None:
    """Masses over ``enumerate_support`` sum to one, and the draws' frequencies match them (TV bound)."""
    support = distribution.enumerate_support()  # (S, *batch, *event)
    masses = distribution.log_prob(support).exp()  # (S, *batch)
    total = masses.sum(0)
    assert bool(((total - 1).abs() <= NORMALISATION_TOLERANCE).all()), f"{case}: masses sum to {total}"
    index = _state_index(draws(distribution), support, len(distribution.event_shape)).reshape(NUM_DRAWS, -1)
    masses = masses.reshape(masses.size(0), -1)
    for element in range(index.size(1)):
        frequencies = torch.bincount(index[:, element], minlength=masses.size(0)).double() / NUM_DRAWS
        distance = total_variation(frequencies, masses[:, element].double())
        bound = total_variation_threshold(masses[:, element].double(), NUM_DRAWS, FALSE_ALARM_PROBABILITY)
        assert distance <= bound, f"{case}: TV {distance:.4f} > {bound:.4f} between draws and masses (element {element})"


def check_law(case: Case) -> bool:
    """``log_prob`` is the law of the draws: by enumeration, or KS + quadrature in one dimension.

    :returns: whether a check applied (False: neither enumerable nor one-dimensional).
    """
    distribution = case(torch.float64)
    if distribution.has_enumerate_support:
        _enumerated_law(case, distribution)
        return True
    if is_one_dimensional(distribution):
        _one_dimensional_law(case, distribution)
        return True
    return False


def _cdf_of_the_float_below(distribution: Distribution, quantiles: torch.Tensor) -> torch.Tensor:
    r""":math:`F(x^-)` as a float sees it: :math:`F` at the float below :math:`x`, and 0 at the support's lowest point.

    A generalised inverse in floating point is the smallest float :math:`x` with :math:`F(x) \ge \rho`,
    so :math:`F(\text{float below } x) < \rho`. Between the two floats :math:`F` jumps by an atom's
    mass, or by whatever mass one float spans: next to an integrable singularity that is visible
    (power-function smoother, :math:`\beta = 8`, float64: :math:`q[(2^{-52})^{1/8} - (2^{-53})^{1/8}] = 0.0009 q`
    between :math:`1 - 2^{-52}` and :math:`1 - 2^{-53}`), so :math:`F(x)` minus the atoms is no left limit there.
    """
    lowest = distribution.icdf(torch.zeros((), dtype=quantiles.dtype))
    inside = quantiles > lowest
    below = torch.where(inside, torch.nextafter(quantiles, torch.full_like(quantiles, -math.inf)), quantiles)
    with pyro.validation_enabled(False):  # a discrete support refuses the floats between its atoms
        return torch.where(inside, distribution.cdf(below), torch.zeros_like(quantiles))


def check_cdf_icdf_inverse(case: Case) -> bool:
    r"""``icdf`` is the generalised inverse of ``cdf``: :math:`F(x-) \le \rho \le F(x)` at :math:`x = F^{-1}(\rho)`, and :math:`F^{-1}(F(x)) = x`.

    :returns: whether the distribution has both.
    """
    distribution = case(torch.float64)
    if distribution.event_shape != torch.Size():
        return False
    eps = torch.finfo(torch.float64).eps
    levels = torch.linspace(0, 1, 1001, dtype=torch.float64).reshape((-1,) + (1,) * len(distribution.batch_shape))
    quantiles = optional(lambda: distribution.icdf(levels))
    if quantiles is None or optional(lambda: distribution.cdf(quantiles)) is None:
        return False
    cdf = distribution.cdf(quantiles)
    quantiles = quantiles.expand(cdf.shape)
    left_limit = _cdf_of_the_float_below(distribution, quantiles)
    slack = ROUNDING_ULPS * eps
    assert bool((cdf >= levels - slack).all()), f"{case}: F(F^-1(rho)) < rho by {float((levels - cdf).max())}"
    assert bool((left_limit <= levels + slack).all()), f"{case}: F(F^-1(rho)-) > rho by {float((left_limit - levels).max())}"
    values = draws(distribution, 1000)
    round_trip = distribution.icdf(distribution.cdf(values))
    density = distribution.log_prob(values).exp()
    tolerance = ROUNDING_ULPS * eps * (values.abs() + 1 / density)  # |dx| = |dF| / density
    error = (round_trip - values).abs()
    assert bool((error <= tolerance).all()), f"{case}: |F^-1(F(x)) - x| up to {float(error.max())}"
    return True


# ------------------------------------------------------------------- moments


def _exact_moments(distribution: Distribution) -> dict[str, torch.Tensor]:
    """Mean, variance and entropy as sums over ``enumerate_support``."""
    support = distribution.enumerate_support()  # (S, *batch, *event)
    log_masses = distribution.log_prob(support)  # (S, *batch)
    masses = log_masses.exp()
    weights = masses.reshape(masses.shape + (1,) * len(distribution.event_shape))
    mean = (weights * support).sum(0)
    return {
        "mean": mean,
        "variance": (weights * (support - mean) ** 2).sum(0),
        "entropy": -torch.where(masses > 0, masses * log_masses, torch.zeros_like(masses)).sum(0),
    }


def _monte_carlo_tolerances(distribution: Distribution, claimed: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Monte-Carlo estimates of the claimed moments and :data:`STANDARD_ERRORS` standard errors of each."""
    values = draws(distribution)
    sample_mean = values.mean(0)
    centred = values - sample_mean
    sample_variance = centred.pow(2).mean(0)
    estimates, tolerances = {"mean": sample_mean, "variance": sample_variance}, {}
    spread = sample_variance if "variance" not in claimed else torch.maximum(sample_variance, claimed["variance"])
    tolerances["mean"] = STANDARD_ERRORS * (spread / NUM_DRAWS).sqrt()
    fourth = centred.pow(4).mean(0)  # Var(sample variance) = (mu_4 - sigma^4) / N
    tolerances["variance"] = STANDARD_ERRORS * ((fourth - sample_variance**2).clamp(min=0) / NUM_DRAWS).sqrt()
    if "entropy" in claimed:
        surprise = -distribution.log_prob(values)
        estimates["entropy"] = surprise.mean(0)
        tolerances["entropy"] = STANDARD_ERRORS * surprise.std(0) / math.sqrt(NUM_DRAWS)
    return estimates, tolerances


def check_moments(case: Case) -> list[str]:
    """``mean``, ``variance`` and ``entropy``, where defined: exact sums if enumerable, else Monte Carlo.

    Monte Carlo tolerances are :data:`STANDARD_ERRORS` standard errors of the estimator. An
    enumerable distribution is checked exactly instead: it may put a mass far below
    1/:data:`NUM_DRAWS` on a state (|logits| 30) that no draw shows, which biases the sample
    moments by more than their estimated error.

    :returns: the moments the distribution defines (those checked).
    """
    distribution = case(torch.float64)
    claimed = {
        name: value
        for name, value in (
            ("mean", optional(lambda: distribution.mean)),
            ("variance", optional(lambda: distribution.variance)),
            ("entropy", optional(distribution.entropy)),
        )
        if value is not None
    }
    if not claimed:
        return []
    if distribution.has_enumerate_support:
        exact = _exact_moments(distribution)
        for name, value in claimed.items():
            assert_close(value, exact[name], f"{case}: {name} against the sum over the support", ulps=EXACT_SUM_ULPS)
        return list(claimed)
    estimates, tolerances = _monte_carlo_tolerances(distribution, claimed)
    rounding = ROUNDING_ULPS * torch.finfo(torch.float64).eps
    for name, value in claimed.items():
        error = (estimates[name] - value).abs()
        assert bool((error <= tolerances[name] + rounding * (1 + value.abs())).all()), (
            f"{case}: {name} {value} vs Monte Carlo {estimates[name]} (tolerance {tolerances[name]})"
        )
    return list(claimed)


def check_kl_divergence(case: Case) -> bool:
    r"""A registered ``kl_divergence(p, p')`` is 0 for equal laws and :math:`\mathbb E_p[\log p - \log p']` otherwise.

    :math:`p'` is the same case with its random parameters redrawn (another seed); Monte Carlo
    within :data:`STANDARD_ERRORS` standard errors.
    :returns: whether a KL is registered for the class against itself.
    """
    distribution = case(torch.float64)
    other = case(torch.float64, seed=PARAMETER_SEED + 1)
    try:
        self_divergence = kl_divergence(distribution, case(torch.float64))
    except NotImplementedError:
        return False
    assert_close(self_divergence, torch.zeros_like(self_divergence), f"{case}: KL(p || p)")
    divergence = kl_divergence(distribution, other)
    assert divergence.shape == distribution.batch_shape, f"{case}: KL has shape {tuple(divergence.shape)}"
    values = draws(distribution)
    log_ratio = distribution.log_prob(values) - other.log_prob(values)
    tolerance = STANDARD_ERRORS * log_ratio.std(0) / math.sqrt(NUM_DRAWS) + ROUNDING_ULPS * torch.finfo(torch.float64).eps
    error = (log_ratio.mean(0) - divergence).abs()
    assert bool((error <= tolerance).all()), f"{case}: KL {divergence} vs Monte Carlo {log_ratio.mean(0)}"
    return True


# ------------------------------------------------------------------- copies, dtype, device


def _same_behaviour(case: Case, original: Distribution, copied: Distribution, how: str) -> None:
    assert type(copied) is type(original), f"{case}: {how} gave a {type(copied).__name__}"
    assert copied.batch_shape == original.batch_shape and copied.event_shape == original.event_shape
    pyro.set_rng_seed(SAMPLE_SEED)
    value = original.sample((3,))
    pyro.set_rng_seed(SAMPLE_SEED)
    assert torch.equal(copied.sample((3,)), value), f"{case}: {how} samples differently from the original"
    assert torch.equal(copied.log_prob(value), original.log_prob(value)), f"{case}: {how} scores differently"


def check_pickle_and_deepcopy(case: Case) -> None:
    distribution = case()
    with contract(f"{case}: pickle"):
        pickled = pickle.loads(pickle.dumps(distribution))
    _same_behaviour(case, distribution, pickled, "pickle")
    with contract(f"{case}: deepcopy"):
        copied = copy.deepcopy(distribution)
    _same_behaviour(case, distribution, copied, "deepcopy")


def _every_result(distribution: Distribution) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor the distribution computes, by name (methods it does not define are skipped)."""
    value = distribution.sample((2,))
    yield "sample", value
    yield "log_prob", distribution.log_prob(value)
    if distribution.has_rsample:
        yield "rsample", distribution.rsample((2,))
    for name in ("mean", "variance"):
        result = optional(lambda: getattr(distribution, name))
        if result is not None:
            yield name, result
    for name, method in (("entropy", distribution.entropy), ("cdf", lambda: distribution.cdf(value))):
        result = optional(method)
        if result is not None:
            yield name, result
    if distribution.event_shape == torch.Size():
        level = torch.full(distribution.batch_shape, 0.3, dtype=value.dtype, device=value.device)
        result = optional(lambda: distribution.icdf(level))
        if result is not None:
            yield "icdf", result
    if distribution.has_enumerate_support:
        yield "enumerate_support", distribution.enumerate_support()
        yield "enumerate_support(expand=False)", distribution.enumerate_support(expand=False)
    expanded = distribution.expand(EXPANDED_BATCH_PREFIX + distribution.batch_shape)
    yield "expand().sample", expanded.sample()
    yield "expand().log_prob", expanded.log_prob(value)


def check_dtype(case: Case, dtype: torch.dtype) -> None:
    """Every floating result has the parameters' dtype."""
    distribution = case(dtype)
    with contract(f"{case}: in {dtype}"):
        results = list(_every_result(distribution))
    for name, result in results:
        assert result.dtype == dtype, f"{case}: {name} is {result.dtype} for {dtype} parameters"


def check_no_default_device(case: Case) -> None:
    """Nothing is created on torch's default device: with ``meta`` as default, every result stays on the CPU."""
    with torch.device("meta"):
        with contract(f"{case}: a tensor was made on the default device (meta)"):
            distribution = case()
            results = list(_every_result(distribution))
    for name, result in results:
        assert result.device.type == "cpu", f"{case}: {name} is on {result.device}, not with the parameters on cpu"


# ------------------------------------------------------------------- Pyro: plates, ELBO, mask, to_event


def _batch_plates(batch_shape: torch.Size) -> contextlib.ExitStack:
    """One ``pyro.plate`` per batch dim, so a distribution's batch is declared independent."""
    stack = contextlib.ExitStack()
    for position, size in enumerate(batch_shape):
        stack.enter_context(pyro.plate(f"batch_{position}", size, dim=position - len(batch_shape)))
    return stack


def check_plate_with_trace_elbo(case: Case) -> None:
    r"""Inside a data plate, ``Trace_ELBO`` gives :math:`-\sum \log p(\text{data})` when guide and prior agree.

    The latent site has the same law in model and guide, so its terms cancel; the plate
    expands the distribution to (plate, *batch), and Pyro's shape checks run (validation on).
    """
    distribution = case()
    num_batch_dims = len(distribution.batch_shape)
    pyro.set_rng_seed(SAMPLE_SEED)
    data = distribution.sample((PLATE_SIZE,))

    def model() -> None:
        with pyro.plate("data", PLATE_SIZE, dim=-num_batch_dims - 1), _batch_plates(distribution.batch_shape):
            pyro.sample("latent", distribution)
            pyro.sample("observed", distribution, obs=data)

    def guide() -> None:
        with pyro.plate("data", PLATE_SIZE, dim=-num_batch_dims - 1), _batch_plates(distribution.batch_shape):
            pyro.sample("latent", distribution)

    with pyro.validation_enabled(True), contract(f"{case}: Trace_ELBO in a plate"):
        elbo = Trace_ELBO(max_plate_nesting=num_batch_dims + 1)
        loss = elbo.loss(model, guide)
        trace = pyro.poutine.trace(model).get_trace()
        trace.compute_log_prob()
    expected = -float(distribution.log_prob(data).sum())
    assert math.isclose(loss, expected, rel_tol=1e-5, abs_tol=1e-4), f"{case}: Trace_ELBO loss {loss} != {expected}"
    latent_shape = trace.nodes["latent"]["log_prob"].shape
    expected_shape = (PLATE_SIZE,) + distribution.batch_shape
    assert latent_shape == expected_shape, f"{case}: log_prob in a plate has shape {tuple(latent_shape)}, not {expected_shape}"


def check_mask_and_to_event(case: Case) -> None:
    """``mask`` zeroes log_prob where the mask is False; ``to_event(1)`` sums the rightmost batch dim."""
    distribution = case()
    value = distribution.sample((2,))
    log_prob = distribution.log_prob(value)
    mask = torch.arange(math.prod(distribution.batch_shape)).reshape(distribution.batch_shape) % 2 == 0
    with contract(f"{case}: mask"):
        all_masked = distribution.mask(False).log_prob(value)
        masked = distribution.mask(mask).log_prob(value)
    assert bool((all_masked == 0).all()), f"{case}: mask(False) leaves log_prob"
    assert_close(masked, torch.where(mask, log_prob, torch.zeros_like(log_prob)), f"{case}: mask(tensor)")
    if distribution.batch_shape:
        with contract(f"{case}: to_event(1)"):
            independent = distribution.to_event(1)
            summed = independent.log_prob(value)
            sample = independent.sample((2,))
        assert independent.event_shape == distribution.batch_shape[-1:] + distribution.event_shape
        assert sample.shape == (2,) + distribution.batch_shape + distribution.event_shape
        assert_close(summed, log_prob.sum(-1), f"{case}: to_event(1).log_prob")


def check_trace_enum_elbo(case: Case) -> bool:
    r"""``TraceEnum_ELBO`` sums an enumerable latent out: its loss is the hand sum :math:`-\log \sum_z p(z)\, p(y \mid z)`.

    :math:`y \sim \mathcal N(s(z), 1)` observed, :math:`s(z)` the sum of the event's entries.
    :returns: whether the distribution is enumerable.
    """
    distribution = case(torch.float64)
    if not distribution.has_enumerate_support:
        return False
    num_batch_dims = len(distribution.batch_shape)
    observed = torch.linspace(-1.0, 2.0, math.prod(distribution.batch_shape) or 1, dtype=torch.float64)
    observed = observed.reshape(distribution.batch_shape)

    def location(z: torch.Tensor) -> torch.Tensor:
        return z.sum(event_dims(distribution)) if distribution.event_shape else z

    def model() -> None:
        with _batch_plates(distribution.batch_shape):
            z = pyro.sample("z", distribution, infer={"enumerate": "parallel"})
            pyro.sample("y", dist.Normal(location(z), 1.0), obs=observed)

    with pyro.validation_enabled(True), contract(f"{case}: TraceEnum_ELBO"):
        loss = TraceEnum_ELBO(max_plate_nesting=num_batch_dims).loss(model, lambda: None)
    support = distribution.enumerate_support()
    joint = distribution.log_prob(support) + dist.Normal(location(support), 1.0).log_prob(observed)
    expected = -float(torch.logsumexp(joint, 0).sum())
    assert math.isclose(loss, expected, rel_tol=1e-9, abs_tol=1e-9), f"{case}: TraceEnum_ELBO loss {loss} != hand sum {expected}"
    return True


__all__ = [
    "Case",
    "Parameters",
    "check_cdf_icdf_inverse",
    "check_dtype",
    "check_expand",
    "check_kl_divergence",
    "check_law",
    "check_mask_and_to_event",
    "check_moments",
    "check_no_default_device",
    "check_pickle_and_deepcopy",
    "check_plate_with_trace_elbo",
    "check_sample_shapes",
    "check_support_attributes",
    "check_support_validation",
    "check_trace_enum_elbo",
    "check_validation_switch",
]

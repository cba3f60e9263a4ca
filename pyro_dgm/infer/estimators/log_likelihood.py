r"""Importance-weighted estimate of the marginal log-likelihood, chunked over samples.

For each data point :math:`x_b` and :math:`K` samples :math:`h_k \sim q(h \mid x_b)`
(Burda et al., 2016; BiHM Eq. 5),

.. math::

    \log \hat p(x_b) = \log \frac1K \sum_{k=1}^K w_{k,b}, \qquad
    w_{k,b} = \frac{p(x_b, h_k)}{q(h_k \mid x_b)} .

:math:`\hat p(x_b)` is unbiased, so :math:`\mathbb E \log \hat p(x_b) \le \log p(x_b)`
(Jensen), with a bias :math:`\approx -\operatorname{Var}_q(w) / (2K\,p(x_b)^2)` that
vanishes as :math:`K \to \infty`. Evaluation uses :math:`K = 10^3 \ldots 10^5`, so the
K samples are drawn in chunks of ``chunk_size`` particles (one vectorised model/guide
pass each, :class:`~pyro_dgm.infer.importance.ImportanceWeightedObjective`) and only
running log-sums :math:`\log \sum_k w_k^a` are kept (:class:`StreamingLogPowerSums`);
memory is bounded by one chunk. The estimator is generic: any model/guide pair in
which the guide samples every latent site of the model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from pyro_dgm.infer.importance import ImportanceWeightedObjective

DEFAULT_CHUNK_SIZE = 1000
"""Particles per vectorised pass: 1000 x a minibatch of 100 x 784 pixels is ~0.3 GB in float32."""


class ZeroImportanceWeightsWarning(RuntimeWarning):
    """Every importance weight of some data point is zero: its estimate is -inf and its ESS NaN."""


class StreamingLogPowerSums:
    r"""Running :math:`\log \sum_k w_k^a` along dim 0, for a few powers :math:`a`, in log space.

    Chunks of log-values :math:`\log w` (shape ``(k, ...)``) are folded in with
    :func:`torch.logaddexp`, so the result equals the log-sum over all chunks at once
    up to floating-point rounding, whatever the chunking.
    """

    def __init__(self, powers: Sequence[float]) -> None:
        self.powers = tuple(powers)
        self.count = 0
        self._log_sums: dict[float, torch.Tensor] = {}

    def update(self, log_values: torch.Tensor) -> None:
        for power in self.powers:
            chunk = torch.logsumexp(power * log_values, dim=0)
            previous = self._log_sums.get(power)
            self._log_sums[power] = chunk if previous is None else torch.logaddexp(previous, chunk)
        self.count += log_values.size(0)

    def log_sum(self, power: float) -> torch.Tensor:
        r""":math:`\log \sum_k w_k^{a}` with ``a = power``."""
        if power not in self._log_sums:
            raise ValueError(f"power {power} was not accumulated (have {self.powers})")
        return self._log_sums[power]

    def log_mean(self, power: float) -> torch.Tensor:
        r""":math:`\log \frac1K \sum_k w_k^{a}`."""
        return self.log_sum(power) - math.log(self.count)

    def effective_sample_size(self, power: float = 1.0) -> torch.Tensor:
        r"""Kish's ESS :math:`(\sum_k w_k^a)^2 / \sum_k w_k^{2a}` of the weights :math:`w^a`."""
        return torch.exp(2 * self.log_sum(power) - self.log_sum(2 * power))


def _chunk_sizes(num_samples: int, chunk_size: int) -> list[int]:
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    full, rest = divmod(num_samples, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def iter_chunks(
    num_samples: int, chunk_size: int, progress: bool = False, description: str = ""
) -> Iterator[int]:
    """Sizes of the chunks that make up ``num_samples``, with an optional tqdm bar."""
    sizes = _chunk_sizes(num_samples, chunk_size)
    yield from tqdm(sizes, desc=description, disable=not progress, unit="chunk")


def accumulate_log_weights(
    model: Callable,
    guide: Callable,
    *args,
    powers: Sequence[float],
    num_samples: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    data_plate: str | None = None,
    max_plate_nesting: float = float("inf"),
    keep_log_weights: bool = False,
    progress: bool = False,
    **kwargs,
) -> tuple[StreamingLogPowerSums, torch.Tensor | None]:
    r"""Draw ``num_samples`` guide particles per data point in chunks; fold in their log-weights.

    Each chunk is one vectorised model/guide pass with no autograd graph, whose
    log-weights :math:`\log p(x_b, h_k) - \log q(h_k \mid x_b)` (shape (k, B)) update
    running :math:`\log \sum_k w_k^a` for the given ``powers``.

    :returns: the sums, and all (K, B) log-weights if ``keep_log_weights`` else ``None``.
    """
    sums = StreamingLogPowerSums(powers)
    kept = []
    supported: torch.Tensor | bool = False  # per data point: some weight so far is nonzero
    zero_density_sites: dict[str, None] = {}  # ordered set
    objectives: dict[int, ImportanceWeightedObjective] = {}
    for size in iter_chunks(num_samples, chunk_size, progress, "importance samples"):
        if size not in objectives:  # at most two sizes: chunk_size and the remainder
            objectives[size] = ImportanceWeightedObjective(
                num_particles=size, max_plate_nesting=max_plate_nesting, data_plate=data_plate
            )
        with torch.no_grad():
            particles = objectives[size].weighted_particles(model, guide, *args, **kwargs)
        log_weights = particles.log_weights
        sums.update(log_weights)
        supported = (log_weights > -math.inf).any(dim=0) | supported
        if torch.isneginf(log_weights).any():
            zero_density_sites.update(dict.fromkeys(particles.zero_density_sites()))
        if keep_log_weights:
            kept.append(log_weights)
    _warn_if_unsupported(supported, list(zero_density_sites), num_samples)
    return sums, torch.cat(kept) if keep_log_weights else None


def _warn_if_unsupported(supported: torch.Tensor, zero_density_sites: list[str], num_samples: int) -> None:
    """Warn, naming the sites with zero density, if every weight of some data point is zero."""
    num_unsupported = int((~supported).sum())
    if num_unsupported == 0:
        return
    warnings.warn(
        f"every one of the {num_samples} importance weights is zero for {num_unsupported} of "
        f"{supported.numel()} data points (log-likelihood -inf, ESS NaN): the guide's samples have "
        f"zero density at {', '.join(zero_density_sites)}; the guide proposes values outside the "
        "model's support there (e.g. a binary site drawn before the sites that smooth it)",
        ZeroImportanceWeightsWarning,
        stacklevel=3,
    )


@dataclass
class LogLikelihoodEstimate:
    r"""Per-data-point importance-weighted log-likelihood estimates.

    :ivar log_likelihood: :math:`\log \frac1K \sum_k w_{k,b}`, shape (B,).
    :ivar effective_sample_size: Kish's ESS :math:`(\sum_k w_k)^2/\sum_k w_k^2`, shape
        (B,), between 1 and K.
    :ivar num_samples: K.
    :ivar log_weights: all :math:`\log w_{k,b}`, shape (K, B), if kept (e.g. for PSIS).
    """

    log_likelihood: torch.Tensor
    effective_sample_size: torch.Tensor
    num_samples: int
    log_weights: torch.Tensor | None = None

    @property
    def relative_effective_sample_size(self) -> torch.Tensor:
        """ESS / K, in (0, 1]."""
        return self.effective_sample_size / self.num_samples


def log_likelihood(
    model: Callable,
    guide: Callable,
    *args,
    num_samples: int = 1000,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    data_plate: str | None = None,
    max_plate_nesting: float = float("inf"),
    keep_log_weights: bool = False,
    progress: bool = False,
    **kwargs,
) -> LogLikelihoodEstimate:
    r"""Importance-weighted estimate of :math:`\log p(x_b)` for every data point (BiHM Eq. 5).

    :param model: a Pyro model, called as ``model(*args, **kwargs)``.
    :param guide: a guide that samples every latent site of the model.
    :param int num_samples: K, samples from the guide per data point.
    :param int chunk_size: particles per vectorised pass; memory is that of one chunk.
    :param str data_plate: the plate that indexes data points (see
        :class:`~pyro_dgm.infer.importance.ImportanceWeightedObjective`).
    :param bool keep_log_weights: also return the (K, B) log-weights.
    :param bool progress: show a tqdm progress bar over chunks.

    No gradient is recorded. Subsample scaling does not enter: the estimates are
    per data point.

    Example::

        result = log_likelihood(model, guide, x, num_samples=10_000, chunk_size=500)
        result.log_likelihood.mean()  # average test log-likelihood in nats
    """
    sums, log_weights = accumulate_log_weights(
        model,
        guide,
        *args,
        powers=(1.0, 2.0),
        num_samples=num_samples,
        chunk_size=chunk_size,
        data_plate=data_plate,
        max_plate_nesting=max_plate_nesting,
        keep_log_weights=keep_log_weights,
        progress=progress,
        **kwargs,
    )
    return LogLikelihoodEstimate(
        log_likelihood=sums.log_mean(1.0),  # BiHM Eq. 5
        effective_sample_size=sums.effective_sample_size(1.0),
        num_samples=num_samples,
        log_weights=log_weights,
    )

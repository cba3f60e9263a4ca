r"""Parallel tempering with Bennett's acceptance ratio for the log partition function of an RBM.

DVAE (Rolfe, 2017, App. H.1) estimates :math:`\log Z` of its RBM prior with "bridge
sampling, a variant of Bennett's acceptance ratio method", on interpolating
distributions :math:`p^\beta` sampled by parallel tempering, with the ladder of
:math:`\beta` chosen so that replica-exchange rates are about equal, and half the run
discarded as burn-in. This module implements that recipe on the geometric path of
:class:`~pyro_dgm.infer.estimators.tempered_rbm.GeometricRBMPath` (``base="uniform"`` is exactly
the family :math:`p^\beta`, :math:`\log Z_0 = (n_1 + n_2) \log 2`).

**Sampler.** :math:`C` independent ladders (chains), each with one replica per
:math:`\beta_0 = 0 < \beta_1 < \dots < \beta_{T-1} = 1`. A step is one block-Gibbs
sweep of every replica at its own temperature, then swaps of neighbouring replicas,
pairs :math:`(k, k+1)` with :math:`k` even on even steps and odd on odd steps (the
deterministic even-odd scheme, Syed et al., 2021), each accepted with probability

.. math::

    \alpha_k = \min\Bigl(1, \frac{f_k(z^{(k+1)})\, f_{k+1}(z^{(k)})}
        {f_k(z^{(k)})\, f_{k+1}(z^{(k+1)})}\Bigr)
        = \min\bigl(1, e^{\Delta_k(z^{(k)}) - \Delta_k(z^{(k+1)})}\bigr), \qquad
    \Delta_k(z) = \log f_{k+1}(z) - \log f_k(z) ,                              \quad (P1)

with :math:`f_k` the marginal of the smaller block (path Eq. B3). All replicas, all
pairs and all chains are updated in single tensor operations.

**Ladder.** By default the ladder is re-spaced twice during burn-in so that every
pair has the same rejection rate (Syed et al., 2021, Sec. 5.1): with the measured
mean rejection probabilities :math:`r_k = 1 - \mathbb{E}[\alpha_k]`, the cumulative
:math:`\Lambda(\beta_k) = \sum_{i<k} r_i` (the "communication barrier"), interpolated
linearly in :math:`\beta`, is inverted at :math:`\Lambda(1)\, j / (T - 1)`. The common
rate is then :math:`1 - \Lambda(1)/(T-1)`; DVAE's target of 0.5 is reached with
:math:`T \approx 2\Lambda(1) + 1` temperatures (``result.communication_barrier``).

**Estimate.** After burn-in each step gives, for every pair, :math:`\Delta_k` of a
draw from :math:`p_k` and of a draw from :math:`p_{k+1}`. Bennett's acceptance ratio
(Bennett, 1976; Meng & Wong, 1996, Eq. 4.1 with the optimal bridge; Shirts &
Chodera, 2008) for :math:`\ell_k = \log Z_{k+1} - \log Z_k` from :math:`n` draws of
each side is the root of

.. math::

    g_k(\ell) = \sum_{i=1}^{n} \sigma\bigl(\Delta_k(z_i^{(k)}) - \ell\bigr)
        - \sum_{i=1}^{n} \sigma\bigl(\ell - \Delta_k(z_i^{(k+1)})\bigr) = 0 ,    \quad (P2)

decreasing in :math:`\ell`, found by bisection on :math:`[\min \Delta, \max \Delta]`
(where :math:`g` changes sign), and

.. math::

    \log \hat Z = \log Z_0 + \sum_{k=0}^{T-2} \hat\ell_k .                      \quad (P3)

**Standard error.** Draws within a chain are autocorrelated and tied across rungs
by the swaps, but the :math:`C` chains are independent. So each :math:`\hat\ell_k`
is linearised as an M-estimator, :math:`\hat\ell_k - \ell_k \approx
-g_k(\ell_k)/g_k'(\hat\ell_k)`, with :math:`g_k = \sum_c \psi_{kc}` split into the
chains' contributions, and the chain is the cluster of a sandwich variance:

.. math::

    \delta_c = \sum_k \frac{\psi_{kc}(\hat\ell_k)}{-g'_k(\hat\ell_k)}, \qquad
    \operatorname{se}(\log \hat Z)^2 = \frac{C}{C-1} \sum_{c=1}^{C} \delta_c^2 .  \quad (P4)

This accounts for autocorrelation and for the correlation between rungs, and needs
enough chains for the cluster variance (:data:`DEFAULT_NUM_CHAINS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pyro_dgm.distributions.argument_checks import check_int
from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.infer.estimators.tempered_rbm import GeometricRBMPath, schedule_from

DEFAULT_NUM_CHAINS = 32
"""Independent ladders: the clusters of Eq. (P4), whose relative error is ~1/sqrt(2C) = 13%."""

DEFAULT_NUM_TEMPERATURES = 32
"""Replicas per ladder: swap rates ~0.5 (DVAE's target) up to a barrier of ~15 (Eq. P1)."""

DEFAULT_NUM_STEPS = 2000
"""Sweep-and-swap steps; the first :data:`DEFAULT_BURN_IN_FRACTION` of them are burn-in."""

DEFAULT_BURN_IN_FRACTION = 0.5
"""DVAE App. H.1: "a conservative estimate for burn-in (0.5 of total run time)"."""

LADDER_ADAPTATION_POINTS = (0.25, 0.5)
"""Fractions of the burn-in at which the ladder is re-spaced (from the rates since the last)."""

BISECTION_STEPS = 64
"""Halvings of the bracket of Eq. (P2): the root is located to 2^-64 of max - min Delta."""


@dataclass(frozen=True)
class ParallelTemperingEstimate:
    r"""The result of :func:`parallel_tempering`.

    :ivar log_partition: :math:`\log \hat Z`, Eq. (P3), shape ``rbm.batch_shape``.
    :ivar standard_error: its chain-clustered standard error, Eq. (P4).
    :ivar log_ratios: :math:`\hat\ell_k`, shape (T - 1, *batch_shape).
    :ivar swap_rates: mean acceptance probabilities of Eq. (P1) after burn-in,
        shape (T - 1, *batch_shape).
    :ivar communication_barrier: :math:`\Lambda(1) = \sum_k (1 - \text{swap rate}_k)`.
    :ivar betas: the ladder used after burn-in, shape (T,).
    """

    log_partition: torch.Tensor
    standard_error: torch.Tensor
    log_ratios: torch.Tensor
    swap_rates: torch.Tensor
    communication_barrier: torch.Tensor
    betas: torch.Tensor


def bennett_log_ratio(forward: torch.Tensor, backward: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""Bennett's acceptance ratio :math:`\hat\ell = \log (Z_1 / Z_0)`, the root of Eq. (P2).

    :param forward: :math:`\Delta(z) = \log f_1(z) - \log f_0(z)` at draws from :math:`p_0`.
    :param backward: :math:`\Delta` at as many draws from :math:`p_1`.
    :param dim: the sample dimension of both (other dimensions are separate problems).
    """
    if forward.shape != backward.shape:
        raise ValueError(
            f"forward and backward need equal shapes (equal sample sizes), got "
            f"{tuple(forward.shape)} and {tuple(backward.shape)}"
        )
    low = torch.minimum(forward.amin(dim), backward.amin(dim))
    high = torch.maximum(forward.amax(dim), backward.amax(dim))
    for _ in range(BISECTION_STEPS):
        middle = 0.5 * (low + high)
        root_above = _bennett_score(forward, backward, middle.unsqueeze(dim), dim) > 0
        low = torch.where(root_above, middle, low)
        high = torch.where(root_above, high, middle)
    return 0.5 * (low + high)


def _bennett_score(
    forward: torch.Tensor, backward: torch.Tensor, log_ratio: torch.Tensor, dim: int
) -> torch.Tensor:
    """g(l) of Eq. (P2), summed over ``dim`` (``log_ratio`` keeps ``dim`` as size 1)."""
    return (torch.sigmoid(forward - log_ratio) - torch.sigmoid(log_ratio - backward)).sum(dim)


def _respaced_ladder(betas: torch.Tensor, rejection: torch.Tensor) -> torch.Tensor:
    r"""Betas at equal steps of the cumulative rejection :math:`\Lambda` (Syed et al., 2021)."""
    barrier = torch.cat([rejection.new_zeros(1), rejection.cumsum(0)])
    if barrier[-1] <= 0:  # no rejections at all: nothing to equalise
        return betas
    targets = torch.linspace(0, 1, betas.numel(), dtype=betas.dtype, device=betas.device)
    targets = targets * barrier[-1]
    upper = torch.searchsorted(barrier, targets).clamp(1, betas.numel() - 1)
    lower = upper - 1
    gap = (barrier[upper] - barrier[lower]).clamp(min=torch.finfo(betas.dtype).tiny)
    fraction = ((targets - barrier[lower]) / gap).clamp(0, 1)
    ladder = betas[lower] + fraction * (betas[upper] - betas[lower])
    ladder[0], ladder[-1] = 0.0, 1.0
    return ladder


class _Replicas:
    r"""The replicas of all ladders: states (T, C, *batch, n1), their couplings and log f."""

    def __init__(self, path: GeometricRBMPath, betas: torch.Tensor, num_chains: int) -> None:
        self.path = path
        self.set_ladder(betas)
        self.z1 = path.sample_base((betas.numel(), num_chains))
        self.coupling = path.coupling(self.z1)

    def set_ladder(self, betas: torch.Tensor) -> None:
        self.betas = betas
        # (T, 1, *1s): one temperature per replica, broadcast over chains and batch
        self.beta_per_replica = betas.reshape((-1, 1) + (1,) * len(self.path.batch_shape))

    def sweep(self) -> None:
        self.z1 = self.path.gibbs_sweep(self.coupling, self.beta_per_replica)
        self.coupling = self.path.coupling(self.z1)

    def neighbour_log_ratios(self) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`\Delta_k` at replicas k (draws of :math:`p_k`) and k+1, each (T-1, C, *batch)."""
        log_f = self.path.log_marginal(self.z1, self.coupling, self.beta_per_replica)
        log_f_above = self.path.log_marginal(
            self.z1[:-1], self.coupling[:-1], self.beta_per_replica[1:]
        )  # log f_{k+1}(z^(k))
        log_f_below = self.path.log_marginal(
            self.z1[1:], self.coupling[1:], self.beta_per_replica[:-1]
        )  # log f_k(z^(k+1))
        return log_f_above - log_f[:-1], log_f[1:] - log_f_below

    def swap(self, forward: torch.Tensor, backward: torch.Tensor, parity: int) -> torch.Tensor:
        """Swap pairs (k, k+1) with k % 2 == parity by Eq. (P1); return every pair's acceptance."""
        acceptance = (forward - backward).clamp(max=0.0).exp()  # (P1)
        pair_index = torch.arange(acceptance.size(0), device=acceptance.device)
        active = (pair_index % 2 == parity).reshape((-1,) + (1,) * (acceptance.dim() - 1))
        accepted = active & (torch.rand_like(acceptance) < acceptance)
        no_pair = torch.zeros_like(accepted[:1])
        from_above = torch.cat([accepted, no_pair]).unsqueeze(-1)  # replica k takes k+1's state
        from_below = torch.cat([no_pair, accepted]).unsqueeze(-1)  # replica k+1 takes k's state
        for name in ("z1", "coupling"):
            state = getattr(self, name)
            above = torch.cat([state[1:], state[-1:]])
            below = torch.cat([state[:1], state[:-1]])
            setattr(
                self, name, torch.where(from_above, above, torch.where(from_below, below, state))
            )
        return acceptance


@torch.no_grad()
def parallel_tempering(
    rbm: RBM,
    *,
    num_chains: int = DEFAULT_NUM_CHAINS,
    betas: int | torch.Tensor = DEFAULT_NUM_TEMPERATURES,
    num_steps: int = DEFAULT_NUM_STEPS,
    burn_in_fraction: float = DEFAULT_BURN_IN_FRACTION,
    adapt_ladder: bool = True,
    base: str = "uniform",
) -> ParallelTemperingEstimate:
    r"""Estimate :math:`\log Z` of ``rbm`` by parallel tempering and Bennett's acceptance ratio.

    :param rbm: the RBM; a batch of RBMs gets independent ladders (one shared beta ladder).
    :param num_chains: :math:`C`, independent ladders (at least 2, for Eq. P4).
    :param betas: number of temperatures (initially linear in beta), or a strictly
        increasing 1-D tensor from 0 to 1.
    :param num_steps: sweep-and-swap steps in total, burn-in included.
    :param burn_in_fraction: share of the steps discarded, in [0, 1).
    :param adapt_ladder: re-space the ladder during burn-in to equalise swap rates.
    :param base: ``"uniform"`` (default, DVAE's :math:`p^\beta`) or ``"biases"``.

    Example::

        torch.manual_seed(0)
        rbm = RBM(0.1 * torch.randn(64), 0.1 * torch.randn(64), 0.1 * torch.randn(64, 64))
        result = parallel_tempering(rbm)
        result.log_partition, result.standard_error  # ~ 91.458, ~0.002 (as AIS)
        result.swap_rates                            # ~0.97 on every rung
    """
    check_int("num_chains", num_chains, 2)
    check_int("num_steps", num_steps, 1)
    if not 0 <= burn_in_fraction < 1:
        raise ValueError(f"burn_in_fraction must lie in [0, 1), got {burn_in_fraction!r}")
    path = GeometricRBMPath(rbm, base)
    ladder = schedule_from(betas, path.weight, strictly_increasing=True)
    replicas = _Replicas(path, ladder, num_chains)
    num_burn_in = int(burn_in_fraction * num_steps)  # < num_steps: one step at least is kept
    adaptation_steps = {int(f * num_burn_in) for f in LADDER_ADAPTATION_POINTS} - {0}
    adaptation_steps = adaptation_steps if adapt_ladder else set()

    acceptance_sum: torch.Tensor | float = 0.0
    num_summed = 0
    forward_draws, backward_draws = [], []
    for step in range(num_steps):
        if step in adaptation_steps:
            rejection = 1 - acceptance_sum / num_summed
            rejection = rejection.flatten(1).mean(1)  # one ladder for all chains and batch
            replicas.set_ladder(_respaced_ladder(replicas.betas, rejection))
        if step in adaptation_steps or step == num_burn_in:
            acceptance_sum, num_summed = 0.0, 0
        replicas.sweep()
        forward, backward = replicas.neighbour_log_ratios()
        if step >= num_burn_in:
            forward_draws.append(forward)
            backward_draws.append(backward)
        acceptance_sum = acceptance_sum + replicas.swap(forward, backward, step % 2)
        num_summed += 1

    forward = torch.stack(forward_draws)  # (S, T-1, C, *batch)
    backward = torch.stack(backward_draws)
    log_ratios = bennett_log_ratio(
        forward.transpose(1, 2).flatten(0, 1), backward.transpose(1, 2).flatten(0, 1)
    )  # (T-1, *batch): samples are steps x chains
    standard_error = _clustered_standard_error(forward, backward, log_ratios)
    swap_rates = acceptance_sum.mean(1) / num_summed  # mean over chains
    return ParallelTemperingEstimate(
        log_partition=path.log_partition_base() + log_ratios.sum(0),  # (P3)
        standard_error=standard_error,
        log_ratios=log_ratios,
        swap_rates=swap_rates,
        communication_barrier=(1 - swap_rates).sum(0),
        betas=replicas.betas,
    )


def _clustered_standard_error(
    forward: torch.Tensor, backward: torch.Tensor, log_ratios: torch.Tensor
) -> torch.Tensor:
    r"""Eq. (P4) from :math:`\Delta` draws (S, T-1, C, *batch) and the roots (T-1, *batch)."""
    log_ratio = log_ratios.unsqueeze(1)  # (T-1, 1, *batch), broadcasts against chains
    forward_terms = torch.sigmoid(forward - log_ratio)
    backward_terms = torch.sigmoid(log_ratio - backward)
    per_chain_score = (forward_terms - backward_terms).sum(0)  # psi_kc, (T-1, C, *batch)
    slope = -(  # g'_k, summed over steps and chains
        forward_terms * (1 - forward_terms) + backward_terms * (1 - backward_terms)
    ).sum((0, 2))
    influence = (per_chain_score / -slope.unsqueeze(1)).sum(0)  # delta_c, (C, *batch)
    num_chains = influence.size(0)
    return (influence.square().sum(0) * num_chains / (num_chains - 1)).sqrt()

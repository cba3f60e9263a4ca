r"""Annealed importance sampling (AIS) for the log partition function of an RBM.

AIS (Neal, 2001; for RBMs Salakhutdinov & Murray, 2008) walks :math:`N` independent
chains along the geometric path :math:`f_{\beta_0}, \dots, f_{\beta_K}` of
:class:`~pyro_dgm.infer.estimators.tempered_rbm.GeometricRBMPath`, from the exactly normalised
factorial base (:math:`\beta_0 = 0`) to the RBM (:math:`\beta_K = 1`):

.. math::

    z^{(0)} \sim p_0, \qquad z^{(k)} \sim T_k(\,\cdot \mid z^{(k-1)}), \qquad
    \log w = \sum_{k=1}^{K} \bigl[\log f_{\beta_k}(z^{(k-1)})
        - \log f_{\beta_{k-1}}(z^{(k-1)})\bigr],                              \quad (A1)

where :math:`T_k` is block Gibbs at :math:`\beta_k` (it leaves :math:`p_{\beta_k}`
invariant) and :math:`f_\beta(z_1)` is the unnormalised marginal of the smaller block
with the other summed out analytically (path Eq. B3), which removes that block's
sampling noise from the weights (Salakhutdinov & Murray, 2008, Sec. 4.1). Then
:math:`\mathbb{E}[w] = Z / Z_0` and

.. math::

    \log \hat Z = \log Z_0 + \log \frac{1}{N} \sum_{n=1}^{N} w_n ,            \quad (A2)

an unbiased estimate of :math:`Z` (so :math:`\log \hat Z` is biased low, by about
half its variance). Its standard error is the delta method on the mean of the
weights; with Kish's effective sample size
:math:`\mathrm{ESS} = (\sum_n w_n)^2 / \sum_n w_n^2` the unbiased sample variance of
:math:`w / \bar w` gives

.. math::

    \operatorname{se}(\log \hat Z) = \frac{\operatorname{sd}(w)}{\sqrt{N}\,\bar w}
        = \sqrt{\frac{N / \mathrm{ESS} - 1}{N - 1}} .                          \quad (A3)

(A3) is only as good as the sample variance of the weights: it is reliable while the
ESS is a sizeable fraction of :math:`N` and understates the error when a few weights
dominate; the ESS is returned so the caller can tell.

Defaults follow the DVAE++ authors' evaluation code: 1000 temperatures linear in
:math:`\beta` and 1024 chains, one Gibbs sweep per temperature. The default base is the
RBM's mean-field approximation (``base="mean_field"``,
:mod:`~pyro_dgm.infer.estimators.tempered_rbm` Eq. B4): it keeps the biases, like the base of the
``rbms`` library, and stays uniform on RBMs whose biases centre the couplings, where a
base made of the biases alone misses modes. At equal budget its spread was at most
that of the uniform base, of the biases base and of ``rbms`` on weakly and strongly
coupled RBMs (``docs/benchmarks.md``, "AIS against rbms"); ``base="uniform"`` (the path
:math:`p^\beta`) and ``base="biases"`` remain available.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pyro_dgm.distributions.argument_checks import check_int
from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.infer.estimators.tempered_rbm import GeometricRBMPath, schedule_from
from pyro_dgm.infer.importance import effective_sample_size, log_mean_exp

DEFAULT_NUM_CHAINS = 1024
"""AIS chains (importance samples) of the DVAE++ authors' evaluation."""

DEFAULT_NUM_TEMPERATURES = 1000
"""Temperatures, linear in beta, of the DVAE++ authors' evaluation."""


@dataclass(frozen=True)
class AISEstimate:
    r"""The result of :func:`annealed_importance_sampling`.

    :ivar log_partition: :math:`\log \hat Z`, Eq. (A2), shape ``rbm.batch_shape``.
    :ivar standard_error: its delta-method standard error, Eq. (A3).
    :ivar effective_sample_size: Kish's ESS of the final weights, in :math:`[1, N]`.
    :ivar log_weights: :math:`\log w_n`, Eq. (A1), shape (N, *batch_shape), if asked for.
    :ivar betas: the schedule used.
    """

    log_partition: torch.Tensor
    standard_error: torch.Tensor
    effective_sample_size: torch.Tensor
    log_weights: torch.Tensor | None
    betas: torch.Tensor


@torch.no_grad()
def annealed_importance_sampling(
    rbm: RBM,
    *,
    num_chains: int = DEFAULT_NUM_CHAINS,
    betas: int | torch.Tensor = DEFAULT_NUM_TEMPERATURES,
    num_sweeps: int = 1,
    base: str = "mean_field",
    return_log_weights: bool = False,
) -> AISEstimate:
    r"""Estimate :math:`\log Z` of ``rbm`` by AIS along the geometric path (Eqs. A1-A3).

    :param rbm: the RBM; a batch of RBMs gets one independent run each, vectorised.
    :param num_chains: :math:`N`, independent annealing runs (at least 2, for Eq. A3).
    :param betas: the schedule: a number of temperatures linear in :math:`\beta`, or a
        non-decreasing 1-D tensor from 0 to 1.
    :param num_sweeps: block-Gibbs sweeps per intermediate temperature.
    :param base: ``"mean_field"`` (default: the RBM's mean-field approximation),
        ``"uniform"`` (:math:`f_\beta = f^\beta`) or ``"biases"`` (the RBM without its
        couplings, so only :math:`W` is annealed; unreliable when biases and couplings
        compensate each other); see :mod:`pyro_dgm.infer.estimators.tempered_rbm`.
    :param return_log_weights: keep the (N, *batch_shape) log weights in the result.

    Example::

        torch.manual_seed(0)
        rbm = RBM(0.1 * torch.randn(64), 0.1 * torch.randn(64), 0.1 * torch.randn(64, 64))
        result = annealed_importance_sampling(rbm)
        result.log_partition, result.standard_error  # tensor(91.4571), tensor(0.0002)
    """
    check_int("num_chains", num_chains, 2)
    check_int("num_sweeps", num_sweeps, 1)
    path = GeometricRBMPath(rbm, base)
    schedule = schedule_from(betas, path.weight)
    temperatures = schedule.tolist()  # Python floats: cheap scalar arithmetic in the loop

    z1 = path.sample_base((num_chains,))
    coupling = path.coupling(z1)
    log_weights = torch.zeros(z1.shape[:-1], dtype=path.dtype, device=path.device)
    log_f_previous = path.log_marginal(z1, coupling, temperatures[0])
    for k in range(1, len(temperatures)):
        log_weights += path.log_marginal(z1, coupling, temperatures[k]) - log_f_previous  # (A1)
        if k == len(temperatures) - 1:
            break
        for _ in range(num_sweeps):
            z1 = path.gibbs_sweep(coupling, temperatures[k])
            coupling = path.coupling(z1)
        log_f_previous = path.log_marginal(z1, coupling, temperatures[k])

    ess = effective_sample_size(log_weights, dim=0)
    relative_variance = (num_chains / ess - 1).clamp(min=0.0) / (num_chains - 1)  # (A3)
    return AISEstimate(
        log_partition=path.log_partition_base() + log_mean_exp(log_weights, dim=0),  # (A2)
        standard_error=relative_variance.sqrt(),
        effective_sample_size=ess,
        log_weights=log_weights if return_log_weights else None,
        betas=schedule,
    )

r"""β-TCVAE: the ELBO with its KL term decomposed and the total correlation reweighted.

Chen, Li, Grosse & Duvenaud (2018), Eq. (2): with the aggregate posterior
:math:`q(z) = \frac1N \sum_n q(z \mid x_n)` and its marginals :math:`q(z_j)`, the
KL term of the ELBO averaged over the data splits into

.. math::

    \mathbb E_{p(n)} \mathrm{KL}\bigl(q(z \mid n) \,\|\, p(z)\bigr)
    = \underbrace{\mathrm{KL}\bigl(q(z, n) \,\|\, q(z)p(n)\bigr)}_{\text{index-code MI}}
    + \underbrace{\mathrm{KL}\bigl(q(z) \,\|\, \textstyle\prod_j q(z_j)\bigr)}_{\text{total correlation}}
    + \underbrace{\textstyle\sum_j \mathrm{KL}\bigl(q(z_j) \,\|\, p(z_j)\bigr)}_{\text{dimension-wise KL}} ,

and β-TCVAE maximises (Eq. 4)

.. math::

    \mathbb E_{q(z \mid n)p(n)}\bigl[\ln p(n \mid z)\bigr] - \alpha\,\mathrm{MI} - \beta\,\mathrm{TC} - \gamma \sum_j \mathrm{KL}_j ,

the ELBO for :math:`\alpha = \beta = \gamma = 1`. The densities :math:`\ln q(z)` and
:math:`\ln q(z_d)` at a sample :math:`z_i \sim q(z \mid x_i)` are estimated from the
minibatch :math:`x_1, \dots, x_M` of a data set of size :math:`N` as
:math:`\ln \sum_j \omega_{ij}\, q(z_i \mid x_j)` (and likewise per unit :math:`d`) with
weights :math:`\omega_{ij}` chosen by ``estimator``:

* ``"mws"`` — minibatch-weighted sampling, Chen et al. Sec. 3.1 / App. C.1 and
  their code: :math:`\omega_{ij} = 1/(NM)`. Its estimates are offset by constants
  (with :math:`M = N`: :math:`\ln \hat q(z) = \ln q(z) - \ln N`, so the TC estimate
  is off by :math:`(J-1)\ln N`); constants do not change gradients, so training is
  unaffected, but the reported values are not the terms themselves.
* ``"stratified"`` — :math:`\omega_{ii} = 1/N` for the sample's own data point and
  :math:`\omega_{ij} = (N-1)/(N(M-1))` for the :math:`M-1` others (a uniform
  sample of the remaining :math:`N-1` points), so that
  :math:`\sum_j \omega_{ij} q(z_i \mid x_j)` is unbiased for
  :math:`q(z_i) = \frac1N \sum_n q(z_i \mid x_n)`, and exact for :math:`M = N`.
  (This is the stratification idea of Chen et al. App. C.2 with the plain
  unbiased weights, not their code's weight matrix.)

Per sample the three terms are
:math:`\mathrm{MI}_i = \ln q(z_i \mid x_i) - \ln \hat q(z_i)`,
:math:`\mathrm{TC}_i = \ln \hat q(z_i) - \sum_d \ln \hat q(z_{i,d})`,
:math:`\mathrm{KL}_{j,i} = \sum_d \ln \hat q(z_{i,d}) - \ln p(z_i)`; they sum to
:math:`\ln q(z_i \mid x_i) - \ln p(z_i)`, the single-sample KL term of the ELBO,
whatever the density estimates. Both estimators are biased for the *log*
densities (a log of a Monte Carlo average) but ``"stratified"`` is consistent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pyro.distributions.util import scale_and_mask
from pyro.infer import Trace_ELBO
from pyro.infer.util import torch_item
from pyro.util import warn_if_nan
from torch.distributions import Distribution, Independent

DATA_DIM_OF_LATENT = -2
"""A latent value has shape (..., M, J): data points at dim -2, latent units at dim -1."""

ESTIMATORS = ("mws", "stratified")
"""Minibatch estimators of the aggregate posterior density (module docstring)."""


@dataclass
class KLDecomposition:
    r"""Per-sample terms of Chen et al.'s Eq. (2), each of shape (..., M).

    ``mutual_information + total_correlation + dimension_wise_kl`` equals
    :math:`\ln q(z_i \mid x_i) - \ln p(z_i)`.
    """

    mutual_information: torch.Tensor
    total_correlation: torch.Tensor
    dimension_wise_kl: torch.Tensor

    @property
    def kl(self) -> torch.Tensor:
        r""":math:`\ln q(z_i \mid x_i) - \ln p(z_i)`, the three terms summed."""
        return self.mutual_information + self.total_correlation + self.dimension_wise_kl


def factorised_posterior(posterior: Distribution, site: str = "posterior") -> Distribution:
    """The per-unit distribution of a factorised posterior (``Independent(base, 1)`` → ``base``)."""
    if isinstance(posterior, Independent) and posterior.reinterpreted_batch_ndims == 1:
        return posterior.base_dist
    raise ValueError(
        f"{site}: the minibatch estimators need a posterior factorised over latent units, "
        f"i.e. Independent(base, 1) (e.g. Normal(loc, scale).to_event(1)); got {posterior}"
    )


def aggregate_log_weights(
    batch_size: int, dataset_size: int, estimator: str = "mws", dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    r"""The (M, M) matrix :math:`\ln \omega_{ij}` with :math:`\hat q(z_i) = \sum_j \omega_{ij} q(z_i \mid x_j)`.

    See the module docstring for ``"mws"`` and ``"stratified"``.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < batch_size:
        raise ValueError(f"dataset_size must be an int >= the minibatch size {batch_size}, got {dataset_size!r}")
    if estimator == "mws":  # Chen et al. App. C.1
        return torch.full((batch_size, batch_size), -math.log(dataset_size * batch_size), dtype=dtype, device=device)
    if batch_size < 2:
        raise ValueError("the stratified estimator needs a minibatch of at least 2 data points")
    others = math.log((dataset_size - 1) / (dataset_size * (batch_size - 1)))
    log_weights = torch.full((batch_size, batch_size), others, dtype=dtype, device=device)
    return log_weights.fill_diagonal_(-math.log(dataset_size))


def minibatch_kl_decomposition(
    z: torch.Tensor,
    posterior: Distribution,
    log_prior: torch.Tensor,
    dataset_size: int,
    estimator: str = "mws",
) -> KLDecomposition:
    r"""MI, TC and dimension-wise KL of each sample, from the minibatch (Chen et al. Eq. 2, App. C).

    :param z: samples :math:`z_i \sim q(z \mid x_i)`, shape (..., M, J).
    :param posterior: :math:`q(z \mid x_j)` for the minibatch, factorised over units:
        ``Independent(base, 1)`` with ``base`` of batch shape (..., M, J).
    :param log_prior: :math:`\ln p(z_i)`, shape (..., M).
    :param dataset_size: N, the size of the data set the minibatch was drawn from (≥ M).
    :param estimator: ``"mws"`` (Chen et al.) or ``"stratified"``; see the module docstring.
    """
    base = factorised_posterior(posterior)
    if z.dim() < 2 or base.batch_shape[-2:] != z.shape[-2:]:
        raise ValueError(
            f"z must have shape (..., M, J) = (..., {tuple(base.batch_shape[-2:])}), got {tuple(z.shape)}"
        )
    log_weights = aggregate_log_weights(z.size(DATA_DIM_OF_LATENT), dataset_size, estimator, z.dtype, z.device)
    # log_q_pairs[..., i, j, d] = ln q(z_{i,d} | x_j): z_i broadcast against every x_j's posterior.
    log_q_pairs = base.log_prob(z.unsqueeze(DATA_DIM_OF_LATENT))
    log_q_joint = torch.logsumexp(log_weights + log_q_pairs.sum(-1), dim=-1)  # ln q^(z_i)
    log_q_marginals = torch.logsumexp(log_weights.unsqueeze(-1) + log_q_pairs, dim=-2)  # ln q^(z_{i,d})
    log_q_product = log_q_marginals.sum(-1)
    log_q_conditional = base.log_prob(z).sum(-1)  # ln q(z_i | x_i)
    return KLDecomposition(
        mutual_information=log_q_conditional - log_q_joint,
        total_correlation=log_q_joint - log_q_product,
        dimension_wise_kl=log_q_product - log_prior,
    )


class TCVAE_ELBO(Trace_ELBO):
    r"""β-TCVAE objective (Chen et al. 2018, Eq. 4) as a :class:`~pyro.infer.Trace_ELBO`.

    .. math::

        \mathcal L_{\beta\text{-TC}} = \mathcal L_{\text{ELBO}}
        - (\alpha - 1)\,\mathrm{MI} - (\beta - 1)\,\mathrm{TC} - (\gamma - 1) \sum_j \mathrm{KL}_j ,

    i.e. the Trace_ELBO loss plus the reweighted terms of :func:`minibatch_kl_decomposition`
    at the guide's sample of ``latent_site``, summed over the minibatch and scaled
    like that site (subsample scale N/M). The latent site must be reparameterised and its
    guide distribution factorised (``Independent(base, 1)``); its data points must be
    at dim -2 of the value (a data plate at dim -1). The gradient is the pathwise
    gradient of this estimate (Chen et al. train the same way).

    :param dataset_size: N, the number of training data points.
    :param beta: weight β of the total correlation (Chen et al. use β > 1; Kosko &
        Adigun report β ∈ {0.5, 1, 1.5}).
    :param alpha: weight of the index-code mutual information (1 in Chen et al.).
    :param gamma: weight of the dimension-wise KL (1 in Chen et al.).
    :param latent_site: name of the latent sample site.
    :param estimator: ``"mws"`` (Chen et al., default) or ``"stratified"``.

    Other keyword arguments go to :class:`~pyro.infer.Trace_ELBO`.
    """

    def __init__(
        self,
        dataset_size: int,
        beta: float,
        alpha: float = 1.0,
        gamma: float = 1.0,
        latent_site: str = "z",
        estimator: str = "mws",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self.estimator = estimator
        if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < 1:
            raise ValueError(f"dataset_size must be a positive int, got {dataset_size!r}")
        self.dataset_size = dataset_size
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.latent_site = latent_site

    def decomposition(self, model_trace, guide_trace) -> KLDecomposition:
        """The MWS decomposition at the guide's sample of ``latent_site`` in a trace pair."""
        if self.latent_site not in guide_trace.nodes or self.latent_site not in model_trace.nodes:
            raise ValueError(f"latent site '{self.latent_site}' must be sampled in both model and guide")
        guide_site = guide_trace.nodes[self.latent_site]
        model_site = model_trace.nodes[self.latent_site]
        if not guide_site["fn"].has_rsample:
            raise ValueError(f"site '{self.latent_site}': the guide distribution must be reparameterisable")
        z = guide_site["value"]
        log_prior = model_site["fn"].log_prob(z)
        return minibatch_kl_decomposition(z, guide_site["fn"], log_prior, self.dataset_size, self.estimator)

    def _penalty(self, model_trace, guide_trace) -> torch.Tensor:
        terms = self.decomposition(model_trace, guide_trace)
        extra = (
            (self.alpha - 1.0) * terms.mutual_information
            + (self.beta - 1.0) * terms.total_correlation
            + (self.gamma - 1.0) * terms.dimension_wise_kl
        )
        site = guide_trace.nodes[self.latent_site]
        return scale_and_mask(extra, site["scale"], site["mask"]).sum()

    def _differentiable_loss_particle(self, model_trace, guide_trace):
        loss, surrogate_loss = super()._differentiable_loss_particle(model_trace, guide_trace)
        penalty = self._penalty(model_trace, guide_trace)
        return loss + torch_item(penalty), surrogate_loss + penalty

    def loss(self, model, guide, *args, **kwargs) -> float:
        """The β-TCVAE loss estimate (negative objective) as a float."""
        with torch.no_grad():
            loss = 0.0
            for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
                loss_particle, _ = self._differentiable_loss_particle(model_trace, guide_trace)
                loss += loss_particle / self.num_particles
        warn_if_nan(loss, "loss")
        return loss

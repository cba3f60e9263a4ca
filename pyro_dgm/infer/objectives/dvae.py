r"""Rolfe's DVAE objective: spike-and-X smoothing with the gradient of DVAE Eq. (11)-(12)."""

from __future__ import annotations

import torch

from pyro_dgm.distributions.smoothing import SpikeSmoothingTransformation
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.infer.objectives.smoothed_kl import bilinear, coupling_masks, expected_coupling
from pyro_dgm.infer.objectives.smoothed_latents import SmoothedPrior


def rolfe_coupling_correction(
    logits: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, group_of_unit: torch.Tensor
) -> torch.Tensor:
    r"""Zero-valued term whose gradient is DVAE Eq. (31) for the earlier unit of each coupled pair.

    For a pair :math:`(u, v)` with :math:`g(u) < g(v)`, :math:`z_u = 1[\rho_u \ge 1 - q_u]`
    is a step in :math:`q_u = \mu_u` and :math:`\mathbb E[z_v \mid \cdot] = \mu_v` depends
    on :math:`\zeta_u`; the step's contribution to :math:`\partial_\phi \mathbb E[W_{uv}
    z_u z_v]` is (App. F.4)

    .. math::

        \mathbb E_\rho\Bigl[W_{uv}\, \frac{1 - z_u}{1 - q_u}\, \mu_v\,
            \frac{\partial q_u}{\partial \phi}\Bigr],

    the samples with :math:`z_u = 0` standing for :math:`\rho_u` at the threshold
    (where :math:`\zeta_u = 0`). With :math:`q_u = \sigma(l_u)`,
    :math:`\partial q_u = q_u (1 - q_u)\, \partial l_u`, so the weight times
    :math:`\partial q_u` is :math:`(1 - z_u)\, q_u\, \partial l_u`: no division by
    :math:`1 - q_u`, which rounds to 0 in float32 once :math:`l_u \gtrsim 16.6` (a
    draw :math:`\rho_u = 0` then gave 0/0 = NaN). Returned as
    :math:`\sum W_{uv} (1-z_u)\, q_u\, \mu_v (l_u - \bar l_u)` with everything but
    :math:`l_u` detached, so its value is 0 and autodiff gives the estimator.

    :param logits: :math:`l = \operatorname{logit} \mu` of all units, shape (*batch, n1 + n2).
    :param z: the sampled binary units (:math:`\nu` of a spike smoother), same shape.
    :param weight: :math:`W`, shape (n1, n2).
    :param group_of_unit: shape (n1 + n2,).
    """
    num_units1 = weight.size(-2)
    earlier, later, _ = coupling_masks(group_of_unit.to(weight.device), num_units1)
    weight = weight.detach()
    fixed_logits = logits.detach()
    fixed = torch.sigmoid(fixed_logits)
    # (1 - z_u)/(1 - q_u) dq_u = (1 - z_u) q_u dl_u (Eq. 31); value 0
    moving = (1 - z) * fixed * (logits - fixed_logits)
    return bilinear(moving[..., :num_units1], weight * earlier, fixed[..., num_units1:]) + bilinear(
        fixed[..., :num_units1], weight * later, moving[..., num_units1:]
    )


class DVAEELBO(DVAEPlusPlusELBO):
    r"""ELBO of DVAE (Rolfe 2017) with its gradient estimator for spike-and-X smoothing.

    The model and guide are written as for :class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO`
    (:mod:`pyro_dgm.infer.objectives.smoothed_latents`), with spike smoothers
    (:math:`r(\zeta \mid 0) = \delta(\zeta)`, e.g. spike-and-exponential, DVAE Sec. 2.1),
    so that :math:`\zeta_u = 0 \Leftrightarrow z_u = 0`. The bound is the same
    (DVAE Eq. 2 with Eq. 24):

    .. math::

        \mathcal L(x) = \mathbb E_{\rho}\bigl[\log p(x \mid F^{-1}_{q(\zeta \mid x)}(\rho))\bigr]
            - \mathrm{KL}\bigl(q(z, \zeta \mid x) \,\|\, p(z, \zeta)\bigr),

    with the KL estimated as :math:`\log Z - \sum_j H(q_j) + \mathbb E_q[E(z)]` given a
    sample :math:`\rho` (the samples of earlier groups' :math:`z` are exact; the last
    factor of each pair is averaged analytically, DVAE App. F). The gradient is Rolfe's:

    * decoder and :math:`\zeta`: the reparameterisation gradient through
      :math:`F^{-1}` (Eq. 8);
    * prior parameters :math:`\theta` (Eq. 11):
      :math:`\partial_\theta \mathrm{KL} = \mathbb E_q[\partial_\theta E(z)] -
      \mathbb E_{p(z)}[\partial_\theta E(z)]`, the second term from persistent Gibbs
      chains (or the exact :math:`\log Z`);
    * posterior parameters :math:`\phi` (Eq. 12):
      :math:`\mathbb E_\rho\bigl[(g - a)^\top \partial_\phi q - \ldots\bigr]`, i.e. the
      reparameterised gradient of the analytic entropy (App. F.1) and bias terms
      (F.2), plus for each coupled pair across groups the chain-rule term of
      Eq. (31), :math:`W_{uv} \frac{1 - z_u}{1 - q_u} \mu_v \partial_\phi q_u`, for the
      unit of the earlier group (:func:`rolfe_coupling_correction`); the later unit's
      term needs no weight (Eq. 31's remark) and comes from differentiating
      :math:`\mu_v`. Pairs within one group are independent given
      :math:`\zeta_{<j}`: :math:`\mu_u \mu_v`, differentiated directly.

    A spike's :math:`\nu(\zeta)` is a step, so DVAE++'s autodiff through
    :math:`\nu` would miss the step's contribution; this objective adds it. With a
    directed factorial prior no cross term arises, and the objective equals
    DVAE++'s joint ELBO (Eq. 4).

    Parameters as for :class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO`.

    Reference: J. T. Rolfe, "Discrete Variational Autoencoders", ICLR 2017.
    """

    def expected_coupling(
        self, prior: SmoothedPrior, weight: torch.Tensor, probs: torch.Tensor | None = None
    ) -> torch.Tensor:
        r""":math:`\sum_{uv} W_{uv} m_{uv}` with :math:`\nu = z` plus Rolfe's Eq. (31) terms."""
        for group in prior.groups:
            if not isinstance(group.smoother, SpikeSmoothingTransformation):
                raise ValueError(
                    f"{type(self).__name__} needs spike-and-X smoothers (zeta = 0 exactly "
                    f"when z = 0); guide site '{group.name}' uses "
                    f"{type(group.smoother).__name__}: use DVAEPlusPlusELBO"
                )
        logits = prior.logits()
        if probs is None:
            probs = torch.sigmoid(logits)
        z = prior.posterior_probs().detach()  # a spike's nu is the indicator zeta > 0 = z
        group_of_unit = prior.group_of_unit()
        return expected_coupling(probs, z, weight, group_of_unit) + rolfe_coupling_correction(
            logits, z, weight, group_of_unit
        )

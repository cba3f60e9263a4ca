r"""Analytic KL between a smoothed hierarchical posterior and a binary prior (DVAE++ Eq. 4, 6-7).

The posterior over :math:`k` groups is :math:`q(z, \zeta \mid x) = \prod_j q(z_j \mid x,
\zeta_{<j})\, r(\zeta_j \mid z_j)` and the prior :math:`p(z, \zeta) = p(z) \prod_j
r(\zeta_j \mid z_j)`, with the same smoothing :math:`r` in both, so :math:`r` cancels
(DVAE Eq. 24):

.. math::

    \mathrm{KL}\bigl(q(z,\zeta \mid x) \,\|\, p(z,\zeta)\bigr)
    = \mathbb E_{q}\Bigl[\sum_j \log q(z_j \mid x, \zeta_{<j}) - \log p(z)\Bigr].

Given a reparameterised draw of :math:`\zeta`, every expectation over :math:`z` is taken
in closed form with :math:`\mu_j = q(z_j{=}1 \mid x, \zeta_{<j})` and
:math:`\nu_j = q(z_j{=}1 \mid x, \zeta_{\le j})`:

* factorial Bernoulli prior (directed, DVAE++ Eq. 4):
  :math:`\sum_j \mathrm{KL}(\mathrm{Bern}(\mu_j) \,\|\, p(z_j \mid \zeta_{<j}))`;
* RBM prior :math:`p(z) = e^{-E(z)}/Z`, :math:`E = -a_1^\top z_1 - a_2^\top z_2 -
  z_1^\top W z_2` (DVAE++ Eq. 6-7, generalised to :math:`k` groups):

  .. math::

      \mathrm{KL} = \log Z - \sum_j H(\mathrm{Bern}(\mu_j)) - a^\top \mu
          - \sum_{u \in 1, v \in 2} W_{uv}\, m_{uv},
      \qquad m_{uv} = \begin{cases}
          \nu_u \mu_v & g(u) < g(v) \\ \mu_u \nu_v & g(u) > g(v) \\ \mu_u \mu_v & g(u) = g(v)
      \end{cases}

  where :math:`g(u)` is the group of unit :math:`u`. Given :math:`\zeta_{<j}` with
  :math:`j = \max(g(u), g(v))`, :math:`z_u` and :math:`z_v` are independent with means
  :math:`\nu` (the earlier group, its :math:`\zeta` observed) and :math:`\mu` (the later
  group), so :math:`\mathbb E[m_{uv}] = \mathbb E[z_u z_v]`. With two groups, the RBM's
  two sides, this is Eq. 7's :math:`\nu_1^\top W \mu_2`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pyro.distributions import Bernoulli
from torch.distributions import kl_divergence


def bernoulli_entropy(logits: torch.Tensor, probs: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`\sum_u H(\mathrm{Bern}(\sigma(l_u)))` over the last dim, stable in the logits.

    :math:`H = \mu\,\mathrm{softplus}(-l) + (1-\mu)\,\mathrm{softplus}(l)`.

    :param probs: :math:`\mu = \sigma(l)` if already computed (else it is).
    """
    if probs is None:
        probs = torch.sigmoid(logits)
    return (probs * F.softplus(-logits) + (1 - probs) * F.softplus(logits)).sum(-1)


def smoothed_bernoulli_kl(logits: torch.Tensor, prior: Bernoulli) -> torch.Tensor:
    r""":math:`\sum_u \mathrm{KL}(\mathrm{Bern}(\mu_u) \,\|\, p(z_u \mid \zeta_{<j}))` (DVAE++ Eq. 4).

    :param logits: :math:`\mathrm{logit}\,\mu`, shape (*batch, n).
    :param prior: the model's factorial Bernoulli, batch shape broadcastable to (*batch, n).
    :returns: shape (*batch).
    """
    return kl_divergence(Bernoulli(logits=logits), prior).sum(-1)


def coupling_masks(group_of_unit: torch.Tensor, num_units1: int) -> tuple[torch.Tensor, ...]:
    r"""Boolean (n1, n2) masks of the RBM pairs whose side-1 unit's group is earlier, later, the same.

    :param group_of_unit: group index of each of the n1 + n2 units, shape (n1 + n2,).
    """
    group1 = group_of_unit[:num_units1].unsqueeze(-1)
    group2 = group_of_unit[num_units1:].unsqueeze(-2)
    return group1 < group2, group1 > group2, group1 == group2


def bilinear(left: torch.Tensor, weight: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    r""":math:`l^\top W r` for batches of vectors, shape (*batch)."""
    return (torch.matmul(left.unsqueeze(-2), weight).squeeze(-2) * right).sum(-1)


def expected_coupling(
    probs: torch.Tensor,
    posterior_probs: torch.Tensor,
    weight: torch.Tensor,
    group_of_unit: torch.Tensor,
) -> torch.Tensor:
    r"""Estimate of :math:`\mathbb E_q[z_1^\top W z_2]` as :math:`\sum_{uv} W_{uv} m_{uv}` (Eq. 7).

    :param probs: :math:`\mu` of all units, shape (*batch, n1 + n2).
    :param posterior_probs: :math:`\nu` of all units, same shape.
    :param weight: :math:`W`, shape (n1, n2).
    :param group_of_unit: shape (n1 + n2,).
    """
    num_units1 = weight.size(-2)
    earlier, later, same = coupling_masks(group_of_unit, num_units1)
    mu1, mu2 = probs[..., :num_units1], probs[..., num_units1:]
    nu1, nu2 = posterior_probs[..., :num_units1], posterior_probs[..., num_units1:]
    terms = (
        (nu1, earlier, mu2),  # side-1 unit's zeta already drawn: nu_u mu_v
        (mu1, later, nu2),  # side-2 unit's zeta already drawn: mu_u nu_v
        (mu1, same, mu2),  # same group: independent given zeta_<j
    )
    coupling = None
    for left, mask, right in terms:
        if not mask.any():  # no such pair: the term is exactly zero
            continue
        masked = weight if mask.all() else weight * mask.to(weight.device)
        term = bilinear(left, masked, right)
        coupling = term if coupling is None else coupling + term
    return coupling


def rbm_smoothed_kl(
    bias1: torch.Tensor,
    bias2: torch.Tensor,
    weight: torch.Tensor,
    logits: torch.Tensor,
    coupling: torch.Tensor,
    log_partition: torch.Tensor,
    probs: torch.Tensor | None = None,
) -> torch.Tensor:
    r""":math:`\log Z - \sum_j H(\mu_j) - a^\top\mu - \widehat{\mathbb E}[z_1^\top W z_2]` (DVAE++ Eq. 7).

    :param bias1: :math:`a_1`, shape (n1,).
    :param bias2: :math:`a_2`, shape (n2,).
    :param weight: :math:`W`, shape (n1, n2).
    :param logits: :math:`\mathrm{logit}\,\mu` of all units, shape (*batch, n1 + n2).
    :param coupling: the estimate of :math:`\mathbb E_q[z_1^\top W z_2]`, shape (*batch)
        (:func:`expected_coupling`, or DVAE's surrogate).
    :param log_partition: :math:`\log Z` (or its surrogate), a scalar tensor.
    :param probs: :math:`\mu = \sigma(\text{logits})` if already computed (else it is).
    :returns: shape (*batch).
    """
    if probs is None:
        probs = torch.sigmoid(logits)
    bias = torch.cat([bias1, bias2], dim=-1)
    return log_partition - bernoulli_entropy(logits, probs) - (probs * bias).sum(-1) - coupling

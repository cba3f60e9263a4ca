r"""Plain-PyTorch DVAE++ with an RBM prior (analytic KL, PCD for log Z), for speed comparisons.

No Pyro here: the estimator of :class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO` for
the ready-made model of :func:`~pyro_dgm.models.dvae.build_dvae_pp` with overlapping-
exponential smoothing and the hierarchical guide, written by hand on the *same*
modules (so the same weights) as the Pyro path. With equal RNG seeds and equal
persistent-chain states both paths draw the same :math:`\rho`, hence the same
:math:`\zeta`, and the same Gibbs samples, so their gradients agree to rounding —
which :func:`benchmarks.speed.check_same_gradient` asserts before anything is timed.

**Model and guide.** RBM :math:`p(z) = e^{a_1^\top z_1 + a_2^\top z_2 + z_1^\top W
z_2} / Z` over :math:`n_1 + n_2` units, split in unit order into :math:`k` groups;
:math:`\zeta_j \sim r(\zeta_j \mid z_j)`, the overlapping exponential of DVAE++ Eq. (3)
at inverse temperature :math:`\beta`; :math:`x \mid \zeta \sim \prod_d
\mathcal B(\sigma(f(\zeta))_d)`, ``model.decoder``. Guide: group by group,
:math:`\ell_j = g_j([x, \zeta_{<j}])` (``guide.networks[j]``), :math:`\mu_j =
\sigma(\ell_j)`, :math:`\zeta_j = F^{-1}_{q_j}(\rho_j)`, :math:`\rho_j \sim U[0, 1)`,
and the posterior :math:`\nu_j = \sigma(\ell_j + \beta(2\zeta_j - 1))` (DVAE++ Sec. 5).

**What is computed** (on both sides): for a minibatch of :math:`B` of :math:`N` data
points and :math:`K` particles,

.. math::

    \text{loss} = \frac{N}{BK} \sum_{k,b} \Bigl[-\log p(x_b \mid \zeta_{kb})
        - \sum_j H(\mu_{kb,j}) - a^\top \mu_{kb} - \sum_{uv} W_{uv}\, m_{kb,uv}\Bigr]
        + N \bigl(\bar m - \operatorname{stop\_grad} \bar m\bigr),

with :math:`m_{uv} = \nu_u \mu_v` when unit :math:`u`'s group precedes :math:`v`'s,
:math:`\mu_u \nu_v` when it follows, :math:`\mu_u \mu_v` in the same group (DVAE++
Eq. 7), and :math:`\bar m = \frac1S \sum_s -E(z^{(s)})` over the :math:`S` persistent
chains after this step's block-Gibbs sweeps: its gradient is the PCD estimate of
:math:`N \nabla \log Z` (DVAE Eq. 11). Its *value* is 0: for an RBM too large to
enumerate (:math:`\min(n_1, n_2) > 20`, the benchmarked 100 + 100) pyro_dgm reports
the loss without :math:`\log Z` too, so neither side enumerates anything. The
gradient is the reparameterisation gradient through :math:`\zeta` and :math:`\nu` plus
that PCD term.

**Random numbers, in the Pyro path's order**: :math:`\rho_1, \dots, \rho_k`
(``torch.rand``, shape (K, B, n_j)), the guide's draw of the binary :math:`z \sim
\mathcal B(\nu)` (Pyro's guide samples its site ``"z"``; the estimator never uses it,
so the timed plain step skips it and the gradient check draws and discards it with
``draw_guide_binary=True``, to keep the generators aligned), then per sweep of the
chains two ``torch.rand_like`` (each unit on iff its uniform is below its probability,
as a hand-written sampler draws).

**Numerics.** The inverse CDF is taken in the same overflow-safe form as the library
(the positive root of the quadratic of DVAE++ Eq. 3 in log space), so both paths do
the same kernel work there; :math:`\beta` is a Python float and the posterior logit
is the closed form :math:`\ell + \beta(2\zeta - 1)`, as a hand-written implementation
has them. The chains' fields are ``addmm(b, z1, W)`` and ``addmm(a, z2, W.T)`` (the bias
in the GEMM's accumulator), the forms the library's sampler uses: another form (e.g.
``b + z1 @ W``, or a batched ``matmul(W, z.unsqueeze(-1))``) rounds differently, and one
flipped Gibbs draw would change the :math:`\log Z` gradient by :math:`N/S` per unit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmarks.plain_sbn import bernoulli_log_prob
from pyro_dgm.models.dvae import DiscreteVAE
from pyro_dgm.models.dvae_guides import HierarchicalSmoothedGuide

LOG_TWO = math.log(2.0)
r""":math:`\log 2`, of the :math:`2c` and :math:`2a` of the quadratic's root."""


def overlapping_exponential_icdf(logits: torch.Tensor, rho: torch.Tensor, beta: float) -> torch.Tensor:
    r""":math:`\zeta = F^{-1}(\rho)` of :math:`(1 - q)\, r(\zeta \mid 0) + q\, r(\zeta \mid 1)` (DVAE++ Eq. 3).

    :math:`x = e^{-\beta\zeta}` is the positive root of :math:`a x^2 + b x - c = 0` with
    :math:`a = 1 - q`, :math:`c = q e^{-\beta}`, :math:`b = \rho - (1 - q) + e^{-\beta}(q -
    \rho)`. With :math:`h = \sqrt{b^2 + 4ac}` the root is :math:`2c / (b + h)` for
    :math:`b \ge 0` and :math:`(h - b) / 2a` for :math:`b < 0` (no cancellation in either),
    and :math:`a`, :math:`c` enter as logarithms. Each branch sees :math:`b` clamped to
    its own sign, so the branch ``where`` discards has a finite gradient.

    :param logits: :math:`\ell = \operatorname{logit} q`, broadcastable to ``rho``.
    :param rho: uniforms, shape (K, B, n).
    :returns: shape of ``rho``.
    """
    log_a = F.logsigmoid(-logits)
    log_c = F.logsigmoid(logits) - beta
    exp_minus_beta = math.exp(-beta)
    b = -torch.where(logits < 0, (1 - rho) - torch.sigmoid(logits), torch.sigmoid(-logits) - rho)
    b = b + exp_minus_beta * (torch.sigmoid(logits) - rho)
    two_sqrt_ac = torch.exp(LOG_TWO + 0.5 * (log_a + log_c)).clamp(min=torch.finfo(b.dtype).tiny)
    b_nonneg, b_neg = b.clamp(min=0), b.clamp(max=0)
    log_root_via_c = LOG_TWO + log_c - torch.log(b_nonneg + torch.hypot(b_nonneg, two_sqrt_ac))
    log_root_via_a = torch.log(torch.hypot(b_neg, two_sqrt_ac) - b_neg) - LOG_TWO - log_a
    log_root = torch.where(b >= 0, log_root_via_c, log_root_via_a)
    return (-log_root / beta).clamp(0, 1)  # clamp: rounding only


def vector_matrix(vectors: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r""":math:`v^\top W` for a batch of row vectors ``vectors`` (..., n1), shape (..., n2)."""
    return torch.matmul(vectors.unsqueeze(-2), weight).squeeze(-2)


def bilinear(left: torch.Tensor, weight: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    r""":math:`l^\top W r` for batches of vectors, shape (...)."""
    return (vector_matrix(left, weight) * right).sum(-1)


def bernoulli_entropy(logits: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_u H(\mathcal B(\mu_u))` over the last dim, from the logits and :math:`\mu` already computed.

    :math:`H = \mu\,\mathrm{softplus}(-\ell) + (1 - \mu)\,\mathrm{softplus}(\ell)`.
    """
    return (probs * F.softplus(-logits) + (1 - probs) * F.softplus(logits)).sum(-1)


class PlainDVAEPlusPlus:
    r"""The DVAE++ training surrogate of the module docstring, on a model/guide pair's modules.

    Holds its own persistent chains (:attr:`chains`, shape (S, n1 + n2)); the group
    structure is read once from ``model.layout``.

    :param model: a :class:`~pyro_dgm.models.dvae.DiscreteVAE` with overlapping-
        exponential smoothing and no continuous layers.
    :param guide: its :class:`~pyro_dgm.models.dvae_guides.HierarchicalSmoothedGuide`.
    :param num_chains: :math:`S`, persistent chains.
    :param num_sweeps: block-Gibbs sweeps of the chains per step.

    Example:
        >>> from pyro_dgm.models.dvae import build_dvae_pp
        >>> model, guide = build_dvae_pp(784, 8, 8)
        >>> plain = PlainDVAEPlusPlus(model, guide, num_chains=4, num_sweeps=2)
        >>> plain.surrogate(torch.zeros(3, 784), num_particles=2, num_data=60).backward()
    """

    def __init__(
        self, model: DiscreteVAE, guide: HierarchicalSmoothedGuide, num_chains: int, num_sweeps: int
    ) -> None:
        if model.smoothing.name != "overlapping_exponential" or model.layout.continuous_sizes:
            raise ValueError("the plain DVAE++ covers overlapping-exponential smoothing without continuous layers")
        if not isinstance(guide, HierarchicalSmoothedGuide):
            raise ValueError(f"the plain DVAE++ covers the hierarchical guide, got {type(guide).__name__}")
        self.model = model
        self.guide = guide
        self.beta = float(model.smoothing.beta)
        self.num_sweeps = num_sweeps
        self.group_sizes = model.layout.group_sizes
        self.chains = torch.zeros(num_chains, model.num_units1 + model.num_units2)
        self._coupling_terms = self._coupling_masks()

    def _coupling_masks(self) -> list[tuple[str, str, torch.Tensor | None]]:
        r"""For each non-empty class of pairs (u, v) of Eq. 7: which of :math:`\mu, \nu` each side uses, and the mask.

        ``None`` stands for an all-true mask (no multiplication by it).
        """
        group_of_unit = torch.repeat_interleave(
            torch.arange(len(self.group_sizes)), torch.tensor(self.group_sizes)
        )
        group1 = group_of_unit[: self.model.num_units1].unsqueeze(-1)
        group2 = group_of_unit[self.model.num_units1 :].unsqueeze(-2)
        terms = []
        for left, right, mask in (
            ("nu", "mu", group1 < group2),  # u's zeta already drawn: nu_u mu_v
            ("mu", "nu", group1 > group2),  # v's zeta already drawn: mu_u nu_v
            ("mu", "mu", group1 == group2),  # same group: independent given zeta_<j
        ):
            if mask.any():
                terms.append((left, right, None if mask.all() else mask.to(self.chains.dtype)))
        return terms

    def expected_coupling(self, mu: torch.Tensor, nu: torch.Tensor) -> torch.Tensor:
        r""":math:`\sum_{uv} W_{uv} m_{uv}` (DVAE++ Eq. 7), shape (K, B)."""
        num_units1, weight = self.model.num_units1, self.model.weight
        sides = {"mu": (mu[..., :num_units1], mu[..., num_units1:]), "nu": (nu[..., :num_units1], nu[..., num_units1:])}
        total = 0.0
        for left, right, mask in self._coupling_terms:
            total = total + bilinear(sides[left][0], weight if mask is None else weight * mask, sides[right][1])
        return total

    def gibbs_step(self) -> torch.Tensor:
        """Advance the chains :attr:`num_sweeps` block-Gibbs sweeps; return the new states ``[z1, z2]``."""
        model = self.model
        with torch.no_grad():
            z1 = self.chains[:, : model.num_units1]
            for _ in range(self.num_sweeps):
                probs2 = torch.sigmoid(torch.addmm(model.bias2, z1, model.weight))
                z2 = (torch.rand_like(probs2) < probs2).to(probs2.dtype)
                probs1 = torch.sigmoid(torch.addmm(model.bias1, z2, model.weight.T))
                z1 = (torch.rand_like(probs1) < probs1).to(probs1.dtype)
            states = torch.cat([z1, z2], dim=-1)
            self.chains.copy_(states)
        return states

    def log_partition_surrogate(self) -> torch.Tensor:
        r"""Value 0, gradient :math:`\frac1S \sum_s -\nabla E(z^{(s)})` after this step's sweeps (DVAE Eq. 11)."""
        model = self.model
        states = self.gibbs_step()
        z1, z2 = states[:, : model.num_units1], states[:, model.num_units1 :]
        negative_energy = (model.bias1 * z1).sum(-1) + ((model.bias2 + z1 @ model.weight) * z2).sum(-1)
        mean = negative_energy.mean()
        return mean - mean.detach()

    def surrogate(
        self, x: torch.Tensor, num_particles: int, num_data: int, draw_guide_binary: bool = False
    ) -> torch.Tensor:
        """The loss of the module docstring; its gradient is the estimator.

        :param x: binary data, shape (B, D).
        :param draw_guide_binary: also draw (and discard) the guide's binary sample, as the
            Pyro path does, so that the chains then get the same random numbers.
        """
        batch_size, beta = x.size(0), self.beta
        particle_batch = (num_particles, batch_size)
        logits, zetas, posterior_probs = [], [], []
        for network, size in zip(self.guide.networks, self.group_sizes):
            context = torch.cat([x.expand(particle_batch + x.shape[-1:]), *zetas], -1) if zetas else x
            group_logits = network.logits(context)
            rho = torch.rand(particle_batch + (size,), dtype=x.dtype, device=x.device)
            zeta = overlapping_exponential_icdf(group_logits, rho, beta)
            logits.append(group_logits.expand(particle_batch + (size,)))
            zetas.append(zeta)
            posterior_probs.append(torch.sigmoid(group_logits + beta * (2 * zeta - 1)))  # DVAE++ Sec. 5
        all_logits, nu = torch.cat(logits, -1), torch.cat(posterior_probs, -1)
        if draw_guide_binary:
            with torch.no_grad():
                torch.bernoulli(nu)
        log_likelihood = bernoulli_log_prob(self.model.decoder.logits(torch.cat(zetas, -1)), x)
        mu = torch.sigmoid(all_logits)
        bias = torch.cat([self.model.bias1, self.model.bias2])
        kl_without_log_partition = (
            -bernoulli_entropy(all_logits, mu) - (mu * bias).sum(-1) - self.expected_coupling(mu, nu)
        )  # DVAE++ Eq. 7
        per_particle = num_data / (batch_size * num_particles)
        negative_elbo = per_particle * (kl_without_log_partition - log_likelihood).sum()
        return negative_elbo + num_data * self.log_partition_surrogate()

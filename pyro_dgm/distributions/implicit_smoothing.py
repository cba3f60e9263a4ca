r"""Smoothing transformations on :math:`[0, 1]` without a closed-form marginal inverse CDF (DVAE# Sec. 3.4).

DVAE# (Vahdat, Andriyash & Macready 2018) generalises the overlapping transformations of
DVAE++ to conditionals :math:`r(\zeta \mid z)` whose *mixture*

.. math::

    F(\zeta; \theta) = (1 - q)\, R_0(\zeta) + q\, R_1(\zeta)

cannot be inverted analytically. A draw is then made ancestrally and differentiated
implicitly:

1. :math:`z \sim \mathrm{Bernoulli}(q)`, :math:`\hat\zeta \sim r(\zeta \mid z)` (a closed-form
   conditional inverse CDF, or any exact sampler of :math:`r(\cdot \mid z)`);
2. :math:`\hat\zeta` is a draw of :math:`F^{-1}(u; \theta)` with :math:`u = F(\hat\zeta; \theta)`
   uniform, so by the inverse function theorem

   .. math::

       \frac{\partial \zeta}{\partial \theta} = -\frac{\partial F(\zeta; \theta) / \partial \theta}{f(\zeta; \theta)},
       \qquad f = \partial F / \partial \zeta = (1 - q)\, r(\zeta \mid 0) + q\, r(\zeta \mid 1);

   for :math:`\theta = q` this is DVAE#'s :math:`(R_0(\zeta) - R_1(\zeta)) / f(\zeta)`.

:class:`ImplicitSmoothingTransformation` attaches that gradient with the surrogate
:math:`\zeta = \hat\zeta - (F(\hat\zeta; \theta) - \bot F(\hat\zeta; \theta)) / \bot f(\hat\zeta; \theta)`
(:math:`\bot`: stop-gradient), whose value is :math:`\hat\zeta` and whose derivative in
*every* parameter (``logits`` and ``beta``) is the implicit one; the DVAE# code differentiates
in :math:`q` only. ``icdf`` inverts :math:`F` numerically (bisection on :math:`\mathrm{logit}\,\zeta`)
and attaches the same gradient, so ``icdf``/``cdf`` remain exact inverses for tests and for
quadrature. Derivation: ``docs/derivations/dvae_sharp.md``.
"""

from __future__ import annotations

from typing import Callable, Tuple

import torch

from pyro_dgm.distributions.smoothing import TemperedSmoothingTransformation

__all__ = ["ImplicitSmoothingTransformation", "bisect_unit_interval", "open_unit_interval"]

BISECTION_LOGIT_BOUND = 800.0
r"""Bracket :math:`[-800, 800]` of :math:`t = \mathrm{logit}\,\zeta`: :math:`\sigma(-800)` underflows to 0 and
:math:`\sigma(800)` rounds to 1 in float64 (the smallest subnormal is :math:`e^{-745}`), so the bracket
holds every representable :math:`\zeta`."""

BISECTION_ITERATIONS = 90
r"""Halvings of the 1600-wide bracket: :math:`1600 \cdot 2^{-90} \approx 10^{-24}` in :math:`t`, i.e. a relative
error in :math:`\zeta` (and in :math:`1 - \zeta`) far below float64's :math:`2.2 \times 10^{-16}`; in practice
the bracket stops shrinking at one ulp of :math:`t`."""

FLOAT_REFINEMENT_ITERATIONS = 16
r"""Halvings of the floats between :math:`\sigma` of the final :math:`t`-bracket's ends: at most :math:`2^9`
floats apart (one ulp of :math:`t` near :math:`|t| = 745` spans a relative :math:`1.1 \times 10^{-13}` of
:math:`e^t`), so 16 halvings leave adjacent floats with a margin of :math:`2^7`."""


def open_unit_interval(zeta: torch.Tensor) -> torch.Tensor:
    r"""Clamp to :math:`[\epsilon/2, 1 - \epsilon/2]` (:math:`\epsilon` the dtype's machine epsilon): symmetric, inside :math:`(0, 1)`.

    A draw :math:`\hat\zeta = \rho^{\beta}` of the power-function smoother lies closer to an end
    than the dtype resolves with probability :math:`\delta^{1/\beta}` (float32, :math:`\beta = 40`:
    :math:`1 - \zeta < 2^{-24}` for 66% of the :math:`z = 1` draws), and rounds to exactly 0 or 1,
    where :math:`\log r(\zeta \mid z) = \pm\infty`. :math:`1 - \epsilon/2` is the largest number
    below 1; the lower end is its mirror image :math:`\epsilon/2`, not the smallest normal number,
    because :math:`\partial_\zeta \log r(\zeta \mid 0) \propto 1/\zeta` must stay far from overflow
    (at :math:`\zeta = 10^{-38}` a few such terms overflow float32 in the backward pass). The
    clamp changes an importance weight by at most Eq. (2) of ``docs/derivations/dvae_sharp.md``.
    """
    half_eps = torch.finfo(zeta.dtype).eps / 2
    return zeta.clamp(min=half_eps, max=1 - half_eps)


def bisect_unit_interval(cdf: Callable[[torch.Tensor], torch.Tensor], rho: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    r"""Solve :math:`\mathrm{cdf}(\zeta) = \rho` for an increasing ``cdf`` on :math:`[0, 1]`, without gradient.

    Bisects :math:`t = \mathrm{logit}\,\zeta` on :data:`BISECTION_LOGIT_BOUND`, so that :math:`\zeta` near 0
    and :math:`1 - \zeta` near 0 are both found to a relative (not absolute) precision: the
    power-function smoother puts mass 0.08 below :math:`10^{-45}` at :math:`\beta = 40`. Works in
    float64 whatever the dtype of ``rho``; the result has ``rho``'s dtype and shape ``shape``.

    Returns the generalised inverse :math:`\inf\{\zeta : \mathrm{cdf}(\zeta) \ge \rho\}` to the float: the
    smallest float of ``rho``'s dtype found with :math:`\mathrm{cdf} \ge \rho`, the upper end of the
    bracket, on which that holds by construction (:math:`\sigma(800) = 1` starts it so). The
    :math:`t`-grid alone cannot give it: :math:`\sigma(t) = 1/(1 + e^{-t})` reaches only every other
    float below 1 (:math:`1 + e^{-t}` has half their resolution), and near 0 one ulp of :math:`t` is
    :math:`2^9` floats of :math:`e^t`; so :data:`FLOAT_REFINEMENT_ITERATIONS` halvings follow on the floats
    between :math:`\sigma(\text{lower})` and :math:`\sigma(\text{upper})`. The midpoint of the bracket would
    not do near an end, where one float holds visible mass: :math:`F(1 - \epsilon/2) = 1 - q(\epsilon/2)^{1/\beta}`
    (float64, power smoother, :math:`\beta = 8`: :math:`1 - 0.0099 q`), so every :math:`\rho` above it must give
    :math:`\zeta = 1`; the midpoint gave :math:`1 - \epsilon/2`, with :math:`F(\zeta) < \rho` by up to
    :math:`0.0099 q`. At :math:`\rho = 0` the result is :math:`\sigma(-800) = 0`.
    """
    with torch.no_grad():
        target = rho.to(torch.float64).expand(shape)
        lower = torch.full(shape, -BISECTION_LOGIT_BOUND, dtype=torch.float64, device=rho.device)
        upper = torch.full(shape, BISECTION_LOGIT_BOUND, dtype=torch.float64, device=rho.device)
        for _ in range(BISECTION_ITERATIONS):
            middle = 0.5 * (lower + upper)
            below = cdf(torch.sigmoid(middle)) < target
            lower = torch.where(below, middle, lower)
            upper = torch.where(below, upper, middle)
        lower, upper = torch.sigmoid(lower).to(rho.dtype), torch.sigmoid(upper).to(rho.dtype)
        for _ in range(FLOAT_REFINEMENT_ITERATIONS):  # adjacent floats are a fixed point
            middle = lower + (upper - lower) / 2
            below = cdf(middle.to(torch.float64)) < target
            lower = torch.where(below, middle, lower)
            upper = torch.where(below, upper, middle)
        return upper


class ImplicitSmoothingTransformation(TemperedSmoothingTransformation):
    r"""A tempered smoother on :math:`[0, 1]` sampled ancestrally with implicit reparameterisation gradients.

    Subclasses implement ``_conditional_log_densities``, ``_conditional_cdfs`` (differentiable in
    ``beta``) and either ``_conditional_icdfs`` or ``_draw_conditionals`` (exact draws of
    :math:`r(\cdot \mid 0)` and :math:`r(\cdot \mid 1)`, no gradient needed).
    """

    # ----------------------------------------------------------------- sampling
    def _draw_conditionals(self, shape: torch.Size) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""Draws of :math:`r(\zeta \mid 0)` and :math:`r(\zeta \mid 1)` of ``shape``; default: conditional inverse CDFs."""
        rho = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device)
        return self._conditional_icdfs(rho)

    def _with_implicit_gradient(self, zeta: torch.Tensor) -> torch.Tensor:
        r""":math:`\hat\zeta - (F(\hat\zeta) - \bot F(\hat\zeta)) / \bot f(\hat\zeta)`: value :math:`\hat\zeta`, gradient :math:`-\partial_\theta F / f`."""
        zeta = zeta.detach()
        if not torch.is_grad_enabled():
            return zeta
        cdf = self._mixture_cdf(zeta)
        if not cdf.requires_grad:
            return zeta.expand(cdf.shape)
        # f = inf at an end of the power smoother: the implicit derivative is 0 there (x / inf = 0).
        density = self._log_marginal_density(zeta).detach().exp().clamp(min=torch.finfo(zeta.dtype).tiny)
        return zeta - (cdf - cdf.detach()) / density

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        r"""Ancestral draw (:math:`z`, then :math:`\zeta \mid z`) with the implicit gradient; kept inside :math:`(0, 1)`."""
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            zeta_zero, zeta_one = self._draw_conditionals(shape)
            uniform = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device)
            z = uniform < torch.sigmoid(self.logits).expand(shape)
            zeta = open_unit_interval(torch.where(z, zeta_one, zeta_zero))
        return self._with_implicit_gradient(zeta)

    # ----------------------------------------------------------------- inverse CDFs
    def _inverse_cdf(self, rho: torch.Tensor) -> torch.Tensor:
        shape = torch.broadcast_shapes(rho.shape, self.batch_shape)
        zeta = bisect_unit_interval(lambda zeta: self._mixture_cdf(zeta.to(self.logits.dtype)).to(torch.float64), rho, shape)
        return self._with_implicit_gradient(zeta)

    def _mixture_cdf(self, zeta: torch.Tensor) -> torch.Tensor:
        cdf_zero, cdf_one = self._conditional_cdfs(zeta)
        return self._prob_zero * cdf_zero + self._prob_one * cdf_one

    def _bisect_conditional_icdfs(self, rho: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Both conditional inverse CDFs by bisection (for conditionals without a closed form)."""
        shape = torch.broadcast_shapes(rho.shape, self.beta.shape)
        return tuple(  # type: ignore[return-value]
            bisect_unit_interval(lambda zeta, z=z: self._conditional_cdfs(zeta.to(self.beta.dtype))[z].to(torch.float64), rho, shape)
            for z in (0, 1)
        )

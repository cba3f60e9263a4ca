r"""Gibbs sampling from the BiHM model :math:`p^*(x, h)`, and inpainting (BiHM Sec. 3).

The BiHM joint is :math:`p^*(x, h) = \sqrt{p(x, h)\, q(x)\, q(h \mid x)} / Z` with
:math:`q(x) = p^*(x) = \tilde p^*(x) / Z^2` (Sec. 2), so

.. math::

    p^*(x, h) \propto \sqrt{p(x, h)\, q(h \mid x)}\; \sqrt{\tilde p^*(x)} .

The factor :math:`\sqrt{\tilde p^*(x)}` does not involve :math:`h`, so the latent
layers have local full conditionals (the paper's formula for :math:`h_1`, any
depth; :math:`h_0 = x`, no :math:`h_{L+1}` factor at the top):

.. math::

    p^*(h_l \mid \text{rest}) \propto \sqrt{p(h_l \mid h_{l+1})\, p(h_{l-1} \mid h_l)\,
        q(h_l \mid h_{l-1})\, q(h_{l+1} \mid h_l)} .

Layers of one parity are independent given the other parity, so a sweep updates
all odd layers, then all even layers (:math:`x` included), as in the paper. Each
conditional is sampled by importance resampling from the paper's proposals:
:math:`\tfrac12 p(h_l \mid h_{l+1}) + \tfrac12 q(h_l \mid h_{l-1})` for latent layers
and :math:`p(x \mid h_1)` for :math:`x`, with weights target / proposal.

Two details make every step leave :math:`p^*` *exactly* invariant rather than
approximately (the paper's plain resampling is exact only as the number of
proposals :math:`K \to \infty`):

* **Conditional importance resampling** (iterated SIR; Andrieu, Lee & Vihola,
  2018): the current value is kept as candidate 0 next to the K fresh proposals,
  and one of the K + 1 is drawn with probability proportional to its weight. The
  proposals do not depend on the current value, so this is a Gibbs step on an
  extended space and invariant for any K.
* **The** :math:`\sqrt{\tilde p^*(x)}` **factor of the x conditional** is intractable;
  its unbiased importance estimate
  :math:`\hat m(x) = \frac1M \sum_m \sqrt{p(x, h'_m) / q(h'_m \mid x)}`,
  :math:`h'_m \sim q(h \mid x)`, enters the weight of every fresh x candidate, and the
  current x keeps the estimate it was accepted with (a pseudo-marginal step: the
  chain targets an extended distribution whose :math:`(x, h)` marginal is exactly
  :math:`p^*`). Dropping the factor would sample the x-marginal
  :math:`\propto \sqrt{\tilde p^*(x)}` instead of :math:`\propto \tilde p^*(x)`.

The weight of an x candidate, with :math:`x_{mis}` the resampled (missing) pixels
and the observed ones clamped (inpainting; :math:`x_{mis} = x` when sampling):

.. math::

    \log w(x) = \tfrac12 \log q(h_1 \mid x) - \tfrac12 \log p(x_{mis} \mid h_1) + \log \hat m(x) .

Everything is vectorised over chains (leading dim) and candidates; the Python loops
run over layers and sweeps only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pyro_dgm.bihm.sbn_partition import bernoulli_log_prob_
from pyro_dgm.distributions.argument_checks import check_int
from pyro_dgm.infer.estimators.log_likelihood import accumulate_log_weights
from pyro_dgm.infer.objectives.bihm import BHATTACHARYYA_POWER
from pyro_dgm.models.plates import DATA_PLATE_DIM, check_data
from pyro_dgm.models.sbn import OBSERVED_SITE, SigmoidBeliefNet, latent_site_name
from pyro_dgm.models.sbn_guides import BottomUpGuide

DEFAULT_NUM_CANDIDATES = 10
"""Fresh proposals per conditional update (K); any K >= 1 leaves p* invariant."""

DEFAULT_NUM_INNER = 10
r"""Guide samples M per x candidate for :math:`\hat m(x)`; BiHM's q is close to
:math:`p^*(h \mid x)`, so a few samples give a low-variance estimate."""

MIXTURE_WEIGHT_OF_P = 0.5
r"""Proposal for latent layers :math:`\tfrac12 p(h_l \mid h_{l+1}) + \tfrac12 q(h_l \mid h_{l-1})` (Sec. 3)."""


@dataclass
class GibbsState:
    r"""The state of C independent chains.

    :ivar x: visible layer, shape (C, D).
    :ivar latents: :math:`[h_1, \dots, h_L]`, shapes (C, H_l).
    :ivar log_sqrt_bound: :math:`\log \hat m(x)`, the estimate of
        :math:`\log \sqrt{\tilde p^*(x)}` the current x was accepted with, shape (C,)
        (the pseudo-marginal auxiliary variable).
    """

    x: torch.Tensor
    latents: list[torch.Tensor]
    log_sqrt_bound: torch.Tensor

    @property
    def layers(self) -> list[torch.Tensor]:
        r""":math:`[x, h_1, \dots, h_L]`: index = layer number."""
        return [self.x, *self.latents]




def _check_pair(model: SigmoidBeliefNet, guide: BottomUpGuide) -> None:
    if not isinstance(model, SigmoidBeliefNet) or not isinstance(guide, BottomUpGuide):
        raise ValueError(
            "the BiHM Gibbs sampler needs a SigmoidBeliefNet model and a BottomUpGuide, got "
            f"{type(model).__name__} and {type(guide).__name__}"
        )
    if list(model.layer_sizes) != list(guide.layer_sizes):
        raise ValueError(f"model and guide layer sizes differ: {model.layer_sizes} vs {guide.layer_sizes}")


def _log_prob(logits: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Sum over the last dim of log Bernoulli(value | sigmoid(logits)), broadcasting."""
    scratch = torch.empty(
        torch.broadcast_shapes(logits.shape, value.shape), dtype=logits.dtype, device=logits.device
    )
    return bernoulli_log_prob_(logits, value, scratch)


def _resample(candidates: torch.Tensor, log_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one candidate per chain with probability proportional to its weight.

    ``candidates`` (K + 1, C, ...), ``log_weights`` (K + 1, C); returns the chosen
    values (C, ...) and indices (C,).
    """
    index = torch.distributions.Categorical(logits=log_weights.transpose(0, 1)).sample()
    chains = torch.arange(candidates.size(1), device=candidates.device)
    return candidates[index, chains], index


def estimate_log_sqrt_bound(
    model: SigmoidBeliefNet, guide: BottomUpGuide, x: torch.Tensor, num_inner: int
) -> torch.Tensor:
    r""":math:`\log \hat m(x) = \log \frac1M \sum_m \sqrt{p(x, h'_m)/q(h'_m \mid x)}`, shape (N,).

    ``x`` (N, D); an unbiased estimate of :math:`\sqrt{\tilde p^*(x)}` (BiHM Eq. 4
    before squaring), from the generic importance weights of
    :mod:`pyro_dgm.infer.estimators.log_likelihood`.
    """
    sums, _ = accumulate_log_weights(  # the SBN's one plate is known: no guessing trace per sweep
        model, guide, x, powers=(BHATTACHARYYA_POWER,), num_samples=num_inner, chunk_size=num_inner,
        max_plate_nesting=-DATA_PLATE_DIM,
    )
    return sums.log_mean(BHATTACHARYYA_POWER)


def update_latent_layer(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    layers: Sequence[torch.Tensor],
    layer: int,
    num_candidates: int = DEFAULT_NUM_CANDIDATES,
) -> torch.Tensor:
    r"""Draw a new :math:`h_l` for every chain, leaving :math:`p^*(h_l \mid h_{l-1}, h_{l+1})` invariant.

    :param layers: :math:`[x, h_1, \dots, h_L]`, each (C, H_l).
    :param layer: l, 1 <= l <= L.
    :returns: the new :math:`h_l`, (C, H_l).
    """
    top = model.num_latent_layers
    current, below = layers[layer], layers[layer - 1]
    above = layers[layer + 1] if layer < top else None
    num_chains = current.size(0)
    logits_p = (
        model.conditionals[layer].logits(above) if above is not None else model.prior.bias.expand_as(current)
    )
    logits_q = guide.conditionals[layer - 1].logits(below)
    from_p = torch.rand(num_candidates, num_chains, 1, device=current.device) < MIXTURE_WEIGHT_OF_P
    proposal_logits = torch.where(from_p, logits_p, logits_q)  # a draw from (p + q) / 2, Sec. 3
    fresh = torch.bernoulli(torch.sigmoid(proposal_logits))
    candidates = torch.cat([current.unsqueeze(0), fresh])  # candidate 0: the current value
    log_p_self = _log_prob(logits_p, candidates)  # p(h_l | h_l+1)
    log_q_self = _log_prob(logits_q, candidates)  # q(h_l | h_l-1)
    log_target = log_p_self + log_q_self + _log_prob(model.conditionals[layer - 1].logits(candidates), below)
    if above is not None:
        log_target = log_target + _log_prob(guide.conditionals[layer].logits(candidates), above)
    log_proposal = torch.logaddexp(log_p_self, log_q_self) + math.log(MIXTURE_WEIGHT_OF_P)
    new_value, _ = _resample(candidates, BHATTACHARYYA_POWER * log_target - log_proposal)
    return new_value


def update_visible_layer(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    state: GibbsState,
    num_candidates: int = DEFAULT_NUM_CANDIDATES,
    num_inner: int = DEFAULT_NUM_INNER,
    observed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw a new x (its missing pixels) for every chain, leaving :math:`p^*` invariant.

    Proposals :math:`x_{mis} \sim p(x_{mis} \mid h_1)` with the ``observed`` pixels
    (bool mask, True = clamped) kept; weights as in the module docstring.

    :returns: the new x (C, D) and its :math:`\log \hat m(x)` (C,).
    """
    x, first = state.x, state.latents[0]
    num_chains = x.size(0)
    data_logits = model.conditionals[0].logits(first)
    fresh = torch.bernoulli(torch.sigmoid(data_logits).expand(num_candidates, *x.shape))
    if observed is not None:
        fresh = torch.where(observed, x, fresh)
    fresh_log_sqrt_bound = estimate_log_sqrt_bound(model, guide, fresh.reshape(-1, x.size(-1)), num_inner)
    candidates = torch.cat([x.unsqueeze(0), fresh])  # candidate 0: the current value
    log_sqrt_bound = torch.cat(
        [state.log_sqrt_bound.unsqueeze(0), fresh_log_sqrt_bound.view(num_candidates, num_chains)]
    )
    pixel_log_prob = -torch.nn.functional.softplus(
        torch.addcmul(data_logits, candidates, data_logits, value=-2.0)
    )
    if observed is not None:
        pixel_log_prob = pixel_log_prob.masked_fill(observed, 0.0)
    log_q_first = _log_prob(guide.conditionals[0].logits(candidates), first)
    log_weights = BHATTACHARYYA_POWER * (log_q_first - pixel_log_prob.sum(dim=-1)) + log_sqrt_bound
    new_x, index = _resample(candidates, log_weights)
    return new_x, log_sqrt_bound[index, torch.arange(num_chains, device=x.device)]


def _check_observed(observed: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    if observed is None:
        return None
    if not isinstance(observed, torch.Tensor) or observed.dtype != torch.bool:
        raise ValueError("observed must be a bool tensor (True = pixel observed and clamped)")
    try:
        return observed.to(x.device).expand_as(x)
    except RuntimeError as error:
        raise ValueError(
            f"observed of shape {tuple(observed.shape)} does not broadcast to x of shape {tuple(x.shape)}"
        ) from error


def gibbs_sweep(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    state: GibbsState,
    *,
    num_candidates: int = DEFAULT_NUM_CANDIDATES,
    num_inner: int = DEFAULT_NUM_INNER,
    observed: torch.Tensor | None = None,
) -> GibbsState:
    """One sweep: all odd layers, then all even layers (x included) (BiHM Sec. 3)."""
    layers = state.layers
    log_sqrt_bound = state.log_sqrt_bound
    for parity in (1, 0):
        for layer in range(parity, model.num_latent_layers + 1, 2):
            if layer == 0:
                current = GibbsState(layers[0], layers[1:], log_sqrt_bound)
                layers[0], log_sqrt_bound = update_visible_layer(
                    model, guide, current, num_candidates, num_inner, observed
                )
            else:
                layers[layer] = update_latent_layer(model, guide, layers, layer, num_candidates)
    return GibbsState(layers[0], layers[1:], log_sqrt_bound)


def unnormalized_log_p_star(model: SigmoidBeliefNet, guide: BottomUpGuide, state: GibbsState) -> torch.Tensor:
    r"""The log-density the chains leave invariant, up to a constant, at their current states; shape (C,).

    .. math::

        \log \tilde p^*(x, h) = \tfrac12 \log p(x, h) + \tfrac12 \log q(h \mid x) + \log \hat m(x)
            \approx \log p^*(x, h) + 2 \log Z ,

    with :math:`\log \hat m(x)` = ``state.log_sqrt_bound``, the estimate of
    :math:`\log \sqrt{\tilde p^*(x)}` the current x was accepted with (exact
    :math:`\log p^* + 2\log Z` when it is exact; BiHM Sec. 2). Its negative is the
    chains' energy, a scalar whose trace over sweeps shows whether they have mixed.
    """
    layers = state.layers
    top = model.num_latent_layers
    with torch.no_grad():
        log_p = _log_prob(model.prior.bias, layers[top])  # p(h_L)
        log_q = torch.zeros_like(log_p)
        for layer in range(top):
            log_p = log_p + _log_prob(model.conditionals[layer].logits(layers[layer + 1]), layers[layer])
            log_q = log_q + _log_prob(guide.conditionals[layer].logits(layers[layer]), layers[layer + 1])
        return BHATTACHARYYA_POWER * (log_p + log_q) + state.log_sqrt_bound


def run_gibbs(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    state: GibbsState,
    num_sweeps: int,
    *,
    num_candidates: int = DEFAULT_NUM_CANDIDATES,
    num_inner: int = DEFAULT_NUM_INNER,
    observed: torch.Tensor | None = None,
) -> GibbsState:
    r"""Run ``num_sweeps`` sweeps of :func:`gibbs_sweep` on every chain; no autograd.

    ``observed`` (bool, broadcastable to ``state.x``) clamps pixels to their values
    in ``state.x``.
    """
    _check_pair(model, guide)
    check_int("num_sweeps", num_sweeps, minimum=0)
    check_int("num_candidates", num_candidates)
    check_int("num_inner", num_inner)
    observed = _check_observed(observed, state.x)
    with torch.no_grad():
        for _ in range(num_sweeps):
            state = gibbs_sweep(
                model, guide, state, num_candidates=num_candidates, num_inner=num_inner, observed=observed
            )
    return state


def initial_state_from_model(
    model: SigmoidBeliefNet, guide: BottomUpGuide, num_chains: int, num_inner: int = DEFAULT_NUM_INNER
) -> GibbsState:
    r"""Chains started at ancestral samples :math:`(x, h) \sim p` (BiHM Fig. 1A to 1B)."""
    _check_pair(model, guide)
    check_int("num_chains", num_chains)
    with torch.no_grad():
        sample = model.sample(num_chains)
        return _state_at(model, guide, sample[OBSERVED_SITE], sample, num_inner)


def initial_state_from_guide(
    model: SigmoidBeliefNet, guide: BottomUpGuide, x: torch.Tensor, num_inner: int = DEFAULT_NUM_INNER
) -> GibbsState:
    r"""Chains started at ``x`` (C, D) with :math:`h \sim q(h \mid x)` (BiHM Sec. 3, inpainting)."""
    _check_pair(model, guide)
    check_data(x, model.layer_sizes[0], model)
    with torch.no_grad():
        return _state_at(model, guide, x, guide(x), num_inner)


def _state_at(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    x: torch.Tensor,
    sample: dict[str, torch.Tensor],
    num_inner: int,
) -> GibbsState:
    """Chains at ``x`` and the latent layers of ``sample`` (values by site name)."""
    latents = [sample[latent_site_name(layer)] for layer in range(1, model.num_latent_layers + 1)]
    return GibbsState(x, latents, estimate_log_sqrt_bound(model, guide, x, num_inner))


def sample_p_star(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    num_chains: int,
    num_sweeps: int,
    *,
    num_candidates: int = DEFAULT_NUM_CANDIDATES,
    num_inner: int = DEFAULT_NUM_INNER,
) -> GibbsState:
    r"""Approximate samples of :math:`p^*(x, h)`: ``num_sweeps`` sweeps from :math:`(x, h) \sim p`.

    BiHM Fig. 1B uses 10 sweeps. Example::

        state = sample_p_star(model, guide, num_chains=64, num_sweeps=10)
        images = state.x.view(-1, 28, 28)
    """
    state = initial_state_from_model(model, guide, num_chains, num_inner)
    return run_gibbs(model, guide, state, num_sweeps, num_candidates=num_candidates, num_inner=num_inner)


def inpaint(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    x: torch.Tensor,
    observed: torch.Tensor,
    num_sweeps: int,
    *,
    num_candidates: int = DEFAULT_NUM_CANDIDATES,
    num_inner: int = DEFAULT_NUM_INNER,
) -> GibbsState:
    r"""Sample the missing pixels from :math:`p^*(x_{mis} \mid x_{obs})` (BiHM Sec. 3, Fig. 2).

    :param x: (C, D) images; the values at missing pixels are the chains' start
        (e.g. zeros). Repeat rows for several independent reconstructions.
    :param observed: bool mask broadcastable to x, True where the pixel is kept.
    :param num_sweeps: BiHM Fig. 2 uses 100.
    :returns: the final :class:`GibbsState`; ``.x`` holds the inpainted images.

    Example::

        observed = torch.ones(28, 28, dtype=torch.bool); observed[14:] = False
        state = inpaint(model, guide, x_test[:8], observed.flatten(), num_sweeps=100)
    """
    observed = _check_observed(observed, x)
    state = initial_state_from_guide(model, guide, x, num_inner)
    return run_gibbs(
        model,
        guide,
        state,
        num_sweeps,
        num_candidates=num_candidates,
        num_inner=num_inner,
        observed=observed,
    )

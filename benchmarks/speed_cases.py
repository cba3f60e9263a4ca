r"""The pairs of training steps that :mod:`benchmarks.speed` times: pyro_dgm (or Pyro) vs plain PyTorch.

A training step is: set every gradient to ``None``, compute the loss, backpropagate
(no optimiser step in either path). The Pyro side calls the objective's
``loss_and_grads`` — what :class:`pyro.infer.SVI` calls every step — on the model
and guide written in Pyro syntax; the plain side computes the same estimator's
surrogate loss on the *same* modules (so the same weights) with
:mod:`benchmarks.plain_sbn`, :mod:`benchmarks.plain_vae` or :mod:`benchmarks.plain_dvae_pp`.

Objectives (``OBJECTIVES``):

* ``bihm`` — :class:`~pyro_dgm.infer.objectives.bihm.BiHMELBO` on an SBN;
* ``rws`` — :class:`~pyro_dgm.infer.objectives.rws.ReweightedWakeSleep` with its default
  ``insomnia=1`` (wake phase only);
* ``rws_sleep`` — the same with ``insomnia=0.5`` (wake-φ and sleep-φ averaged: one
  more model run, on dreams);
* ``vimco`` — :class:`~pyro_dgm.infer.objectives.vimco.VIMCO` (K >= 2);
* ``iwae`` — Pyro's ``RenyiELBO(alpha=0, vectorize_particles=True)`` on the Gaussian
  VAE of :mod:`benchmarks.plain_vae` (depth is ignored: one latent layer);
* ``dvae_pp`` — :class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO` (analytic KL, PCD
  for :math:`\nabla \log Z`, ``vectorize_particles=True``, its default 100 chains and
  100 sweeps per step) on :func:`~pyro_dgm.models.dvae.build_dvae_pp`: an RBM of
  100 + 100 units, overlapping-exponential smoothing at :math:`\beta = 5`, linear
  networks (a 784-unit Bernoulli decoder), the hierarchical guide with ``depth``
  groups of equal size (depth 2: the RBM's two sides, DVAE++ Fig. 2d).

SBNs are ``[784] + [200] * depth`` with the bottom-up guide, trained on a minibatch
of a data set of :data:`NUM_TRAINING_DATA` points (``num_data=N``, scale N/B).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pyro
import torch
from pyro.infer import RenyiELBO
from torch import nn

from benchmarks.plain_dvae_pp import PlainDVAEPlusPlus
from benchmarks.plain_sbn import (
    bihm_surrogate,
    rws_wake_surrogate,
    sbn_log_weights,
    sleep_surrogate,
    vimco_surrogate,
)
from benchmarks.plain_vae import GaussianVAE, iwae_log_weights, iwae_surrogate
from pyro_dgm.distributions.gibbs import INITIAL_ON_PROBABILITY
from pyro_dgm.infer.objectives.bihm import BiHMELBO
from pyro_dgm.infer.objectives.dvae_pp import DEFAULT_NUM_CHAINS, DEFAULT_NUM_SWEEPS, DVAEPlusPlusELBO
from pyro_dgm.infer.objectives.rws import ReweightedWakeSleep
from pyro_dgm.infer.objectives.vimco import VIMCO
from pyro_dgm.models.dvae import PRIOR_SITE, build_dvae_pp
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide

DATA_SIZE = 784
"""Binarised MNIST pixels."""

LATENT_WIDTH = 200
"""Units per latent layer of the SBN (the issue's 784-200-200 and its deeper variants)."""

NUM_TRAINING_DATA = 60_000
"""N of ``model(x, num_data=N)``: the MNIST training set, as in real training."""

DATA_DENSITY = 0.13
"""Fraction of pixels on in the synthetic binary data (about binarised MNIST's)."""

VAE_HIDDEN_SIZE = 200
VAE_LATENT_SIZE = 50
"""The Gaussian VAE's hidden width and latent dimension (IWAE paper's small model)."""

SLEEP_INSOMNIA = 0.5
"""``insomnia`` of the ``rws_sleep`` case: BB15's average of wake-φ and sleep-φ."""

DVAE_PP_UNITS_PER_SIDE = 100
"""RBM sides of the ``dvae_pp`` case: 200 binary latents in two halves, the one-layer RBM of
DVAE++ Table 2 as :mod:`benchmarks.reproduce_configs` builds it (too large to enumerate log Z)."""

DVAE_PP_CHAIN_SEED = 0
"""Seed of the fair coin flips that both paths' persistent chains start from."""

OBJECTIVES = ("bihm", "rws", "rws_sleep", "vimco", "iwae", "dvae_pp")


@dataclass(frozen=True)
class Config:
    """One benchmark configuration."""

    objective: str
    num_particles: int
    batch_size: int
    depth: int
    """Latent layers of width :data:`LATENT_WIDTH` (SBN objectives), groups of the
    hierarchical guide (``dvae_pp``); ignored by ``iwae``."""

    def is_supported(self) -> bool:
        """VIMCO's leave-one-out baseline needs two particles."""
        return not (self.objective == "vimco" and self.num_particles < 2)


def _nothing_to_restore() -> None:
    """The default :attr:`StepPair.restore_state`: steps that keep no state between calls."""


@dataclass
class StepPair:
    """The two training steps of one configuration, on shared parameters.

    After equal seeds (and :attr:`restore_state`) both steps draw the same samples; the
    gradient check relies on it.
    """

    pyro_step: Callable[[], None]
    plain_step: Callable[[], None]
    parameters: list[nn.Parameter]
    restore_state: Callable[[], None] = _nothing_to_restore
    """Puts state that persists across steps (DVAE++'s Gibbs chains) back to one snapshot
    shared by both paths."""
    plain_check_step: Callable[[], None] | None = None
    """The plain step as the gradient check runs it, when it must also draw random numbers
    that the Pyro path draws and the estimator does not use (``None``: :attr:`plain_step`)."""


def zero_grads(parameters: list[nn.Parameter]) -> None:
    """``optimizer.zero_grad(set_to_none=True)`` without an optimiser."""
    for parameter in parameters:
        parameter.grad = None


def synthetic_binary_data(batch_size: int, generator_seed: int = 0) -> torch.Tensor:
    """A (B, 784) float tensor of 0/1 pixels, the same for both paths."""
    generator = torch.Generator().manual_seed(generator_seed)
    probs = torch.full((batch_size, DATA_SIZE), DATA_DENSITY)
    return torch.bernoulli(probs, generator=generator)


def _sbn_objective(config: Config) -> pyro.infer.ELBO:
    if config.objective == "bihm":
        return BiHMELBO(num_particles=config.num_particles)
    if config.objective == "rws":
        return ReweightedWakeSleep(num_particles=config.num_particles)
    if config.objective == "rws_sleep":
        return ReweightedWakeSleep(num_particles=config.num_particles, insomnia=SLEEP_INSOMNIA)
    if config.objective == "vimco":
        return VIMCO(num_particles=config.num_particles)
    raise ValueError(f"unknown SBN objective {config.objective!r}")


def _plain_sbn_loss(
    config: Config, model: SigmoidBeliefNet, guide: BottomUpGuide, x: torch.Tensor
) -> torch.Tensor:
    """The plain surrogate of ``config.objective``; its gradient is the objective's estimator."""
    batch_size = x.size(0)
    scale = NUM_TRAINING_DATA / batch_size
    log_p, log_q = sbn_log_weights(model, guide, x, config.num_particles)
    if config.objective == "bihm":
        return bihm_surrogate(log_p, log_q, scale)
    if config.objective == "rws":
        return rws_wake_surrogate(log_p, log_q, scale)
    if config.objective == "rws_sleep":
        wake = rws_wake_surrogate(log_p, log_q, scale, insomnia=SLEEP_INSOMNIA)
        return wake + (1.0 - SLEEP_INSOMNIA) * sleep_surrogate(model, guide, batch_size, scale)
    if config.objective == "vimco":
        return vimco_surrogate(log_p, log_q, scale)
    raise ValueError(f"unknown SBN objective {config.objective!r}")


def sbn_step_pair(config: Config) -> StepPair:
    """Steps for an SBN ``[784] + [200] * depth`` with the bottom-up guide."""
    layer_sizes = [DATA_SIZE] + [LATENT_WIDTH] * config.depth
    model = SigmoidBeliefNet(layer_sizes)
    guide = BottomUpGuide(layer_sizes)
    parameters = [*model.parameters(), *guide.parameters()]
    x = synthetic_binary_data(config.batch_size)
    objective = _sbn_objective(config)

    def pyro_step() -> None:
        zero_grads(parameters)
        objective.loss_and_grads(model, guide, x, num_data=NUM_TRAINING_DATA)

    def plain_step() -> None:
        zero_grads(parameters)
        _plain_sbn_loss(config, model, guide, x).backward()

    return StepPair(pyro_step, plain_step, parameters)


def iwae_step_pair(config: Config) -> StepPair:
    """Steps for Pyro's IWAE (``RenyiELBO(alpha=0)``) on :class:`GaussianVAE`."""
    vae = GaussianVAE(DATA_SIZE, VAE_HIDDEN_SIZE, VAE_LATENT_SIZE)
    parameters = list(vae.parameters())
    x = synthetic_binary_data(config.batch_size)
    objective = RenyiELBO(alpha=0.0, num_particles=config.num_particles, vectorize_particles=True)

    def pyro_step() -> None:
        zero_grads(parameters)
        objective.loss_and_grads(vae.model, vae.guide, x)

    def plain_step() -> None:
        zero_grads(parameters)
        iwae_surrogate(*iwae_log_weights(vae, x, config.num_particles)).backward()

    return StepPair(pyro_step, plain_step, parameters)


def dvae_pp_step_pair(config: Config) -> StepPair:
    """Steps for :class:`DVAEPlusPlusELBO` and :class:`PlainDVAEPlusPlus` on one DVAE++.

    Both paths' persistent chains start from the same fair coin flips; the Pyro path's
    live in the objective (``objective.load_state_dict``), the plain path's in
    :attr:`PlainDVAEPlusPlus.chains`, and each step advances its own.
    """
    model, guide = build_dvae_pp(
        DATA_SIZE, DVAE_PP_UNITS_PER_SIDE, DVAE_PP_UNITS_PER_SIDE, num_groups=config.depth, guide="hierarchical"
    )
    parameters = [*model.parameters(), *guide.parameters()]
    x = synthetic_binary_data(config.batch_size)
    objective = DVAEPlusPlusELBO(num_particles=config.num_particles, vectorize_particles=True)
    plain = PlainDVAEPlusPlus(model, guide, num_chains=DEFAULT_NUM_CHAINS, num_sweeps=DEFAULT_NUM_SWEEPS)
    generator = torch.Generator().manual_seed(DVAE_PP_CHAIN_SEED)
    initial_chains = torch.bernoulli(torch.full_like(plain.chains, INITIAL_ON_PROBABILITY), generator=generator)

    def restore_state() -> None:
        objective.load_state_dict(
            {PRIOR_SITE: {"num_units1": model.num_units1, "num_units2": model.num_units2, "chains": initial_chains}}
        )
        plain.chains.copy_(initial_chains)

    def pyro_step() -> None:
        zero_grads(parameters)
        objective.loss_and_grads(model, guide, x, num_data=NUM_TRAINING_DATA)

    def plain_step(draw_guide_binary: bool = False) -> None:
        zero_grads(parameters)
        plain.surrogate(x, config.num_particles, NUM_TRAINING_DATA, draw_guide_binary).backward()

    restore_state()
    check_step = functools.partial(plain_step, draw_guide_binary=True)
    return StepPair(pyro_step, plain_step, parameters, restore_state, check_step)


def step_pair(config: Config) -> StepPair:
    """Fresh modules, data and objective for ``config`` (clears Pyro's param store)."""
    if config.objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {config.objective!r}")
    if not config.is_supported():
        raise ValueError(f"{config} is not supported (VIMCO needs num_particles >= 2)")
    pyro.clear_param_store()
    if config.objective == "iwae":
        return iwae_step_pair(config)
    if config.objective == "dvae_pp":
        return dvae_pp_step_pair(config)
    return sbn_step_pair(config)

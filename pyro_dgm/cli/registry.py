"""Names the ``pyro-dgm`` command accepts: models, guides and objectives, and which fit together.

A model entry builds a :class:`BuiltModel` from the run configuration; an
objective entry builds a ``pyro.infer.ELBO``. Each model lists the objectives it
can be trained with, so an incompatible pair fails before any work with a one-line
error that names what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyro.infer
import torch

from pyro_dgm.infer.bihm import BiHMELBO
from pyro_dgm.infer.rws import ReweightedWakeSleep
from pyro_dgm.infer.vimco import VIMCO
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide, FactorialGuide


class ConfigurationError(ValueError):
    """A name or combination the command does not know; the message says what is allowed."""


@dataclass
class BuiltModel:
    """A model/guide pair ready for training and evaluation.

    Attributes:
        model, guide: Pyro programs called as ``fn(x, num_data=N, **step_kwargs)``.
        modules: parameter-owning modules by name (checkpointed).
        sample_images: ``n -> (n, D)`` pixel probabilities of n samples from the model.
        evaluation_model, evaluation_guide: the pair whose importance weights estimate
            log p(x) (for smoothed models: the binary limit).
        step_kwargs: optional per-step schedule (KL warm-up, β annealing).
        objective_state: an object with ``state_dict``/``load_state_dict`` that the
            objective needs (e.g. persistent chains), or ``None``.
    """

    model: Callable[..., Any]
    guide: Callable[..., Any]
    modules: dict[str, torch.nn.Module]
    sample_images: Callable[[int], torch.Tensor]
    evaluation_model: Callable[..., Any]
    evaluation_guide: Callable[..., Any]
    step_kwargs: Callable[[int, int], dict[str, Any]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveEntry:
    description: str
    build: Callable[[dict[str, Any], BuiltModel], pyro.infer.ELBO]


@dataclass(frozen=True)
class ModelEntry:
    description: str
    build: Callable[[dict[str, Any], int], BuiltModel]
    objectives: tuple[str, ...]
    guides: tuple[str, ...]


SBN_GUIDES = {"bottom_up": BottomUpGuide, "factorial": FactorialGuide}


def _build_sbn(config: dict[str, Any], data_dim: int) -> BuiltModel:
    layer_sizes = [data_dim, *config["layers"]]
    model = SigmoidBeliefNet(layer_sizes)
    guide = SBN_GUIDES[config["guide"]](layer_sizes)

    def sample_images(num_samples: int) -> torch.Tensor:
        samples = model.sample(num_samples)
        return torch.sigmoid(model.conditionals[0].logits(samples["h1"]))

    return BuiltModel(
        model=model,
        guide=guide,
        modules={"model": model, "guide": guide},
        sample_images=sample_images,
        evaluation_model=model,
        evaluation_guide=guide,
    )


def _importance_objective(cls: type) -> Callable[[dict[str, Any], BuiltModel], pyro.infer.ELBO]:
    def build(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
        return cls(num_particles=config["num_particles"])

    return build


def _trace_elbo(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
    return pyro.infer.TraceGraph_ELBO(
        num_particles=config["num_particles"], vectorize_particles=True, max_plate_nesting=1
    )


OBJECTIVES: dict[str, ObjectiveEntry] = {
    "bihm": ObjectiveEntry("bidirectional Helmholtz machine bound 2 log E_q[sqrt(p/q)]", _importance_objective(BiHMELBO)),
    "rws": ObjectiveEntry("reweighted wake-sleep, per-data-point weights", _importance_objective(ReweightedWakeSleep)),
    "vimco": ObjectiveEntry("K-sample IWAE bound with leave-one-out baselines", _importance_objective(VIMCO)),
    "elbo": ObjectiveEntry("Pyro's TraceGraph_ELBO (score function with baselines where needed)", _trace_elbo),
}

MODELS: dict[str, ModelEntry] = {
    "sbn": ModelEntry(
        "sigmoid belief net / Helmholtz machine with binary layers (--layers)",
        _build_sbn,
        objectives=("bihm", "rws", "vimco", "elbo"),
        guides=tuple(SBN_GUIDES),
    ),
}


def _choose(kind: str, name: str, allowed: dict[str, Any] | tuple[str, ...]) -> None:
    if name not in allowed:
        raise ConfigurationError(f"unknown {kind} '{name}'; choose one of: {', '.join(allowed)}")


def build_model(config: dict[str, Any], data_dim: int) -> BuiltModel:
    """Validate the model/guide/objective names of ``config`` and build the model."""
    _choose("model", config["model"], MODELS)
    entry = MODELS[config["model"]]
    _choose("objective", config["objective"], OBJECTIVES)
    if config["objective"] not in entry.objectives:
        raise ConfigurationError(
            f"model '{config['model']}' cannot be trained with objective '{config['objective']}'; "
            f"it works with: {', '.join(entry.objectives)}"
        )
    if config.get("guide") is None:
        config["guide"] = entry.guides[0]
    _choose(f"guide for model '{config['model']}'", config["guide"], entry.guides)
    return entry.build(config, data_dim)


def build_objective(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
    return OBJECTIVES[config["objective"]].build(config, built)

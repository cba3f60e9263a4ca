"""Checks of a ``pyro-dgm train`` configuration that span several options, and ``--resume --epochs``.

argparse validates each option alone; what depends on two of them (an objective's least
K, a smoother an objective cannot differentiate) is refused here, before any data is
loaded, with the same one-line :class:`~pyro_dgm.cli.registry.ConfigurationError`.
"""

from __future__ import annotations

from typing import Any

from pyro_dgm.cli.registry import ConfigurationError
from pyro_dgm.infer.objectives.vimco import VIMCO
from pyro_dgm.models.dvae_smoothing import SMOOTHERS, is_spike

MIN_NUM_PARTICLES = {"vimco": VIMCO.MIN_NUM_PARTICLES}
"""Objectives that need more than one sample per data point."""

RBM_PRIOR_MODELS = ("dvae_pp", "dvae")
"""Models whose RBM prior couples units across groups (the cross term DVAE and DVAE++ differentiate differently)."""


def check_train_config(config: dict[str, Any]) -> None:
    """Raise :class:`ConfigurationError` for option combinations that cannot train correctly."""
    least = MIN_NUM_PARTICLES.get(config["objective"])
    if least is not None and config["num_particles"] is not None and config["num_particles"] < least:
        raise ConfigurationError(
            f"--objective {config['objective']} needs -k/--num-particles >= {least}, got {config['num_particles']}"
        )
    smoother = config.get("smoother")
    if config["model"] not in RBM_PRIOR_MODELS or smoother not in SMOOTHERS:
        return  # the model's default smoother fits its objective; unknown names are reported when building
    if config["objective"] == "dvae_pp" and is_spike(smoother):
        raise ConfigurationError(
            f"--smoother {smoother} is a spike-and-X smoother, whose nu jumps, which the DVAE++ gradient misses; "
            "train it with --model dvae --objective dvae (Rolfe's gradient)"
        )
    if config["objective"] == "dvae" and not is_spike(smoother):
        raise ConfigurationError(
            f"--objective dvae needs a spike-and-X smoother (spike_and_exponential, spike_and_slab), got {smoother}; "
            f"train --smoother {smoother} with --model dvae_pp --objective dvae_pp"
        )


def extend_epochs(
    config: dict[str, Any], requested: int | None, completed: int, warmup_fraction: float | None
) -> str | None:
    """Apply ``--resume --epochs N`` to the stored ``config``; return the line that says what changed.

    ``N`` equal to the stored count (or absent) changes nothing. A larger ``N`` extends
    the run: the learning rate keeps its per-epoch decay, and a KL warm-up, defined as a
    fraction of all steps, is stretched over the new total. A smaller ``N`` is refused:
    the steps already taken followed the longer schedule.

    :param completed: epochs the checkpoint has finished.
    :param warmup_fraction: the run's KL warm-up fraction, ``None`` if it has no warm-up.
    """
    stored = config["epochs"]
    if requested is None or requested == stored:
        return None
    if requested < stored:
        raise ConfigurationError(
            f"--resume --epochs {requested}: this run was started for {stored} epochs ({completed} done); "
            f"--epochs can extend a run, not shorten it"
        )
    config["epochs"] = requested
    decay = (
        f"the learning rate keeps decaying by {config['lr_decay']} per epoch"
        if config["lr_decay"] != 1
        else "the learning rate stays constant"
    )
    warmup = (
        f"; the KL warm-up spans the first {warmup_fraction:.0%} of the steps of all {requested} epochs"
        if warmup_fraction
        else ""
    )
    return f"extending the run from {stored} to {requested} epochs ({completed} done): {decay}{warmup}"

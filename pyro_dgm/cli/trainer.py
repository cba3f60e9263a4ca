"""The training loop behind ``pyro-dgm train``: SVI epochs with checkpoints, resume and Ctrl-C.

:class:`Trainer` runs ``pyro.infer.SVI`` over a :class:`~pyro_dgm.data.BinarizedBatches`
loader. After every epoch it appends one JSON line of metrics to the run folder and
writes a checkpoint; a Ctrl-C (SIGINT) finishes the step in progress, writes a
checkpoint *at that step* and stops. ``fit(resume=True)`` continues from the
checkpoint and reaches bit-for-bit the parameters an uninterrupted run reaches,
because every source of randomness (loader position, RNG states, optimiser and
objective state, the partial epoch's loss sum) is restored. A second Ctrl-C while
the first is being honoured aborts at once.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import pyro.optim
import torch
from pyro.infer import SVI
from tqdm.auto import tqdm

from pyro_dgm.cli.checkpoint import (
    capture_rng_state,
    check_checkpoint_fits,
    load_checkpoint,
    load_module_states,
    preserved_rng_state,
    restore_rng_state,
    save_checkpoint,
)
from pyro_dgm.cli.distributed import DistributedSVI, ProcessGroup, broadcast_modules_
from pyro_dgm.cli.run_directory import RunDirectory
from pyro_dgm.data import BinarizedBatches
from pyro_dgm.infer.validation import check_observed_data


@dataclass
class Experiment:
    """What a run optimises.

    Attributes:
        model, guide: the Pyro programs, called as ``fn(x, num_data=N, **step_kwargs)``.
        objective: a ``pyro.infer.ELBO`` (any of Pyro's or :mod:`pyro_dgm.infer`'s).
        modules: the ``nn.Module`` objects that own the parameters, by name; their
            state dicts are checkpointed.
        step_kwargs: optional ``(step, total_steps) -> dict`` of extra keyword
            arguments for model and guide at each step (KL warm-up, β annealing).
    """

    model: Callable[..., Any]
    guide: Callable[..., Any]
    objective: pyro.infer.ELBO
    modules: dict[str, torch.nn.Module]
    step_kwargs: Callable[[int, int], dict[str, Any]] | None = None


@dataclass
class Schedule:
    """Epochs and the Adam learning rate, decayed by ``lr_decay`` after every epoch."""

    num_epochs: int
    learning_rate: float = 1e-3
    lr_decay: float = 1.0
    adam_eps: float = 1e-8

    def __post_init__(self) -> None:
        if not isinstance(self.num_epochs, int) or self.num_epochs < 1:
            raise ValueError(f"num_epochs must be a positive integer, got {self.num_epochs!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {self.lr_decay!r}")


@dataclass
class _Progress:
    step: int = 0
    epoch_loss_sum: float = 0.0
    epoch_num_points: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)


class _InterruptFlag:
    """SIGINT sets a flag the loop polls between steps; a second SIGINT raises at once."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = None

    def __enter__(self) -> "_InterruptFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class TrainingInterrupted(Exception):
    """Raised by :meth:`Trainer.fit` after a Ctrl-C, once the checkpoint is written."""

    def __init__(self, step: int, checkpoint_path: Path) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint written to {checkpoint_path} (continue with --resume)")
        self.step = step
        self.checkpoint_path = checkpoint_path


class NonFiniteLoss(FloatingPointError):
    """Raised by :meth:`Trainer.fit` when a step's loss is NaN or infinite.

    The optimiser has already applied that step's (non-finite) gradient, so the parameters
    are no longer trustworthy: nothing is saved, and the run folder keeps the checkpoint of
    the last finished epoch, if there is one. Resuming from it is bit-exact and reaches the
    same step again; the remedy is another run (e.g. a smaller learning rate).
    """

    def __init__(self, message: str, step: int, checkpoint_step: int | None) -> None:
        super().__init__(message)
        self.step = step
        self.checkpoint_step = checkpoint_step


class Trainer:
    """SVI training with per-epoch metrics and checkpoints in a :class:`RunDirectory`.

    Args:
        experiment: model, guide, objective and parameter-owning modules.
        batches: the training minibatches (re-binarised per epoch, resumable).
        schedule: epochs and learning-rate schedule.
        run: the run folder.
        evaluate: optional callable run after each epoch (under ``torch.no_grad``
            where it chooses), returning extra metrics such as a validation
            log-likelihood.
        progress: show a progress bar per epoch.
        group: train data-parallel in this ``torch.distributed`` group (see
            :mod:`pyro_dgm.cli.distributed`): each process takes its shard of every
            global minibatch, gradients are averaged, and only rank 0 writes the run
            folder (its checkpoint holds every rank's RNG state).
        config: the run's configuration, stored in every checkpoint so that resuming
            from a checkpoint of another model or architecture is refused by name.
        report_epoch: optional callable given each epoch's metrics record once it is
            written (by the process that writes the run folder), e.g. to print a log line.
    """

    def __init__(
        self,
        experiment: Experiment,
        batches: BinarizedBatches,
        schedule: Schedule,
        run: RunDirectory,
        evaluate: Callable[[], dict[str, float]] | None = None,
        progress: bool = True,
        group: ProcessGroup | None = None,
        config: dict[str, Any] | None = None,
        report_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.experiment = experiment
        self.config = config
        self.batches = batches
        self.schedule = schedule
        self.run = run
        self.evaluate = evaluate
        self.group = group
        self.report_epoch = report_epoch
        self.progress = progress and (group is None or group.is_main)
        # Optimisers are created lazily per parameter, with the learning rate of the epoch
        # in progress; a pure function of the epoch keeps resume exact (see _set_learning_rate).
        self.optimiser = pyro.optim.Adam(
            lambda param_name: {"lr": self._learning_rate, "eps": schedule.adam_eps}
        )
        self._learning_rate = schedule.learning_rate
        svi_args = (experiment.model, experiment.guide, self.optimiser)
        self.svi = (
            SVI(*svi_args, loss=experiment.objective)
            if group is None
            else DistributedSVI(*svi_args, loss=experiment.objective, group=group)
        )
        self._state = _Progress()

    @property
    def total_steps(self) -> int:
        return self.schedule.num_epochs * len(self.batches)

    @property
    def step(self) -> int:
        return self._state.step

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return list(self._state.metrics)

    # --- checkpoints -------------------------------------------------------------------

    def _checkpoint_payload(self) -> dict[str, Any]:
        objective = self.experiment.objective
        return {
            "modules": {name: module.state_dict() for name, module in self.experiment.modules.items()},
            "optimiser": self._optimiser_state(),
            "objective": objective.state_dict() if hasattr(objective, "state_dict") else None,
            "batches": self.batches.state_dict(),
            "rng": self._gather_rng_states(),
            "step": self._state.step,
            "epoch_loss_sum": self._state.epoch_loss_sum,
            "epoch_num_points": self._state.epoch_num_points,
            "metrics": self._state.metrics,
            "config": self.config,
        }

    def _gather_rng_states(self) -> dict[str, Any] | list[dict[str, Any]]:
        if self.group is None:
            return capture_rng_state()
        states: list[Any] = [None] * self.group.world_size
        torch.distributed.all_gather_object(states, capture_rng_state())
        return states

    @property
    def _writes_run_folder(self) -> bool:
        return self.group is None or self.group.is_main

    def save(self) -> None:
        payload = self._checkpoint_payload()  # collective under a group: every rank takes part
        if self._writes_run_folder:
            save_checkpoint(self.run.checkpoint_path, payload)

    def restore(self) -> None:
        """Load the run folder's checkpoint into this trainer (modules in place, then the rest)."""
        path = self.run.checkpoint_path
        payload = load_checkpoint(path, map_location="cpu")
        if self.config is not None:
            check_checkpoint_fits(payload, self.config, path)
        load_module_states(self.experiment.modules, payload, path)  # in place: Pyro keeps its references
        self.optimiser.set_state(payload["optimiser"])
        objective = self.experiment.objective
        if payload["objective"] is not None:
            objective.load_state_dict(payload["objective"])
        self.batches.load_state_dict(payload["batches"])
        restore_rng_state(payload["rng"] if self.group is None else payload["rng"][self.group.rank])
        self._state = _Progress(
            step=payload["step"],
            epoch_loss_sum=payload["epoch_loss_sum"],
            epoch_num_points=payload["epoch_num_points"],
            metrics=payload["metrics"],
        )
        if self._writes_run_folder:
            self.run.rewrite_metrics(self._state.metrics)

    # --- the loop ----------------------------------------------------------------------

    def fit(self, resume: bool = False) -> list[dict[str, Any]]:
        """Train to the end of the schedule; returns the per-epoch metrics.

        Raises:
            TrainingInterrupted: after a Ctrl-C, with the checkpoint written.
        """
        pyro.clear_param_store()
        if self.group is not None:
            broadcast_modules_(list(self.experiment.modules.values()))
        if resume:
            self.restore()
            self._finish_consumed_epoch()
        num_data = self.batches.num_examples
        with _InterruptFlag() as interrupt:
            while self.batches.epoch < self.schedule.num_epochs:
                epoch = self.batches.epoch
                self._set_learning_rate(epoch)
                started = time.perf_counter()
                bar = tqdm(
                    total=len(self.batches),
                    initial=self._state.step - epoch * len(self.batches),
                    desc=f"epoch {epoch + 1}/{self.schedule.num_epochs}",
                    disable=not self.progress,
                    leave=False,
                )
                for x in self.batches:
                    loss = self._train_step(x, num_data)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss / num_data:.3f}")
                    if interrupt.raised:
                        bar.close()
                        self.save()
                        raise TrainingInterrupted(self._state.step, self.run.checkpoint_path)
                bar.close()
                self._finish_epoch(epoch, time.perf_counter() - started)
        return self.metrics

    def _set_learning_rate(self, epoch: int) -> None:
        """Adam's step size for ``epoch``: ``learning_rate * lr_decay ** epoch``."""
        self._learning_rate = self.schedule.learning_rate * self.schedule.lr_decay**epoch
        for optimiser in self.optimiser.optim_objs.values():
            for group in optimiser.param_groups:
                group["lr"] = self._learning_rate
        # States restored from a checkpoint are loaded into each parameter's optimiser only
        # when that parameter is next seen, and would bring back the saved step size.
        for state in self._pending_optimiser_states().values():
            for group in state["param_groups"]:
                group["lr"] = self._learning_rate

    def _pending_optimiser_states(self) -> dict[str, Any]:
        """Restored optimiser states that no parameter has consumed yet (PyroOptim keeps them)."""
        return self.optimiser._state_waiting_to_be_consumed

    def _optimiser_state(self) -> dict[str, Any]:
        """Live optimiser states, plus restored ones not yet consumed (so no save loses them)."""
        return {**self._pending_optimiser_states(), **self.optimiser.get_state()}

    def _finish_consumed_epoch(self) -> None:
        """An interrupt after an epoch's last step leaves that epoch consumed but unrecorded."""
        position = self.batches.state_dict()
        if position["batch_index"] == len(self.batches) and self._state.epoch_num_points > 0:
            self.batches.load_state_dict({**position, "epoch": position["epoch"] + 1, "batch_index": 0})
            self._finish_epoch(position["epoch"], seconds=0.0)

    def _train_step(self, x: torch.Tensor, num_data: int) -> float:
        extra = (
            self.experiment.step_kwargs(self._state.step, self.total_steps)
            if self.experiment.step_kwargs is not None
            else {}
        )
        epoch, batch_index = divmod(self._state.step, len(self.batches))
        check_observed_data(x, batch=f"training batch {batch_index + 1} of epoch {epoch + 1}")
        shard = x if self.group is None else self.group.shard(x)
        self._settle_max_plate_nesting(shard, num_data, extra)
        loss = self.svi.step(shard, num_data=num_data, **extra)
        if not math.isfinite(loss):
            raise self._non_finite_loss(loss, epoch, batch_index)
        self._state.step += 1
        # SVI's loss estimates the full-data objective (scaled by N/B): per data point it is loss/N.
        self._state.epoch_loss_sum += loss * x.shape[0] / num_data
        self._state.epoch_num_points += x.shape[0]
        return loss

    def _non_finite_loss(self, loss: float, epoch: int, batch_index: int) -> NonFiniteLoss:
        """The error for a NaN/infinite ``loss``, saying which step and which checkpoint is kept."""
        path = self.run.checkpoint_path
        checkpoint_step = load_checkpoint(path, map_location="cpu")["step"] if self.run.has_checkpoint() else None
        kept = (
            f"the checkpoint at step {checkpoint_step} in {path} is kept"
            if checkpoint_step is not None
            else "no checkpoint had been written yet"
        )
        return NonFiniteLoss(
            f"the loss is {loss} at step {self._state.step + 1} (training batch {batch_index + 1} of epoch "
            f"{epoch + 1}); that step's update is not saved, {kept}",
            step=self._state.step + 1,
            checkpoint_step=checkpoint_step,
        )

    def _settle_max_plate_nesting(self, x: torch.Tensor, num_data: int, extra: dict[str, Any]) -> None:
        """Let the objective guess ``max_plate_nesting`` without drawing from the run's generators.

        An ELBO built with ``max_plate_nesting=inf`` guesses it on its first step by
        running model and guide once, which draws random numbers. The first step of a
        resumed process would then draw them *after* the checkpoint's RNG states were
        restored, and the run would leave the path of an uninterrupted one. Guessing here,
        with every generator put back afterwards, keeps both runs on the same stream.
        """
        objective = self.experiment.objective
        if getattr(objective, "max_plate_nesting", None) != math.inf:
            return
        with preserved_rng_state(), torch.no_grad():
            objective._guess_max_plate_nesting(
                self.experiment.model, self.experiment.guide, (x,), {"num_data": num_data, **extra}
            )

    def _finish_epoch(self, epoch: int, seconds: float) -> None:
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": self._state.step,
            "train_loss": self._state.epoch_loss_sum / max(self._state.epoch_num_points, 1),
            "seconds": seconds,
        }
        if self.evaluate is not None:
            record.update(self.evaluate())
        self._state.metrics.append(record)
        self._state.epoch_loss_sum, self._state.epoch_num_points = 0.0, 0
        if self._writes_run_folder:
            self.run.append_metrics(record)
            if self.report_epoch is not None:
                self.report_epoch(record)
        self.save()

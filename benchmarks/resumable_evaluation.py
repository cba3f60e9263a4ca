"""A long test evaluation that an interruption does not lose.

The full protocol's test evaluation (all 10,000 MNIST test images, K = 5,000 importance
samples) takes 15-35 minutes on a CPU core, and a run that is stopped during it used to
start it again. :class:`EvaluationProgress` keeps, in the configuration's run folder:

* each finished block of images' per-image estimates;
* the values fixed once for the whole evaluation (an RBM prior's AIS :math:`\\log Z`),
  through :meth:`EvaluationProgress.constant`;
* every random number generator's state after the last block
  (:func:`~pyro_dgm.cli.checkpoint.capture_rng_state`);
* the wall time spent so far.

A rerun of the same command restores the generators and continues with the next block, so
the resumed evaluation draws the very numbers an uninterrupted one would: its result is
bit-identical (``tests/benchmarks/test_resumable_evaluation.py``). The file is written
atomically after every block and removed once the evaluation is complete; a file of another
evaluation (other training steps, K or test set) is discarded, never mixed in.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
import torch

from pyro_dgm.cli.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from pyro_dgm.cli.run_directory import RunFolderError

PROGRESS_FILE = "evaluation_progress.pt"
"""The partial evaluation's file in a configuration's run folder."""


@contextmanager
def stoppable_by_sigint() -> Iterator[None]:
    """SIGINT raises :class:`KeyboardInterrupt` inside the block, then the previous handler is back.

    A job started in the background by a non-interactive shell (``job &`` in a script) starts
    with SIGINT ignored, and Python then never raises on it: ``kill -INT`` would not stop the
    evaluation. Inside this block it stops it as Ctrl-C does. Off the main thread (where no
    handler can be set) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class EvaluationInterrupted(Exception):
    """A test evaluation stopped by the user; its finished blocks are kept in :attr:`path`."""

    def __init__(self, done: int, total: int, path: Path) -> None:
        super().__init__(f"test evaluation interrupted after {done:,} of {total:,} images; the finished "
                         f"blocks are kept in {path}: rerun the same command to continue from them")
        self.done, self.total, self.path = done, total, path


class EvaluationProgress:
    """The finished part of one test evaluation, identified by ``key``.

    :param folder: the configuration's run folder; ``None`` keeps nothing (a temporary run).
    :param key: what makes two evaluations the same one: the training steps of the model
        evaluated, the number of importance samples, the number of test images. A saved
        file with another key is discarded.
    """

    def __init__(self, folder: Path | None, key: dict[str, int]) -> None:
        self.path = None if folder is None else folder / PROGRESS_FILE
        self.key = dict(key)
        self.blocks: list[dict[str, torch.Tensor]] = []
        self.constants: dict[str, dict[str, float]] = {}
        self.earlier_seconds = 0.0
        if self.path is not None and self.path.is_file():
            self._resume()

    def _resume(self) -> None:
        try:
            saved = load_checkpoint(self.path)
        except RunFolderError:  # a damaged partial evaluation is only lost time: start again
            return
        if saved.get("key") != self.key:
            return
        self.blocks = list(saved["blocks"])
        self.constants = dict(saved["constants"])
        self.earlier_seconds = float(saved["seconds"])
        restore_rng_state(saved["rng"])

    @property
    def images_done(self) -> int:
        """Test images whose estimates are kept."""
        return sum(next(iter(block.values())).numel() for block in self.blocks)

    def constant(self, name: str, compute: Callable[[], dict[str, float]]) -> dict[str, float]:
        """``compute()`` the first time, saved; the saved value on every rerun of this evaluation."""
        if name not in self.constants:
            self.constants[name] = dict(compute())
            self._save()
        return self.constants[name]

    def record(self, block: dict[str, torch.Tensor], seconds: float) -> None:
        """Keep one finished block's per-image estimates; ``seconds``: this process's time so far."""
        self.blocks.append({name: value.detach().cpu() for name, value in block.items()})
        self._save(seconds)

    def _save(self, seconds: float = 0.0) -> None:
        if self.path is None:
            return
        save_checkpoint(self.path, {
            "key": self.key,
            "blocks": self.blocks,
            "constants": self.constants,
            "seconds": self.earlier_seconds + seconds,
            "rng": capture_rng_state(),
        })

    def discard(self) -> None:
        """Remove the file: the evaluation is complete and saved as a whole."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def interrupted(self, total: int) -> EvaluationInterrupted | None:
        """The exception for a stop after the kept blocks (out of ``total`` images); ``None`` if nothing is kept."""
        return None if self.path is None else EvaluationInterrupted(self.images_done, total, self.path)

    def concatenated(self, name: str) -> torch.Tensor:
        """One estimate over every kept block, in image order."""
        return torch.cat([block[name] for block in self.blocks])

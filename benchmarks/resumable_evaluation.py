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
bit-identical (``tests/benchmarks/test_evaluation.py``). The file is written
atomically after every block and removed once the evaluation is complete; a file of another
evaluation (other training steps, K, test images or block size) is discarded, never mixed in.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from pyro_dgm.cli.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from pyro_dgm.cli.run_directory import RunFolderError

PROGRESS_FILE = "evaluation_progress.pt"
"""The partial evaluation's file in a configuration's run folder."""


def images_digest(images: torch.Tensor) -> str:
    """SHA-256 of the test images' values: the same count of other images is another evaluation."""
    return hashlib.sha256(images.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()).hexdigest()


class EvaluationInterrupted(Exception):
    """A test evaluation stopped by the user after ``done`` of ``total`` images were kept in ``path``."""

    def __init__(self, done: int, total: int, path: Path) -> None:
        kept = (f"the finished blocks are kept in {path}: rerun the same command to continue from them" if done
                else "no block had finished: rerun the same command to start it again")
        super().__init__(f"test evaluation interrupted after {done:,} of {total:,} images; {kept}")
        self.done, self.total, self.path = done, total, path


class EvaluationProgress:
    """The finished part of one test evaluation, identified by ``key``.

    :param folder: the configuration's run folder; ``None`` keeps nothing (a temporary run).
    :param key: what makes two evaluations the same one (the harness: the training steps of
        the model evaluated, the importance samples, :func:`images_digest` of the test images,
        the block size). A saved file with another key is discarded.
    """

    def __init__(self, folder: Path | None, key: dict[str, int | str]) -> None:
        self.path = None if folder is None else folder / PROGRESS_FILE
        self.key = dict(key)
        self.blocks: list[dict[str, torch.Tensor]] = []
        self.constants: dict[str, dict[str, float]] = {}
        self.earlier_seconds = 0.0
        self.images_kept = 0
        self._started = time.perf_counter()
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
        self.images_kept = self.images_done
        restore_rng_state(saved["rng"])

    @property
    def images_done(self) -> int:
        """Test images whose estimates this process holds (kept on disk, or about to be)."""
        return sum(next(iter(block.values())).numel() for block in self.blocks)

    def constant(self, name: str, compute: Callable[[], dict[str, float]]) -> dict[str, float]:
        """``compute()`` the first time, saved; the saved value on every rerun of this evaluation."""
        if name not in self.constants:
            self.constants[name] = dict(compute())
            self._save()
        return self.constants[name]

    def record(self, block: dict[str, torch.Tensor]) -> None:
        """Keep one finished block's per-image estimates."""
        self.blocks.append({name: value.detach().cpu() for name, value in block.items()})
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        save_checkpoint(self.path, {
            "key": self.key,
            "blocks": self.blocks,
            "constants": self.constants,
            "seconds": self.earlier_seconds + time.perf_counter() - self._started,
            "rng": capture_rng_state(),
        })
        self.images_kept = self.images_done

    def discard(self) -> None:
        """Remove the file: the evaluation is complete and saved as a whole."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def concatenated(self, name: str) -> torch.Tensor:
        """One estimate over every kept block, in image order."""
        return torch.cat([block[name] for block in self.blocks])

    @contextmanager
    def stoppable(self, total: int) -> Iterator[None]:
        """Run the evaluation of ``total`` images; a stop inside becomes :class:`EvaluationInterrupted`.

        SIGINT raises inside the block even in a job a non-interactive shell started in the
        background (``job &`` in a script starts it with SIGINT ignored, and Python then never
        raises on it), so ``kill -INT`` stops an evaluation as Ctrl-C does; the previous
        handler is back afterwards. Without a folder (nothing kept) the stop stays a
        :class:`KeyboardInterrupt`; off the main thread no handler can be set.
        """
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            yield
        except KeyboardInterrupt:
            if self.path is None:
                raise
            raise EvaluationInterrupted(self.images_kept, total, self.path) from None
        finally:
            if previous is not None:  # None: a handler installed from C, which Python cannot put back
                signal.signal(signal.SIGINT, previous)

r"""Minibatches over a tensor dataset, re-binarised every epoch, resumable mid-run.

:class:`BinarizedBatches` is an iterable over *epochs*: each ``for batch in batches``
runs the rest of the current epoch and moves to the next one. Every random choice
is a pure function of ``(seed, epoch, batch index)``:

* the epoch's order is ``randperm`` under a generator seeded from ``(seed, epoch)``;
* a dynamic binarisation of batch ``b`` uses a generator seeded from ``(seed, epoch, b)``;
* the static binarisation uses one generator seeded from ``seed``.

Per-stream seeds are derived with NumPy's :class:`~numpy.random.SeedSequence`, whose
hashing makes the streams statistically independent. So the position
``(epoch, batch index)`` is the whole state: :meth:`BinarizedBatches.state_dict` is a
few integers, and a loader restored from it yields exactly the batches an
uninterrupted one would have — without storing generator states, and with no
dependence on torch's global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from pyro_dgm.data.binarize import check_probabilities, static_binarize

BINARIZATIONS = ("dynamic", "static", "none")
"""Per-epoch Bernoulli resampling; one fixed-seed draw; pixels passed through unchanged."""

STATIC_STREAM, ORDER_STREAM, DYNAMIC_STREAM = 0, 1, 2
"""Stream identifiers mixed into the derived seeds, so the three uses never share random numbers."""

_CONFIGURATION_KEYS = ("num_examples", "batch_size", "binarization", "shuffle", "drop_last", "seed")


def derived_seed(seed: int, *stream: int) -> int:
    """A 64-bit seed for the random stream named by ``(seed, *stream)``."""
    return int(np.random.SeedSequence([seed, *stream]).generate_state(1, dtype=np.uint64)[0])


def _seeded_generator(device: torch.device, seed: int) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


class BinarizedBatches:
    r"""Epochs of minibatches of ``data``, binarised dynamically, statically, or not at all.

    Args:
        data: pixels in [0, 1], shape ``(N, ...)``; stays where it is, each batch is
            moved to ``device``.
        batch_size: examples per batch; the last batch of an epoch may be smaller
            unless ``drop_last``.
        binarization: ``"dynamic"`` (a fresh :math:`x \sim \mathrm{Bernoulli}(p)` for
            every batch of every epoch), ``"static"`` (one draw fixed by ``seed``,
            identical across epochs and across loaders with the same seed), or
            ``"none"`` (pixels as given, e.g. already-binary datasets).
        shuffle: visit the examples in a new random order every epoch.
        seed: non-negative int that fixes every random choice (see module docstring).
        device: where batches are delivered (default: the device of ``data``). The
            dynamic draw happens there; the same seed on the same device gives the
            same batches.
        drop_last: drop the last, smaller batch of each epoch.

    Iterating runs the *rest* of the current epoch (all of it on a fresh epoch) and
    then advances to the next: stopping early and iterating again resumes where it
    stopped, exactly like a loader restored with :meth:`load_state_dict`. One
    iteration at a time: two interleaved iterators would share the position.

    Example::

        batches = BinarizedBatches(load_dataset("mnist"), batch_size=100, seed=0)
        for epoch in range(10):
            for x in batches:          # x: (100, 784) in {0, 1}, resampled every epoch
                loss = svi.step(x)
        torch.save(batches.state_dict(), "loader.pt")
    """

    def __init__(
        self,
        data: torch.Tensor,
        batch_size: int,
        binarization: str = "dynamic",
        shuffle: bool = True,
        seed: int = 0,
        device: str | torch.device | None = None,
        drop_last: bool = False,
    ):
        if not isinstance(data, torch.Tensor) or data.dim() < 1 or data.shape[0] == 0:
            raise ValueError("data must be a torch.Tensor of shape (N, ...) with N >= 1")
        if binarization not in BINARIZATIONS:
            raise ValueError(f"binarization must be one of {BINARIZATIONS}, got {binarization!r}")
        if binarization != "none":
            check_probabilities(data, name="data")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if drop_last and batch_size > data.shape[0]:
            raise ValueError(
                f"batch_size={batch_size} exceeds the {data.shape[0]} examples and drop_last=True: every epoch would be empty"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.data = data
        self.batch_size = batch_size
        self.binarization = binarization
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.device = data.device if device is None else torch.device(device)
        self.drop_last = bool(drop_last)
        self._pixels = static_binarize(data, derived_seed(seed, STATIC_STREAM)) if binarization == "static" else data
        self._epoch = 0
        self._batch_index = 0

    @property
    def num_examples(self) -> int:
        """Number of examples ``N``."""
        return self.data.shape[0]

    @property
    def epoch(self) -> int:
        """Index of the epoch in progress (or the next to start)."""
        return self._epoch

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.drop_last:
            return self.num_examples // self.batch_size
        return math.ceil(self.num_examples / self.batch_size)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The order (a permutation of ``range(N)``, on CPU) in which ``epoch`` visits the examples."""
        if not self.shuffle:
            return torch.arange(self.num_examples)
        generator = _seeded_generator(torch.device("cpu"), derived_seed(self.seed, ORDER_STREAM, epoch))
        return torch.randperm(self.num_examples, generator=generator)

    def __iter__(self) -> Iterator[torch.Tensor]:
        num_batches = len(self)
        if self._batch_index >= num_batches:  # the previous epoch was consumed to its end
            self._epoch, self._batch_index = self._epoch + 1, 0
        epoch = self._epoch
        order = self.epoch_order(epoch).to(self._pixels.device)
        while self._batch_index < num_batches:
            start = self._batch_index * self.batch_size
            batch = self._pixels.index_select(0, order[start : start + self.batch_size]).to(self.device)
            if self.binarization == "dynamic":
                seed = derived_seed(self.seed, DYNAMIC_STREAM, epoch, self._batch_index)
                batch = torch.bernoulli(batch, generator=_seeded_generator(batch.device, seed))
            self._batch_index += 1
            yield batch
        self._epoch, self._batch_index = epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        """The position ``(epoch, batch_index)`` plus the configuration it is valid for."""
        return {
            "epoch": self._epoch,
            "batch_index": self._batch_index,
            **{key: getattr(self, key) for key in _CONFIGURATION_KEYS},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at the position stored by :meth:`state_dict`.

        Raises:
            ValueError: ``state`` is missing a key, or was saved for another
                configuration (naming the key), or its position is out of range.
        """
        missing = [key for key in ("epoch", "batch_index", *_CONFIGURATION_KEYS) if key not in state]
        if missing:
            raise ValueError(f"state is missing {missing}")
        for key in _CONFIGURATION_KEYS:
            if state[key] != getattr(self, key):
                raise ValueError(f"state was saved with {key}={state[key]!r}, this loader has {key}={getattr(self, key)!r}")
        epoch, batch_index = state["epoch"], state["batch_index"]
        if not (isinstance(epoch, int) and epoch >= 0 and isinstance(batch_index, int) and 0 <= batch_index <= len(self)):
            raise ValueError(f"state position epoch={epoch!r}, batch_index={batch_index!r} is out of range")
        self._epoch, self._batch_index = epoch, batch_index

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_examples={self.num_examples}, batch_size={self.batch_size}, "
            f"binarization={self.binarization!r}, shuffle={self.shuffle}, seed={self.seed}, "
            f"device={self.device}, drop_last={self.drop_last})"
        )

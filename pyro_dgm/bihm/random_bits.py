r"""Random 32-bit words in bulk, reproducibly, on any device, and uniforms made from them.

Monte Carlo estimators that need millions of Bernoulli draws per second (BiHM's
:math:`Z^2`, Eq. 7) spend a large share of their time making uniforms. On the CPU
torch's Mersenne twister is sequential and converts to floats one word at a time;
:class:`RandomBits` instead fills raw words from numpy's PCG64 in
:data:`NUM_CPU_STREAMS` independent streams, on as many threads (numpy releases the
GIL while it fills), and leaves the conversion to the consumer's own fused kernel
(:func:`uniforms_from_bits`). On other devices torch's counter-based Philox is fast
and is used directly.

Reproducible: the streams are seeded from one draw of a torch generator (torch's
global one by default), so ``torch.manual_seed`` / ``pyro.set_rng_seed`` fix every
word, and the words do not depend on how many threads ran.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from pyro_dgm.distributions.argument_checks import check_int

NUM_CPU_STREAMS = 2
"""Independent PCG64 streams on the CPU; fixed, so the words do not depend on the machine."""

SEED_BOUND = 2**63 - 1
"""Exclusive upper bound of the seed drawn from the torch generator."""

UNIFORM_BITS = 24
r"""Random bits per uniform: :math:`u = k\,2^{-24}`, :math:`k` uniform on
:math:`\{0, \dots, 2^{24} - 1\}`, exactly representable in float32 (numpy's and
torch's float32 uniforms have the same law). :math:`\mathbb 1[u < \pi]` is then
Bernoulli with probability :math:`\lceil 2^{24}\pi \rceil / 2^{24}`, within
:math:`2^{-24} \approx 6 \times 10^{-8}` of :math:`\pi`."""

UNIFORM_MASK = (1 << UNIFORM_BITS) - 1
UNIFORM_SCALE = 2.0**-UNIFORM_BITS


def _consecutive_blocks(counts: Sequence[int], num_blocks: int) -> list[list[int]]:
    """Split ``counts`` in order into ``num_blocks`` runs (some possibly empty) with near-equal sums."""
    total, blocks, running = sum(counts), [[] for _ in range(num_blocks)], 0
    for count in counts:  # a request goes to the block its midpoint falls in (the lower one on a tie)
        position = math.ceil((running + count / 2) * num_blocks / max(total, 1)) - 1
        blocks[min(num_blocks - 1, max(0, position))].append(count)
        running += count
    return blocks


def uniforms_from_bits(bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    r""":math:`u = (b \,\&\, (2^{24} - 1))\, 2^{-24} \in [0, 1)` from int32 words ``bits``.

    Element-wise and cheap: inside a compiled kernel it fuses with whatever uses ``u``.
    """
    return torch.bitwise_and(bits, UNIFORM_MASK).to(dtype) * UNIFORM_SCALE


class RandomBits:
    r"""Independent uniformly distributed int32 words, in batches of requests (:meth:`draw`).

    :param device: where the words are made and returned.
    :param generator: the torch generator seeding the streams (default: the global one).

    Use as a context manager (or call :meth:`close`) to release the CPU threads.
    """

    def __init__(self, device: torch.device | str, generator: torch.Generator | None = None) -> None:
        self.device = torch.device(device)
        self.generator = generator
        self._streams: list[np.random.PCG64] = []
        self._threads: ThreadPoolExecutor | None = None
        if self.device.type == "cpu":
            seed = int(torch.randint(SEED_BOUND, (), generator=generator))
            children = np.random.SeedSequence(seed).spawn(NUM_CPU_STREAMS)
            self._streams = [np.random.PCG64(child) for child in children]
            self._threads = ThreadPoolExecutor(max_workers=NUM_CPU_STREAMS, thread_name_prefix="random_bits")

    def draw(self, counts: Sequence[int]) -> list[torch.Tensor]:
        r"""Independent uniform int32 words: one flat tensor of ``counts[i]`` words each.

        On the CPU the requests are split, in order and at request boundaries, into
        one consecutive block per stream with totals as equal as possible; each stream
        fills its block on its own thread and every returned tensor is a view of one
        block (no copy).
        """
        for count in counts:
            check_int("count", count, minimum=0)
        if self._threads is None:
            words = torch.randint(
                -(2**31), 2**31, (sum(counts),), dtype=torch.int32, device=self.device, generator=self.generator
            )
            return list(words.split(list(counts)))
        blocks = _consecutive_blocks(counts, len(self._streams))
        block_words = [sum(block) for block in blocks]
        raw = self._threads.map(self._fill, self._streams, block_words)
        pieces: list[torch.Tensor] = []
        for block, words in zip(blocks, raw):
            pieces.extend(words.split(block))
        return pieces

    @staticmethod
    def _fill(stream: np.random.PCG64, size: int) -> torch.Tensor:
        """``size`` int32 words from one stream (each raw uint64 output holds two)."""
        if size == 0:
            return torch.empty(0, dtype=torch.int32)
        return torch.from_numpy(stream.random_raw(-(-size // 2))).view(torch.int32)[:size]

    def close(self) -> None:
        """Release the CPU threads; the object cannot draw afterwards."""
        if self._threads is not None:
            self._threads.shutdown()

    def __enter__(self) -> RandomBits:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

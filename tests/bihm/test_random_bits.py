"""RandomBits: reproducible, independent of threading, uniform, and cut without copies."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from pyro_dgm.bihm.random_bits import RandomBits, _consecutive_blocks, uniforms_from_bits


def draw(seed: int, counts: list[int]) -> list[torch.Tensor]:
    with RandomBits("cpu", torch.Generator().manual_seed(seed)) as source:
        return source.draw(counts)


def test_same_seed_same_words_other_seed_other_words():
    counts = [5, 1000, 0, 77]
    first, again, other = draw(0, counts), draw(0, counts), draw(1, counts)
    assert [piece.numel() for piece in first] == counts
    assert all(piece.dtype == torch.int32 for piece in first)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[1], other[1])


def test_global_seed_fixes_the_words():
    torch.manual_seed(4)
    with RandomBits("cpu") as source:
        first = source.draw([100])
    torch.manual_seed(4)
    with RandomBits("cpu") as source:
        again = source.draw([100])
    assert torch.equal(first[0], again[0])


def test_successive_draws_differ():
    with RandomBits("cpu", torch.Generator().manual_seed(0)) as source:
        first, second = source.draw([64]), source.draw([64])
    assert not torch.equal(first[0], second[0])


@pytest.mark.parametrize(
    "counts, expected",
    [([4, 4, 4, 4], [[4, 4], [4, 4]]), ([10, 1, 1], [[10], [1, 1]]), ([3], [[3], []]), ([], [[], []])],
)
def test_blocks_split_requests_in_order_with_near_equal_sums(counts, expected):
    assert _consecutive_blocks(counts, 2) == expected


def test_uniforms_are_uniform_and_bits_unbiased():
    words = torch.cat(draw(5, [50_000, 50_000]))
    uniforms = uniforms_from_bits(words, torch.float64)
    assert uniforms.min() >= 0 and uniforms.max() < 1
    assert stats.kstest(uniforms.numpy(), "uniform").pvalue > 1e-3
    # every one of the 32 bit positions is 1 about half the time (4 SE)
    bits = (words.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1
    assert ((bits.double().mean(0) - 0.5).abs() < 4 * 0.5 / words.numel() ** 0.5).all()


def test_rejects_negative_counts():
    with RandomBits("cpu", torch.Generator().manual_seed(0)) as source, pytest.raises(ValueError, match="count"):
        source.draw([3, -1])


def test_the_torch_path_used_off_the_cpu_is_reproducible_and_full_range():
    """Off the CPU the words come from torch.randint; exercised here by switching the threads off."""

    def torch_words(seed: int) -> list[torch.Tensor]:
        source = RandomBits("cpu", torch.Generator().manual_seed(seed))
        source.close()
        source._threads = None  # what a CUDA device gets
        return source.draw([3000, 5])

    first, again = torch_words(0), torch_words(0)
    assert [piece.numel() for piece in first] == [3000, 5]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert first[0].dtype == torch.int32
    assert first[0].min() < -(2**30) and first[0].max() > 2**30  # both signs, i.e. the top bit is random

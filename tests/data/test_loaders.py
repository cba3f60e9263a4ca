"""Binarisation and the resumable minibatch iterator."""

from __future__ import annotations

import math

import pytest
import torch

from pyro_dgm.data import BinarizedBatches, dynamic_binarize, static_binarize

NUM_STANDARD_ERRORS = 5.0
"""Statistical tolerance: a correct implementation fails with probability below 1e-6."""


def grey_images(num_examples: int = 400, num_pixels: int = 50, dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(123)
    return torch.rand(num_examples, num_pixels, generator=generator, dtype=dtype)


def one_epoch(batches: BinarizedBatches) -> torch.Tensor:
    return torch.cat(list(batches))


def bernoulli_mean_standard_error(probs: torch.Tensor) -> float:
    """Standard error of the mean of independent Bernoulli(p_i) draws: sqrt(sum p(1-p)) / M."""
    return math.sqrt(float((probs * (1 - probs)).sum())) / probs.numel()


def test_dynamic_binarization_resamples_every_epoch_with_the_grey_mean():
    grey = grey_images()
    batches = BinarizedBatches(grey, batch_size=64, binarization="dynamic", shuffle=False, seed=0)
    first, second = one_epoch(batches), one_epoch(batches)

    assert first.shape == grey.shape
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)
    standard_error = bernoulli_mean_standard_error(grey)
    for epoch in (first, second):
        assert abs(float(epoch.mean() - grey.mean())) < NUM_STANDARD_ERRORS * standard_error


def test_dynamic_binarization_is_unbiased_per_pixel_over_epochs():
    """E[x_d] = p_d for every pixel: the mean of K epochs is within 5 standard errors of p, pixel by pixel."""
    num_epochs = 400
    # p in [0.05, 0.95] keeps K p (1 - p) >= 19, where the normal approximation of the binomial holds
    grey = 0.05 + 0.9 * grey_images(num_examples=20, num_pixels=10)
    batches = BinarizedBatches(grey, batch_size=20, shuffle=False, seed=1)
    mean = torch.stack([one_epoch(batches) for _ in range(num_epochs)]).mean(0)
    standard_error = torch.sqrt(grey * (1 - grey) / num_epochs)
    # 200 pixels at 5 standard errors: family-wise false-alarm rate about 200 * 5.7e-7 ~ 1e-4
    assert bool(((mean - grey).abs() <= NUM_STANDARD_ERRORS * standard_error).all())


def test_static_binarization_is_fixed_across_epochs_and_instances():
    grey = grey_images()
    batches = BinarizedBatches(grey, batch_size=64, binarization="static", shuffle=False, seed=7)
    first = one_epoch(batches)

    assert torch.equal(first, one_epoch(batches))
    assert torch.equal(first, one_epoch(BinarizedBatches(grey, batch_size=100, binarization="static", shuffle=False, seed=7)))
    assert not torch.equal(first, one_epoch(BinarizedBatches(grey, batch_size=64, binarization="static", shuffle=False, seed=8)))
    assert abs(float(first.mean() - grey.mean())) < NUM_STANDARD_ERRORS * bernoulli_mean_standard_error(grey)


def test_static_with_shuffle_visits_the_same_binary_images():
    grey = grey_images(num_examples=30)
    ordered = one_epoch(BinarizedBatches(grey, batch_size=7, binarization="static", shuffle=False, seed=3))
    shuffled = BinarizedBatches(grey, batch_size=7, binarization="static", shuffle=True, seed=3)
    for epoch in range(2):
        order = shuffled.epoch_order(epoch)
        assert torch.equal(one_epoch(shuffled), ordered[order])


def test_shuffle_is_a_new_permutation_every_epoch():
    rows = torch.arange(23, dtype=torch.float64).unsqueeze(1) / 23
    batches = BinarizedBatches(rows, batch_size=5, binarization="none", shuffle=True, seed=0)
    epochs = [one_epoch(batches).squeeze(1) for _ in range(3)]
    for epoch in epochs:
        assert torch.equal(epoch.sort().values, rows.squeeze(1))
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])


@pytest.mark.parametrize("binarization", ["dynamic", "static", "none"])
@pytest.mark.parametrize("drop_last", [False, True])
def test_resume_from_state_dict_matches_uninterrupted_run(binarization, drop_last):
    grey = grey_images(num_examples=23, num_pixels=6)
    options = dict(batch_size=5, binarization=binarization, shuffle=True, seed=11, drop_last=drop_last)
    reference = BinarizedBatches(grey, **options)
    assert len(reference) == (4 if drop_last else 5)
    list(reference)  # epoch 0
    partial = iter(reference)
    for _ in range(2):
        next(partial)  # two batches of epoch 1
    state = reference.state_dict()
    assert (state["epoch"], state["batch_index"]) == (1, 2)
    del partial
    expected = list(reference) + list(reference)  # rest of epoch 1, then epoch 2

    restored = BinarizedBatches(grey, **options)
    restored.load_state_dict(state)
    resumed = list(restored) + list(restored)

    assert len(resumed) == len(expected) == 2 * len(reference) - 2
    assert all(torch.equal(a, b) for a, b in zip(resumed, expected))
    assert restored.epoch == reference.epoch == 3


def test_resume_after_exactly_the_last_batch_starts_the_next_epoch():
    grey = grey_images(num_examples=10, num_pixels=4)
    batches = BinarizedBatches(grey, batch_size=5, seed=2)
    iterator = iter(batches)
    next(iterator), next(iterator)  # the whole of epoch 0, without finishing the loop
    restored = BinarizedBatches(grey, batch_size=5, seed=2)
    restored.load_state_dict(batches.state_dict())
    uninterrupted = BinarizedBatches(grey, batch_size=5, seed=2)
    list(uninterrupted)
    assert all(torch.equal(a, b) for a, b in zip(list(restored), list(uninterrupted)))


def test_batches_land_on_the_requested_device_with_the_data_dtype():
    grey = grey_images(num_examples=12, num_pixels=3, dtype=torch.float64)
    for binarization in ("dynamic", "static", "none"):
        batch = next(iter(BinarizedBatches(grey, batch_size=4, binarization=binarization, device="cpu")))
        assert batch.device == torch.device("cpu") and batch.dtype == torch.float64 and batch.shape == (4, 3)


@pytest.mark.cuda
def test_batches_land_on_cuda():
    grey = grey_images(num_examples=12, num_pixels=3)
    for binarization in ("dynamic", "static", "none"):
        batches = BinarizedBatches(grey, batch_size=4, binarization=binarization, device="cuda", seed=0)
        first = list(batches)
        assert all(batch.device.type == "cuda" for batch in first)
        again = BinarizedBatches(grey, batch_size=4, binarization=binarization, device="cuda", seed=0)
        assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_last_batch_is_smaller_unless_dropped():
    grey = grey_images(num_examples=10, num_pixels=2)
    assert [b.shape[0] for b in BinarizedBatches(grey, batch_size=4)] == [4, 4, 2]
    assert [b.shape[0] for b in BinarizedBatches(grey, batch_size=4, drop_last=True)] == [4, 4]


def test_binarize_functions_are_exact_at_zero_and_one():
    probs = torch.tensor([[0.0, 1.0, 0.0, 1.0]]).expand(1000, 4)
    assert torch.equal(dynamic_binarize(probs), probs)
    assert torch.equal(static_binarize(probs, seed=0), probs)
    grey = grey_images()
    assert torch.equal(static_binarize(grey, seed=5), static_binarize(grey, seed=5))


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(data=torch.tensor([[0.5, 1.5]])), "data"),
        (dict(data=torch.tensor([[0.5, float("nan")]])), "data"),
        (dict(data=torch.tensor([[0, 1]])), "data"),
        (dict(batch_size=0), "batch_size"),
        (dict(binarization="threshold"), "binarization"),
        (dict(seed=-1), "seed"),
        (dict(batch_size=5, drop_last=True), "batch_size"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, argument):
    arguments = dict(data=torch.full((3, 2), 0.5), batch_size=2)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        BinarizedBatches(**arguments)


def test_load_state_dict_rejects_another_configuration():
    grey = grey_images(num_examples=10, num_pixels=2)
    state = BinarizedBatches(grey, batch_size=4, seed=0).state_dict()
    with pytest.raises(ValueError, match="seed"):
        BinarizedBatches(grey, batch_size=4, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size"):
        BinarizedBatches(grey, batch_size=5, seed=0).load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        BinarizedBatches(grey, batch_size=4, seed=0).load_state_dict({"epoch": 0})

"""Tests of the β-annealing and KL warm-up schedule."""

from __future__ import annotations

import pytest

from pyro_dgm.models.annealing import DVAE_PP_WARMUP_FRACTION, DVAESchedule, kl_warmup_weight, linear_anneal

TOTAL_STEPS = 10


def test_linear_anneal_hits_both_ends_and_is_linear():
    values = [linear_anneal(step, TOTAL_STEPS, 5.0, 14.0) for step in range(TOTAL_STEPS)]
    assert values[0] == 5.0 and values[-1] == 14.0
    assert values == pytest.approx([5.0 + step for step in range(TOTAL_STEPS)])
    assert linear_anneal(0, 1, 5.0, 14.0) == 14.0  # a single step sits at the end


def test_kl_warmup_reaches_one_after_the_first_thirty_percent():
    weights = [kl_warmup_weight(step, TOTAL_STEPS) for step in range(TOTAL_STEPS)]
    assert DVAE_PP_WARMUP_FRACTION == 0.3
    assert weights == pytest.approx([1 / 3, 2 / 3, 1.0] + [1.0] * 7)
    assert all(weight > 0 for weight in weights)  # poutine.scale needs a positive scale
    assert kl_warmup_weight(0, TOTAL_STEPS, fraction=0.0) == 1.0


def test_schedule_returns_the_keyword_arguments_of_model_and_guide():
    schedule = DVAESchedule(beta_start=5.0, beta_end=14.0)
    assert schedule(0, TOTAL_STEPS) == pytest.approx({"kl_weight": 1 / 3, "beta": 5.0})
    assert schedule(TOTAL_STEPS - 1, TOTAL_STEPS) == {"kl_weight": 1.0, "beta": 14.0}
    assert DVAESchedule(warmup_fraction=0.5)(1, 4) == {"kl_weight": 1.0}  # no beta key: the model keeps its own
    assert DVAESchedule(beta_start=7.0)(5, TOTAL_STEPS)["beta"] == 7.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: kl_warmup_weight(TOTAL_STEPS, TOTAL_STEPS), "step must be"),
        (lambda: kl_warmup_weight(0, 0), "total_steps"),
        (lambda: kl_warmup_weight(0, TOTAL_STEPS, fraction=1.5), "fraction"),
        (lambda: DVAESchedule(beta_end=3.0), "beta_end needs beta_start"),
        (lambda: DVAESchedule(beta_start=-1.0), "beta_start"),
    ],
)
def test_invalid_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()

"""Smoke test of the speed benchmark: a tiny run, its report, and its gradient check."""

import json

import pytest

from benchmarks.speed import (
    BUDGETS,
    GRADIENT_RELATIVE_TOLERANCE,
    LARGE_K,
    LARGE_K_BATCH_SIZE,
    Result,
    check_same_gradient,
    configurations,
    main,
)
from benchmarks.speed_cases import Config, StepPair, step_pair

SMOKE_OBJECTIVES = ["bihm", "iwae"]
"""The two code paths: pyro_dgm's importance machinery (BiHM; RWS and VIMCO share it) and
Pyro's RenyiELBO on the Gaussian VAE (IWAE), to stay under 15 s on a loaded machine."""


def test_tiny_run_writes_json_and_markdown(tmp_path):
    output = tmp_path / "speed.json"
    main(["--budget", "tiny", "--objectives", *SMOKE_OBJECTIVES, "--output", str(output)])
    report = json.loads(output.read_text())
    assert report["budget"] == "tiny"
    assert {"cpu", "logical_cpus", "torch_threads", "torch", "pyro"} <= set(report["machine"])
    assert [r["objective"] for r in report["results"]] == SMOKE_OBJECTIVES
    for row in report["results"]:
        assert set(row) == set(Result.__dataclass_fields__)
        assert row["pyro_ms"] > 0 and row["plain_ms"] > 0
        assert row["ratio_min"] <= row["ratio"] <= row["ratio_max"]
        assert row["pyro_peak_mib"] > 0 and row["plain_peak_mib"] > 0
        assert 0 <= row["max_gradient_difference"] <= GRADIENT_RELATIVE_TOLERANCE
    table = output.with_suffix(".md").read_text().splitlines()
    assert table[0].startswith("| objective | K | B |")
    assert len(table) == 2 + len(SMOKE_OBJECTIVES)


def test_gradient_check_rejects_a_different_estimator():
    pair = step_pair(Config("bihm", num_particles=4, batch_size=5, depth=1))

    def doubled_plain_step() -> None:  # e.g. a forgotten 1/2 or scale
        pair.plain_step()
        for parameter in pair.parameters:
            parameter.grad.mul_(2.0)

    assert check_same_gradient(pair) <= GRADIENT_RELATIVE_TOLERANCE
    with pytest.raises(AssertionError, match="do not compute the same estimator"):
        check_same_gradient(StepPair(pair.pyro_step, doubled_plain_step, pair.parameters))


def test_full_grid_sweeps_one_factor_at_a_time():
    configs = configurations(BUDGETS["full"], ("bihm", "vimco", "iwae"))
    bihm = [c for c in configs if c.objective == "bihm"]
    assert Config("bihm", 10, 100, 2) == bihm[0]  # the headline first
    assert Config("bihm", LARGE_K, LARGE_K_BATCH_SIZE, 2) in bihm
    assert {c.depth for c in bihm} == {1, 2, 4} and {c.batch_size for c in bihm} == {10, 100, 1000}
    assert all(c.num_particles >= 2 for c in configs if c.objective == "vimco")
    assert {c.depth for c in configs if c.objective == "iwae"} == {1}
    assert len(configs) == len(set(configs))

"""Smoke test of the speed benchmark: a tiny run, its report, and its gradient check."""

import dataclasses
import json

import pytest
import torch

from benchmarks.plain_dvae_pp import PlainDVAEPlusPlus
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
from benchmarks.speed_cases import DVAE_PP_UNITS_PER_SIDE, Config, StepPair, step_pair

SMOKE_OBJECTIVES = ["bihm", "iwae", "dvae_pp"]
"""The three code paths: pyro_dgm's importance machinery (BiHM; RWS and VIMCO share it),
Pyro's RenyiELBO on the Gaussian VAE (IWAE) and DVAE++'s analytic KL with persistent
chains, to stay under 20 s on a loaded machine."""

DVAE_PP_SMALL = Config("dvae_pp", num_particles=3, batch_size=5, depth=2)
"""A DVAE++ configuration small enough for a few gradient checks."""

STRONG_COUPLING_SCALE = 2.0
"""Standard deviation of RBM couplings under which 100 Gibbs sweeps do not forget their start
(at the initial scale 0.01, chains fed the same random numbers coincide after one sweep)."""


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


def test_dvae_pp_sweeps_guide_groups_as_depth():
    configs = configurations(BUDGETS["small"], ("dvae_pp",))
    assert configs[0] == Config("dvae_pp", 10, 100, 2)
    assert {c.depth for c in configs} == {1, 2, 4} and {c.num_particles for c in configs} == {1, 10, 100}


def _assert_check_fails(pair: StepPair) -> None:
    with pytest.raises(AssertionError, match="do not compute the same estimator"):
        check_same_gradient(pair)


def test_dvae_pp_gradient_check_rejects_a_wrong_cross_term(monkeypatch):
    """The plain DVAE++ with the cross term of Eq. 7 taken as mu_1' W mu_2 (no nu) is caught."""
    assert check_same_gradient(step_pair(DVAE_PP_SMALL)) <= GRADIENT_RELATIVE_TOLERANCE
    correct = PlainDVAEPlusPlus.expected_coupling
    monkeypatch.setattr(PlainDVAEPlusPlus, "expected_coupling", lambda self, mu, nu: correct(self, mu, mu))
    _assert_check_fails(step_pair(DVAE_PP_SMALL))


def test_dvae_pp_gradient_check_rejects_a_missing_log_partition_gradient(monkeypatch):
    """The plain DVAE++ without the PCD estimate of grad log Z (chains still stepped) is caught."""

    def without_gradient(self: PlainDVAEPlusPlus) -> torch.Tensor:
        self.gibbs_step()
        return torch.zeros(())

    monkeypatch.setattr(PlainDVAEPlusPlus, "log_partition_surrogate", without_gradient)
    _assert_check_fails(step_pair(DVAE_PP_SMALL))


def test_dvae_pp_gradient_check_needs_aligned_random_streams_and_chains():
    """Skipping the discarded draw of the guide's binary z shifts the chains' random numbers;
    with strongly coupled RBMs, chains that do not start from one snapshot differ too."""
    pair = step_pair(DVAE_PP_SMALL)
    _assert_check_fails(dataclasses.replace(pair, plain_check_step=None))
    weight = next(p for p in pair.parameters if p.shape == (DVAE_PP_UNITS_PER_SIDE, DVAE_PP_UNITS_PER_SIDE))
    with torch.no_grad():
        weight.normal_(0.0, STRONG_COUPLING_SCALE)
    assert check_same_gradient(pair) <= GRADIENT_RELATIVE_TOLERANCE
    _assert_check_fails(dataclasses.replace(pair, restore_state=lambda: None))

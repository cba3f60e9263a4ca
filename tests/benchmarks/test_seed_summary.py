"""The MNIST summary over seeds: its statistics, its grouping, and that the docs show it."""

import json
import math

import pytest
from scipy import stats

from benchmarks import seed_summary
from benchmarks.provenance import REPOSITORY
from benchmarks.seed_summary import RowSummary, SeedRun, group_runs, render, welch


def seed_run(log_p, seed, method="joint", epochs=400, particles=5000, source=None):
    return SeedRun(
        table="dvaepp1", title="DVAE++ Table 1", group="linear", method=method, epochs=epochs,
        particles=particles, test_images=10000, steps=epochs * 500, seed=seed, log_p=log_p, log_p_se=0.23,
        elbo=-121.0, ess=7.0, paper=-107.98, train_seconds=3600.0, eval_seconds=1200.0, commit="abc",
        source=source or f"{method}_seed{seed}.json",
    )


def row(values, method):
    runs = tuple(seed_run(value, seed, method) for seed, value in enumerate(values))
    return RowSummary(runs[0].key, runs)


@pytest.mark.parametrize("a, b", [
    ([-106.29, -106.63, -106.41], [-106.50, -106.95]),
    ([-91.2, -91.4, -91.1], [-106.7, -106.6, -106.9]),
    ([-1.0, -2.0], [-1.5, -1.6, -1.4, -1.7]),
])
def test_welch_agrees_with_scipy_on_mean_sd_and_p(a, b):
    comparison = welch(row(a, "first"), row(b, "second"))
    reference = stats.ttest_ind(a, b, equal_var=False)
    assert comparison.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert abs(comparison.difference) == pytest.approx(abs(sum(a) / len(a) - sum(b) / len(b)), rel=1e-12)
    assert comparison.difference / comparison.standard_error == pytest.approx(abs(reference.statistic), rel=1e-9)
    assert comparison.ahead.mean >= comparison.behind.mean
    assert row(a, "first").sd == pytest.approx(stats.tstd(a), rel=1e-12)


def test_welch_needs_two_seeds_of_each_row():
    assert welch(row([-106.3], "joint"), row([-106.5, -106.7], "marginal")) is None


def test_runs_of_different_lengths_or_protocols_are_separate_rows():
    runs = [seed_run(-106.3, 0), seed_run(-107.0, 1, epochs=200), seed_run(-106.4, 2, particles=1000),
            seed_run(-106.5, 3)]
    rows = group_runs(runs)
    assert [(r.key.epochs, r.key.particles, r.seeds) for r in rows] == [(200, 5000, 1), (400, 1000, 1), (400, 5000, 2)]


def test_two_reports_of_one_seed_are_refused_naming_both_files():
    with pytest.raises(ValueError, match=r"b\.json and a\.json both report seed 0 of dvaepp1 'linear/joint'"):
        group_runs([seed_run(-106.3, 0, source="a.json"), seed_run(-106.4, 0, source="b.json")])


def test_rendering_states_single_seeds_and_untestable_orderings():
    text = render(group_runs([seed_run(-106.29, 0), seed_run(-106.63, 1), seed_run(-106.50, 0, "marginal")]))
    assert "**−106.46 ± 0.24** | −106.29 (s0), −106.63 (s1)" in text
    assert "**−106.50** (1 seed; s.e. 0.23)" in text
    assert "joint (−106.46); 1 seed, not tested: marginal (−106.50)" in text


def test_a_single_seed_row_between_two_tested_rows_does_not_hide_their_test():
    rbm = [seed_run(value, seed, "rbm") for seed, value in enumerate([-91.2, -91.4, -91.1])]
    directed = [seed_run(value, seed, "directed") for seed, value in enumerate([-106.7, -106.6, -106.9])]
    text = render(group_runs([*rbm, seed_run(-99.0, 0, "rolfe"), *directed]))
    assert "rbm (−91.23) > directed (−106.73) [Δ 15.50 ± " in text
    assert "beyond the seeds' spread]; 1 seed, not tested: rolfe (−99.00)" in text


def test_an_ordering_beyond_the_spread_is_called_so(tmp_path):
    rbm = [seed_run(value, seed, "rbm") for seed, value in enumerate([-91.2, -91.4, -91.1])]
    directed = [seed_run(value, seed, "directed") for seed, value in enumerate([-106.7, -106.6, -106.9])]
    text = render(group_runs(rbm + directed))
    assert "rbm (−91.23) > directed (−106.73) [Δ 15.50 ± " in text
    assert ": beyond the seeds' spread]" in text


def test_superseded_and_non_full_reports_are_left_out(tmp_path):
    report = json.loads((REPOSITORY / "benchmarks/results/dvaepp1_full_linear-joint.json").read_text())
    (tmp_path / "dvaepp1_full_a.json").write_text(json.dumps(report))
    (tmp_path / "dvaepp1_full_b.json").write_text(json.dumps({**report, "seed": 5}))
    (tmp_path / "dvaepp1_full_c.json").write_text(json.dumps({**report, "seed": 6, "budget_name": "small"}))
    (tmp_path / "acknowledged_changes.json").write_text(json.dumps({"superseded": {"dvaepp1_full_b.json": "x"}}))
    assert [run.source for run in seed_summary.load_runs(tmp_path)] == ["dvaepp1_full_a.json"]


def test_the_docs_show_the_rendering_of_the_committed_results():
    """Fails when a result lands in benchmarks/results/ without `python -m benchmarks.seed_summary`."""
    code = seed_summary.main(["--results-dir", str(REPOSITORY / "benchmarks/results"),
                              "--document", str(REPOSITORY / "docs/benchmarks.md"), "--check"])
    assert code == 0


def test_a_document_without_the_markers_is_refused():
    with pytest.raises(ValueError, match="lacks the markers"):
        seed_summary.embed("no table here", "| a |")
    assert math.isnan(row([-1.0], "single").sd)


def test_a_staged_budget_counts_the_epochs_of_all_its_stages():
    assert seed_summary.trained_epochs({"stage": {"epochs": 400}}) == 400
    assert seed_summary.trained_epochs({"stages": [{"epochs": 100}, {"epochs": 5}]}) == 105  # BiHM Table 3
    report = json.loads((REPOSITORY / "benchmarks/results/dvaepp1_full_linear-joint.json").read_text())
    stage = report["budget"].pop("stage")
    report["budget"]["stages"] = [stage, {**stage, "epochs": 3}]
    (run,) = seed_summary.runs_of_report(report, "bihm3_full_BiHM.json")
    assert run.epochs == stage["epochs"] + 3

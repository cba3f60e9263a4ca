"""Smoke test of BiHM Table 1 (``--table bihm1``) at the ``tiny`` budget on the project's UCI copies.

Checks the structure, not the numbers: each job trains, checkpoints, resumes from its
checkpoint instead of restarting, evaluates the whole test set, and writes a result
whose provenance names the commit, the command, the data hashes and the library files
it used; the table renders from the result files with the paper's values beside ours.
Skips without ``../shared/data/uci`` (the package never needs it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import uci_bihm
from benchmarks.reproduce import main
from pyro_dgm.data.registry import UCI_SHA256

UCI_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "uci"


@pytest.fixture
def uci_root() -> Path:
    if not (UCI_ROOT / "nips.test.data").is_file():
        pytest.skip(f"UCI files not found in {UCI_ROOT}")
    return UCI_ROOT


@pytest.fixture
def isolated_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(uci_bihm, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(uci_bihm, "RESULTS_DIR", tmp_path / "results")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(threads)


def test_tiny_jobs_write_results_with_provenance_and_render(uci_root, isolated_folders, capsys):
    assert main(["--table", "bihm1", "--budget", "tiny", "--data-root", str(uci_root),
                 "--datasets", "nips", "--seeds", "0"]) == 0

    results = sorted((isolated_folders / "results").glob("*.json"))
    assert [path.name for path in results] == ["nips-BiHM-seed0.json", "nips-RWS-seed0.json"]
    for path in results:
        record = json.loads(path.read_text())
        assert record["metrics"]["num_test"] == 1240  # the whole test set
        assert record["metrics"]["test_particles"] == uci_bihm.BUDGETS["tiny"].test_particles
        provenance = record["provenance"]
        assert provenance["commit"] and "--table bihm1" in provenance["command"]
        assert provenance["data_sha256"]["nips.test.data"] == UCI_SHA256["nips"]["test"]
        ran = provenance["library_files"]  # the files the job's code paths ran, library code only
        objective, other = ("bihm", "rws") if record["job"]["method"] == "BiHM" else ("rws", "bihm")
        assert f"pyro_dgm/infer/objectives/{objective}.py" in ran and f"pyro_dgm/infer/objectives/{other}.py" not in ran
        assert "pyro_dgm/models/sbn.py" in ran and "benchmarks/uci_bihm.py" not in ran
        assert record["curve"]["epochs"] and record["paper"]["nll"] > 0
    bihm = json.loads(results[0].read_text())["metrics"]
    assert {"log_p_star", "log_z2", "ess_percent"} <= set(bihm)
    assert bihm["log_z2"] < 0  # Z^2 <= 1 (Cauchy-Schwarz)
    table = (isolated_folders / "results.md").read_text()
    assert "| nips | BiHM |" in table and "272.66" in table and "| nips | RWS |" in table and "272.54" in table


def test_a_job_resumes_from_its_checkpoint(uci_root, isolated_folders):
    job = uci_bihm.Job("nips", "RWS", 0)
    budget = uci_bihm.with_overrides(uci_bihm.BUDGETS["tiny"], max_steps=8)  # two evaluations of 1 epoch
    messages: list[str] = []
    uci_bihm.train(job, uci_bihm.with_overrides(budget, max_steps=4), uci_root, log=messages.append)
    first = json.loads(uci_bihm.result_path(job).read_text())
    uci_bihm.train(job, budget, uci_root, log=messages.append)
    second = json.loads(uci_bihm.result_path(job).read_text())
    assert any("resumed at epoch 1" in message for message in messages)
    assert second["curve"]["epochs"][: len(first["curve"]["epochs"])] == first["curve"]["epochs"]
    assert second["epochs"] == 2 and second["steps"] == 8


def test_only_an_unconverged_job_below_the_new_step_cap_is_run_again():
    budget = uci_bihm.BUDGETS["full"]
    capped = {"converged": False, "budget": {"max_steps": budget.max_steps}}
    assert uci_bihm.is_finished(capped, budget)
    assert not uci_bihm.is_finished(capped, uci_bihm.with_overrides(budget, max_steps=2 * budget.max_steps))
    converged = {"converged": True, "budget": {"max_steps": budget.max_steps}}
    assert uci_bihm.is_finished(converged, uci_bihm.with_overrides(budget, max_steps=2 * budget.max_steps))


def test_the_committed_table_and_its_copy_in_the_docs_are_the_rendering_of_the_results():
    """Fails when a BiHM Table 1 result lands without re-rendering bihm1.md and the docs' table."""
    repository = Path(__file__).resolve().parents[2]
    rendering = uci_bihm.render_table(repository / "benchmarks/results/bihm1")
    assert (repository / "benchmarks/results/bihm1.md").read_text() == rendering
    assert rendering.strip() in (repository / "docs/benchmarks.md").read_text()

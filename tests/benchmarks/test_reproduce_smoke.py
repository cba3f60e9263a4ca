"""Smoke test of ``benchmarks/reproduce.py``: every table at the ``tiny`` budget, and its reports.

The numbers of a tiny run are meaningless (one optimiser step per configuration); what
is checked is the structure: every configuration of the budget is trained and
evaluated, every paper value is quoted with its source and the gap is ours − paper,
the ranking covers every method, and the JSON and Markdown reports state the budget,
wall time and machine. One CPU thread: on a shared 2-core machine more threads only
contend (the four tables then take about 3 s after imports).
"""

import json
import math
from pathlib import Path

import pytest
import torch

from benchmarks import paper_values
from benchmarks.reproduce import main, run_table
from benchmarks.reproduce_configs import BUDGET_TABLE, BUDGETS, TABLES, budget_for
from benchmarks.reproduce_report import TABLE_TITLES, _budget_line, ranking, short_source, to_json, write_report

GAP_TOLERANCE = 1e-9
"""The JSON's gap is recomputed from the same floats: equal up to rounding."""

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _expected_configurations(table: str) -> int:
    budget = budget_for(table, "tiny")
    if table == "bihm3":
        return len(budget.methods)
    if table == "dvaepp1":
        return len(budget.networks) * len(budget.columns) + len(budget.variant_networks) * len(budget.variants)
    if table in ("dvaepp2", "dvaesharp"):
        return len(budget.rows) * len(budget.columns)
    return len(budget.rows)


@pytest.mark.parametrize("table", TABLES)
def test_tiny_table_report_structure(table, tmp_path):
    result = run_table(table, "tiny")
    json_path, markdown_path = write_report(result, tmp_path / f"{table}.json")
    report = json.loads(json_path.read_text())

    assert report["table"] == table and report["budget_name"] == "tiny"
    assert report["title"] == TABLE_TITLES[table]
    assert report["wall_seconds"] > 0
    assert {"cpu", "cpu_count", "torch_threads", "device", "load_average_start", "load_average_end"} <= set(
        report["machine"]
    )
    assert report["num_train"] == budget_for(table, "tiny").data.train_size
    assert len(report["rows"]) == _expected_configurations(table)
    for row in report["rows"]:
        assert math.isfinite(row["metrics"]["log_p"]) and row["metrics"]["log_p"] < 0
        assert row["metrics"]["log_p_se"] >= 0
        assert row["metrics"]["elbo"] <= row["metrics"]["log_p"] + GAP_TOLERANCE  # Jensen, per image
        assert row["parameters"] > 0 and row["steps"] >= 1
        for key, paper in row["paper"].items():
            assert paper["source"] and paper["log_likelihood"] < 0
            expected_gap = row["metrics"][key] - paper["log_likelihood"]
            assert abs(row["gap_nats"][key] - expected_gap) < GAP_TOLERANCE
    ranked = [place for places in report["ranking"].values() for place in places]
    assert sorted(place["method"] for place in ranked) == sorted(row["method"] for row in report["rows"])
    for places in report["ranking"].values():
        assert places[0]["difference"] == 0 and places[0]["difference_se"] is None
        assert all(place["difference"] <= 0 and place["difference_se"] >= 0 for place in places[1:])

    markdown = markdown_path.read_text()
    assert markdown.startswith(f"### {TABLE_TITLES[table]} — budget `tiny`")
    assert "*Budget:*" in markdown and "*Wall time:*" in markdown and "Ranking at equal budget" in markdown
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == 1 + len(report["rows"])


def test_every_paper_row_of_a_full_budget_is_configured():
    """The ``full`` budgets train every row of the papers' tables that pyro_dgm can build."""
    full = {table: budget_for(table, "full") for table in TABLES}
    assert {"BiHM", "RWS"} <= set(full["bihm3"].methods)
    assert set(paper_values.DVAEPP1) == set(full["dvaepp1"].networks)
    assert {"joint", "marginal"} <= {column.name for column in full["dvaepp1"].columns}
    assert {f"{layers} {network}" for layers, network in full["dvaepp2"].rows} == set(paper_values.DVAEPP2)
    configured = {column.name for column in full["dvaepp2"].columns}
    assert all(set(columns) <= configured for columns in paper_values.DVAEPP2.values())
    assert set(paper_values.BVAE1) <= {row.label for row in full["bvae1"].rows}


def test_ranking_orders_each_group_by_measured_log_likelihood():
    result = run_table("dvaepp1", "tiny")
    result.rows[0].metrics["log_p"], result.rows[1].metrics["log_p"] = -1.0, -2.0
    order = [place.method for place in ranking(result.rows)["linear"]]
    assert order.index(result.rows[0].method) < order.index(result.rows[1].method)
    assert [place["method"] for place in to_json(result)["ranking"]["linear"]] == order


def test_command_line_writes_both_reports(tmp_path, capsys):
    output = tmp_path / "bvae.json"
    assert main(["--table", "bvae1", "--budget", "tiny", "--threads", "1", "--output", str(output)]) == 0
    assert json.loads(output.read_text())["table"] == "bvae1"
    markdown = output.with_suffix(".md")
    written = markdown.read_text()
    assert "Ranking at equal budget" in capsys.readouterr().out
    markdown.unlink()
    assert main(["--render", str(output)]) == 0  # the Markdown is a pure function of the JSON
    assert markdown.read_text() == written


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="choose one of"):
        budget_for("table9", "tiny")
    with pytest.raises(ValueError, match="choose one of"):
        budget_for("bihm3", "huge")
    assert set(BUDGET_TABLE) == set(TABLES) and all(set(BUDGET_TABLE[t]) == set(BUDGETS) for t in TABLES)


def test_short_source_keeps_paper_and_table():
    assert short_source(paper_values.BIHM_TABLE_3) == "BiHM Table 3"
    assert short_source(paper_values.DVAEPP_TABLE_2) == "DVAE++ Table 2"


def test_a_rerun_with_a_runs_dir_resumes_and_reuses_finished_evaluations(tmp_path):
    from benchmarks.evaluation import EVALUATION_FILE
    from benchmarks.reproduce import RunContext

    context = RunContext(seed=3, folder=tmp_path / "runs")
    first = run_table("bihm3", "tiny", context=context)
    evaluations = sorted((tmp_path / "runs").rglob(EVALUATION_FILE))
    assert len(evaluations) == len(first.rows)
    assert all((path.parent / "stage1" / "checkpoint.pt").is_file() for path in evaluations)
    second = run_table("bihm3", "tiny", context=context)
    for before, after in zip(first.rows, second.rows):
        assert after.steps == before.steps  # the finished stage is resumed, not retrained
        assert after.eval_seconds == before.eval_seconds  # the saved evaluation, not a new one
        assert torch.equal(after.per_image_log_p, before.per_image_log_p)
    assert second.seed == 3 and second.provenance["commit"]


def test_a_finished_evaluation_is_renormalised_when_the_test_log_z_schedule_changes(tmp_path, monkeypatch):
    """Rerun with a longer test AIS schedule: the saved evaluation is kept (no new importance pass), only
    log Z is re-estimated, and log p(x), the ELBO, BiHM's bound and each image move by old - new log Z."""
    from dataclasses import replace

    from benchmarks import reproduce
    from benchmarks.evaluation import LOG_Z_SHIFTED_METRICS
    from benchmarks.reproduce import RunContext

    context = RunContext(seed=2, folder=tmp_path / "runs", rows=frozenset({"1 linear/rbm_overlapping"}))
    (first,) = run_table("dvaepp2", "tiny", context=context).rows
    tiny = BUDGET_TABLE["dvaepp2"]["tiny"]
    assert first.metrics["log_z_temperatures"] == tiny.ais_temperatures
    longer = replace(tiny, test_ais_temperatures=4 * tiny.ais_temperatures)
    monkeypatch.setitem(BUDGET_TABLE["dvaepp2"], "tiny", longer)

    def no_new_pass(*args, **kwargs):
        raise AssertionError("the finished evaluation was redone")

    monkeypatch.setattr(reproduce, "importance_estimates", no_new_pass)
    (second,) = run_table("dvaepp2", "tiny", context=context).rows
    shift = first.metrics["log_z"] - second.metrics["log_z"]
    assert shift != 0.0
    assert second.metrics["log_z_temperatures"] == longer.test_ais_temperatures
    assert second.metrics["log_z_replaced"] == first.metrics["log_z"]
    assert second.metrics["log_z_replaced_temperatures"] == tiny.ais_temperatures
    for name in LOG_Z_SHIFTED_METRICS:
        assert second.metrics[name] == pytest.approx(first.metrics[name] + shift, abs=1e-9)
    assert second.metrics["ess"] == first.metrics["ess"] and second.metrics["log_p_se"] == first.metrics["log_p_se"]
    assert torch.allclose(second.per_image_log_p, first.per_image_log_p + shift)
    assert second.eval_seconds > first.eval_seconds  # the re-estimate's time is counted
    (third,) = run_table("dvaepp2", "tiny", context=context).rows  # the renormalised evaluation was saved
    assert third.metrics == second.metrics and third.eval_seconds == second.eval_seconds


def test_rows_and_epochs_select_one_configuration_with_its_learning_curve(tmp_path):
    output = tmp_path / "one.json"
    argv = ["--table", "dvaepp1", "--budget", "tiny", "--threads", "1", "--rows", "linear/joint", "--epochs", "2",
            "--output", str(output)]
    assert main(argv) == 0
    report = json.loads(output.read_text())
    (row,) = report["rows"]
    assert (row["group"], row["method"]) == ("linear", "joint")
    assert report["budget"]["stage"]["epochs"] == 2 and any("2 epochs (--epochs" in note for note in report["notes"])
    assert [point["epoch"] for point in row["curve"]] == [1, 2]  # the first and the last epoch
    assert [point["step"] for point in row["curve"]] == [1, 2]  # one step an epoch at tiny
    assert all(math.isfinite(point["valid_log_p"]) and point["valid_log_p"] < 0 for point in row["curve"])


def test_rows_that_name_no_configuration_are_refused_with_the_table_s_rows(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--table", "dvaesharp", "--budget", "tiny", "--rows", "1 linear/dvae_sharp"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--rows 1 linear/dvae_sharp: not a configuration of dvaesharp" in error
    assert "'1 linear/dvae_sharp_power_k5'" in error


def test_default_output_names_carry_rows_and_seed():
    from benchmarks.reproduce import default_output_name

    assert default_output_name("dvaepp1", "full", 0, None) == "dvaepp1_full.json"
    assert default_output_name("dvaepp1", "full", 2, ["linear/joint"]) == "dvaepp1_full_linear-joint_seed2.json"
    assert default_output_name("dvaepp2", "full", 0, ["1 linear/rbm_overlapping"]) == "dvaepp2_full_1-linear-rbm_overlapping.json"


def test_the_learning_curve_leaves_training_s_random_stream_alone():
    """Training draws the same numbers with or without curve points (which draw their own)."""
    import pyro

    from benchmarks.reproduce import train
    from benchmarks.reproduce_configs import Stage
    from pyro_dgm.cli.trainer import Experiment
    from pyro_dgm.infer import ReweightedWakeSleep
    from pyro_dgm.models import BottomUpGuide, SigmoidBeliefNet

    pixels = torch.rand(40, 12, generator=torch.Generator().manual_seed(0))

    def losses(curve_point):
        pyro.set_rng_seed(0)
        pyro.clear_param_store()
        model, guide = SigmoidBeliefNet((12, 4)), BottomUpGuide((12, 4))
        experiment = Experiment(model, guide, ReweightedWakeSleep(num_particles=2), {"model": model, "guide": guide})
        record = train(experiment, pixels, Stage(3, 1e-2, batch_size=20), "dynamic", seed=0, curve_point=curve_point)
        return record.losses, record.curve

    plain, no_curve = losses(None)
    with_curve, curve = losses(lambda: {"valid_log_p": -torch.rand(()).item()})
    assert no_curve == [] and [point["epoch"] for point in curve] == [1, 2, 3]
    assert with_curve == plain


def test_an_interrupted_or_diverged_run_is_one_line_saying_what_to_do(tmp_path, capsys, monkeypatch):
    """Ctrl-C: the checkpoint is written and the same command resumes; a NaN loss: the step and the kept checkpoint."""

    from benchmarks import reproduce
    from pyro_dgm.cli.main import EXIT_INTERRUPTED, EXIT_NON_FINITE_LOSS
    from pyro_dgm.cli.trainer import NonFiniteLoss, TrainingInterrupted

    arguments = ["--table", "dvaepp1", "--budget", "tiny", "--output", str(tmp_path / "out.json")]
    for raised, status, message in [
        (TrainingInterrupted(7, Path("runs/checkpoint.pt")), EXIT_INTERRUPTED,
         "benchmarks.reproduce: interrupted at step 7; checkpoint written to runs/checkpoint.pt: rerun the same "
         "command to continue from it"),
        (NonFiniteLoss("the loss is nan at step 3 (...)", step=3, checkpoint_step=None), EXIT_NON_FINITE_LOSS,
         "benchmarks.reproduce: the loss is nan at step 3 (...)"),
    ]:
        def stopped(*args, raised=raised, **kwargs):
            raise raised

        monkeypatch.setattr(reproduce, "run_table", stopped)
        assert main(arguments) == status
        assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "out.json").exists()


TWIN_SIZE_TOLERANCE = 0.005
"""The twin-sized VAE matches the bidirectional VAE's parameter count to within 0.5 %."""


def test_the_twin_sized_vae_has_the_parameter_count_of_the_bidirectional_vae():
    from dataclasses import replace

    from benchmarks.reproduce import bvae_network, count_parameters
    from benchmarks.reproduce_configs import TWIN_SIZED_VAE
    from pyro_dgm.models.bvae import BidirectionalVAE, UnidirectionalVAE

    small = budget_for("bvae1", "small")
    assert TWIN_SIZED_VAE in small.rows
    twin = count_parameters(BidirectionalVAE(bvae_network(small), small.latent_dim))
    vae = count_parameters(UnidirectionalVAE(bvae_network(small), small.latent_dim))
    twin_sized = count_parameters(UnidirectionalVAE(bvae_network(small, TWIN_SIZED_VAE), small.latent_dim))
    assert abs(twin_sized - twin) <= TWIN_SIZE_TOLERANCE * twin < vae - twin
    with pytest.raises(ValueError, match="sets MLP widths, but this budget's network is 'resnet'"):
        bvae_network(replace(small, network="resnet"), TWIN_SIZED_VAE)


def test_the_budget_line_says_whether_the_whole_test_set_was_used_and_whether_it_was_binarised():
    """Larochelle's static MNIST is binary as published: no binarisation is drawn for it, and a
    budget without a test size evaluates every test image ("all", not "first")."""
    committed = json.loads((RESULTS / "dvaepp1_full_linear-joint_seed2.json").read_text())
    assert committed["budget"]["data"]["test_size"] is None
    line = _budget_line(committed)
    assert "test: all 10000 test images (as published)" in line
    assert "binarized_mnist, binary as published" in line
    prefix = {**committed, "dataset": "mnist", "num_test": 1000,
              "budget": {**committed["budget"], "data": {**committed["budget"]["data"], "test_size": 1000}}}
    line = _budget_line(prefix)
    assert "test: first 1000 test images (one fixed-seed binarisation)" in line
    assert "mnist, static binarisation" in line


def test_fine_tune_epochs_and_network_change_only_their_table_s_budget():
    from benchmarks.reproduce import default_output_name, with_fine_tune_epochs, with_network
    from benchmarks.reproduce_configs import BVAE_NETWORK_NOTES, budget_for

    bihm = budget_for("bihm3", "full")
    shorter = with_fine_tune_epochs(bihm, 5)
    assert [stage.epochs for stage in shorter.stages] == [bihm.stages[0].epochs, 5]
    assert shorter.stages[1].num_particles == bihm.stages[1].num_particles == 100
    assert "fine-tuning stage (K = 100, lr 0.0003): 5 epochs (--fine-tune-epochs; the budget's own: 100)" in shorter.choices
    assert with_fine_tune_epochs(bihm, 0).stages == bihm.stages[:1]
    bvae = budget_for("bvae1", "full")
    mlp = with_network(bvae, "mlp")
    assert (bvae.network, mlp.network) == ("resnet", "mlp")
    assert BVAE_NETWORK_NOTES["resnet"] in bvae.choices and BVAE_NETWORK_NOTES["resnet"] not in mlp.choices
    assert f"{BVAE_NETWORK_NOTES['mlp']} (--network mlp; the budget's own: resnet)" in mlp.choices
    with pytest.raises(ValueError, match="--fine-tune-epochs: only bihm3's full budget"):
        with_fine_tune_epochs(bvae, 5)
    with pytest.raises(ValueError, match="--network: only bvae1"):
        with_network(bihm, "mlp")
    assert default_output_name("bvae1", "full", 0, ["VAE/VAE"], "mlp") == "bvae1_full_mlp_VAE-VAE.json"


def test_fine_tune_epochs_and_network_reach_the_budget_from_the_command_line(capsys):
    for argv, message in (
        (["--table", "bihm3", "--budget", "tiny", "--fine-tune-epochs", "2"], "only bihm3's full budget has a fine-tuning stage"),
        (["--table", "dvaepp1", "--budget", "tiny", "--fine-tune-epochs", "2"], "only bihm3's full budget"),
        (["--table", "bihm3", "--budget", "tiny", "--fine-tune-epochs", "-1"], "--fine-tune-epochs must be 0 or more"),
        (["--table", "dvaepp1", "--budget", "tiny", "--network", "mlp"], "--network: only bvae1 has a choice of networks"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_eval_particles_and_partition_samples_replace_the_budget_s_and_say_so():
    from benchmarks.reproduce import with_eval_particles, with_partition_samples
    from benchmarks.reproduce_configs import budget_for

    bihm = budget_for("bihm3", "full")
    cheaper = with_partition_samples(with_eval_particles(bihm, 5000), 10**6)
    assert (cheaper.eval_particles, cheaper.partition_samples) == (5000, 10**6)
    assert "K = 5,000 importance samples per test image (--eval-particles; the budget's own: 10,000)" in cheaper.choices
    assert "Z^2 from 1,000,000 samples (--partition-samples; the budget's own: 10,000,000)" in cheaper.choices
    assert with_eval_particles(budget_for("dvaepp1", "full"), 100).eval_particles == 100
    with pytest.raises(ValueError, match="--partition-samples: only bihm3"):
        with_partition_samples(budget_for("dvaepp1", "full"), 10)
    with pytest.raises(ValueError, match="--eval-particles must be a positive"):
        with_eval_particles(bihm, 0)


def test_eval_particles_reach_the_test_evaluation(tmp_path):
    output = tmp_path / "k.json"
    assert main(["--table", "dvaepp1", "--budget", "tiny", "--threads", "1", "--rows", "linear/joint",
                 "--eval-particles", "3", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["budget"]["eval_particles"] == 3 and any("--eval-particles" in note for note in report["notes"])

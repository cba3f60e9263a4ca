"""The `pyro-dgm` command end to end on the embedded data, and its one-line errors."""

import json

import pytest

from pyro_dgm.cli.main import EXIT_USAGE, main

TINY_SBN = ["--model", "sbn", "--layers", "8", "--objective", "bihm", "-k", "3", "--epochs", "1",
            "--batch-size", "1000", "--valid-particles", "25", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    assert main(["train", "--run-dir", str(run_dir), *TINY_SBN]) == 0
    return run_dir


def test_train_writes_config_metrics_and_checkpoint(trained_run):
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model"] == "sbn" and config["layers"] == [8]
    (record,) = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert record["epoch"] == 1 and record["step"] == 3  # 3000 embedded digits in batches of 1000
    assert record["valid_log_likelihood"] < 0
    assert (trained_run / "checkpoint.pt").is_file()


def test_evaluate_reports_log_likelihood_ess_and_khat(trained_run, capsys):
    assert main(["evaluate", "--run-dir", str(trained_run), "-k", "30", "--max-examples", "20", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "test log-likelihood" in printed and "PSIS k-hat" in printed
    result = json.loads((trained_run / "evaluation_test_k30.json").read_text())
    assert result["num_examples"] == 20 and result["log_likelihood"] < 0
    assert 1 <= result["ess_mean"] <= 30


@pytest.mark.parametrize("extra", [[], ["--gibbs", "2"]])
def test_sample_writes_a_png(trained_run, tmp_path, extra):
    output = tmp_path / "grid.png"
    assert main(["sample", "--run-dir", str(trained_run), "--num-samples", "4", "--output", str(output), "--device", "cpu", *extra]) == 0
    assert output.read_bytes().startswith(b"\x89PNG")


def test_inpaint_writes_a_png(trained_run, tmp_path):
    output = tmp_path / "inpainting.png"
    arguments = ["inpaint", "--run-dir", str(trained_run), "--num-images", "2", "--completions", "2",
                 "--sweeps", "2", "--output", str(output), "--device", "cpu"]
    assert main(arguments) == 0
    assert output.read_bytes().startswith(b"\x89PNG")


def test_resume_of_a_finished_run_changes_nothing(trained_run):
    before = (trained_run / "metrics.jsonl").read_text()
    assert main(["train", "--run-dir", str(trained_run), "--resume", "--no-progress", "--device", "cpu"]) == 0
    assert (trained_run / "metrics.jsonl").read_text() == before


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "nonsense"], "unknown model 'nonsense'; choose one of: sbn, dvae_pp"),
        (["--model", "sbn", "--objective", "dvae_pp"], "cannot be trained with objective 'dvae_pp'; it works with: bihm"),
        (["--model", "sbn", "--guide", "nonsense"], "unknown guide for model 'sbn' 'nonsense'"),
        (["--dataset", "nonsense"], "nonsense"),
    ],
)
def test_bad_names_give_one_line_errors(tmp_path, capsys, arguments, message):
    assert main(["train", "--run-dir", str(tmp_path / "run"), "--no-progress", *arguments]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_existing_run_folder_and_missing_checkpoint_are_errors(trained_run, tmp_path, capsys):
    assert main(["train", "--run-dir", str(trained_run), *TINY_SBN]) == EXIT_USAGE
    assert "already holds a run" in capsys.readouterr().err
    assert main(["evaluate", "--run-dir", str(tmp_path / "missing")]) == EXIT_USAGE
    assert "not a run folder" in capsys.readouterr().err


def test_gibbs_needs_the_bottom_up_sbn(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--run-dir", str(run_dir), *TINY_SBN, "--guide", "factorial", "--valid-particles", "0"]) == 0
    assert main(["sample", "--run-dir", str(run_dir), "--gibbs", "1", "--device", "cpu"]) == EXIT_USAGE
    assert "needs --model sbn with --guide bottom_up" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, value, expected",
    [("-k", "-3", "a positive integer"), ("--lr-decay", "0", "a number in (0, 1]"), ("--lr", "nan", "a positive number"),
     ("--kl-warmup", "1.5", "a number between 0 and 1"), ("--seed", "-1", "a non-negative integer")],
)
def test_bad_numbers_are_refused_by_the_parser(tmp_path, capsys, option, value, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--run-dir", str(tmp_path / "run"), option, value])
    assert exit_info.value.code == EXIT_USAGE
    assert f"expected {expected}, got '{value}'" in capsys.readouterr().err

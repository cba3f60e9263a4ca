"""`pyro-dgm train` options that only make sense together, `--resume --epochs`, and bad data: one line each."""

import json

import pytest
import torch

from pyro_dgm.cli import main as cli_main
from pyro_dgm.cli.main import EXIT_NON_FINITE_LOSS, EXIT_USAGE, main
from pyro_dgm.cli.registry import BuiltModel
from pyro_dgm.cli.evaluation import evaluate_log_likelihood

TINY = ["--epochs", "1", "--batch-size", "1000", "--valid-particles", "0", "--no-progress", "--device", "cpu"]
SBN = ["--model", "sbn", "--layers", "6", "--objective", "rws", "-k", "2", *TINY]


def _one_line_error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert "\n" not in error, error
    return error


def test_rbm_units_needs_two_numbers(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--run-dir", str(tmp_path / "run"), "--model", "dvae_pp", "--rbm-units", "4"])
    assert exit_info.value.code == EXIT_USAGE
    assert "argument --rbm-units: expected two comma-separated positive integers n1,n2, got '4'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "sbn", "--objective", "vimco", "-k", "1"], "--objective vimco needs -k/--num-particles >= 2, got 1"),
        (["--model", "dvae_pp", "--objective", "dvae_pp", "--smoother", "spike_and_exponential"],
         "--smoother spike_and_exponential is a spike-and-X smoother, whose nu jumps, which the DVAE++ gradient "
         "misses; train it with --model dvae --objective dvae"),
        (["--model", "dvae", "--objective", "dvae", "--smoother", "overlapping_exponential"],
         "--objective dvae needs a spike-and-X smoother (spike_and_exponential, spike_and_slab), got "
         "overlapping_exponential; train --smoother overlapping_exponential with --model dvae_pp --objective dvae_pp"),
    ],
)
def test_options_that_do_not_fit_together_are_one_line_errors_before_any_work(tmp_path, capsys, arguments, message):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), *arguments, *TINY]) == EXIT_USAGE
    assert f"pyro-dgm train: {message}" in _one_line_error(capsys)
    assert not run.exists()


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("one_epoch")
    assert main(["train", "--run-dir", str(run), *SBN]) == 0
    return run


def test_resume_with_more_epochs_extends_the_run_and_says_so(one_epoch_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "checkpoint.pt", "metrics.jsonl"):
        (run / name).write_bytes((one_epoch_run / name).read_bytes())
    capsys.readouterr()
    assert main(["train", "--run-dir", str(run), "--resume", "--epochs", "2", "--no-progress", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "extending the run from 1 to 2 epochs (1 done): the learning rate stays constant" in printed
    assert "trained 2 epochs (6 steps)" in printed
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    assert [record["epoch"] for record in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())] == [1, 2]


def test_resume_with_fewer_epochs_is_refused_and_changes_nothing(one_epoch_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    config = {**json.loads((one_epoch_run / "config.json").read_text()), "epochs": 3}
    (run / "config.json").write_text(json.dumps(config))
    (run / "checkpoint.pt").write_bytes((one_epoch_run / "checkpoint.pt").read_bytes())
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    capsys.readouterr()
    assert main(["train", "--run-dir", str(run), "--resume", "--epochs", "2", "--no-progress", "--device", "cpu"]) == EXIT_USAGE
    assert ("--resume --epochs 2: this run was started for 3 epochs (1 done); --epochs can extend a run, "
            "not shorten it") in _one_line_error(capsys)
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


def test_nan_in_the_dataset_names_site_x_split_and_data_point(tmp_path, capsys, monkeypatch):
    original = cli_main.load_dataset

    def with_a_nan(name, split, root=None):
        pixels = original(name, split, root=root)
        if split == "train":
            pixels = pixels.clone()
            pixels[1234, 5] = float("nan")
        return pixels

    monkeypatch.setattr(cli_main, "load_dataset", with_a_nan)
    assert main(["train", "--run-dir", str(tmp_path / "run"), *SBN]) == EXIT_USAGE
    assert ("pyro-dgm train: observed site 'x', dataset 'embedded_mnist', split 'train': data point 1234 holds NaN "
            "(1 of 3000 data points are not finite)") in _one_line_error(capsys)


def test_an_empty_evaluation_batch_says_empty_batch():
    def never_called(*args, **kwargs):
        raise AssertionError("the model must not run on an empty batch")

    built = BuiltModel(model=never_called, guide=never_called, modules={}, sample_images=never_called,
                       evaluation_pair=lambda: (never_called, never_called))
    with pytest.raises(ValueError, match=r"observed site 'x', evaluation data: empty batch \(shape \(0, 4\)\)"):
        evaluate_log_likelihood(built, torch.zeros(0, 4), num_particles=2, progress=False)


def test_valid_every_measures_every_nth_epoch_and_the_last(tmp_path, capsys):
    run_dir = tmp_path / "run"
    arguments = ["--model", "sbn", "--layers", "6", "--objective", "rws", "-k", "2", "--epochs", "5",
                 "--batch-size", "1000", "--valid-particles", "3", "--valid-every", "2", "--no-progress",
                 "--device", "cpu"]
    assert main(["train", "--run-dir", str(run_dir), *arguments]) == 0
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    measured = [record["epoch"] for record in records if "valid_log_likelihood" in record]
    assert measured == [2, 4, 5]
    lines = {line.split(":")[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")}
    assert "valid log-likelihood" not in lines["epoch 1/5"] and "valid log-likelihood" in lines["epoch 2/5"]


def test_a_non_finite_loss_is_one_line_naming_the_step_and_what_to_change(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("pyro.infer.SVI.step", lambda self, *args, **kwargs: float("inf"))
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), *SBN]) == EXIT_NON_FINITE_LOSS
    error = _one_line_error(capsys)
    assert error.startswith("pyro-dgm train: the loss is inf at step 1 (training batch 1 of epoch 1); that step's "
                            "update is not saved, no checkpoint had been written yet.")
    assert "start a new run with a smaller --lr (this run's: 0.001) in another --run-dir" in error
    assert not (run / "checkpoint.pt").exists()

"""`pyro-dgm train --model dvae_sharp` (and gumbolt) end to end on the embedded data."""

import json

import pyro
import pytest

from pyro_dgm.cli.main import main

TINY = ["--rbm-units", "4,4", "--epochs", "1", "--batch-size", "1000", "--valid-particles", "5",
        "--pcd-chains", "8", "--pcd-sweeps", "2", "--no-progress", "--device", "cpu"]


@pytest.mark.parametrize(
    "arguments",
    [["--model", "dvae_sharp", "--smoother", "power"], ["--model", "dvae_sharp", "--smoother", "uniform_exponential", "-k", "2"],
     ["--model", "dvae_sharp_gi"], ["--model", "gumbolt", "--objective", "gumbolt"]],
    ids=["power", "uniform_exponential_k2", "gaussian_integral", "gumbolt"],
)
def test_train_then_evaluate(tmp_path, arguments):
    assert main(["train", "--run-dir", str(tmp_path), *arguments, *TINY]) == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["objective"] in ("dvae_sharp", "gumbolt")  # the model's own objective when none is given
    (record,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert record["valid_log_likelihood"] < 0
    pyro.clear_param_store()  # each command runs in a fresh process
    assert main(["evaluate", "--run-dir", str(tmp_path), "-k", "5", "--max-examples", "10", "--device", "cpu", "--chain-sweeps", "0"]) == 0


def test_dvae_sharp_rejects_another_objective(capsys):
    assert main(["train", "--run-dir", "/tmp/unused", "--model", "dvae_sharp", "--objective", "dvae_pp", *TINY]) != 0
    assert "it works with: dvae_sharp" in capsys.readouterr().err

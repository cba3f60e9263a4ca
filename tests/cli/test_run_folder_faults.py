"""Every broken run folder gets one line naming the file and exit status 2, and nothing on disk changes.

Faults tried: a checkpoint that would run code when unpickled, truncated, a few stray bytes, empty, written by
another model or another architecture, an old checkpoint of the wrong shapes, and a broken
``config.json``; each against ``train --resume``, ``evaluate`` and ``sample``.
"""

import contextlib
import os
import shutil
import subprocess

import pytest
import torch

from pyro_dgm.cli.main import EXIT_USAGE, main

TINY = ["--epochs", "1", "--batch-size", "1000", "--valid-particles", "0", "--no-progress", "--device", "cpu"]
SBN = ["--model", "sbn", "--layers", "8", "--objective", "bihm", "-k", "2", *TINY]
DVAE_PP = ["--model", "dvae_pp", "--rbm-units", "4,4", "--objective", "dvae_pp", "--pcd-chains", "4",
           "--pcd-sweeps", "1", *TINY]
COMMANDS = {
    "train --resume": ["train", "--resume", "--no-progress", "--device", "cpu"],
    "evaluate": ["evaluate", "-k", "2", "--max-examples", "3", "--chain-sweeps", "0", "--device", "cpu"],
    "sample": ["sample", "--num-samples", "2", "--device", "cpu"],
}


def leave_a_mark(path: str) -> dict:
    """What a hostile checkpoint would run on unpickling (here: create a file)."""
    with open(path, "w") as stream:
        stream.write("this ran while the checkpoint was loaded")
    return {}


class RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return leave_a_mark, (str(self.marker),)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, arguments in (("sbn", SBN), ("sbn_other_layers", [*SBN, "--layers", "6"]), ("dvae_pp", DVAE_PP)):
        assert main(["train", "--run-dir", str(root / name), *arguments]) == 0
    return root


def _without_config(source, target):
    payload = torch.load(source, weights_only=False)
    del payload["config"]  # as written before checkpoints recorded their configuration
    torch.save(payload, target)


FAULTS = {
    "code on unpickling": (
        lambda run, runs: torch.save({"format_version": 1, "hook": RunsCodeWhenUnpickled(run.parent / "marker")},
                                     run / "checkpoint.pt"),
        "checkpoint.pt holds objects other than tensors, numbers and RNG states (tests.cli.test_run_folder_faults.",
    ),
    "truncated": (
        lambda run, runs: (run / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes()[:1000]),
        "checkpoint.pt is not a readable checkpoint (truncated or corrupt: ",
    ),
    "a few stray bytes": (  # torch's legacy reader then fails inside the unpickler (IndexError)
        lambda run, runs: (run / "checkpoint.pt").write_bytes(b"truncated"),
        "checkpoint.pt is not a readable checkpoint (truncated or corrupt: ",
    ),
    "empty": (lambda run, runs: (run / "checkpoint.pt").write_bytes(b""), "checkpoint.pt is empty"),
    "another model": (
        lambda run, runs: shutil.copy(runs / "dvae_pp" / "checkpoint.pt", run / "checkpoint.pt"),
        "checkpoint.pt was written by model 'dvae_pp', this run is 'sbn'",
    ),
    "other layer sizes": (
        lambda run, runs: shutil.copy(runs / "sbn_other_layers" / "checkpoint.pt", run / "checkpoint.pt"),
        "checkpoint.pt was written with layers [6], this run has layers [8]",
    ),
    "other layer sizes, no recorded config": (
        lambda run, runs: _without_config(runs / "sbn_other_layers" / "checkpoint.pt", run / "checkpoint.pt"),
        "checkpoint.pt does not fit this run's SigmoidBeliefNet ('model'): size mismatch for",
    ),
    "config.json not JSON": (
        lambda run, runs: (run / "config.json").write_text('{"model": "sbn",'),
        "config.json is not valid JSON (Expecting property name enclosed in double quotes at line 1, column 17)",
    ),
    "config.json not a run configuration": (
        lambda run, runs: (run / "config.json").write_text("[1, 2]"),
        "config.json is not a run configuration: expected a JSON object with the keys model, objective, dataset",
    ),
}


def _snapshot(folder):
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_broken_run_folder_is_one_line_exit_2_and_left_as_it_was(runs, tmp_path, capsys, fault, command):
    run = tmp_path / "run"
    shutil.copytree(runs / "sbn", run)
    damage, message = FAULTS[fault]
    damage(run, runs)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main([COMMANDS[command][0], "--run-dir", str(run), *COMMANDS[command][1:]]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error, error
    assert _snapshot(tmp_path) == before  # in particular no marker: nothing in the file ran


@contextlib.contextmanager
def read_only(folder):
    """Make ``folder`` refuse new files for this process (``chattr +i`` when root ignores modes), else skip."""
    as_root = os.geteuid() == 0
    command = ["chattr", "+i", str(folder)] if as_root else None
    if as_root:
        if shutil.which("chattr") is None or subprocess.run(command, capture_output=True).returncode != 0:
            pytest.skip("cannot make a folder read-only for root here (no chattr +i)")
    else:
        folder.chmod(0o555)
    try:
        yield
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_evaluate_into_a_read_only_folder_prints_the_result_then_fails_in_one_line(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs / "sbn", run)
    before = _snapshot(run)
    capsys.readouterr()
    with read_only(run):
        status = main(["evaluate", "--run-dir", str(run), *COMMANDS["evaluate"][1:]])
    printed = capsys.readouterr()
    assert status == EXIT_USAGE
    assert "test log-likelihood" in printed.out  # the estimate is not lost
    error = printed.err.strip()
    assert f"cannot write {run / 'evaluation_test_k2.json'}" in error and "\n" not in error, error
    assert _snapshot(run) == before

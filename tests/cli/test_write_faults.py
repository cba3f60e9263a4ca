"""A checkpoint write that fails (disk full) or is killed (SIGKILL) loses nothing: the previous
checkpoint stays, the error is one line, and ``--resume`` still ends where a straight run ends."""

import errno
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyro_dgm.cli import checkpoint
from pyro_dgm.cli.checkpoint import load_checkpoint
from pyro_dgm.cli.main import EXIT_USAGE, main

SBN = ["--model", "sbn", "--layers", "6", "--objective", "rws", "-k", "2", "--epochs", "2", "--batch-size", "1000",
       "--valid-particles", "0", "--no-progress", "--device", "cpu"]
STEPS_PER_EPOCH = 3  # 3000 embedded training digits in batches of 1000
FAILING_SAVE = 2  # the checkpoint after epoch 2: epoch 1's is on disk
REPOSITORY = Path(__file__).resolve().parents[2]


def failing_save(fail_on_call: int, fail):
    """``torch.save`` that writes half of the bytes on call ``fail_on_call``, then calls ``fail()``."""
    original, calls = torch.save, []

    def save(payload, stream):
        calls.append(None)
        if len(calls) != fail_on_call:
            return original(payload, stream)
        stream.write(b"PK\x03\x04 half a zip archive")
        stream.flush()
        fail()

    return save


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run = tmp_path_factory.mktemp("straight")
    assert main(["train", "--run-dir", str(run), *SBN]) == 0
    return load_checkpoint(run / "checkpoint.pt")


def _assert_same_weights(expected, actual):
    for module, state in expected["modules"].items():
        for key, value in state.items():
            assert torch.equal(value, actual["modules"][module][key]), f"{module}.{key}"


def _resume_and_compare(run, straight):
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress", "--device", "cpu"]) == 0
    _assert_same_weights(straight, load_checkpoint(run / "checkpoint.pt"))
    assert sorted(path.name for path in run.iterdir()) == ["checkpoint.pt", "config.json", "metrics.jsonl"]


def test_disk_full_while_checkpointing_is_one_line_and_resume_loses_nothing(tmp_path, monkeypatch, capsys, straight):
    def disk_full():
        raise OSError(errno.ENOSPC, "No space left on device")

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.torch, "save", failing_save(FAILING_SAVE, disk_full))
        assert main(["train", "--run-dir", str(run), *SBN]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert f"cannot write {run / 'checkpoint.pt'}: No space left on device; the file there is unchanged" in error
    assert "\n" not in error
    assert load_checkpoint(run / "checkpoint.pt")["step"] == STEPS_PER_EPOCH  # epoch 1's, intact
    assert not list(run.glob(".*.tmp"))
    _resume_and_compare(run, straight)


KILLED_DURING_SAVE = """
import os, signal, sys
from pyro_dgm.cli import checkpoint
from pyro_dgm.cli.main import main
from tests.cli.test_write_faults import FAILING_SAVE, failing_save
checkpoint.torch.save = failing_save(FAILING_SAVE, lambda: os.kill(os.getpid(), signal.SIGKILL))
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_in_the_middle_of_a_checkpoint_write_loses_nothing(tmp_path, straight):
    run = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_DURING_SAVE, "train", "--run-dir", str(run), *SBN],
        capture_output=True, text=True, env={"OMP_NUM_THREADS": "1"}, cwd=REPOSITORY,
    )
    assert killed.returncode == -9, killed.stderr
    assert load_checkpoint(run / "checkpoint.pt")["step"] == STEPS_PER_EPOCH
    assert len(list(run.glob(".checkpoint.pt.*.tmp"))) == 1  # the half-written temporary, never renamed
    _resume_and_compare(run, straight)  # which also removes the stale temporary

"""`pyro-dgm train` interrupted by Ctrl-C and resumed ends bit-for-bit where a straight run ends, for every objective.

The interruption goes through the real command: a SIGINT is raised during one step, the
command writes its checkpoint and returns 130; a second ``main`` call with ``--resume``
(a fresh model, objective and optimiser, as in a new process) finishes the run.
"""

import signal

import pyro
import pytest
import torch

from pyro_dgm.cli.checkpoint import load_checkpoint
from pyro_dgm.cli.main import EXIT_INTERRUPTED, main
from pyro_dgm.cli.trainer import Trainer

COMMON = ["--epochs", "2", "--batch-size", "1000", "--valid-particles", "5", "--no-progress", "--device", "cpu",
          "--pcd-chains", "4", "--pcd-sweeps", "2", "--lr", "0.01"]
"""3000 embedded training digits in batches of 1000: 3 steps per epoch, 6 in all."""
INTERRUPT_AT_STEP = 3
"""The first step of epoch 2 (after epoch 1's validation drew its random numbers)."""

RUNS = {
    "bihm": ["--model", "sbn", "--layers", "6,4", "--objective", "bihm", "-k", "3"],
    "rws": ["--model", "sbn", "--layers", "6,4", "--objective", "rws", "-k", "3"],
    "vimco": ["--model", "sbn", "--layers", "6,4", "--objective", "vimco", "-k", "3"],
    "elbo": ["--model", "sbn", "--layers", "6,4", "--objective", "elbo", "-k", "2"],
    "dvae_pp": ["--model", "dvae_pp", "--rbm-units", "4,4", "--objective", "dvae_pp", "-k", "2"],
    "dvae": ["--model", "dvae", "--rbm-units", "4,4", "--objective", "dvae", "-k", "2"],
    "elbo_directed": ["--model", "directed", "--layers", "6", "--objective", "elbo", "-k", "2"],
}


def interrupt_at(monkeypatch, step):
    """Make the trainer receive a SIGINT during ``step`` (as if Ctrl-C were pressed then)."""
    original = Trainer._train_step

    def train_step(self, x, num_data):
        if self.step == step:
            signal.raise_signal(signal.SIGINT)
        return original(self, x, num_data)

    monkeypatch.setattr(Trainer, "_train_step", train_step)


@pytest.mark.parametrize("name", list(RUNS))
def test_resume_through_the_cli_is_exact(tmp_path, monkeypatch, name):
    arguments = [*RUNS[name], *COMMON]
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert main(["train", "--run-dir", str(straight), *arguments]) == 0

    with monkeypatch.context() as patch:
        interrupt_at(patch, INTERRUPT_AT_STEP)
        assert main(["train", "--run-dir", str(interrupted), *arguments]) == EXIT_INTERRUPTED
    assert load_checkpoint(interrupted / "checkpoint.pt")["step"] == INTERRUPT_AT_STEP + 1
    pyro.set_rng_seed(12345)  # the resumed process starts from another RNG state
    assert main(["train", "--run-dir", str(interrupted), "--resume", "--no-progress", "--device", "cpu"]) == 0

    expected, resumed = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(interrupted / "checkpoint.pt")
    assert resumed["step"] == expected["step"] == 6
    for module, state in expected["modules"].items():
        for key, value in state.items():
            assert torch.equal(value, resumed["modules"][module][key]), f"{module}.{key}"
    strip = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]
    assert strip(resumed["metrics"]) == strip(expected["metrics"])

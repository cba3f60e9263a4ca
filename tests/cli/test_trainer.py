"""The training loop: metrics, checkpoints, and resume reaching the uninterrupted result exactly."""

import pickle
import re
import signal

import pyro
import pytest
import torch
from pyro.infer import TraceGraph_ELBO

from pyro_dgm.cli.checkpoint import load_checkpoint, save_checkpoint
from pyro_dgm.cli.run_directory import RunDirectory
from pyro_dgm.cli.trainer import Experiment, NonFiniteLoss, Schedule, Trainer, TrainingInterrupted
from pyro_dgm.data import BinarizedBatches
from tests.infer.small_models import TinySBN

NUM_EPOCHS, NUM_EXAMPLES, BATCH_SIZE = 3, 20, 6  # 4 batches per epoch, the last one smaller


def make_trainer(run_path, interrupt_at_step=None):
    network = TinySBN(dtype=torch.float32)
    pixel_probs = torch.rand(NUM_EXAMPLES, 4, generator=torch.Generator().manual_seed(3))

    def step_kwargs(step, total_steps):
        if step == interrupt_at_step:
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C during this step
        return {}

    experiment = Experiment(
        model=network.model,
        guide=network.guide,
        objective=TraceGraph_ELBO(num_particles=2, vectorize_particles=True, max_plate_nesting=1),
        modules={"network": network},
        step_kwargs=step_kwargs,
    )
    batches = BinarizedBatches(pixel_probs, batch_size=BATCH_SIZE, seed=5)
    trainer = Trainer(
        experiment, batches, Schedule(num_epochs=NUM_EPOCHS, learning_rate=0.05, lr_decay=0.9),
        RunDirectory(run_path), progress=False,
    )
    return trainer, network


def test_metrics_and_checkpoint_written_every_epoch(tmp_path):
    trainer, _ = make_trainer(tmp_path)
    metrics = trainer.fit()
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert [m["step"] for m in metrics] == [4, 8, 12]
    assert RunDirectory(tmp_path).read_metrics() == metrics
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 12


@pytest.mark.parametrize("interrupt_at_step", [2, 3, 9])  # mid-epoch, an epoch's last step, later epoch
def test_resume_after_ctrl_c_reaches_the_uninterrupted_parameters(tmp_path, interrupt_at_step):
    pyro.set_rng_seed(11)
    reference, reference_network = make_trainer(tmp_path / "reference")
    reference_metrics = reference.fit()

    pyro.set_rng_seed(11)
    interrupted, _ = make_trainer(tmp_path / "run", interrupt_at_step=interrupt_at_step)
    with pytest.raises(TrainingInterrupted, match="--resume"):
        interrupted.fit()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == interrupt_at_step + 1

    pyro.set_rng_seed(999)  # resume must not depend on the state of the fresh process
    resumed, resumed_network = make_trainer(tmp_path / "run")
    resumed_metrics = resumed.fit(resume=True)

    for name, value in reference_network.state_dict().items():
        assert torch.equal(value, resumed_network.state_dict()[name]), name
    strip = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]
    assert strip(resumed_metrics) == strip(reference_metrics)
    assert strip(RunDirectory(tmp_path / "run").read_metrics()) == strip(reference_metrics)


def test_checkpoint_of_another_format_is_refused(tmp_path):
    torch.save({"format_version": -1}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="format version"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_write_is_atomic(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {"x": 1})
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        save_checkpoint(tmp_path / "c.pt", {"x": lambda: None})  # unpicklable: the save fails
    assert load_checkpoint(tmp_path / "c.pt")["x"] == 1  # the previous checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # and no temporary file is left behind


def test_nan_in_a_training_batch_names_site_x_the_batch_and_the_data_point(tmp_path):
    trainer, _ = make_trainer(tmp_path)
    pixels = torch.bernoulli(torch.full((NUM_EXAMPLES, 4), 0.5), generator=torch.Generator().manual_seed(0))
    pixels[8, 2] = float("nan")
    trainer.batches = BinarizedBatches(pixels, batch_size=BATCH_SIZE, binarization="none", seed=5)
    # where the loader's shuffle puts example 8: the same loader, iterated once
    (batch, row), = [(number, int(torch.isnan(x).any(1).nonzero()))
                     for number, x in enumerate(BinarizedBatches(pixels, BATCH_SIZE, binarization="none", seed=5), 1)
                     if torch.isnan(x).any()]
    message = f"observed site 'x', training batch {batch} of epoch 1: data point {row} holds NaN"
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer.fit()


@pytest.mark.parametrize("poisoned_step", [1, 6])  # epoch 1 (no checkpoint yet), epoch 2 (epoch 1's kept)
def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, poisoned_step):
    """The step that returns NaN has already updated the parameters: nothing of it may be saved."""
    trainer, _ = make_trainer(tmp_path)
    step = trainer.svi.step

    def step_returning_nan_once(*args, **kwargs):
        loss = step(*args, **kwargs)  # the parameters are updated, as when a real step overflows
        return float("nan") if trainer._state.step == poisoned_step else loss

    trainer.svi.step = step_returning_nan_once
    steps_per_epoch = len(trainer.batches)
    epoch, batch = divmod(poisoned_step, steps_per_epoch)
    last_epoch_end = epoch * steps_per_epoch if epoch else None
    kept = (f"the checkpoint at step {last_epoch_end} in {tmp_path / 'checkpoint.pt'} is kept" if epoch
            else "no checkpoint had been written yet")
    message = (f"the loss is nan at step {poisoned_step + 1} (training batch {batch + 1} of epoch {epoch + 1}); "
               f"that step's update is not saved, {kept}")
    with pytest.raises(NonFiniteLoss, match=re.escape(message)) as error:
        trainer.fit()
    assert (error.value.step, error.value.checkpoint_step) == (poisoned_step + 1, last_epoch_end)
    if last_epoch_end is None:
        assert not (tmp_path / "checkpoint.pt").exists()
    else:
        saved = load_checkpoint(tmp_path / "checkpoint.pt")
        assert saved["step"] == last_epoch_end

"""The models behind the plot tests are trained: their losses fell, and the CLI run improved."""

from pyro_dgm.diagnostics import read_metrics


def test_bihm_training_lowered_the_loss(trained_bihm):
    first, *later = trained_bihm.epoch_losses
    assert all(loss < first for loss in later), trained_bihm.epoch_losses


def test_dvae_pp_training_lowered_the_loss(trained_dvae_pp):
    first, *later = trained_dvae_pp.epoch_losses
    assert all(loss < first for loss in later), trained_dvae_pp.epoch_losses


def test_cli_run_improved_the_validation_log_likelihood(cli_run):
    records = read_metrics(cli_run)
    assert records[-1]["valid_log_likelihood"] > records[0]["valid_log_likelihood"]
    assert records[-1]["train_loss"] < records[0]["train_loss"]

"""Curves: the running log-mean-exp estimator, PNG sizes, metrics reading and bad inputs."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_dgm.diagnostics.plots_curves import (
    PANEL_HEIGHT_PIXELS,
    PANEL_WIDTH_PIXELS,
    plot_estimates_vs_num_samples,
    plot_learning_curves,
    plot_running_log_mean_exp,
    read_metrics,
    running_log_mean_exp,
)

MIN_PNG_BYTES = 4096
"""A figure with axes, ticks and a curve is well above this; a blank canvas is below."""


def png_size(path):
    assert path.stat().st_size > MIN_PNG_BYTES
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.height, image.width


def metrics_records(num_epochs=8):
    return [
        {
            "epoch": epoch,
            "step": 50 * epoch,
            "seconds": 1.5,
            "train_loss": 100.0 / (epoch + 1) + 90,
            **({"valid_log_likelihood": -95.0 + epoch} if epoch % 2 == 0 else {}),
        }
        for epoch in range(num_epochs)
    ]


def test_running_log_mean_exp_matches_direct_computation():
    log_weights = 3 * torch.randn(2, 500, dtype=torch.float64)
    estimate, standard_error = running_log_mean_exp(log_weights)
    assert estimate.shape == standard_error.shape == (2, 500)
    for n in (2, 17, 500):
        weights = log_weights[:, :n].exp().numpy()
        np.testing.assert_allclose(estimate[:, n - 1].numpy(), np.log(weights.mean(axis=1)))
        delta_method = weights.std(axis=1, ddof=1) / (math.sqrt(n) * weights.mean(axis=1))
        np.testing.assert_allclose(standard_error[:, n - 1].numpy(), delta_method, rtol=1e-8)
    assert torch.isnan(standard_error[:, 0]).all()


def test_running_log_mean_exp_is_stable_for_huge_log_weights():
    log_weights = torch.tensor([1000.0, 1000.0, 1000.0 + math.log(4)], dtype=torch.float64)
    estimate, _ = running_log_mean_exp(log_weights)
    torch.testing.assert_close(estimate, torch.tensor([1000.0, 1000.0, 1000.0 + math.log(2)], dtype=torch.float64))


def test_learning_curves_from_jsonl_and_run_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    text = "".join(json.dumps(record) + "\n" for record in metrics_records())
    (run / "metrics.jsonl").write_text(text)
    assert read_metrics(run) == read_metrics(run / "metrics.jsonl") == metrics_records()
    path = plot_learning_curves(run, tmp_path / "curves.png")
    assert png_size(path) == (PANEL_HEIGHT_PIXELS, 2 * PANEL_WIDTH_PIXELS)  # train_loss, valid_*


def test_learning_curves_grid_of_many_metrics(tmp_path):
    records = [dict(record, a=1.0, b=2.0, c=3.0) for record in metrics_records()]
    path = plot_learning_curves(records, tmp_path / "curves.png", x="step")
    assert png_size(path) == (2 * PANEL_HEIGHT_PIXELS, 3 * PANEL_WIDTH_PIXELS)  # 5 metrics, 3 per row


def test_estimates_vs_num_samples(tmp_path):
    ks = [1, 10, 100, 1000]
    estimates = {
        "BiHM log p(x)": {k: -90 - 5 / math.sqrt(k) + torch.randn(20) for k in ks},
        "RWS log p(x)": {k: -92 - 5 / math.sqrt(k) + torch.randn(20) for k in ks},
    }
    ess = {"BiHM": {k: 0.3 * k * torch.rand(20) + 1 for k in ks}}
    path = plot_estimates_vs_num_samples(estimates, tmp_path / "k.png", ess=ess)
    assert png_size(path) == (PANEL_HEIGHT_PIXELS, 2 * PANEL_WIDTH_PIXELS)
    single = plot_estimates_vs_num_samples({k: torch.randn(5) for k in ks}, tmp_path / "single.png")
    assert png_size(single) == (PANEL_HEIGHT_PIXELS, PANEL_WIDTH_PIXELS)


@pytest.mark.parametrize("shape", [(20_000,), (5, 20_000)])
def test_running_log_partition_plot(tmp_path, shape):
    path = plot_running_log_mean_exp(2 * torch.randn(shape), tmp_path / "logz.png", samples_per_weight=10)
    assert png_size(path) == (PANEL_HEIGHT_PIXELS, PANEL_WIDTH_PIXELS)


def test_bad_curve_inputs(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        plot_learning_curves(tmp_path / "missing.jsonl", tmp_path / "x.png")
    with pytest.raises(ValueError, match="no numeric metric"):
        plot_learning_curves([{"epoch": 0, "seconds": 1.0}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="x='epoch'"):
        plot_learning_curves([{"step": 0, "train_loss": 1.0}], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"estimates\['a'\] has key 'K'"):
        plot_estimates_vs_num_samples({"a": {"K": torch.zeros(3)}}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"estimates\['estimate'\]\[10\] contains NaN"):
        plot_estimates_vs_num_samples({10: torch.tensor([float("nan")])}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least 2 samples"):
        plot_running_log_mean_exp(torch.zeros(1), tmp_path / "x.png")
    with pytest.raises(ValueError, match="log_weights must have 1 or 2 dimensions"):
        plot_running_log_mean_exp(torch.zeros(2, 2, 2), tmp_path / "x.png")

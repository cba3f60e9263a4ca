"""Curves: the running log-mean-exp estimator, figures of trained models, metrics reading and bad inputs.

The figures are drawn from the tiny models of ``trained_models.py``: the learning curves
of a real ``pyro-dgm train`` run, the trained BiHM's log-likelihood estimates and ESS
against K, and its running 2 log Z estimate.
"""

import json
import math

import numpy as np
import pytest
import torch

from pyro_dgm.diagnostics import kish_ess
from pyro_dgm.diagnostics.plots_curves import (
    PANEL_HEIGHT_PIXELS,
    PANEL_WIDTH_PIXELS,
    plot_estimates_vs_num_samples,
    plot_learning_curves,
    plot_running_log_mean_exp,
    read_metrics,
    running_log_mean_exp,
)
from pyro_dgm.infer import estimate_log_partition_squared, log_likelihood, log_mean_exp
from tests.diagnostics import png_checks
from tests.diagnostics.trained_models import CLI_EPOCHS, binarized_test_digits, block_log_partition_squared

MIN_PNG_BYTES = 4096
"""A figure with axes, ticks and a curve is well above this; a blank canvas is below."""
MIN_CURVE_PIXELS = 100
"""Coloured pixels in a panel that shows a curve: a line across a 360-pixel panel has hundreds."""
NUM_SE = 4
"""Statistical comparisons allow this many standard errors."""
NUM_TEST_DIGITS = 50
NUM_SAMPLES = (1, 10, 100, 1000)
"""K of the estimates-against-K figure: prefixes of the same 1000 importance weights per digit."""
ESS_ROUNDING = 1e-4
"""Relative float32 slack on the bounds 1 <= ESS <= K."""
NUM_PARTITION_SAMPLES = 10_000
"""Outer samples (x, h) ~ p of the log Z^2 that turns log p~*(x) into log p*(x)."""
PARTITION_BLOCK_SIZE = 100
"""Outer samples behind each log Z^2 block estimate of the running plot."""
NUM_PARTITION_BLOCKS = 60
"""Blocks of the single run (6000 samples); the several-runs figure has three runs of a quarter as many."""


def assert_curves_in_panels(path, num_panels, columns):
    """The PNG at ``path`` is a grid of ``num_panels`` panels, ``columns`` per row, each with coloured curves."""
    rows = -(-num_panels // columns)
    pixels = png_checks.png_pixels(path, MIN_PNG_BYTES)
    assert pixels.shape[:2] == (rows * PANEL_HEIGHT_PIXELS, columns * PANEL_WIDTH_PIXELS)
    for index in range(num_panels):
        row, column = divmod(index, columns)
        panel = pixels[
            row * PANEL_HEIGHT_PIXELS: (row + 1) * PANEL_HEIGHT_PIXELS,
            column * PANEL_WIDTH_PIXELS: (column + 1) * PANEL_WIDTH_PIXELS,
        ]
        assert png_checks.count_coloured(panel) >= MIN_CURVE_PIXELS, f"panel {index}"


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


def test_learning_curves_of_a_cli_run(cli_run, tmp_path):
    """The metrics.jsonl of a real ``pyro-dgm train``: read from folder or file, one panel per metric."""
    lines = (cli_run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert read_metrics(cli_run) == read_metrics(cli_run / "metrics.jsonl") == records
    assert [record["epoch"] for record in records] == list(range(1, CLI_EPOCHS + 1))
    assert all(record["valid_log_likelihood"] < 0 for record in records)
    path = plot_learning_curves(cli_run, tmp_path / "curves.png")
    assert_curves_in_panels(path, num_panels=2, columns=2)  # train_loss, valid_log_likelihood


def test_learning_curves_grid_of_many_metrics(cli_run, tmp_path):
    records = [dict(record, a=1.0, b=2.0, c=3.0) for record in read_metrics(cli_run)]
    path = plot_learning_curves(records, tmp_path / "curves.png", x="step")
    assert_curves_in_panels(path, num_panels=5, columns=3)  # 3 per row


def test_estimates_vs_num_samples_of_the_trained_bihm(trained_bihm, tmp_path):
    """BiHM Fig. 1C: log p(x) (Eq. 5) and log p*(x) (Eq. 1) of test digits, and their ESS, against K."""
    model, guide = trained_bihm.model, trained_bihm.guide
    x = binarized_test_digits(NUM_TEST_DIGITS)
    result = log_likelihood(model, guide, x, num_samples=max(NUM_SAMPLES), chunk_size=250, keep_log_weights=True)
    log_weights = result.log_weights  # (K, B): log p(x, h) - log q(h | x)
    partition = estimate_log_partition_squared(model, guide, x, num_outer=NUM_PARTITION_SAMPLES)
    log_p = {k: log_mean_exp(log_weights[:k]) for k in NUM_SAMPLES}
    log_p_star = {k: 2 * log_mean_exp(log_weights[:k] / 2) - partition.log_partition_squared for k in NUM_SAMPLES}
    ess = {"w = p/q": {k: kish_ess(log_weights[:k]) for k in NUM_SAMPLES},
           "√w (BiHM)": {k: kish_ess(log_weights[:k] / 2) for k in NUM_SAMPLES}}
    torch.testing.assert_close(log_p[max(NUM_SAMPLES)], result.log_likelihood)
    for per_k in ess.values():
        for k, values in per_k.items():
            assert values.min() >= 1 - ESS_ROUNDING and values.max() <= k * (1 + ESS_ROUNDING)
    # Jensen: the K-sample estimate rises with K in expectation; paired over the same digits
    gain = log_p[max(NUM_SAMPLES)] - log_p[1]
    assert gain.mean() > NUM_SE * gain.std() / math.sqrt(NUM_TEST_DIGITS)
    path = plot_estimates_vs_num_samples(
        {"log p(x)": log_p, "log p*(x)": log_p_star}, tmp_path / "k.png", ess=ess
    )
    assert_curves_in_panels(path, num_panels=2, columns=2)
    single = plot_estimates_vs_num_samples(log_p, tmp_path / "single.png")
    assert_curves_in_panels(single, num_panels=1, columns=1)


def test_running_log_partition_of_the_trained_bihm(trained_bihm, tmp_path):
    """BiHM Fig. 3: the running 2 log Z estimate (Eq. 7), one run with its s.e. band, and several runs."""
    model, guide = trained_bihm.model, trained_bihm.guide
    blocks = block_log_partition_squared(model, guide, NUM_PARTITION_BLOCKS, PARTITION_BLOCK_SIZE)
    running, standard_error = running_log_mean_exp(blocks)
    # the last running value is the estimate from all the samples; an independent run agrees
    data_like = binarized_test_digits(1)  # only its shape is used: the estimator samples the model
    independent = estimate_log_partition_squared(
        model, guide, data_like, num_outer=NUM_PARTITION_BLOCKS * PARTITION_BLOCK_SIZE
    )
    difference = running[-1] - independent.log_partition_squared
    assert abs(difference) < NUM_SE * math.hypot(standard_error[-1], independent.standard_error)
    # Z = sum over (x, h) of sqrt(p q) <= 1 (Cauchy-Schwarz): 2 log Z is not above 0
    assert running[-1] < NUM_SE * standard_error[-1]
    path = plot_running_log_mean_exp(blocks, tmp_path / "logz.png", samples_per_weight=PARTITION_BLOCK_SIZE)
    assert_curves_in_panels(path, num_panels=1, columns=1)
    runs = torch.stack(
        [block_log_partition_squared(model, guide, NUM_PARTITION_BLOCKS // 4, PARTITION_BLOCK_SIZE) for _ in range(3)]
    )
    path = plot_running_log_mean_exp(runs, tmp_path / "runs.png", samples_per_weight=PARTITION_BLOCK_SIZE)
    assert_curves_in_panels(path, num_panels=1, columns=1)


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

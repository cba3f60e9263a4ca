"""`benchmarks.latent_code` and `benchmarks.latent_usage`: how much of its binary code a smoothed row uses."""

import math

import pytest
import torch

from benchmarks import latent_usage
from benchmarks.latent_code import usage
from benchmarks.reproduce import RunContext, load_images, run_table
from benchmarks.reproduce_configs import budget_for


def test_usage_counts_units_whose_posterior_moves_with_the_image():
    logits = torch.tensor([[0.0, 3.0, -50.0], [0.0, -3.0, -50.0], [0.0, 3.0, -50.0], [0.0, -3.0, -50.0]])
    measured = usage(logits)
    probs = torch.sigmoid(logits)
    assert measured["units"] == 3 and measured["active_units"] == 1  # only the second unit varies (var 0.24)
    assert measured["units_on"] == pytest.approx(probs.sum(-1).mean().item())
    entropy = -(probs * probs.log() + (1 - probs) * (1 - probs).log()).nan_to_num().sum(-1).mean().item()
    assert measured["posterior_entropy"] == pytest.approx(entropy, rel=1e-6) and math.isfinite(entropy)
    assert measured["posterior_entropy"] > math.log(2)  # the first unit alone carries log 2


def test_a_run_folder_names_its_configuration_and_a_wrong_one_is_refused(tmp_path):
    folder = latent_usage.RunFolder.parse(tmp_path / "dvaesharp_full_seed2" / "1_nonlinear" / "dvae_sharp_power_k5")
    assert (folder.table, folder.budget, folder.num_layers, folder.network, folder.method) == (
        "dvaesharp", "full", 1, "nonlinear", "dvae_sharp_power_k5")
    assert folder.label == "dvaesharp 1 nonlinear/dvae_sharp_power_k5"
    for wrong in ("dvaepp1_full_seed0/linear/joint", "dvaepp2_full/1_linear/rbm_overlapping", "1_linear/rbm_rolfe"):
        with pytest.raises(ValueError, match="expected benchmarks/runs/<table>_<budget>_seed<k>"):
            latent_usage.RunFolder.parse(tmp_path / wrong)


def test_a_trained_rows_checkpoint_is_measured_with_its_own_guide(tmp_path, capsys):
    row = "1 linear/rbm_overlapping"
    (trained,) = run_table("dvaepp2", "tiny", context=RunContext(folder=tmp_path / "dvaepp2_tiny_seed0",
                                                                  rows=frozenset({row}))).rows
    folder = latent_usage.RunFolder.parse(tmp_path / "dvaepp2_tiny_seed0" / "1_linear" / "rbm_overlapping")
    images = load_images(budget_for("dvaepp2", "tiny").data, None, torch.device("cpu"))
    measured = latent_usage.folder_usage(folder, images.test)

    modules = torch.load(folder.path / "checkpoint.pt", weights_only=False)["modules"]
    guide, model = modules["guide"], modules["model"]

    def linear_guide_logits(x):  # the linear factorial guide of the checkpoint, by hand
        return x @ guide["network.net.0.weight"].T + guide["network.net.0.bias"]

    assert measured["step"] == 1 and measured["units"] == 200
    assert measured == {**measured, **usage(linear_guide_logits(images.test))}
    (last_point,) = trained.curve  # one step at tiny: the curve's point is the checkpoint's parameters
    on_curve = usage(linear_guide_logits(images.curve))
    assert last_point["valid_units_on"] == pytest.approx(on_curve["units_on"], rel=1e-6)
    assert last_point["valid_active_units"] == on_curve["active_units"]
    assert math.isfinite(last_point["valid_log_z"]) and math.isfinite(last_point["valid_log_p"])
    biases = torch.cat([model["bias1"], model["bias2"]])
    assert measured["rbm_mean_bias"] == pytest.approx(biases.mean().item())
    assert measured["rbm_weight_sd"] == pytest.approx(model["weight"].std().item())

    assert latent_usage.main([str(folder.path)]) == 0
    assert "| dvaepp2 1 linear/rbm_overlapping | 1 | 200 |" in capsys.readouterr().out


def test_a_folder_without_a_checkpoint_or_with_a_wrong_method_is_a_one_line_error(tmp_path, capsys):
    empty = tmp_path / "dvaepp2_tiny_seed0" / "1_linear" / "rbm_overlapping"
    empty.mkdir(parents=True)
    with pytest.raises(SystemExit):
        latent_usage.main([str(empty)])
    assert "checkpoint.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        latent_usage.main([str(tmp_path / "dvaepp2_tiny_seed0" / "1_linear" / "joint")])
    assert "'joint' is not a method of dvaepp2 (rbm_overlapping, rbm_rolfe" in capsys.readouterr().err

"""`benchmarks.plot_curves` draws the reproduction runs' learning curves from their result files."""

import json

from benchmarks import plot_curves


def _uci_record(method: str, seed: int) -> dict:
    return {
        "job": {"dataset": "dna", "method": method, "seed": seed, "learning_rate": None},
        "budget": {"learning_rate": 0.01},
        "steps": 300, "epochs": 30,
        "curve": {"epochs": [10, 20, 30], "valid_log_p": [-95.0, -93.0, -92.5]},
        "paper": {"nll": 86.49},
    }


def _mnist_report() -> dict:
    row = {"group": "linear", "method": "joint", "paper": {"log_p": {"log_likelihood": -107.98}},
           "metrics": {"log_p": -120.0}, "steps": 1000,
           "curve": [{"epoch": 1, "step": 500, "valid_log_p": -150.0}, {"epoch": 2, "step": 1000, "valid_log_p": -130.0}]}
    return {"table": "dvaepp1", "seed": 0, "rows": [row]}


def test_curves_are_read_with_steps_and_nats(tmp_path):
    (tmp_path / "bihm1").mkdir()
    for seed in (0, 1):
        (tmp_path / "bihm1" / f"dna-BiHM-seed{seed}.json").write_text(json.dumps(_uci_record("BiHM", seed)))
    (tmp_path / "dvaepp1_full_linear-joint.json").write_text(json.dumps(_mnist_report()))
    uci = plot_curves.uci_curves(tmp_path / "bihm1")
    assert [curve["steps"] for curve in uci["dna"]] == [[100.0, 200.0, 300.0]] * 2  # 10 steps an epoch
    assert uci["dna"][0]["valid_nll"] == [95.0, 93.0, 92.5] and uci["dna"][0]["paper"] == 86.49
    mnist = plot_curves.mnist_curves(tmp_path)
    (curve,) = mnist["dvaepp1: linear/joint"]
    assert curve["steps"] == [500, 1000] and curve["valid_nll"] == [150.0, 130.0]
    assert curve["paper"] == 107.98 and curve["test_nll"] == 120.0


def test_main_writes_both_figures_and_fails_without_results(tmp_path):
    (tmp_path / "results" / "bihm1").mkdir(parents=True)
    (tmp_path / "results" / "bihm1" / "dna-RWS-seed0.json").write_text(json.dumps(_uci_record("RWS", 0)))
    (tmp_path / "results" / "dvaepp1_full.json").write_text(json.dumps(_mnist_report()))
    images = tmp_path / "img"
    assert plot_curves.main(["--results-dir", str(tmp_path / "results"), "--image-dir", str(images)]) == 0
    for name in (plot_curves.UCI_FIGURE, plot_curves.MNIST_FIGURE):
        assert (images / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_curves.main(["--results-dir", str(tmp_path / "empty"), "--image-dir", str(images)]) == 1


def test_linear_counterpart_names_the_same_configuration_with_linear_networks():
    assert plot_curves.linear_counterpart("dvaepp1: nonlinear/joint") == "dvaepp1: linear/joint"
    assert plot_curves.linear_counterpart("dvaepp2: 1 nonlinear/rbm_overlapping") == "dvaepp2: 1 linear/rbm_overlapping"
    assert plot_curves.linear_counterpart("dvaepp1: linear/joint") is None
    assert plot_curves.linear_counterpart("bihm3: BiHM") is None


def _panel(label: str, steps: list[int], nll: list[float]) -> dict:
    return {"label": label, "steps": steps, "valid_nll": nll}


def test_nonlinear_leads_compare_equal_seeds_at_common_steps_and_list_where_not_ahead():
    panels = {
        "dvaepp1: linear/joint": [_panel("seed 0", [500, 1000, 1500], [150.0, 130.0, 120.0]),
                                  _panel("seed 1", [500, 1000], [140.0, 100.0])],
        "dvaepp1: nonlinear/joint": [_panel("seed 0", [500, 1000, 1500, 2000], [140.0, 131.0, 110.0, 100.0]),
                                     _panel("seed 2", [500], [90.0])],
        "dvaepp1: nonlinear/marginal": [_panel("seed 0", [500], [100.0])],  # no linear counterpart ran
    }
    leads = plot_curves.nonlinear_leads(panels)
    assert list(leads) == ["dvaepp1: nonlinear/joint"] and list(leads["dvaepp1: nonlinear/joint"]) == ["seed 0"]
    lead = leads["dvaepp1: nonlinear/joint"]["seed 0"]
    assert lead == {"points": 3, "smallest_lead": -1.0, "smallest_lead_step": 1000, "not_ahead_steps": [1000]}
    (line,) = plot_curves.lead_lines(leads)
    assert "not ahead at 1 (steps 1000) of 3 validation points" in line and "-1.00 nats at step 1000" in line
    panels["dvaepp1: nonlinear/joint"][0]["valid_nll"][1] = 129.0
    (line,) = plot_curves.lead_lines(plot_curves.nonlinear_leads(panels))
    assert "ahead of the linear network at every one of 3 validation points; smallest lead 1.00 nats" in line


def test_method_panels_regroup_one_table_per_network_and_keep_each_methods_seeds():
    panels = {
        "dvaesharp: 1 linear/dvae_pp": [_panel("seed 0", [500], [100.0]), _panel("seed 1", [500], [101.0])],
        "dvaesharp: 1 linear/dvae_sharp_power_k5": [_panel("seed 0", [500], [98.0])],
        "dvaesharp: 1 nonlinear/dvae": [_panel("seed 0", [500], [97.0])],
        "dvaepp2: 1 linear/rbm_overlapping": [_panel("seed 0", [500], [95.0])],  # another table
    }
    grouped = plot_curves.method_panels(panels, "dvaesharp")
    assert list(grouped) == ["dvaesharp: 1 linear", "dvaesharp: 1 nonlinear"]
    assert list(grouped["dvaesharp: 1 linear"]) == ["dvae_pp", "dvae_sharp_power_k5"]
    assert [curve["label"] for curve in grouped["dvaesharp: 1 linear"]["dvae_pp"]] == ["seed 0", "seed 1"]
    assert grouped["dvaesharp: 1 nonlinear"] == {"dvae": panels["dvaesharp: 1 nonlinear/dvae"]}
    assert plot_curves.method_panels(panels, "bihm3") == {}


def test_main_draws_the_method_comparison_only_when_its_table_has_results(tmp_path):
    results, images = tmp_path / "results", tmp_path / "img"
    results.mkdir()
    (results / "dvaepp1_full.json").write_text(json.dumps(_mnist_report()))
    assert plot_curves.main(["--results-dir", str(results), "--image-dir", str(images)]) == 0
    assert not (images / plot_curves.METHOD_COMPARISONS["dvaesharp"]).exists()
    for method, nll in (("dvae_pp", -101.0), ("dvae_sharp_power_k5", -96.0)):
        report = _mnist_report()
        report["table"] = "dvaesharp"
        report["rows"][0].update(group="1 linear", method=method, paper={}, metrics={"log_p": nll})
        (results / f"dvaesharp_full_1-linear-{method}.json").write_text(json.dumps(report))
    assert plot_curves.main(["--results-dir", str(results), "--image-dir", str(images)]) == 0
    assert (images / plot_curves.METHOD_COMPARISONS["dvaesharp"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

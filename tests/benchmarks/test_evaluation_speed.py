"""`benchmarks.evaluation_speed` times the full protocol's evaluation pass with and without its two
shortcuts, and checks the per-image estimates are bit-identical across them."""

import json

from benchmarks import evaluation_speed


def test_every_variant_is_timed_and_gives_identical_estimates(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluation_speed, "PASSES_PER_TIMING", 1)
    monkeypatch.setattr(evaluation_speed, "PARTICLES_PER_PASS", 5)
    monkeypatch.setattr(evaluation_speed, "IMAGES_PER_PASS", 4)
    output = tmp_path / "evaluation_speed.json"
    report = evaluation_speed.main(["--repeats", "2", "--output", str(output)])
    assert set(report["results"]) == set(evaluation_speed.CONFIGURATIONS)
    for result in report["results"].values():
        assert result["identical_estimates"]
        assert set(result["variants"]) == set(evaluation_speed.VARIANTS)
        for variant in result["variants"].values():
            assert len(variant["seconds"]) == 2 and variant["median_seconds"] > 0
    assert json.loads(output.read_text())["provenance"]["command"]
    assert "| rbm overlapping |" in output.with_suffix(".md").read_text()


def test_the_benchmark_patch_restores_the_closed_forms():
    from pyro_dgm.distributions.binary_limit import BinaryLimit

    closed = BinaryLimit._log_marginal_density, BinaryLimit._log_density_ratio
    with evaluation_speed.generic_mixture_scoring():
        assert BinaryLimit._log_marginal_density is not closed[0]
    assert (BinaryLimit._log_marginal_density, BinaryLimit._log_density_ratio) == closed

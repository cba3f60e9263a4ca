"""``benchmarks/rbm_log_partition.py --checkpoint``: log Z of a trained RBM prior by AIS and PT.

An RBM with a side of 12 units is enumerable, so the exact log Z is known; the estimators'
numbers in the report must agree with it within their standard errors, and a checkpoint
without an RBM prior is refused with the parameters it lacks.
"""

import json

import pytest
import torch

from benchmarks.rbm_log_partition import main
from pyro_dgm.cli.checkpoint import save_checkpoint
from pyro_dgm.distributions.rbm import exact_log_partition

Z_BOUND = 5.0
"""|estimate - exact| / se below this: a 5-sigma miss is a bug, not chance."""


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_report_on_a_trained_rbm_agrees_with_the_exact_log_partition(tmp_path, capsys):
    generator = torch.Generator().manual_seed(3)
    bias1, bias2 = 0.5 * torch.randn(12, generator=generator), 0.5 * torch.randn(30, generator=generator)
    weight = 0.5 * torch.randn(12, 30, generator=generator)
    decoder = torch.zeros(784, 42)
    checkpoint = tmp_path / "checkpoint.pt"
    save_checkpoint(checkpoint, {"modules": {"model": {"bias1": bias1, "bias2": bias2, "weight": weight,
                                                       "decoder.net.0.weight": decoder}}})
    output = tmp_path / "check.json"

    main(["--checkpoint", str(checkpoint), "--temperatures", "100", "1000", "--output", str(output)])

    report = json.loads(output.read_text())
    exact = exact_log_partition(bias1.double(), bias2.double(), weight.double()).item()
    assert report["units"] == [12, 30]
    assert [estimate["method"].split(",")[0] for estimate in report["estimates"]] == ["AIS", "AIS", "PT"]
    for estimate in report["estimates"]:
        assert estimate["standard_error"] > 0
        assert abs(estimate["log_z"] - exact) < Z_BOUND * estimate["standard_error"], estimate
    coarse, fine = report["estimates"][0]["standard_error"], report["estimates"][1]["standard_error"]
    assert fine < 0.5 * coarse  # AIS's variance falls about as 1/temperatures: each count reached the estimator
    assert report["provenance"]["command"].endswith(f"--output {output}")
    table = output.with_suffix(".md").read_text()
    assert "1024 chains x 100 temperatures" in table and "1024 chains x 1000 temperatures" in table
    assert table in capsys.readouterr().out


def test_a_checkpoint_without_an_rbm_prior_is_refused_naming_what_it_lacks(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    save_checkpoint(checkpoint, {"modules": {"model": {"decoder.net.0.weight": torch.zeros(3, 2)}}})
    with pytest.raises(SystemExit, match="no RBM prior.*bias1, bias2, weight.*decoder.net.0.weight"):
        main(["--checkpoint", str(checkpoint)])

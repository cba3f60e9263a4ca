"""Dims, coords, shapes and values of the ArviZ converters."""

import math

import numpy as np
import pytest
import torch

from pyro_dgm.diagnostics import arviz_backend
from pyro_dgm.diagnostics.arviz_conversion import (
    IMPORTANCE_DIAGNOSTICS_GROUP,
    chains_to_inference_data,
    guide_samples_to_inference_data,
    importance_weights_to_inference_data,
)
from pyro_dgm.diagnostics.importance_diagnostics import PSIS_KHAT_THRESHOLD, kish_ess, psis

pytestmark = pytest.mark.usefixtures("arviz_line")


def test_guide_samples_dims_coords_and_values():
    h1 = torch.bernoulli(torch.full((10, 4, 3), 0.5))
    h2 = torch.rand(10, 4)
    image = torch.rand(10, 4, 2, 5)
    idata = guide_samples_to_inference_data({"h1": h1, "h2": h2, "image": image}, data_index=[7, 8, 9, 10])
    posterior = idata.posterior
    assert posterior["h1"].dims == ("chain", "draw", "data", "h1_unit")
    assert posterior["h2"].dims == ("chain", "draw", "data")
    assert posterior["image"].dims == ("chain", "draw", "data", "image_unit_0", "image_unit_1")
    assert dict(posterior.sizes) == {
        "chain": 1, "draw": 10, "data": 4, "h1_unit": 3, "image_unit_0": 2, "image_unit_1": 5
    }
    assert posterior["data"].values.tolist() == [7, 8, 9, 10]
    assert posterior["h1_unit"].values.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(posterior["h1"].values[0], h1.numpy())
    np.testing.assert_array_equal(posterior["image"].sel(data=9).values[0], image[:, 2].numpy())
    assert idata.attrs["inference_library"] == "pyro_dgm"


def test_importance_weights_groups():
    log_weights = torch.randn(200, 5, dtype=torch.float64)
    idata = importance_weights_to_inference_data(log_weights, data_index=torch.arange(5) + 100)
    assert set(arviz_backend.ACTIVE.group_names(idata)) == {"sample_stats", IMPORTANCE_DIAGNOSTICS_GROUP}
    stats = idata.sample_stats
    assert stats["log_weight"].dims == ("chain", "draw", "data")
    assert dict(stats.sizes) == {"chain": 1, "draw": 200, "data": 5}
    np.testing.assert_array_equal(stats["log_weight"].values[0], log_weights.numpy())
    smoothed, khat = psis(log_weights)
    np.testing.assert_allclose(stats["smoothed_log_weight"].values[0], smoothed.numpy())
    diagnostics = idata[IMPORTANCE_DIAGNOSTICS_GROUP]
    assert diagnostics["pareto_k"].dims == ("data",)
    assert diagnostics["data"].values.tolist() == [100, 101, 102, 103, 104]
    np.testing.assert_allclose(diagnostics["pareto_k"].values, khat.numpy())
    np.testing.assert_allclose(diagnostics["ess"].values, kish_ess(log_weights).numpy())
    expected_log_likelihood = torch.logsumexp(log_weights, 0) - math.log(200)
    np.testing.assert_allclose(diagnostics["iw_log_likelihood"].values, expected_log_likelihood.numpy())
    assert diagnostics.attrs == {"num_samples": 200, "khat_threshold": PSIS_KHAT_THRESHOLD}


def test_chains_are_transposed_to_chain_draw():
    states = torch.bernoulli(torch.full((30, 3, 7), 0.5))
    energies = torch.randn(30, 3)
    idata = chains_to_inference_data(states, energies, unit_names=[f"z{i}" for i in range(7)])
    posterior = idata.posterior
    assert posterior["state"].dims == ("chain", "draw", "unit")
    assert posterior["energy"].dims == posterior["mean_activation"].dims == ("chain", "draw")
    assert dict(posterior.sizes) == {"chain": 3, "draw": 30, "unit": 7}
    assert posterior["unit"].values.tolist() == [f"z{i}" for i in range(7)]
    # draw t of chain c is step t of chain c
    np.testing.assert_array_equal(posterior["state"].values[2, 11], states[11, 2].numpy())
    np.testing.assert_array_equal(posterior["energy"].values, energies.T.numpy())
    np.testing.assert_allclose(posterior["mean_activation"].values, states.mean(-1).T.numpy())


def test_chains_without_energies():
    posterior = chains_to_inference_data(torch.zeros(5, 2, 3)).posterior
    assert "energy" not in posterior and posterior["unit"].values.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "samples, message",
    [
        ({}, "samples is empty"),
        ({"h": torch.zeros(10)}, r"samples\['h'\] must have at least 2 dimensions"),
        ({"h": torch.zeros(10, 4), "g": torch.zeros(10, 3)}, r"samples\['g'\] has leading shape"),
        ({"h": torch.full((3, 2), float("nan"))}, r"samples\['h'\] contains NaN"),
    ],
)
def test_bad_guide_samples(samples, message):
    with pytest.raises(ValueError, match=message):
        guide_samples_to_inference_data(samples)


def test_bad_data_index_and_unit_names():
    with pytest.raises(ValueError, match="data_index has 3 entries for 4 data points"):
        guide_samples_to_inference_data({"h": torch.zeros(5, 4)}, data_index=[0, 1, 2])
    with pytest.raises(ValueError, match="unit_names has 2 names for 3 units"):
        chains_to_inference_data(torch.zeros(5, 2, 3), unit_names=["a", "b"])


@pytest.mark.cuda
def test_cuda_tensors_are_accepted():
    idata = guide_samples_to_inference_data({"h": torch.ones(5, 2, 3, device="cuda")})
    assert float(idata.posterior["h"].sum()) == 30.0

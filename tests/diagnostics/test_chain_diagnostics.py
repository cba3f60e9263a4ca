"""R-hat and ESS on chains with known answers: iid, AR(1), chains stuck in separate modes, RBM chains."""

import math

import pytest
import torch

from pyro_dgm.diagnostics.arviz_conversion import traces_to_inference_data
from pyro_dgm.diagnostics.chain_diagnostics import (
    MIN_NUM_STEPS,
    RHAT_THRESHOLD,
    bulk_ess,
    chain_summary,
    rank_rhat,
    record_block_gibbs,
    tail_ess,
    trace_summary,
)
from pyro_dgm.distributions import RBM
from pyro_dgm.infer.estimators.exact import all_binary_configurations

NUM_STEPS = 1000
NUM_CHAINS = 4
NUM_REPLICATES = 50
Z_TOLERANCE = 4.0
STUCK_RHAT = 1.5
"""Chains in separate modes give R-hat far above this (and RHAT_THRESHOLD = 1.01)."""

pytestmark = pytest.mark.usefixtures("arviz_line")


def ar1_chains(coefficient: float, num_steps: int = NUM_STEPS, shape=(NUM_CHAINS, NUM_REPLICATES)):
    """Stationary AR(1): x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t, integrated autocorrelation time (1+phi)/(1-phi)."""
    innovations = torch.randn(num_steps, *shape, dtype=torch.float64)
    chains = torch.empty_like(innovations)
    chains[0] = innovations[0]
    for step in range(1, num_steps):
        chains[step] = coefficient * chains[step - 1] + math.sqrt(1 - coefficient**2) * innovations[step]
    return chains


def stuck_chains(num_steps: int = NUM_STEPS, separation: float = 5.0):
    """Every chain mixes within its own mode N(separation * c, 1) and never visits the others."""
    offsets = separation * torch.arange(NUM_CHAINS, dtype=torch.float64)
    return torch.randn(num_steps, NUM_CHAINS, 3, dtype=torch.float64) + offsets[:, None]


def test_rhat_of_independent_chains_is_one():
    rhat = rank_rhat(torch.randn(NUM_STEPS, NUM_CHAINS, NUM_REPLICATES))
    assert rhat.shape == (NUM_REPLICATES,)
    assert rhat.min().item() > 1 - 1e-3  # rank R-hat takes the max of bulk and folded: >= ~1
    assert rhat.max().item() < RHAT_THRESHOLD


def test_rhat_of_chains_stuck_in_different_modes_is_large():
    assert rank_rhat(stuck_chains()).min().item() > STUCK_RHAT


def test_bulk_ess_of_ar1_chains_matches_autocorrelation_time():
    coefficient = 0.5
    relative_ess = bulk_ess(ar1_chains(coefficient)) / (NUM_STEPS * NUM_CHAINS)
    expected = (1 - coefficient) / (1 + coefficient)  # 1 / tau
    standard_error = relative_ess.std().item() / math.sqrt(NUM_REPLICATES)
    assert abs(relative_ess.mean().item() - expected) < Z_TOLERANCE * standard_error


def test_ess_of_iid_draws_is_the_number_of_draws():
    num_draws = NUM_STEPS * NUM_CHAINS
    draws = torch.randn(NUM_STEPS, NUM_CHAINS, NUM_REPLICATES, dtype=torch.float64)
    # Geyer's truncated autocorrelation sum overestimates tau by O(1/sqrt(MN)) for iid
    # draws (the sum runs on while noise pairs are positive), so allow that bias.
    truncation_bias = 1 / math.sqrt(num_draws)
    bulk = bulk_ess(draws) / num_draws
    bulk_error = bulk.std().item() / math.sqrt(NUM_REPLICATES)
    assert abs(bulk.mean().item() - 1) < Z_TOLERANCE * bulk_error + truncation_bias
    # The tail ESS is the smaller of two quantile ESSs: it falls short by ~0.56 of their
    # spread (the mean of the minimum of two normals), bounded here by one spread.
    tail = tail_ess(draws) / num_draws
    tail_error = tail.std().item() / math.sqrt(NUM_REPLICATES)
    assert -tail.std().item() - Z_TOLERANCE * tail_error < tail.mean().item() - 1 < Z_TOLERANCE * tail_error


def test_ess_of_stuck_chains_is_small():
    assert bulk_ess(stuck_chains()).max().item() < 0.05 * NUM_STEPS * NUM_CHAINS


def test_chain_summary_of_mixed_binary_chains():
    states = torch.bernoulli(torch.full((500, 6, 30), 0.3))
    states[..., 0] = 0.0  # a unit that never fires has no R-hat and is skipped
    energies = -states.sum(-1) + 0.1 * torch.randn(500, 6)
    summary = chain_summary(states, energies)
    assert (summary["num_steps"], summary["num_chains"], summary["num_units"]) == (500, 6, 30)
    for key in ("mean_activation_rhat", "energy_rhat", "unit_rhat_max", "rhat_max"):
        assert summary[key] < RHAT_THRESHOLD, key
    assert math.isfinite(summary["unit_rhat_max"])
    assert summary["energy_ess_bulk"] > 0.5 * 500 * 6
    assert summary["rhat_threshold"] == RHAT_THRESHOLD


def test_chain_summary_of_chains_in_separate_modes():
    firing_probability = torch.tensor([0.1, 0.9, 0.1, 0.9])
    states = torch.bernoulli(firing_probability[:, None].expand(400, 4, 20))
    summary = chain_summary(states, -states.sum(-1))
    assert summary["mean_activation_rhat"] > STUCK_RHAT
    assert summary["energy_rhat"] > STUCK_RHAT
    assert summary["unit_rhat_max"] > STUCK_RHAT
    assert summary["rhat_max"] >= summary["energy_rhat"]
    assert set(summary) >= {"mean_activation_ess_tail", "unit_ess_bulk_min", "unit_ess_tail_min"}


def test_chain_summary_without_energies():
    summary = chain_summary(torch.bernoulli(torch.full((50, 2, 5), 0.5)))
    assert "energy_rhat" not in summary and "mean_activation_rhat" in summary


def two_mode_rbm(coupling: float, side: int = 3) -> RBM:
    """All units off and all units on are its two modes, of equal energy 0: a_i = -coupling * side / 2, W = coupling."""
    bias = torch.full((side,), -coupling * side / 2, dtype=torch.float64)
    return RBM(bias, bias, torch.full((side, side), coupling, dtype=torch.float64))


TWO_MODE_COUPLING = 1.5
"""Strong enough that 20 sweeps rarely leave a mode, weak enough that 2000 sweeps cross often."""


@pytest.mark.parametrize("num_sweeps", [20, 2000])
def test_rhat_of_rbm_chains_started_in_separate_modes(num_sweeps):
    """Half the chains start all off, half all on: R-hat is large until the chains have crossed between modes."""
    rbm = two_mode_rbm(TWO_MODE_COUPLING)
    start = torch.zeros(8, 6, dtype=torch.float64)
    start[4:] = 1.0
    states, energies = record_block_gibbs(rbm, start, num_sweeps)
    summary = chain_summary(states, energies)
    if num_sweeps == 20:
        # The modes share one energy, so only the activations tell them apart.
        assert summary["mean_activation_rhat"] > 1.1 and summary["rhat_max"] > 1.1
        return
    assert summary["rhat_max"] < RHAT_THRESHOLD
    # Mixed chains: the mean energy is the exact E_p[E] within Z_TOLERANCE standard errors sd / sqrt(bulk ESS).
    configurations = all_binary_configurations(6, dtype=torch.float64)
    log_weights = rbm.unnormalized_log_prob(configurations)
    exact_mean_energy = -(torch.softmax(log_weights, dim=0) * log_weights).sum().item()
    standard_error = energies.std().item() / math.sqrt(summary["energy_ess_bulk"])
    assert abs(energies.mean().item() - exact_mean_energy) < Z_TOLERANCE * standard_error


def test_record_block_gibbs_records_every_sweep_and_its_energy():
    rbm = two_mode_rbm(TWO_MODE_COUPLING)
    states, energies = record_block_gibbs(rbm, torch.zeros(5, 6), num_sweeps=7)
    assert states.shape == (7, 5, 6) and energies.shape == (7, 5) and states.dtype == torch.float64
    assert set(states.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(energies, -rbm.unnormalized_log_prob(states))
    with pytest.raises(ValueError, match=r"states must have shape \(num_chains, 6\)"):
        record_block_gibbs(rbm, torch.zeros(5, 4), num_sweeps=3)
    with pytest.raises(ValueError, match="num_sweeps"):
        record_block_gibbs(rbm, torch.zeros(5, 6), num_sweeps=0)


def test_trace_summary_is_the_per_trace_rhat_and_ess_and_their_worst():
    traces = {"mixed": torch.randn(200, 4, dtype=torch.float64), "stuck": stuck_chains(200)[..., 0]}
    summary = trace_summary(traces)
    assert (summary["num_steps"], summary["num_chains"]) == (200, 4)
    for name, trace in traces.items():
        element = trace.unsqueeze(-1)
        assert summary[f"{name}_rhat"] == pytest.approx(rank_rhat(element).item())
        assert summary[f"{name}_ess_bulk"] == pytest.approx(bulk_ess(element).item())
        assert summary[f"{name}_ess_tail"] == pytest.approx(tail_ess(element).item())
    assert summary["rhat_max"] == summary["stuck_rhat"] > STUCK_RHAT > summary["mixed_rhat"]
    assert summary["ess_bulk_min"] == min(summary["mixed_ess_bulk"], summary["stuck_ess_bulk"])
    assert summary["ess_tail_min"] == min(summary["mixed_ess_tail"], summary["stuck_ess_tail"])
    assert traces_to_inference_data(traces).posterior["stuck"].dims == ("chain", "draw")


@pytest.mark.parametrize(
    "traces, message",
    [
        ({}, "non-empty mapping"),
        ({"a": torch.zeros(10, 2), "b": torch.zeros(10, 3)}, r"traces\['b'\] has shape \(10, 3\)"),
        ({"a": torch.zeros(10, 2, 1)}, r"traces\['a'\] must have 2 dimensions"),
        ({"a": torch.zeros(MIN_NUM_STEPS - 1, 2)}, "at least 4"),
    ],
)
def test_bad_traces(traces, message):
    with pytest.raises(ValueError, match=message):
        trace_summary(traces)


@pytest.mark.parametrize(
    "states, energies, message",
    [
        (torch.zeros(MIN_NUM_STEPS - 1, 2, 3), None, "at least 4"),
        (torch.zeros(10, 2), None, "states must have 3 dimensions"),
        (torch.zeros(10, 2, 3), torch.zeros(10, 3), r"energies has shape \(10, 3\)"),
        (torch.full((10, 2, 3), float("nan")), None, "states contains NaN"),
        (torch.zeros(10, 2, 3), torch.full((10, 2), float("inf")), "energies contains infinite"),
    ],
)
def test_bad_chains(states, energies, message):
    with pytest.raises(ValueError, match=message):
        chain_summary(states, energies)


def test_bad_trace():
    with pytest.raises(ValueError, match="trace must have at least 2 dimensions"):
        rank_rhat(torch.zeros(10))


@pytest.mark.cuda
def test_results_stay_on_the_input_device():
    trace = torch.randn(100, 4, 2, device="cuda")
    assert rank_rhat(trace).device == bulk_ess(trace).device == trace.device

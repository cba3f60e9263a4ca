"""R-hat and ESS of the chains `pyro-dgm sample --gibbs` and `pyro-dgm evaluate` run, checked against their traces."""

import json
import math

import pyro
import pytest
import torch

import pyro_dgm.cli.chain_report as chain_report
import pyro_dgm.cli.main as cli
from pyro_dgm.bihm.gibbs_sampling import sample_p_star, unnormalized_log_p_star
from pyro_dgm.cli.chain_report import (
    MAX_QUANTITY_ROWS,
    ChainDiagnostics,
    format_diagnostics,
    netcdf_engine,
    rbm_chain_diagnostics,
    record_p_star_chains,
)
from pyro_dgm.cli.checkpoint import load_checkpoint
from pyro_dgm.cli.main import EXIT_USAGE, main
from pyro_dgm.cli.run_directory import RunDirectory
from pyro_dgm.diagnostics import arviz_backend
from pyro_dgm.diagnostics import chain_summary
from pyro_dgm.diagnostics.arviz_conversion import traces_to_inference_data
from pyro_dgm.diagnostics.chain_diagnostics import trace_summary
from tests.cli.test_main import TINY_SBN

TINY_DVAE_PP = ["--model", "dvae_pp", "--rbm-units", "4,4", "--objective", "dvae_pp", "--epochs", "1",
                "--batch-size", "1000", "--pcd-chains", "12", "--pcd-sweeps", "2", "--valid-particles", "0",
                "--no-progress", "--device", "cpu"]
GIBBS_SWEEPS, GIBBS_CHAINS, CHAIN_SWEEPS = 12, 6, 30
EVALUATE = ["-k", "25", "--max-examples", "10", "--device", "cpu"]


@pytest.fixture(scope="module")
def sbn_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sbn")
    assert main(["train", "--run-dir", str(run_dir), *TINY_SBN, "--valid-particles", "0"]) == 0
    return run_dir


@pytest.fixture(scope="module")
def dvae_pp_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dvae_pp")
    assert main(["train", "--run-dir", str(run_dir), *TINY_DVAE_PP]) == 0
    return run_dir


def spy(monkeypatch, module, name):
    """Replace ``module.name`` by a wrapper that records the arguments and result of every call."""
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(module, name, wrapper)
    return calls


def assert_summaries_equal(reported, expected):
    for key, value in expected.items():
        assert reported[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key


def scalar_row(name):
    return name, f"{name}_rhat", f"{name}_ess_bulk", f"{name}_ess_tail"


def assert_printed(printed, summary, rows):
    """The worst R-hat and ESS, and every row (label, R-hat, bulk and tail ESS keys), appear as printed."""
    assert (
        f"R-hat max {summary['rhat_max']:.3f}" in printed
        and f"bulk ESS min {summary['ess_bulk_min']:.1f}, tail ESS min {summary['ess_tail_min']:.1f}" in printed
    )
    for label, *keys in rows:
        numbers = [summary[key] for key in keys]
        line = next(line for line in printed.splitlines() if line.strip().startswith(label + " "))
        assert line.split()[-3:] == [f"{numbers[0]:.3f}", f"{numbers[1]:.1f}", f"{numbers[2]:.1f}"], line


def test_sample_gibbs_reports_rhat_and_ess_of_its_traces(sbn_run, tmp_path, monkeypatch, capsys):
    calls = spy(monkeypatch, cli, "record_p_star_chains")
    arguments = ["sample", "--run-dir", str(sbn_run), "--num-samples", str(GIBBS_CHAINS), "--gibbs", str(GIBBS_SWEEPS),
                 "--output", str(tmp_path / "grid.png"), "--device", "cpu"]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    ((_, _, (state, traces)),) = calls
    assert list(traces) == ["energy", "x_mean_activation", "h1_mean_activation"]
    assert all(trace.shape == (GIBBS_SWEEPS, GIBBS_CHAINS) for trace in traces.values())
    # The last record is the final state's: the samples written are the chains' states.
    model, guide = cli._restore_model(RunDirectory(sbn_run), torch.device("cpu"))[1].evaluation_pair()
    torch.testing.assert_close(traces["energy"][-1], -unnormalized_log_p_star(model, guide, state))
    torch.testing.assert_close(traces["x_mean_activation"][-1], state.x.mean(-1))
    torch.testing.assert_close(traces["h1_mean_activation"][-1], state.latents[0].mean(-1))

    reported = json.loads((sbn_run / "gibbs_chains.json").read_text())
    expected = trace_summary(traces)
    assert_summaries_equal(reported, expected)
    for key in ("rhat_max", "ess_bulk_min", "ess_tail_min", *(f"{name}_rhat" for name in traces)):
        assert math.isfinite(reported[key]) and reported[key] > 0, key
    assert reported["num_steps"] == GIBBS_SWEEPS and reported["num_chains"] == GIBBS_CHAINS
    assert_printed(printed, expected, [scalar_row(name) for name in traces])
    if netcdf_engine() is not None:
        posterior = arviz_backend.ACTIVE.read_netcdf(str(sbn_run / "gibbs_chains.nc"))["posterior"]
        for name, trace in traces.items():
            torch.testing.assert_close(torch.as_tensor(posterior[name].values), trace.transpose(0, 1))


def test_recording_does_not_change_the_p_star_samples(sbn_run):
    _, built, _ = cli._restore_model(RunDirectory(sbn_run), torch.device("cpu"))
    model, guide = built.evaluation_pair()
    pyro.set_rng_seed(5)
    state, _ = record_p_star_chains(model, guide, num_chains=4, num_sweeps=3)
    pyro.set_rng_seed(5)
    torch.testing.assert_close(state.x, sample_p_star(model, guide, num_chains=4, num_sweeps=3).x)


def test_too_few_gibbs_sweeps_for_rhat(sbn_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("config.json", "checkpoint.pt"):
        (run_dir / name).write_bytes((sbn_run / name).read_bytes())
    assert main(["sample", "--run-dir", str(run_dir), "--num-samples", "2", "--gibbs", "3", "--device", "cpu"]) == 0
    assert "no R-hat or ESS: they need at least 4 Gibbs sweeps" in capsys.readouterr().out
    assert not (run_dir / "gibbs_chains.json").exists()


def test_evaluate_continues_the_persistent_chains_and_reports_rhat_and_ess(dvae_pp_run, monkeypatch, capsys):
    calls = spy(monkeypatch, chain_report, "record_block_gibbs")
    assert main(["evaluate", "--run-dir", str(dvae_pp_run), *EVALUATE, "--chain-sweeps", str(CHAIN_SWEEPS)]) == 0
    printed = capsys.readouterr().out
    ((arguments, _, (states, energies)),) = calls
    _, start, num_sweeps = arguments
    payload = load_checkpoint(dvae_pp_run / "checkpoint.pt")
    torch.testing.assert_close(start, payload["objective"]["z"]["chains"])  # the persisted chains, continued
    assert num_sweeps == CHAIN_SWEEPS and states.shape == (CHAIN_SWEEPS, 12, 8)
    weights = payload["modules"]["model"]
    z1, z2 = states[..., :4], states[..., 4:]
    energy = -(z1 @ weights["bias1"] + z2 @ weights["bias2"] + ((z1 @ weights["weight"]) * z2).sum(-1))
    torch.testing.assert_close(energies, energy)  # E(z) of the trained RBM, DVAE Eq. 6

    result = json.loads((dvae_pp_run / "evaluation_test_k25.json").read_text())
    reported = result["chains"]["z"]
    assert reported["origin"] == "persisted" and reported["num_steps"] == CHAIN_SWEEPS
    expected = chain_summary(states, energies)
    assert_summaries_equal(reported, expected)
    for key in ("rhat_max", "ess_bulk_min", "ess_tail_min", "energy_rhat", "mean_activation_rhat", "unit_rhat_max"):
        assert math.isfinite(reported[key]) and reported[key] > 0, key
    assert "test log-likelihood" in printed and "RBM prior 'z' (12 persisted PCD chains x 30 sweeps)" in printed
    assert_printed(printed, expected, [scalar_row("energy"), scalar_row("mean_activation"),
                                       ("worst unit", "unit_rhat_max", "unit_ess_bulk_min", "unit_ess_tail_min")])


def test_chain_diagnostics_leave_the_log_likelihood_unchanged(dvae_pp_run, capsys):
    log_likelihoods = []
    for chain_sweeps in ("0", "4"):
        pyro.clear_param_store()  # each command runs in a fresh process
        assert main(["evaluate", "--run-dir", str(dvae_pp_run), *EVALUATE, "--chain-sweeps", chain_sweeps]) == 0
        result = json.loads((dvae_pp_run / "evaluation_test_k25.json").read_text())
        assert ("chains" in result) == (chain_sweeps != "0")
        log_likelihoods.append(result["log_likelihood"])
    assert log_likelihoods[0] == log_likelihoods[1]
    assert capsys.readouterr().out.count("RBM prior 'z'") == 1


def test_rbm_without_persisted_chains_gets_fresh_ones(dvae_pp_run):
    _, built, _ = cli._restore_model(RunDirectory(dvae_pp_run), torch.device("cpu"))
    (diagnostics,) = rbm_chain_diagnostics(built, None, num_sweeps=5, num_fresh_chains=3).values()
    assert diagnostics.summary["origin"] == "fresh" and diagnostics.summary["num_chains"] == 3
    assert "3 fresh chains" in diagnostics.title


def test_evaluate_of_a_model_without_rbm_prior_is_unchanged(sbn_run, capsys):
    assert main(["evaluate", "--run-dir", str(sbn_run), *EVALUATE]) == 0
    assert "R-hat" not in capsys.readouterr().out
    assert "chains" not in json.loads((sbn_run / "evaluation_test_k25.json").read_text())


@pytest.mark.parametrize("value", ["3", "1", "-1", "ten", "2.5"])
def test_bad_chain_sweeps_are_refused(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--run-dir", str(tmp_path), "--chain-sweeps", value])
    assert exit_info.value.code == EXIT_USAGE
    assert f"expected 0 (no chain diagnostics) or an integer >= 4, got '{value}'" in capsys.readouterr().err


def test_many_quantities_print_only_their_worst_and_constant_ones_have_no_rhat():
    traces = {f"layer{index}": torch.randn(20, 3) for index in range(MAX_QUANTITY_ROWS + 1)}
    traces["layer0"][:, 1] += 10.0  # one chain far from the others: the worst R-hat
    summary = trace_summary(traces)
    rows = [scalar_row(name) for name in traces]
    printed = format_diagnostics(ChainDiagnostics("chains", summary, rows, traces_to_inference_data(traces)))
    assert printed.splitlines() == [
        f"chains: R-hat max {summary['rhat_max']:.3f} (layer0; above 1.01: not mixed), "
        f"bulk ESS min {summary['ess_bulk_min']:.1f}, tail ESS min {summary['ess_tail_min']:.1f}"
    ]
    constant = {"energy": torch.ones(20, 3)}
    summary = trace_summary(constant)
    printed = format_diagnostics(ChainDiagnostics("chains", summary, [scalar_row("energy")], traces_to_inference_data(constant)))
    assert "R-hat max nan (undefined: every tracked quantity is constant)" in printed

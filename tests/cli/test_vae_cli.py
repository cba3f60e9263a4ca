"""`pyro-dgm` with the bidirectional VAE and its twin: train, exact resume, evaluate, sample; --version, --help."""

import json
import math

import pyro
import pytest
import torch

from pyro_dgm.cli.evaluation import gain_over_last_decade, reliability_verdict
from pyro_dgm.cli.main import _restore_model, build_parser, main
from pyro_dgm.cli.registry import build_model, build_objective
from pyro_dgm.cli.run_directory import RunDirectory
from pyro_dgm.diagnostics.bvae_metrics import active_units, posterior_means
from pyro_dgm.infer.objectives.tcvae import TCVAE_ELBO
from pyro_dgm.models import BidirectionalVAE, UnidirectionalVAE

LATENT_DIM = 4
TINY_VAE = ["--hidden", "16", "--latent-dim", str(LATENT_DIM), "--batch-size", "1000",
            "--valid-particles", "25", "--no-progress", "--device", "cpu"]
EMBEDDED_TRAIN_SIZE = 3000


def train(run_dir, *arguments):
    assert main(["train", "--run-dir", str(run_dir), *TINY_VAE, *arguments]) == 0


@pytest.fixture(scope="module")
def bvae_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("bvae") / "run"
    train(run_dir, "--model", "bvae", "--objective", "elbo", "--epochs", "2")
    return run_dir


def test_train_prints_one_line_per_epoch(tmp_path, capsys):
    train(tmp_path / "run", "--model", "vae", "--objective", "iwae", "-k", "2", "--epochs", "2")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == len(records) == 2
    for line, record in zip(lines, records):
        assert line == (
            f"epoch {record['epoch']}/2: loss {record['train_loss']:.3f}, "
            f"valid log-likelihood {record['valid_log_likelihood']:.3f}, {record['seconds']:.1f} s"
        )


def test_resume_continues_bit_for_bit(bvae_run, tmp_path):
    """One epoch, then --resume to two (the run's epochs raised in its config) = two epochs at once."""
    resumed = tmp_path / "resumed"
    train(resumed, "--model", "bvae", "--objective", "elbo", "--epochs", "1")
    config_path = resumed / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "epochs": 2}))
    assert main(["train", "--run-dir", str(resumed), "--resume", "--no-progress", "--device", "cpu"]) == 0
    for run_dir in (bvae_run, resumed):
        assert [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    straight = _restore_model(RunDirectory(bvae_run), torch.device("cpu"))[2]["modules"]["model"]
    continued = _restore_model(RunDirectory(resumed), torch.device("cpu"))[2]["modules"]["model"]
    assert straight.keys() == continued.keys()
    for name in straight:
        assert torch.equal(straight[name], continued[name]), name


def test_evaluate_reports_active_units_psnr_and_ssim(bvae_run, capsys):
    arguments = ["evaluate", "--run-dir", str(bvae_run), "-k", "30", "--max-examples", "50", "--device", "cpu"]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "test log-likelihood" in printed and "active units" in printed and "psnr" in printed
    result = json.loads((bvae_run / "evaluation_test_k30.json").read_text())
    assert result["latent_dim"] == LATENT_DIM and 0 <= result["active_units"] <= LATENT_DIM
    assert 0 < result["ssim"] <= 1 and result["psnr"] > 0
    assert result["log_likelihood"] < 0 and math.isfinite(result["gain_over_last_decade"])
    _, built, _ = _restore_model(RunDirectory(bvae_run), torch.device("cpu"))
    assert isinstance(built.modules["model"], BidirectionalVAE)


def test_sample_writes_a_png(bvae_run, tmp_path):
    output = tmp_path / "samples.png"
    assert main(["sample", "--run-dir", str(bvae_run), "--num-samples", "4", "--output", str(output), "--device", "cpu"]) == 0
    assert output.read_bytes().startswith(b"\x89PNG")


def configuration(**overrides):
    config = {"model": "bvae", "objective": "elbo", "guide": None, "hidden": [8], "latent_dim": 3, "beta": None,
              "dataset": "embedded_mnist", "num_particles": None}
    return {**config, **overrides}


def test_objectives_and_the_beta_weight():
    twin = build_model(configuration(model="vae"), 784)
    assert isinstance(twin.modules["model"], UnidirectionalVAE) and twin.step_kwargs is None
    beta_vae = build_model(configuration(beta=2.0), 784)
    assert beta_vae.step_kwargs(0, 10) == {"beta": 2.0}
    config = configuration(objective="tcvae", beta=1.5)
    tcvae = build_model(config, 784)
    objective = build_objective(config, tcvae)
    assert isinstance(objective, TCVAE_ELBO) and objective.beta == 1.5
    assert objective.dataset_size == EMBEDDED_TRAIN_SIZE and tcvae.step_kwargs is None  # beta weighs TC only
    config = configuration(objective="iwae", num_particles=7)
    assert build_objective(config, build_model(config, 784)).num_particles == 7


def test_beta_scales_the_kl_term_of_the_elbo():
    """Loss(beta) = -E log p(x|z) + beta KL: linear in beta, with the KL as its slope."""
    config = configuration()
    built = build_model(config, 784)
    built.modules["model"].double()  # float64: the differences are small next to the loss
    x = torch.bernoulli(torch.full((5, 784), 0.3, dtype=torch.float64))
    elbo = pyro.infer.TraceMeanField_ELBO()

    def loss(beta):
        pyro.set_rng_seed(1)  # the same z for every beta: only the KL's weight changes
        return elbo.loss(built.model, built.guide, x, beta=beta)

    losses = [loss(beta) for beta in (1.0, 2.0, 3.0)]
    assert losses[2] - losses[1] == pytest.approx(losses[1] - losses[0], rel=1e-9)
    vae = built.modules["model"]
    kl = torch.distributions.kl_divergence(vae.encoder(x), vae.prior((5,))).sum().item()
    assert losses[1] - losses[0] == pytest.approx(kl, rel=1e-9)


def test_active_units_match_the_restored_model(bvae_run):
    _, built, _ = _restore_model(RunDirectory(bvae_run), torch.device("cpu"))
    x = torch.bernoulli(torch.full((40, 784), 0.2))
    assert built.extra_metrics(x)["active_units"] == active_units(posterior_means(built.modules["model"], x))


def test_version_and_help_list_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    from pyro_dgm import __version__

    assert capsys.readouterr().out.startswith(f"pyro-dgm {__version__} ")
    help_text = build_parser().format_help()
    for command in ("train", "evaluate", "sample", "inpaint"):
        assert command in help_text


def test_gain_over_last_decade_against_a_direct_computation():
    generator = torch.Generator().manual_seed(0)
    log_weights = torch.randn(40, 3, generator=generator, dtype=torch.float64)
    gain, standard_error = gain_over_last_decade(log_weights)
    full = torch.logsumexp(log_weights, 0) - math.log(40)
    tenths = torch.stack([torch.logsumexp(log_weights[4 * g: 4 * g + 4], 0) - math.log(4) for g in range(10)]).mean(0)
    assert gain == pytest.approx((full - tenths).mean().item())
    assert standard_error == pytest.approx(((full - tenths).std() / math.sqrt(3)).item())
    assert gain_over_last_decade(torch.zeros(100, 4))[0] == pytest.approx(0.0)  # equal weights: converged


def test_reliability_verdict_says_when_the_number_is_a_loose_bound():
    result = {"num_particles": 1000, "khat_threshold": 0.7, "gain_over_last_decade": 0.5,
              "gain_over_last_decade_standard_error": 0.1}
    assert reliability_verdict({**result, "fraction_khat_above_threshold": 0.0}).startswith("reliable")
    loose = reliability_verdict({**result, "fraction_khat_above_threshold": 0.9})
    assert loose.startswith("LOOSE BOUND") and "90%" in loose and "K=100 to K=1000" in loose
    assert "too few" in reliability_verdict({"num_particles": 10})

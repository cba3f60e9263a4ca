"""The ``pyro-dgm`` command: ``train``, ``evaluate``, ``sample`` and ``inpaint`` (see ``docs/cli.md``).

Every subcommand works on a run folder (``--run-dir``): ``train`` writes the
configuration, per-epoch metrics and checkpoints there; ``evaluate`` and ``sample``
read the configuration and the latest checkpoint back, and report R-hat and ESS of
the Markov chains they run (:mod:`pyro_dgm.cli.chain_report`). Errors a user can fix (an
unknown name, a bad path, an incompatible model/objective pair) are reported in one
line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyro
import torch

from pyro_dgm.bihm.gibbs_sampling import inpaint
from pyro_dgm.cli.chain_report import (
    DEFAULT_CHAIN_SWEEPS,
    ChainDiagnostics,
    format_diagnostics,
    p_star_diagnostics,
    rbm_chain_diagnostics,
    record_p_star_chains,
    write_draws,
)
from pyro_dgm.cli.checkpoint import check_checkpoint_fits, load_checkpoint, load_module_states
from pyro_dgm.cli.distributed import init_from_environment, leave_group
from pyro_dgm.cli.evaluation import evaluate_log_likelihood, reliability_verdict
from pyro_dgm.cli.registry import MODELS, OBJECTIVES, BuiltModel, ConfigurationError, build_model, build_objective, choose
from pyro_dgm.cli.run_directory import RunDirectory, RunFolderError
from pyro_dgm.cli.train_config import check_train_config, extend_epochs
from pyro_dgm.cli.trainer import Experiment, NonFiniteLoss, Schedule, Trainer, TrainingInterrupted
from pyro_dgm.data import (
    BinarizedBatches,
    DatasetUnavailableError,
    available_datasets,
    dataset_info,
    load_dataset,
    static_binarize,
)
from pyro_dgm.diagnostics import save_image_grid, save_inpainting_grid
from pyro_dgm.diagnostics.chain_diagnostics import MIN_NUM_STEPS
from pyro_dgm.infer.validation import ObservedDataError, check_observed_data
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide

EXIT_USAGE = 2
"""Exit status for errors in what the user asked for (argparse uses the same)."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""
EXIT_NON_FINITE_LOSS = 3
"""Exit status when training stops on a NaN or infinite loss (:class:`~pyro_dgm.cli.trainer.NonFiniteLoss`)."""

TRAIN_KEYS = (
    "model", "guide", "objective", "dataset", "data_root", "layers", "hidden", "rbm_units", "groups",
    "smoother", "beta", "kl_warmup", "pcd_chains", "pcd_sweeps", "epochs", "batch_size",
    "num_particles", "lr", "lr_decay", "seed", "binarization", "valid_particles", "valid_every",
    "latent_dim",
)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigurationError("--device cuda was asked for, but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigurationError(f"--device must be auto, cpu or cuda[:N], got '{name}'")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigurationError(f"--device must be auto, cpu or cuda[:N], got '{name}'") from None


def _number(parse: Callable[[str], float], accept: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse ``type``: ``parse`` the text, then reject values ``accept`` refuses, saying what was expected."""

    def convert(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got '{text}'")
        return value

    return convert


_positive_int = _number(int, lambda value: value >= 1, "a positive integer")
_non_negative_int = _number(int, lambda value: value >= 0, "a non-negative integer")
_positive_float = _number(float, lambda value: 0 < value < math.inf, "a positive number")
_fraction = _number(float, lambda value: 0 <= value <= 1, "a number between 0 and 1")
_decay_factor = _number(float, lambda value: 0 < value <= 1, "a number in (0, 1]")
_chain_sweeps = _number(
    int, lambda value: value == 0 or value >= MIN_NUM_STEPS, f"0 (no chain diagnostics) or an integer >= {MIN_NUM_STEPS}"
)


def _positive_int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got '{text}'") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got '{text}'")
    return values


def _positive_int_pair(text: str) -> list[int]:
    """``n1,n2``: exactly two comma-separated positive integers."""
    try:
        values = _positive_int_list(text)
    except argparse.ArgumentTypeError:
        values = []
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected two comma-separated positive integers n1,n2, got '{text}'")
    return values


DEFAULT_EPOCHS = 10
"""Epochs of a new run when ``--epochs`` is not given."""


def version_text() -> str:
    """``pyro-dgm --version``: the package's version and those of what it runs on."""
    from pyro_dgm import __version__
    from pyro_dgm.diagnostics import arviz_backend

    return (
        f"pyro-dgm {__version__} (torch {torch.__version__}, pyro {pyro.__version__}, "
        f"ArviZ line: {arviz_backend.ACTIVE.name})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyro-dgm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=version_text())
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")

    train = commands.add_parser("train", help="train a model; writes config, metrics and checkpoints")
    train.add_argument("--run-dir", required=True, type=Path)
    train.add_argument("--model", default="sbn", help=f"one of: {', '.join(MODELS)}")
    train.add_argument("--guide", default=None, help="guide of the model (default: the model's first)")
    train.add_argument("--objective", default=None, help=f"one of: {', '.join(OBJECTIVES)} (default: the model's first)")
    train.add_argument("--dataset", default="embedded_mnist", help=f"one of: {', '.join(available_datasets())}")
    train.add_argument("--data-root", default=None, help="a folder that already holds the dataset's files")
    train.add_argument("--layers", type=_positive_int_list, default=[200, 200],
                       help="binary latent layer sizes, bottom-up (sbn, directed), e.g. 200,200")
    train.add_argument("--hidden", type=_positive_int_list, default=[],
                       help="deterministic hidden layer sizes of the DVAE networks (default: linear) "
                            "or of the bvae/vae network (default 512,256)")
    train.add_argument("--rbm-units", type=_positive_int_pair, default=[16, 16],
                       help="n1,n2: the two sides of the RBM prior (dvae_pp, dvae)")
    train.add_argument("--groups", type=_positive_int, default=2, help="groups of the hierarchical posterior over the RBM units")
    train.add_argument("--smoother", default=None,
                       help="smoothing transformation (default: the model's): overlapping_exponential, "
                            "overlapping_logistic, spike_and_exponential, spike_and_slab, mixture_of_ramps, "
                            "power, uniform_exponential")
    train.add_argument("--beta", type=_positive_float, default=None,
                       help="inverse temperature of the smoother (dvae models); the KL weight of the beta-VAE "
                            "(bvae/vae with elbo) or the total-correlation weight (tcvae)")
    train.add_argument("--latent-dim", type=_positive_int, default=None,
                       help="Gaussian latent dimensions of bvae/vae (default 64)")
    train.add_argument("--kl-warmup", type=_fraction, default=0.3,
                       help="fraction of training with a linear KL warm-up (DVAE++ Sec. 7.1)")
    train.add_argument("--pcd-chains", type=_positive_int, default=100, help="persistent Gibbs chains for the RBM's log Z gradient")
    train.add_argument("--pcd-sweeps", type=_positive_int, default=100, help="Gibbs sweeps of those chains per step")
    train.add_argument("--epochs", type=_positive_int, default=None,
                       help=f"default {DEFAULT_EPOCHS}; with --resume: the run's, or more to extend it")
    train.add_argument("--batch-size", type=_positive_int, default=100)
    train.add_argument("--num-particles", "-k", type=_positive_int, default=None,
                       help="K, samples per data point (default 10 for bihm/rws/vimco, 1 otherwise)")
    train.add_argument("--lr", type=_positive_float, default=1e-3)
    train.add_argument("--lr-decay", type=_decay_factor, default=1.0, help="learning-rate factor per epoch")
    train.add_argument("--binarization", default="dynamic", choices=("dynamic", "static", "none"))
    train.add_argument("--valid-particles", type=_non_negative_int, default=100, help="K of the per-epoch validation log-likelihood (0: skip)")
    train.add_argument("--valid-every", type=_positive_int, default=1,
                       help="measure the validation log-likelihood every N epochs (and after the last): "
                            "it can cost more than the epoch itself")
    train.add_argument("--seed", type=_non_negative_int, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    train.add_argument("--no-progress", action="store_true",
                       help="no progress bars; print one line per epoch (loss, validation log-likelihood, seconds)")
    train.add_argument(
        "--distributed", action="store_true",
        help="data-parallel over the processes of `torchrun --nproc_per_node=N` (gloo on CPU, nccl on CUDA)",
    )

    evaluate = commands.add_parser("evaluate", help="importance-weighted test log-likelihood, ESS and PSIS k-hat")
    evaluate.add_argument("--run-dir", required=True, type=Path)
    evaluate.add_argument("--num-particles", "-k", type=_positive_int, default=1000)
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--max-examples", type=_positive_int, default=None, help="evaluate only the first N examples")
    evaluate.add_argument(
        "--chain-sweeps", type=_chain_sweeps, default=DEFAULT_CHAIN_SWEEPS, metavar="SWEEPS",
        help="RBM priors: continue the persistent chains this many block-Gibbs sweeps and report their "
             "R-hat and ESS (0: skip)",
    )
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--seed", type=_non_negative_int, default=0)

    sample = commands.add_parser("sample", help="a PNG grid of samples from the trained model")
    sample.add_argument("--run-dir", required=True, type=Path)
    sample.add_argument("--num-samples", type=_positive_int, default=64)
    sample.add_argument("--output", type=Path, default=None, help="default: <run-dir>/samples.png")
    sample.add_argument("--gibbs", type=_non_negative_int, default=0, metavar="SWEEPS",
                        help="sbn with the bottom_up guide: draw from BiHM's p* with this many Gibbs sweeps")
    sample.add_argument("--device", default="auto")
    sample.add_argument("--seed", type=_non_negative_int, default=0)

    inpaint = commands.add_parser("inpaint", help="fill in hidden pixels of test images from BiHM's p* (sbn, bottom_up)")
    inpaint.add_argument("--run-dir", required=True, type=Path)
    inpaint.add_argument("--mask", default="bottom_half", choices=tuple(INPAINTING_MASKS))
    inpaint.add_argument("--num-images", type=_positive_int, default=8)
    inpaint.add_argument("--completions", type=_positive_int, default=5, help="independent completions per image")
    inpaint.add_argument("--sweeps", type=_positive_int, default=100, help="Gibbs sweeps (BiHM Fig. 2 uses 100)")
    inpaint.add_argument("--split", default="test")
    inpaint.add_argument("--output", type=Path, default=None, help="default: <run-dir>/inpainting.png")
    inpaint.add_argument("--device", default="auto")
    inpaint.add_argument("--seed", type=_non_negative_int, default=0)
    return parser


def _load_split(config: dict[str, Any], split: str, device: torch.device) -> torch.Tensor:
    choose("dataset", config["dataset"], available_datasets())
    info = dataset_info(config["dataset"])
    choose(f"split of dataset '{config['dataset']}'", split, tuple(info.split_sizes))
    if len(info.example_shape) != 1:
        raise ConfigurationError(
            f"dataset '{config['dataset']}' holds images of shape {info.example_shape}; "
            "the fully connected models need flat binary vectors"
        )
    pixels = load_dataset(config["dataset"], split, root=config.get("data_root"))
    check_observed_data(pixels, batch=f"dataset '{config['dataset']}', split '{split}'")
    return pixels.to(device)


def _load_binary_split(config: dict[str, Any], split: str, device: torch.device, seed: int) -> torch.Tensor:
    """An evaluation split as 0/1 pixels: grey datasets get one fixed-seed Bernoulli draw."""
    pixels = _load_split(config, split, device)
    return pixels if dataset_info(config["dataset"]).binary else static_binarize(pixels, seed)


def _restore_model(run: RunDirectory, device: torch.device) -> tuple[dict[str, Any], BuiltModel, dict[str, Any]]:
    """The run's configuration, its model with the checkpoint's weights on ``device``, and the checkpoint."""
    config = run.read_config()
    data_dim = dataset_info(config["dataset"]).example_shape[0]
    built = build_model(config, data_dim)
    payload = load_checkpoint(run.checkpoint_path, map_location="cpu")
    check_checkpoint_fits(payload, config, run.checkpoint_path)
    load_module_states(built.modules, payload, run.checkpoint_path)
    for module in built.modules.values():
        module.to(device)
    return config, built, payload


def _report_chains(
    run: RunDirectory, diagnostics: ChainDiagnostics, netcdf_name: str, written: Sequence[Path] = ()
) -> str:
    """The printed summary of ``diagnostics``; its last line lists ``written`` and ``<run>/<netcdf_name>``.

    The traces are written to the latter only when a netcdf backend is installed.
    """
    traces = write_draws(diagnostics, run.path / netcdf_name)
    files = [*written, *([traces] if traces is not None else [])]
    return format_diagnostics(diagnostics) + (f"\n  wrote {', '.join(map(str, files))}" if files else "")


def _resume_extension(run: RunDirectory, config: dict[str, Any], epochs: int | None, built: BuiltModel) -> str | None:
    """Check the checkpoint fits ``config``, then apply ``--epochs`` (see :func:`extend_epochs`)."""
    payload = load_checkpoint(run.checkpoint_path, map_location="cpu")
    check_checkpoint_fits(payload, config, run.checkpoint_path)
    warmup = config.get("kl_warmup") if built.step_kwargs is not None else None
    return extend_epochs(config, epochs, len(payload.get("metrics", [])), warmup)


def command_train(args: argparse.Namespace) -> int:
    run = RunDirectory(args.run_dir)
    device = resolve_device(args.device)
    group = None
    if args.distributed:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        group = init_from_environment(device)
    if args.resume:
        config = run.read_config()
        if not run.has_checkpoint():
            raise ConfigurationError(f"--resume: {run.checkpoint_path} does not exist")
    else:
        if run.config_path.exists() and (group is None or group.is_main):
            raise ConfigurationError(f"{run.path} already holds a run; pass --resume or another --run-dir")
        config = {key: getattr(args, key) for key in TRAIN_KEYS}
        config["epochs"] = args.epochs or DEFAULT_EPOCHS
    check_train_config(config)
    pyro.set_rng_seed(config["seed"])
    train_data = _load_split(config, "train", device)
    built = build_model(config, train_data.size(-1))
    for module in built.modules.values():
        module.to(device)
    objective = build_objective(config, built)
    if group is not None:  # same initial weights everywhere (also broadcast), then distinct particle noise
        pyro.set_rng_seed(config["seed"] + group.rank)
    extension = _resume_extension(run, config, args.epochs, built) if args.resume else None
    if (not args.resume or extension is not None) and (group is None or group.is_main):
        run.write_config(config)
    if extension is not None and (group is None or group.is_main):
        print(extension)
    valid_data = _load_binary_split(config, "valid", device, config["seed"]) if config["valid_particles"] > 0 else None

    valid_every = config.get("valid_every", 1)  # run folders written before --valid-every: every epoch

    def evaluate_valid() -> dict[str, float]:
        finished = trainer.step // len(trainer.batches)
        if finished % valid_every != 0 and finished != config["epochs"]:
            return {}
        result = evaluate_log_likelihood(built, valid_data, config["valid_particles"], progress=False)
        return {"valid_log_likelihood": result["log_likelihood"]}

    binarization = "none" if dataset_info(config["dataset"]).binary else config["binarization"]
    trainer = Trainer(
        Experiment(built.model, built.guide, objective, built.modules, built.step_kwargs),
        BinarizedBatches(train_data, config["batch_size"], binarization=binarization, seed=config["seed"]),
        Schedule(num_epochs=config["epochs"], learning_rate=config["lr"], lr_decay=config["lr_decay"]),
        run,
        evaluate=evaluate_valid if valid_data is not None and (group is None or group.is_main) else None,
        progress=not args.no_progress,
        group=group,
        config=config,
        report_epoch=(lambda record: print(format_epoch(record, config["epochs"]), flush=True)) if args.no_progress else None,
    )
    try:
        metrics = trainer.fit(resume=args.resume)
    except TrainingInterrupted as interrupted:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    except NonFiniteLoss as error:
        print(
            f"pyro-dgm train: {error}. Resuming would reach the same step again (resume is exact): start a new "
            f"run with a smaller --lr (this run's: {config['lr']}) in another --run-dir.",
            file=sys.stderr,
        )
        return EXIT_NON_FINITE_LOSS
    if group is not None:
        leave_group()
    last = metrics[-1]
    summary = ", ".join(f"{key} {value:.4f}" for key, value in last.items() if isinstance(value, float))
    print(f"trained {last['epoch']} epochs ({last['step']} steps): {summary}; run folder {run.path}")
    return 0


def format_epoch(record: dict[str, Any], num_epochs: int) -> str:
    """One log line per finished epoch: ``epoch 3/10: loss 179.122, valid log-likelihood -171.564, 7.8 s``."""
    parts = [f"loss {record['train_loss']:.3f}"]
    if "valid_log_likelihood" in record:
        parts.append(f"valid log-likelihood {record['valid_log_likelihood']:.3f}")
    parts.append(f"{record['seconds']:.1f} s")
    return f"epoch {record['epoch']}/{num_epochs}: " + ", ".join(parts)


def command_evaluate(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    run = RunDirectory(args.run_dir)
    config, built, payload = _restore_model(run, device)
    pyro.set_rng_seed(args.seed)
    data = _load_binary_split(config, args.split, device, args.seed)
    if args.max_examples is not None:
        data = data[: args.max_examples]
    result = evaluate_log_likelihood(built, data, args.num_particles, progress=True)
    result.update(
        split=args.split, num_particles=args.num_particles, num_examples=data.size(0), scored=built.evaluation_kind
    )
    extra = built.extra_metrics(data) if built.extra_metrics is not None else {}
    result.update(extra)
    # After the log-likelihood, so that its estimate does not depend on --chain-sweeps.
    chains = (
        rbm_chain_diagnostics(built, payload.get("objective"), args.chain_sweeps, config["pcd_chains"])
        if args.chain_sweeps > 0
        else {}
    )
    if chains:
        result["chains"] = {site: {**diagnostics.summary, "seed": args.seed} for site, diagnostics in chains.items()}
    khat = (
        f"; PSIS k-hat median {result['khat_median']:.2f}, {100 * result['fraction_khat_above_threshold']:.1f}% of "
        f"data points above {result['khat_threshold']}"
        if "khat_median" in result
        else ""
    )
    print(
        f"{args.split} log-likelihood {result['log_likelihood']:.3f} ± {result['log_likelihood_standard_error']:.3f} "
        f"nats (K={args.num_particles}, {data.size(0)} examples, {built.evaluation_kind}); "
        f"ESS mean {result['ess_mean']:.1f}{khat}"
    )
    print(f"  {reliability_verdict(result)}")
    if extra:
        print("  " + ", ".join(f"{name.replace('_', ' ')} {value:.4g}" for name, value in extra.items()))
    # Printed first: a run folder that cannot be written costs the file, not the estimate.
    run.write_json(f"evaluation_{args.split}_k{args.num_particles}.json", result)  # an infinite k-hat becomes null
    for site, diagnostics in chains.items():
        print(_report_chains(run, diagnostics, f"evaluation_chains_{site}.nc"))
    return 0


def _bihm_pair(config: dict[str, Any], built: Any, option: str) -> tuple[SigmoidBeliefNet, BottomUpGuide]:
    """The SBN and bottom-up guide that BiHM's p* Gibbs sampler works on, or a one-line error."""
    model, guide = built.modules.get("model"), built.modules.get("guide")
    if not isinstance(model, SigmoidBeliefNet) or not isinstance(guide, BottomUpGuide):
        raise ConfigurationError(
            f"{option} samples BiHM's p* and needs --model sbn with --guide bottom_up; "
            f"this run has model '{config['model']}' with guide '{config['guide']}'"
        )
    return model, guide


GIBBS_CHAINS_FILE = "gibbs_chains.json"
"""R-hat and ESS of the p* Gibbs chains of ``sample --gibbs``, in the run folder."""
GIBBS_TRACES_FILE = "gibbs_chains.nc"
"""Their per-sweep traces as ArviZ netcdf (when a netcdf backend is installed)."""


def command_sample(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    run = RunDirectory(args.run_dir)
    config, built, _ = _restore_model(run, device)
    pyro.set_rng_seed(args.seed)
    diagnostics = None
    if args.gibbs > 0:
        model, guide = _bihm_pair(config, built, "--gibbs")
        state, traces = record_p_star_chains(model, guide, num_chains=args.num_samples, num_sweeps=args.gibbs)
        images = state.x
        diagnostics = p_star_diagnostics(traces)
        kind = f"p* samples ({args.gibbs} Gibbs sweeps)"
    else:
        with torch.no_grad():
            images = built.sample_images(args.num_samples)
        kind = "samples"
    output = args.output or run.path / "samples.png"
    save_image_grid(images.cpu(), output)
    print(f"wrote {args.num_samples} {kind} to {output}")
    if diagnostics is not None:
        written = run.write_json(GIBBS_CHAINS_FILE, {**diagnostics.summary, "seed": args.seed})
        print(_report_chains(run, diagnostics, GIBBS_TRACES_FILE, [written]))
    elif args.gibbs > 0:
        print(f"no R-hat or ESS: they need at least {MIN_NUM_STEPS} Gibbs sweeps")
    return 0


INPAINTING_MASKS = {
    "bottom_half": lambda side: torch.arange(side).unsqueeze(-1).expand(side, side) < side // 2,
    "top_half": lambda side: torch.arange(side).unsqueeze(-1).expand(side, side) >= side // 2,
    "left_half": lambda side: torch.arange(side).expand(side, side) >= side // 2,
    "right_half": lambda side: torch.arange(side).expand(side, side) < side // 2,
}
"""Named masks for square images: True where a pixel stays observed (the name says what is hidden)."""


def command_inpaint(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    run = RunDirectory(args.run_dir)
    config, built, _ = _restore_model(run, device)
    model, guide = _bihm_pair(config, built, "inpaint")
    data = _load_binary_split(config, args.split, device, args.seed)[: args.num_images]
    side = math.isqrt(data.size(-1))
    if side * side != data.size(-1):
        raise ConfigurationError(f"inpaint needs square images; dataset '{config['dataset']}' has D={data.size(-1)}")
    observed = INPAINTING_MASKS[args.mask](side).flatten().to(device)
    pyro.set_rng_seed(args.seed)
    starts = (data * observed).repeat_interleave(args.completions, dim=0)  # hidden pixels start at 0
    state = inpaint(model, guide, starts, observed, num_sweeps=args.sweeps)
    completions = state.x.reshape(data.size(0), args.completions, -1)
    output = args.output or run.path / "inpainting.png"
    save_inpainting_grid(data.cpu(), observed.cpu(), completions.cpu(), output)
    print(f"wrote {data.size(0)} images x {args.completions} completions ({args.sweeps} sweeps) to {output}")
    return 0


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "sample": command_sample, "inpaint": command_inpaint}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.getLogger("pyro").setLevel(logging.WARNING)  # Pyro logs every max_plate_nesting guess at INFO
    try:
        return COMMANDS[args.command](args)
    except (ConfigurationError, RunFolderError, ObservedDataError, FileNotFoundError, DatasetUnavailableError) as error:
        print(f"pyro-dgm {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

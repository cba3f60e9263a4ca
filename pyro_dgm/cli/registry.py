"""Names the ``pyro-dgm`` command accepts: models, guides and objectives, and which fit together.

A model entry builds a :class:`BuiltModel` from the run configuration; an
objective entry builds a ``pyro.infer.ELBO``. Each model lists the objectives it
can be trained with, so an incompatible pair fails before any work with a one-line
error that names what is allowed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro.infer
import torch

from pyro_dgm.data import dataset_info
from pyro_dgm.diagnostics.bvae_metrics import active_units, posterior_means, psnr, reconstruct, ssim
from pyro_dgm.distributions import RBM
from pyro_dgm.infer.estimators.rbm_partition import estimate_log_partition
from pyro_dgm.infer.objectives.bihm import BiHMELBO
from pyro_dgm.infer.objectives.dvae import DVAEELBO
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.infer.objectives.dvae_sharp import DVAESharpELBO, GumBoltELBO
from pyro_dgm.infer.objectives.rws import ReweightedWakeSleep
from pyro_dgm.infer.objectives.tcvae import TCVAE_ELBO
from pyro_dgm.infer.objectives.vimco import VIMCO
from pyro_dgm.models.annealing import DVAESchedule
from pyro_dgm.models.bvae import BidirectionalVAE, GaussianLatentVAE, UnidirectionalVAE
from pyro_dgm.models.conv_dvae_pp import GLOBAL_SITE, TABLE3_BASELINES, ConvDVAEPP, table3_config
from pyro_dgm.models.directed_prior import build_directed_dvae
from pyro_dgm.models.dvae import PRIOR_SITE, DiscreteVAE, build_dvae_pp
from pyro_dgm.models.dvae_base import binary_limit_pair, sample_images
from pyro_dgm.models.dvae_sharp import build_dvae_sharp
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.sbn_guides import BottomUpGuide, FactorialGuide
from pyro_dgm.nn.bidirectional_networks import bidirectional_mlp

LOGGER = logging.getLogger("pyro_dgm.cli")


class ConfigurationError(ValueError):
    """A name or combination the command does not know; the message says what is allowed."""


@dataclass
class BuiltModel:
    """A model/guide pair ready for training and evaluation.

    Attributes:
        model, guide: Pyro programs called as ``fn(x, num_data=N, **step_kwargs)``.
        modules: parameter-owning modules by name (checkpointed).
        sample_images: ``n -> (n, D)`` images in [0, 1] drawn from the model (pixel
            probabilities given sampled latents where the model has them).
        evaluation_pair: ``() -> (model, guide)`` whose importance weights estimate
            log p(x) with the *current* parameters (for smoothed models: the binary
            limit, whose RBM log Z is computed when the pair is made).
        step_kwargs: optional per-step schedule (KL warm-up, β annealing).
        evaluation_kind: what the evaluation pair scores, printed beside every estimate.
        rbm_priors: ``() -> {site: RBM}``, the model's RBM prior sites with the *current*
            parameters (empty for models without one); the keys are those under which
            the objective's ``state_dict`` keeps their persistent chains.
        extra_metrics: optional ``(N, D) data -> {name: value}``, metrics that
            ``pyro-dgm evaluate`` reports beside the log-likelihood (the VAEs: active
            units, PSNR and SSIM of reconstructions).
    """

    model: Callable[..., Any]
    guide: Callable[..., Any]
    modules: dict[str, torch.nn.Module]
    sample_images: Callable[[int], torch.Tensor]
    evaluation_pair: Callable[[], tuple[Callable[..., Any], Callable[..., Any]]]
    step_kwargs: Callable[[int, int], dict[str, Any]] | None = None
    evaluation_kind: str = "the model as trained"
    rbm_priors: Callable[[], dict[str, RBM]] = dict
    extra_metrics: Callable[[torch.Tensor], dict[str, float]] | None = None


@dataclass(frozen=True)
class ObjectiveEntry:
    description: str
    build: Callable[[dict[str, Any], BuiltModel], pyro.infer.ELBO]


@dataclass(frozen=True)
class ModelEntry:
    description: str
    build: Callable[[dict[str, Any], int], BuiltModel]
    objectives: tuple[str, ...]
    guides: tuple[str, ...]


SBN_GUIDES = {"bottom_up": BottomUpGuide, "factorial": FactorialGuide}


def _build_sbn(config: dict[str, Any], data_dim: int) -> BuiltModel:
    layer_sizes = [data_dim, *config["layers"]]
    model = SigmoidBeliefNet(layer_sizes)
    guide = SBN_GUIDES[config["guide"]](layer_sizes)

    def sample_images(num_samples: int) -> torch.Tensor:
        samples = model.sample(num_samples)
        return torch.sigmoid(model.conditionals[0].logits(samples["h1"]))

    return BuiltModel(
        model=model,
        guide=guide,
        modules={"model": model, "guide": guide},
        sample_images=sample_images,
        evaluation_pair=lambda: (model, guide),
    )


def _binary_limit_evaluation(model: torch.nn.Module, guide: torch.nn.Module) -> tuple[Callable, Callable]:
    """The binary-limit pair; an RBM too large to enumerate gets its log Z from AIS (logged with its SE)."""
    prior = getattr(model, "prior", None)
    rbm = prior() if callable(prior) else None
    if not isinstance(rbm, RBM) or rbm.is_enumerable:
        return binary_limit_pair(model, guide)
    with torch.no_grad():
        estimate = estimate_log_partition(rbm, method="ais")
    LOGGER.warning(
        "RBM prior of %d + %d units: log Z = %.4f ± %.4f from AIS (every log-likelihood shares this error)",
        rbm.num_units1, rbm.num_units2, estimate.value.item(), estimate.standard_error.item(),
    )
    return binary_limit_pair(model, guide, log_partition=estimate.value)


def _smoothed_model(model: torch.nn.Module, guide: torch.nn.Module, config: dict[str, Any]) -> BuiltModel:
    def rbm_priors() -> dict[str, RBM]:
        return {PRIOR_SITE: model.prior()} if isinstance(model, DiscreteVAE) else {}

    return BuiltModel(
        model=model,
        guide=guide,
        modules={"model": model, "guide": guide},
        sample_images=lambda num_samples: sample_images(model, num_samples),
        evaluation_pair=lambda: _binary_limit_evaluation(model, guide),
        step_kwargs=DVAESchedule(warmup_fraction=config["kl_warmup"]),
        evaluation_kind="binary limit, zeta = z",
        rbm_priors=rbm_priors,
    )


def _smoother_options(config: dict[str, Any]) -> dict[str, Any]:
    options = {"hidden_sizes": config["hidden"], "guide": config["guide"]}
    if config["beta"] is not None:  # otherwise the model's default inverse temperature
        options["beta"] = config["beta"]
    return options


def _build_dvae_pp(config: dict[str, Any], data_dim: int, smoother: str) -> BuiltModel:
    num_units1, num_units2 = config["rbm_units"]
    model, guide = build_dvae_pp(
        data_dim, num_units1, num_units2, smoother=config["smoother"] or smoother,
        num_groups=config["groups"], **_smoother_options(config),
    )
    return _smoothed_model(model, guide, config)


def _build_dvae_sharp(config: dict[str, Any], data_dim: int, relaxation: str) -> BuiltModel:
    num_units1, num_units2 = config["rbm_units"]
    model, guide = build_dvae_sharp(
        data_dim, num_units1, num_units2, relaxation=relaxation, smoother=config["smoother"] or "power",
        num_groups=config["groups"], **_smoother_options(config),
    )
    return _smoothed_model(model, guide, config)


def _build_directed(config: dict[str, Any], data_dim: int) -> BuiltModel:
    model, guide = build_directed_dvae(
        data_dim, config["layers"], elbo="marginal" if config["objective"] == "elbo" else "joint",
        smoother=config["smoother"] or "overlapping_exponential", **_smoother_options(config),
    )
    return _smoothed_model(model, guide, config)


def _build_conv_dvae_pp(config: dict[str, Any], data_dim: int) -> BuiltModel:
    overrides = {} if config["beta"] is None else {"beta": config["beta"]}
    network_config = table3_config(config["guide"], **overrides)
    if data_dim != math.prod(network_config.image_shape):
        raise ConfigurationError(
            f"conv_dvae_pp is built for images of shape {tuple(network_config.image_shape)}, "
            f"but dataset '{config['dataset']}' has D={data_dim}"
        )
    objective = {"trace_elbo": "elbo"}.get(network_config.objective, network_config.objective)
    if config["objective"] != objective:
        raise ConfigurationError(
            f"the '{config['guide']}' configuration of conv_dvae_pp trains with objective '{objective}', "
            f"not '{config['objective']}'"
        )
    network = ConvDVAEPP(network_config)
    return BuiltModel(
        model=network.model,
        guide=network.guide,
        modules={"network": network},
        sample_images=lambda num_samples: network.generate(num_samples).flatten(1),
        evaluation_pair=lambda: (network.model, network.guide),
        evaluation_kind=f"smoothed model at the training beta {network_config.beta}",
        rbm_priors=lambda: {GLOBAL_SITE: network.global_prior.rbm()} if network_config.global_latent == "rbm" else {},
    )


BVAE_HIDDEN_SIZES = (512, 256)
"""Default ``--hidden`` of the VAEs: the 784-512-256 network of our BVAE Table I benchmark."""
BVAE_LATENT_DIM = 64
"""Default ``--latent-dim`` of the VAEs (BVAE Table I caption: "The dimension of the latent variable is 64")."""


def _image_side(data_dim: int) -> int | None:
    side = math.isqrt(data_dim)
    return side if side * side == data_dim else None


def vae_metrics(vae: GaussianLatentVAE, data: torch.Tensor) -> dict[str, float]:
    """Active units (BVAE Eq. 41) and, for square images, mean PSNR and SSIM of reconstructions of ``data``."""
    with torch.no_grad():
        metrics = {"active_units": float(active_units(posterior_means(vae, data))), "latent_dim": float(vae.latent_dim)}
        side = _image_side(data.size(-1))
        if side is not None:
            images = data.reshape(-1, 1, side, side)
            reconstructions = reconstruct(vae, data).reshape_as(images)
            metrics["psnr"] = psnr(reconstructions, images).mean().item()
            metrics["ssim"] = ssim(reconstructions, images).mean().item()
    return metrics


def _build_vae(config: dict[str, Any], data_dim: int, vae_class: type[GaussianLatentVAE]) -> BuiltModel:
    """BVAE Algorithm 1 (``bvae``) or its untied twin (``vae``) on a fully connected network."""
    network = bidirectional_mlp([data_dim, *(config["hidden"] or BVAE_HIDDEN_SIZES)])
    vae = vae_class(network, latent_dim=config.get("latent_dim") or BVAE_LATENT_DIM)
    beta = config["beta"]
    # beta-VAE: the latent site scaled by beta in model and guide (models/bvae.py); beta-TCVAE weighs TC instead.
    kl_weight = {"beta": beta} if beta is not None and config["objective"] == "elbo" else None

    def sample_images(num_samples: int) -> torch.Tensor:
        return vae.decoder(vae.prior((num_samples,)).sample()).mean

    return BuiltModel(
        model=vae.model,
        guide=vae.guide,
        modules={"model": vae},
        sample_images=sample_images,
        evaluation_pair=lambda: (vae.model, vae.guide),
        step_kwargs=(lambda step, total_steps: kl_weight) if kl_weight is not None else None,
        extra_metrics=lambda data: vae_metrics(vae, data),
    )


def _importance_objective(cls: type) -> Callable[[dict[str, Any], BuiltModel], pyro.infer.ELBO]:
    def build(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
        return cls(num_particles=config["num_particles"] or IMPORTANCE_PARTICLES)

    return build


def _smoothed_objective(cls: type) -> Callable[[dict[str, Any], BuiltModel], pyro.infer.ELBO]:
    def build(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
        num_particles = config["num_particles"] or 1
        return cls(
            num_particles=num_particles, vectorize_particles=num_particles > 1,
            num_chains=config["pcd_chains"], num_sweeps=config["pcd_sweeps"],
            # the CLI's contract (--pcd-chains, chains saved in checkpoints for `evaluate`): PCD always
            log_partition_gradient="persistent",
        )

    return build


def _tcvae(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
    num_data = dataset_info(config["dataset"]).split_sizes["train"]
    return TCVAE_ELBO(dataset_size=num_data, beta=1.0 if config["beta"] is None else config["beta"])


def _iwae(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
    # Pyro's RenyiELBO(alpha=0) forms one weight per data point when every site is in the data plate
    # (models/bvae.py); fine for the VAEs' reparameterised Gaussian latents, not for discrete ones.
    num_particles = config["num_particles"] or IMPORTANCE_PARTICLES
    return pyro.infer.RenyiELBO(alpha=0, num_particles=num_particles, vectorize_particles=True, max_plate_nesting=1)


def _relaxed_objective(cls: type) -> Callable[[dict[str, Any], BuiltModel], pyro.infer.ELBO]:
    def build(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
        return cls(
            num_particles=config["num_particles"] or 1,
            num_chains=config["pcd_chains"], num_sweeps=config["pcd_sweeps"],
        )

    return build


def _trace_elbo(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
    num_particles = config["num_particles"] or 1
    return pyro.infer.TraceGraph_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1)


IMPORTANCE_PARTICLES = 10
"""Default K of the importance-weighted objectives (BiHM's and RWS's MNIST setting)."""

OBJECTIVES: dict[str, ObjectiveEntry] = {
    "bihm": ObjectiveEntry("bidirectional Helmholtz machine bound 2 log E_q[sqrt(p/q)]", _importance_objective(BiHMELBO)),
    "rws": ObjectiveEntry("reweighted wake-sleep, per-data-point weights", _importance_objective(ReweightedWakeSleep)),
    "vimco": ObjectiveEntry("K-sample IWAE bound with leave-one-out baselines", _importance_objective(VIMCO)),
    "dvae_pp": ObjectiveEntry("DVAE++ ELBO with the analytic KL (Eq. 4 / Eq. 6-7), PCD for log Z", _smoothed_objective(DVAEPlusPlusELBO)),
    "dvae": ObjectiveEntry("Rolfe's DVAE objective and gradient (spike smoothers)", _smoothed_objective(DVAEELBO)),
    "dvae_sharp": ObjectiveEntry("DVAE#: K-sample importance-weighted bound, relaxed RBM prior, PCD for log Z", _relaxed_objective(DVAESharpELBO)),
    "gumbolt": ObjectiveEntry("GumBolt: K-sample importance-weighted bound with GumBolt's proxy densities", _relaxed_objective(GumBoltELBO)),
    "elbo": ObjectiveEntry(
        "Pyro's TraceGraph_ELBO (score function with baselines where needed); bvae/vae: --beta gives the beta-VAE",
        _trace_elbo,
    ),
    "tcvae": ObjectiveEntry("beta-TCVAE (Chen et al. 2018 Eq. 4), --beta weighs the total correlation", _tcvae),
    "iwae": ObjectiveEntry("K-sample IWAE bound, reparameterised gradient (Pyro's RenyiELBO, alpha = 0)", _iwae),
}

MODELS: dict[str, ModelEntry] = {
    "sbn": ModelEntry(
        "sigmoid belief net / Helmholtz machine with binary layers (--layers)",
        _build_sbn,
        objectives=("bihm", "rws", "vimco", "elbo"),
        guides=tuple(SBN_GUIDES),
    ),
    "dvae_pp": ModelEntry(
        "DVAE++: RBM prior (--rbm-units), overlapping smoothing, hierarchical posterior (--groups)",
        lambda config, data_dim: _build_dvae_pp(config, data_dim, "overlapping_exponential"),
        objectives=("dvae_pp", "elbo"),
        guides=("hierarchical", "factorial"),
    ),
    "dvae": ModelEntry(
        "Rolfe's DVAE: RBM prior with spike-and-exponential smoothing",
        lambda config, data_dim: _build_dvae_pp(config, data_dim, "spike_and_exponential"),
        objectives=("dvae", "elbo"),
        guides=("hierarchical", "factorial"),
    ),
    "dvae_sharp": ModelEntry(
        "DVAE#: RBM prior relaxed by a smoother (--smoother, default power), mean-field log density, IW bound",
        lambda config, data_dim: _build_dvae_sharp(config, data_dim, "overlapping"),
        objectives=("dvae_sharp",),
        guides=("hierarchical", "factorial"),
    ),
    "dvae_sharp_gi": ModelEntry(
        "DVAE# with the Gaussian-integral relaxation of the RBM prior (logistic guide, --beta its inverse scale)",
        lambda config, data_dim: _build_dvae_sharp(config, data_dim, "gaussian_integral"),
        objectives=("dvae_sharp",),
        guides=("hierarchical", "factorial"),
    ),
    "gumbolt": ModelEntry(
        "GumBolt: RBM prior, Gumbel-sigmoid relaxation (--beta = 1/temperature), IW bound",
        lambda config, data_dim: _build_dvae_sharp(config, data_dim, "gumbolt"),
        objectives=("gumbolt",),
        guides=("hierarchical", "factorial"),
    ),
    "conv_dvae_pp": ModelEntry(
        "convolutional DVAE++ (Sec. 6): RBM global latents, conv local latents, multi-scale decoder; "
        "--guide picks the Table 3 configuration",
        _build_conv_dvae_pp,
        objectives=("dvae_pp", "dvae", "elbo"),
        guides=("dvae_pp", *(name for name in TABLE3_BASELINES if name != "dvae_pp")),
    ),
    "directed": ModelEntry(
        "factorial directed prior over binary layers (--layers); dvae_pp = joint ELBO, elbo = marginal ELBO",
        _build_directed,
        objectives=("dvae_pp", "elbo"),
        guides=("hierarchical", "factorial"),
    ),
    "bvae": ModelEntry(
        "bidirectional VAE (Kosko & Adigun, Algorithm 1): Gaussian latents (--latent-dim), one network "
        "(--hidden) run forward to encode and backward to decode",
        lambda config, data_dim: _build_vae(config, data_dim, BidirectionalVAE),
        objectives=("elbo", "tcvae", "iwae"),
        guides=("forward",),
    ),
    "vae": ModelEntry(
        "the bidirectional VAE's unidirectional twin: the same architecture with separate encoder and decoder weights",
        lambda config, data_dim: _build_vae(config, data_dim, UnidirectionalVAE),
        objectives=("elbo", "tcvae", "iwae"),
        guides=("encoder",),
    ),
}


def choose(kind: str, name: str, allowed: dict[str, Any] | tuple[str, ...] | list[str]) -> None:
    """Raise :class:`ConfigurationError` listing ``allowed`` unless ``name`` is one of them."""
    if name not in allowed:
        raise ConfigurationError(f"unknown {kind} '{name}'; choose one of: {', '.join(allowed)}")


def build_model(config: dict[str, Any], data_dim: int) -> BuiltModel:
    """Validate the model/guide/objective names of ``config`` and build the model."""
    choose("model", config["model"], MODELS)
    entry = MODELS[config["model"]]
    if config.get("objective") is None:  # the model's own objective
        config["objective"] = entry.objectives[0]
    choose("objective", config["objective"], OBJECTIVES)
    if config["objective"] not in entry.objectives:
        raise ConfigurationError(
            f"model '{config['model']}' cannot be trained with objective '{config['objective']}'; "
            f"it works with: {', '.join(entry.objectives)}"
        )
    if config.get("guide") is None:
        config["guide"] = entry.guides[0]
    choose(f"guide for model '{config['model']}'", config["guide"], entry.guides)
    return entry.build(config, data_dim)


def build_objective(config: dict[str, Any], built: BuiltModel) -> pyro.infer.ELBO:
    return OBJECTIVES[config["objective"]].build(config, built)

r"""Convolutional DVAE++: global RBM latents, local convolutional latents (Vahdat et al. 2018, Sec. 6).

The generative model of Fig. 3(a) (Sec. 6.1),

.. math::

    p(z, \zeta, h, x) = p(z) \prod_i r(\zeta_{1,i} \mid z_{1,i})\, r(\zeta_{2,i} \mid z_{2,i})
        \prod_j p(h_j \mid h_{<j}, \zeta)\; p(x \mid \zeta, h),

has an RBM prior :math:`p(z)` over the global binary units, smoothed elementwise by
the overlapping transformation :math:`r` (Sec. 3); local groups :math:`h_j` of
:math:`c \times R \times R` factorial normals, each conditioned on :math:`\zeta` and
the previous groups (autoregressive); and the multi-scale conditional decoder
:math:`p(x \mid \zeta, h) = p(x_0 \mid \zeta, h) \prod_i p(x_i \mid \zeta, h, x_{<i})`
(:mod:`pyro_dgm.models.conv_decoder`). The inference model of Fig. 3(b),

.. math::

    q(z, \zeta, h \mid x) = \prod_g q(z_g \mid x, \zeta_{<g})\, r(\zeta_g \mid z_g)
        \prod_j q(h_j \mid x, \zeta, h_{<j}),

draws the global groups hierarchically (DVAE++ uses :math:`G \in \{1, 2, 4\}`), then
the local ones. All conditionals are SE-ResNets (Sec. 6.2, :mod:`pyro_dgm.nn.se_resnet`)::

    x (C,H,W) -pad-> (C,G,G) -stem, down SE-ResNets-> features (F,R,R) -down-> (F,4,4) -fc-> d
                                                       |                                   |
                                   q(h_j | x, zeta, h_<j) <- [features, map(zeta), h_<j]    q(z_g | x, zeta_<g) <- [d, zeta_<g]
    model:  z ~ RBM -> zeta ~ r(.|z) -linear, up SE-ResNets-> map(zeta) (F,R,R)
            h_j ~ N(SE-ResNet([map(zeta), h_<j]))                 j = 1..J
            [map(zeta), h_1..h_J] -SE-ResNet-> (F,R,R) -up/pool-> (F,4,4) ... (F,G,G)
            x_0 ~ p(. | features 4x4);  x_i ~ p(. | features at 4*2^i, x_<i upsampled)

**Table 3 baselines** swap the latent types by configuration
(:data:`TABLE3_BASELINES`): all continuous (normal global and local), RBM with
Rolfe's spike-and-exponential smoothing, binary (smoothed Bernoulli) local groups, and
a directed factorial Bernoulli global prior. Sample sites are named in
:func:`global_site` and friends; binary sites are marked per
:mod:`pyro_dgm.infer.objectives.smoothed_latents`.

**Objectives.** :attr:`ConvDVAEPPConfig.objective` names the estimator each
configuration needs (models import no objective): ``"dvae_pp"``,
:class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO` (the analytic KL of the RBM or
Bernoulli part, DVAE++ Eq. 4, 6-7, plus the Monte Carlo :class:`~pyro.infer.Trace_ELBO`
terms of the normal local sites and the decoder); ``"dvae"``,
:class:`~pyro_dgm.infer.objectives.dvae.DVAEELBO` (spike-and-X smoothing needs Rolfe's gradient);
``"trace_elbo"``, :class:`~pyro.infer.Trace_ELBO` (no binary latents).

Every site is in the data plate ``"data"`` (dim -1) of :func:`~pyro_dgm.models.plates.data_plate`,
and every network accepts leading particle dims, so Pyro's vectorised particle plate
and :func:`~pyro_dgm.infer.estimators.log_likelihood.log_likelihood` apply as is.

Example::

    >>> import torch
    >>> config = ConvDVAEPPConfig(image_shape=(1, 8, 8), local_side=4, hidden_channels=4,
    ...                           local_channels=2, num_global_units=4)
    >>> vae = ConvDVAEPP(config)
    >>> vae.generate(3).shape
    torch.Size([3, 1, 8, 8])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from pyro_dgm.distributions.argument_checks import check_int
from pyro_dgm.distributions.discretized_logistic import eight_bit_intensities
from pyro_dgm.distributions.overlapping_exponential import OverlappingExponential
from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.distributions.smoothing import SmoothingTransformation
from pyro_dgm.distributions.smoothing_marks import smooths
from pyro_dgm.distributions.spike_and_exponential import SpikeAndExponential
from pyro_dgm.models.conv_decoder import Likelihood, MultiScaleDecoder, PixelPyramid, grid_side, scale_sides
from pyro_dgm.models.conv_dvae_pp_guides import GlobalPosteriorHeads, GlobalToMap, ImageFeatures, LocalConditionals
from pyro_dgm.models.param_store import register_module
from pyro_dgm.models.plates import data_plate
from pyro_dgm.nn.se_resnet import apply_to_images, broadcast_cat, se_resnet

# ------------------------------------------------------------------------ latent groups

LatentKind = Literal["normal", "bernoulli", "rbm"]
Smoothing = Literal["overlapping", "spike_and_exp"]

SMOOTHERS: dict[str, type[SmoothingTransformation]] = {
    "overlapping": OverlappingExponential,  # DVAE++ Sec. 3
    "spike_and_exp": SpikeAndExponential,  # Rolfe 2017 Sec. 2.1 (Table 3's "RBM (Rolfe)")
}

MIN_NORMAL_SCALE = 1e-3
"""Floor on a normal latent's standard deviation, so that its log-density stays bounded."""

RBM_INIT_STD = 0.01
"""Standard deviation of the RBM couplings at initialisation (biases start at 0)."""

GLOBAL_SITE = "z"
"""The RBM prior's site (all global binary units)."""


def binary_global_site(group: int) -> str:
    """Directed Bernoulli global group ``group`` (1-based): ``z1``, ``z2``, ..."""
    return f"z{group}"


def global_site(group: int) -> str:
    """The continuous global group :math:`\\zeta_g`: ``zeta1``, ``zeta2``, ..."""
    return f"zeta{group}"


def local_site(group: int) -> str:
    """Local group :math:`h_j` (normal, or binary when smoothed): ``h1``, ``h2``, ..."""
    return f"h{group}"


def smoothed_local_site(group: int) -> str:
    """The smoothing :math:`\\zeta_{h_j}` of a binary local group: ``zeta_h1``, ..."""
    return f"zeta_h{group}"


def group_slices(num_units: int, num_groups: int) -> list[slice]:
    """Contiguous, near-equal groups of units (the hierarchy of the global posterior)."""
    bounds = [round(index * num_units / num_groups) for index in range(num_groups + 1)]
    return [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]


def normal_from(parameters: torch.Tensor, event_dims: int) -> dist.Independent:
    """Factorial normal from ``[loc, raw_scale]`` stacked on the feature dim (``-event_dims``)."""
    loc, raw_scale = parameters.chunk(2, dim=-event_dims)
    return dist.Normal(loc, F.softplus(raw_scale) + MIN_NORMAL_SCALE).to_event(event_dims)


def parameters_per_unit(kind: LatentKind) -> int:
    """Network outputs per latent unit: loc and scale for normal, one logit for binary."""
    return 2 if kind == "normal" else 1


def smoother(smoothing: Smoothing, beta: torch.Tensor, logits: torch.Tensor) -> SmoothingTransformation:
    r"""The marginal :math:`q(\zeta) = \sum_z q(z)\, r(\zeta \mid z)` with :math:`\mathrm{logit}\, q(z{=}1)` = ``logits``."""
    return SMOOTHERS[smoothing](beta, logits=logits)


def smoothing_of(smoothing: Smoothing, beta: torch.Tensor, z: torch.Tensor) -> dist.TorchDistribution:
    r""":math:`r(\zeta \mid z)` elementwise, as one event over the last dim."""
    return smoother(smoothing, beta, torch.zeros_like(z)).conditional(z).to_event(1)


class DirectedHead(nn.Module):
    """``context -> parameters`` by a linear map; a learned constant when there is no context."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features) if in_features else None
        self.bias = None if in_features else nn.Parameter(torch.zeros(out_features))

    def forward(self, context: torch.Tensor | None) -> torch.Tensor:
        return self.bias if self.linear is None else self.linear(context)


class GlobalPrior(nn.Module):
    r""":math:`p(z)\prod_g r(\zeta_g \mid z_g)` (RBM), or :math:`\prod_g p(\cdot_g \mid \zeta_{<g})` (directed).

    :param kind: ``"rbm"``, ``"bernoulli"`` or ``"normal"``.
    :param num_units: n, all global units (even for an RBM: two sides of n/2).
    :param num_groups: G, the groups of the hierarchy.
    :param smoothing: the smoother of binary units.
    """

    def __init__(self, kind: LatentKind, num_units: int, num_groups: int, smoothing: Smoothing) -> None:
        super().__init__()
        self.kind, self.num_units, self.smoothing = kind, num_units, smoothing
        self.groups = group_slices(num_units, num_groups)
        if kind == "rbm":
            side = num_units // 2
            self.bias1 = nn.Parameter(torch.zeros(side))
            self.bias2 = nn.Parameter(torch.zeros(num_units - side))
            self.weight = nn.Parameter(RBM_INIT_STD * torch.randn(side, num_units - side))
        else:
            self.heads = nn.ModuleList(
                DirectedHead(group.start, (group.stop - group.start) * parameters_per_unit(kind))
                for group in self.groups
            )

    def rbm(self) -> RBM:
        return RBM(self.bias1, self.bias2, self.weight)

    def forward(self, beta: torch.Tensor) -> torch.Tensor:
        r"""Sample the global sites; returns :math:`\zeta`, shape (..., n)."""
        if self.kind == "rbm":
            z = pyro.sample(GLOBAL_SITE, self.rbm())
            smoothed = [
                pyro.sample(
                    global_site(index + 1),
                    smoothing_of(self.smoothing, beta, z[..., group]),
                    infer=smooths(GLOBAL_SITE, group),
                )
                for index, group in enumerate(self.groups)
            ]
            return torch.cat(smoothed, dim=-1)
        parts: list[torch.Tensor] = []
        for index, head in enumerate(self.heads):
            parameters = head(torch.cat(parts, dim=-1) if parts else None)
            if self.kind == "normal":
                parts.append(pyro.sample(global_site(index + 1), normal_from(parameters, 1)))
                continue
            z = pyro.sample(binary_global_site(index + 1), dist.Bernoulli(logits=parameters).to_event(1))
            parts.append(
                pyro.sample(
                    global_site(index + 1),
                    smoothing_of(self.smoothing, beta, z),
                    infer=smooths(binary_global_site(index + 1)),
                )
            )
        return torch.cat(parts, dim=-1)


def global_posterior_group(
    kind: LatentKind, smoothing: Smoothing, beta: torch.Tensor, index: int, parameters: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Sample :math:`\zeta_g` of global group ``index`` (0-based) in the guide.

    Binary kinds: :math:`\zeta_g \sim q(\zeta_g \mid x, \zeta_{<g})` (the marginal
    smoother), then for a directed prior its binary site ``z{g}`` from :math:`\nu_g`.

    :returns: :math:`\zeta_g` and, for an RBM, :math:`\nu_g` (the caller samples ``z``
        once all groups are drawn), else ``None``.
    """
    name = global_site(index + 1)
    if kind == "normal":
        return pyro.sample(name, normal_from(parameters, 1)), None
    marginal = smoother(smoothing, beta, parameters)
    zeta = pyro.sample(name, marginal.to_event(1))
    nu = marginal.posterior_probs(zeta)
    if kind == "rbm":
        return zeta, nu
    pyro.sample(binary_global_site(index + 1), dist.Bernoulli(probs=nu).to_event(1))
    return zeta, None


def sample_local_prior(
    kind: LatentKind, smoothing: Smoothing, beta: torch.Tensor, index: int, parameters: torch.Tensor
) -> torch.Tensor:
    r"""Model side of local group ``index`` (0-based) from a ``(..., k c, R, R)`` parameter map.

    ``"normal"``: :math:`h_j \sim \mathcal N` at ``h{j}``; ``"bernoulli"``:
    :math:`h_j \sim \mathrm{Bern}` at ``h{j}`` (flattened to one event of :math:`cR^2`
    units, as the convention wants) and :math:`\zeta_{h_j} \sim r(\cdot \mid h_j)` at
    ``zeta_h{j}``. Returns the continuous map the rest of the model sees, (..., c, R, R).
    """
    if kind == "normal":
        return pyro.sample(local_site(index + 1), normal_from(parameters, 3))
    h = pyro.sample(local_site(index + 1), dist.Bernoulli(logits=parameters.flatten(-3)).to_event(1))
    zeta = pyro.sample(
        smoothed_local_site(index + 1),
        smoothing_of(smoothing, beta, h),
        infer=smooths(local_site(index + 1)),
    )
    return zeta.unflatten(-1, parameters.shape[-3:])


def sample_local_posterior(
    kind: LatentKind, smoothing: Smoothing, beta: torch.Tensor, index: int, parameters: torch.Tensor
) -> torch.Tensor:
    r"""Guide side of local group ``index``: :math:`q(h_j \mid x, \zeta, h_{<j})`, the twin of :func:`sample_local_prior`."""
    if kind == "normal":
        return pyro.sample(local_site(index + 1), normal_from(parameters, 3))
    marginal = smoother(smoothing, beta, parameters.flatten(-3))
    zeta = pyro.sample(smoothed_local_site(index + 1), marginal.to_event(1))
    pyro.sample(local_site(index + 1), dist.Bernoulli(probs=marginal.posterior_probs(zeta)).to_event(1))
    return zeta.unflatten(-1, parameters.shape[-3:])


# ------------------------------------------------------------------------ configuration

LIKELIHOODS = ("bernoulli", "discretized_logistic")
GLOBAL_KINDS = ("rbm", "bernoulli", "normal")
LOCAL_KINDS = ("normal", "bernoulli")

Objective = Literal["dvae_pp", "dvae", "trace_elbo"]




def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True)
class ConvDVAEPPConfig:
    r"""Architecture and latent types of a convolutional DVAE++ (DVAE++ Sec. 6-7, App. G).

    The paper's MNIST model has 16 global binary units, 16 local groups of 32
    channels, and the unconditional decoder; the defaults here are CPU-sized.

    :ivar image_shape: (C, H, W) of the images; padded to a square side :math:`4 \cdot 2^S`.
    :ivar likelihood: ``"bernoulli"`` (binary images) or ``"discretized_logistic"``
        (8-bit colour, a mixture of ``num_mixtures`` components per subpixel).
    :ivar global_latent: ``"rbm"`` (DVAE++), ``"bernoulli"`` (directed factorial), ``"normal"``.
    :ivar local_latent: ``"normal"`` (DVAE++) or ``"bernoulli"`` (smoothed binary).
    :ivar smoothing: ``"overlapping"`` (overlapping exponentials, DVAE++) or
        ``"spike_and_exp"`` (Rolfe 2017) for every binary group.
    :ivar beta: inverse temperature :math:`\beta` of the smoothing (the model's
        ``beta`` buffer; set it to anneal).
    :ivar num_global_units: n (an RBM splits them n/2 + n/2).
    :ivar num_global_groups: G, groups of the hierarchical global posterior.
    :ivar num_local_groups: J.
    :ivar local_channels: c, latent channels per local group.
    :ivar local_side: R, the side of the local latent maps (a power-of-two multiple of 4).
    :ivar hidden_channels: F, width of every SE-ResNet.
    :ivar global_features: d, width of the encoder's fully connected top.
    :ivar num_blocks: SE-ResNet blocks per stage.
    :ivar num_mixtures: logistic components per subpixel.
    :ivar conditional_decoder: multi-scale conditional decoder, or one factorial group.
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    likelihood: Likelihood = "bernoulli"
    global_latent: LatentKind = "rbm"
    local_latent: LatentKind = "normal"
    smoothing: Smoothing = "overlapping"
    beta: float = 8.0
    num_global_units: int = 16
    num_global_groups: int = 2
    num_local_groups: int = 2
    local_channels: int = 4
    local_side: int = 8
    hidden_channels: int = 16
    global_features: int = 64
    num_blocks: int = 1
    num_mixtures: int = 5
    conditional_decoder: bool = True

    def __post_init__(self) -> None:
        shape = self.image_shape
        if len(shape) != 3 or any(isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in shape):
            raise ValueError(f"image_shape must be three positive ints (C, H, W), got {shape!r}")
        _check_choice("likelihood", self.likelihood, LIKELIHOODS)
        _check_choice("global_latent", self.global_latent, GLOBAL_KINDS)
        _check_choice("local_latent", self.local_latent, LOCAL_KINDS)
        _check_choice("smoothing", self.smoothing, tuple(SMOOTHERS))
        for name in ("num_global_units", "num_global_groups", "num_local_groups", "local_channels",
                     "local_side", "hidden_channels", "global_features", "num_blocks", "num_mixtures"):
            check_int(name, getattr(self, name))
        if self.global_latent == "rbm" and self.num_global_units < 2:
            raise ValueError("an RBM global prior needs num_global_units >= 2 (two sides)")
        if self.num_global_groups > self.num_global_units:
            raise ValueError(
                f"num_global_groups ({self.num_global_groups}) exceeds num_global_units ({self.num_global_units})"
            )
        side = grid_side(shape[1], shape[2])
        if self.local_side not in scale_sides(side):
            raise ValueError(
                f"local_side must be one of {scale_sides(side)} for {shape[1]}x{shape[2]} images "
                f"(padded to {side}x{side}), got {self.local_side}"
            )
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not 0 < self.beta < math.inf:
            raise ValueError(f"beta must be a positive finite number, got {self.beta!r}")

    @property
    def objective(self) -> Objective:
        """The estimator this configuration trains with (see the module docstring)."""
        if self.global_latent == "normal" and self.local_latent == "normal":
            return "trace_elbo"
        return "dvae" if self.smoothing == "spike_and_exp" else "dvae_pp"


TABLE3_BASELINES: dict[str, dict[str, str]] = {
    "all_continuous": {"global_latent": "normal", "local_latent": "normal"},
    "rbm_rolfe": {"global_latent": "rbm", "local_latent": "normal", "smoothing": "spike_and_exp"},
    "dvae_pp": {"global_latent": "rbm", "local_latent": "normal"},
    "rbm_bernoulli_local": {"global_latent": "rbm", "local_latent": "bernoulli"},
    "all_bernoulli": {"global_latent": "bernoulli", "local_latent": "bernoulli"},
}
"""The rows of DVAE++ Table 3 as latent types (global, local, smoothing)."""


def table3_config(baseline: str, **overrides) -> ConvDVAEPPConfig:
    """The configuration of one Table 3 row (:data:`TABLE3_BASELINES`), other fields from ``overrides``."""
    _check_choice("baseline", baseline, tuple(TABLE3_BASELINES))
    return ConvDVAEPPConfig(**{**overrides, **TABLE3_BASELINES[baseline]})


# ------------------------------------------------------------------------ model and guide


def observed_site(group: int, conditional: bool) -> str:
    """The pixel group's site: ``x0``, ``x1``, ... (multi-scale) or ``x`` (unconditional)."""
    return f"x{group}" if conditional else "x"


class ConvDVAEPP(nn.Module):
    r"""The convolutional DVAE++ of Fig. 3 as a Pyro model/guide pair.

    ``model(x)`` scores a batch of images under :math:`p(z, \zeta, h, x)`, ``guide(x)``
    samples :math:`q(z, \zeta, h \mid x)`; ``generate(n)`` draws images from the model.

    :param config: architecture and latent types.
    :param name: prefix of the parameters in Pyro's param store.
    """

    def __init__(self, config: ConvDVAEPPConfig | None = None, name: str = "conv_dvae_pp") -> None:
        super().__init__()
        config = ConvDVAEPPConfig() if config is None else config
        self.config = config
        self.name = name
        self.register_buffer("beta", torch.tensor(float(config.beta)))
        self.pyramid = PixelPyramid(config.image_shape, config.conditional_decoder)
        hidden, latent = config.hidden_channels, config.local_channels
        group_sizes = [group.stop - group.start for group in group_slices(config.num_global_units, config.num_global_groups)]
        local_parameters = parameters_per_unit(config.local_latent)
        # generative model, Fig. 3(a)
        self.global_prior = GlobalPrior(
            config.global_latent, config.num_global_units, config.num_global_groups, config.smoothing
        )
        self.prior_global_map = GlobalToMap(config.num_global_units, hidden, config.local_side, config.num_blocks)
        self.local_prior = LocalConditionals(
            hidden, latent, config.num_local_groups, hidden, config.num_blocks, local_parameters
        )
        self.latent_features = se_resnet(hidden + config.num_local_groups * latent, hidden, config.num_blocks)
        self.decoder = MultiScaleDecoder(
            self.pyramid, config.local_side, hidden, config.num_blocks, config.likelihood, config.num_mixtures
        )
        # inference model, Fig. 3(b)
        self.image_features = ImageFeatures(
            config.image_shape[0], self.pyramid.side, config.local_side, hidden, config.num_blocks,
            config.global_features,
        )
        self.global_posterior = GlobalPosteriorHeads(
            config.global_features, group_sizes, parameters_per_unit(config.global_latent)
        )
        self.posterior_global_map = GlobalToMap(config.num_global_units, hidden, config.local_side, config.num_blocks)
        self.local_posterior = LocalConditionals(
            2 * hidden, latent, config.num_local_groups, hidden, config.num_blocks, local_parameters
        )

    # ----- sites ---------------------------------------------------------------------

    @property
    def observed_sites(self) -> list[str]:
        """Names of the observed pixel-group sites, coarse to fine."""
        return [
            observed_site(index, self.config.conditional_decoder)
            for index in range(self.pyramid.num_groups)
            if self.pyramid.group_size(index)
        ]

    def check_images(self, x: torch.Tensor) -> torch.Tensor:
        """Validate ``x`` and return it as ``(B, C, H, W)``; flat ``(B, C*H*W)`` rows are reshaped.

        Raises ``ValueError`` naming ``x`` for a wrong shape, dtype or device, or values
        outside the likelihood's support (0/1 for Bernoulli, ``k/255`` for logistics).
        """
        shape = tuple(self.config.image_shape)
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor of shape (batch, {', '.join(map(str, shape))}), got {type(x).__name__}")
        if x.dim() == 2 and x.size(-1) == math.prod(shape):
            x = x.reshape((x.size(0),) + shape)
        if x.dim() != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"x must have shape (batch, {', '.join(map(str, shape))}) or (batch, {math.prod(shape)}), "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        if x.dtype != self.beta.dtype or x.device != self.beta.device:
            raise ValueError(
                f"x is {x.dtype} on {x.device} but the model is {self.beta.dtype} on {self.beta.device}; call .to(x)"
            )
        binary = self.config.likelihood == "bernoulli"
        valid = ((x == 0) | (x == 1)) if binary else eight_bit_intensities.check(x)
        if not bool(valid.all()):
            support = "0/1 (binarise the images)" if binary else "k/255 for k = 0..255"
            raise ValueError(f"x must hold values {support} for the {self.config.likelihood} likelihood")
        return x

    # ----- model -------------------------------------------------------------------------

    def _generate(self, images: torch.Tensor | None, batch_size: int, num_data: int | None) -> torch.Tensor:
        config, beta, pyramid = self.config, self.beta, self.pyramid
        with data_plate(batch_size, num_data, beta.device):
            zeta = self.global_prior(beta)
            zeta_map = self.prior_global_map(zeta)
            local: list[torch.Tensor] = []
            for index in range(config.num_local_groups):
                parameters = self.local_prior(index, [zeta_map], local)  # p(h_j | zeta, h_<j)
                local.append(sample_local_prior(config.local_latent, config.smoothing, beta, index, parameters))
            features = apply_to_images(self.latent_features, broadcast_cat([zeta_map, *local], event_dims=3))
            by_side = self.decoder.features_by_side(features)
            if images is None:
                canvas = torch.zeros((batch_size,) + (pyramid.channels, pyramid.side, pyramid.side), dtype=beta.dtype, device=beta.device)
            else:
                canvas = pyramid.pad(images)
            for index in range(pyramid.num_groups):
                if not pyramid.group_size(index):
                    continue
                value = pyro.sample(
                    observed_site(index, config.conditional_decoder),
                    self.decoder.group_distribution(by_side, canvas, index),  # p(x_i | zeta, h, x_<i)
                    obs=None if images is None else pyramid.gather(canvas, index),
                )
                if images is None:
                    canvas = pyramid.scatter(canvas, value, index)
            return pyramid.crop(canvas)

    def model(self, x: torch.Tensor, num_data: int | None = None) -> torch.Tensor:
        """Score the images ``x`` (B, C, H, W) under the model; returns them as (B, C, H, W).

        :param num_data: size of the data set the batch is drawn from (scales the
            log-densities by N/B), ``None``: the batch is the data set.
        """
        images = self.check_images(x)
        register_module(self.name, self)
        return self._generate(images, images.size(0), num_data)

    def generate(self, num_samples: int) -> torch.Tensor:
        """Draw ``num_samples`` images from the model, shape (num_samples, C, H, W)."""
        check_int("num_samples", num_samples)
        with torch.no_grad():
            return self._generate(None, num_samples, None)

    # ----- guide -------------------------------------------------------------------------

    def guide(self, x: torch.Tensor, num_data: int | None = None) -> torch.Tensor:
        r"""Sample :math:`q(z, \zeta, h \mid x)` for the images ``x``; returns the global :math:`\zeta`."""
        config, beta = self.config, self.beta
        images = self.check_images(x)
        register_module(self.name, self)
        with data_plate(images.size(0), num_data, beta.device):
            local_features, global_features = self.image_features(self.pyramid.pad(images))
            zetas: list[torch.Tensor] = []
            posterior_probs: list[torch.Tensor] = []
            for index in range(config.num_global_groups):
                parameters = self.global_posterior(index, global_features, zetas)  # q(z_g | x, zeta_<g)
                zeta, nu = global_posterior_group(config.global_latent, config.smoothing, beta, index, parameters)
                zetas.append(zeta)
                posterior_probs.append(nu)
            if config.global_latent == "rbm":
                nu = broadcast_cat(posterior_probs, event_dims=1)
                pyro.sample(GLOBAL_SITE, dist.Bernoulli(probs=nu).to_event(1))
            zeta = broadcast_cat(zetas, event_dims=1)
            context = [local_features, self.posterior_global_map(zeta)]
            local: list[torch.Tensor] = []
            for index in range(config.num_local_groups):
                parameters = self.local_posterior(index, context, local)  # q(h_j | x, zeta, h_<j)
                local.append(sample_local_posterior(config.local_latent, config.smoothing, beta, index, parameters))
            return zeta

r"""What every DVAE/DVAE++ model shares: the step keyword arguments, the continuous hierarchy, the decoder.

A model is :math:`p(z, \zeta)\, \prod_m p(\mathfrak z_m \mid \zeta, \mathfrak z_{<m})\,
p(x \mid \zeta, \mathfrak z)` (DVAE Eq. 7 and 13): a smoothed binary prior (an RBM,
:class:`~pyro_dgm.models.dvae.DiscreteVAE`, or a directed factorial one,
:class:`~pyro_dgm.models.directed_prior.DirectedDiscreteVAE`) whose :math:`z` reaches the rest
only through :math:`\zeta`, then Gaussian layers that each see :math:`\zeta` and all
earlier layers (layer-wise fully autoregressive, DVAE Sec. 4), then a factorial Bernoulli
decoder on all of them. :class:`SmoothedVAE` implements everything but the binary prior.

Every model and guide takes the same keyword arguments, so a training loop passes one
dict to both (``svi.step(x, num_data=N, **schedule(step, total_steps))``):

* ``beta`` — the inverse temperature of the smoother for this step (β annealing, DVAE++
  Sec. 7.1); ``None`` keeps the one given at construction;
* ``kl_weight`` — :math:`w \in (0, 1]`, KL warm-up: every latent site is wrapped in
  :func:`~pyro_dgm.models.dvae_layout.kl_scale`, so the objective becomes
  :math:`\mathbb E_q \log p(x \mid \cdot) - w\,\mathrm{KL}` (see
  :mod:`pyro_dgm.models.annealing`);
* ``binary_limit`` — evaluate at :math:`\beta = \infty` (:math:`\zeta = z`) with the
  same parameters (:func:`binary_limit_pair`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites
from torch import nn

from pyro_dgm.models.dvae_layout import (
    OBSERVED_SITE,
    LatentLayout,
    broadcast_cat,
    check_sizes,
    continuous_site_name,
    kl_scale,
)
from pyro_dgm.models.dvae_smoothing import Smoothing
from pyro_dgm.models.param_store import register_module
from pyro_dgm.models.plates import check_data, check_latent_value, data_plate
from pyro_dgm.nn.bernoulli_layer import BernoulliLayer
from pyro_dgm.nn.encoders import NormalLayer


def check_num_samples(num_samples: int | None) -> int:
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(
            f"pass data x of shape (batch, D) or num_samples > 0, got num_samples={num_samples!r}"
        )
    return num_samples


class SmoothedVAE(nn.Module):
    r"""Base of the smoothed-binary-prior models: continuous layers, decoder, plates and scales.

    Subclasses build the :class:`~pyro_dgm.models.dvae_layout.LatentLayout` and implement
    :meth:`sample_smoothed`, which samples the binary prior and the smoothed sites
    (marked for the DVAE objectives, :mod:`pyro_dgm.infer.objectives.smoothed_latents`) and returns
    :math:`\zeta_1, \dots, \zeta_k`.

    Args:
        layout: the shared site names and sizes.
        smoothing: :math:`r(\zeta \mid z)` and its default :math:`\beta`.
        hidden_sizes: deterministic tanh layers of every network of the model (the
            prior's conditionals and the decoder); ``()`` is the "linear" model of DVAE++
            Sec. 7.1, e.g. ``(200, 200)`` the "nonlinear" one.
        name: the prefix of the parameters in Pyro's param store.
    """

    def __init__(
        self,
        layout: LatentLayout,
        smoothing: Smoothing,
        hidden_sizes: Sequence[int] = (),
        name: str = "dvae",
    ) -> None:
        super().__init__()
        self.layout = layout
        self.smoothing = smoothing
        self.hidden_sizes = check_sizes("hidden_sizes", hidden_sizes)
        self.name = name
        smoothed = layout.num_smoothed_units
        sizes = layout.continuous_sizes
        # continuous_priors[m] is p(frak z_{m+1} | zeta, frak z_{<=m}) (DVAE Eq. 13)
        self.continuous_priors = nn.ModuleList(
            NormalLayer(smoothed + sum(sizes[:m]), size, self.hidden_sizes)
            for m, size in enumerate(sizes)
        )
        self.decoder = BernoulliLayer(smoothed + sum(sizes), layout.data_dim, self.hidden_sizes)

    def sample_smoothed(
        self, smoothing: Smoothing, batch_size: int, log_partition: torch.Tensor | None
    ) -> list[torch.Tensor]:
        r"""Sample the binary prior and :math:`\zeta_j \sim r(\zeta_j \mid z_j)`; return the :math:`\zeta_j`."""
        raise NotImplementedError

    def binary_limit_kwargs(self) -> dict:
        """Extra model keyword arguments for evaluation in the binary limit (e.g. a fixed log Z)."""
        return {}

    def _batch_size(self, x: torch.Tensor | None, num_samples: int | None) -> int:
        if x is not None:
            return check_data(x, self.layout.data_dim, self)
        return check_num_samples(num_samples)

    def forward(
        self,
        x: torch.Tensor | None = None,
        num_data: int | None = None,
        *,
        num_samples: int | None = None,
        beta: float | None = None,
        kl_weight: float = 1.0,
        binary_limit: bool = False,
        log_partition: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Score ``x`` (shape (B, D)) or, with ``x=None``, sample ``num_samples`` data points.

        ``beta``, ``kl_weight`` and ``binary_limit`` are the step keyword arguments of the
        module docstring; ``log_partition`` fixes the RBM's :math:`\\log Z` (evaluation only).
        Returns the value of site ``x``.
        """
        batch_size = self._batch_size(x, num_samples)
        register_module(self.name, self)
        smoothing = self.smoothing.at(beta, binary_limit)
        with data_plate(batch_size, num_data, next(self.parameters()).device):
            with kl_scale(kl_weight):
                zetas = self.sample_smoothed(smoothing, batch_size, log_partition)
                continuous = self._sample_continuous(zetas, batch_size)
            return pyro.sample(OBSERVED_SITE, self.decoder(broadcast_cat(zetas + continuous)), obs=x)

    def _sample_continuous(self, zetas: list[torch.Tensor], batch_size: int) -> list[torch.Tensor]:
        layers: list[torch.Tensor] = []
        for m, prior in enumerate(self.continuous_priors, start=1):
            name = continuous_site_name(m)
            value = pyro.sample(name, prior(broadcast_cat(zetas + layers)))
            check_latent_value(name, value, batch_size, prior.out_features)
            layers.append(value)
        return layers

    def sample(self, num_samples: int, **kwargs) -> dict[str, torch.Tensor]:
        r"""Ancestral samples :math:`(z, \zeta, \mathfrak z, x) \sim p`, keyed by site name (no gradient)."""
        with torch.no_grad():
            model_trace = prune_subsample_sites(
                poutine.trace(self).get_trace(num_samples=num_samples, **kwargs)
            )
        return {name: site["value"] for name, site in model_trace.nodes.items() if site["type"] == "sample"}


def sample_images(model: SmoothedVAE, num_samples: int, binary_limit: bool = True) -> torch.Tensor:
    r"""Pixel probabilities :math:`\mathbb E[x \mid \zeta, \mathfrak z]` of ``num_samples`` ancestral samples, shape (n, D).

    ``binary_limit=True`` (default) samples the model evaluated in the binary limit
    (:math:`\zeta = z`, the model whose likelihood is reported); ``False`` samples the
    smoothed model at its constructed :math:`\beta`.
    """
    with torch.no_grad():
        model_trace = poutine.trace(model).get_trace(num_samples=num_samples, binary_limit=binary_limit)
    return model_trace.nodes[OBSERVED_SITE]["fn"].mean


def binary_limit_pair(
    model: SmoothedVAE, guide: nn.Module, log_partition: torch.Tensor | float | None = None
) -> tuple[Callable, Callable]:
    r"""The pair at :math:`\beta = \infty` with the same parameters: ``(model_fn, guide_fn)``.

    In the binary limit (:class:`~pyro_dgm.distributions.BinaryLimit`) every smoother is
    :math:`\zeta = z`, so the model is the discrete :math:`p(z)\, p(\mathfrak z \mid z)\,
    p(x \mid z, \mathfrak z)` and the guide is :math:`q(z \mid x)\, q(\mathfrak z \mid x, z)`;
    importance weighting estimates its :math:`\log p(x)` (DVAE++ Sec. 7: "all models are
    evaluated in the binary limit")::

        model_fn, guide_fn = binary_limit_pair(model, guide)
        log_likelihood(model_fn, guide_fn, x_test, num_samples=1000).log_likelihood.mean()

    :param log_partition: an RBM prior's :math:`\log Z` (e.g. from AIS, for an RBM too big
        to enumerate); by default the exact value, computed once here and fixed instead of
        once per traced model call.
    """
    model_kwargs = model.binary_limit_kwargs()
    if log_partition is not None:
        model_kwargs["log_partition"] = log_partition
    model_fn = functools.partial(model, binary_limit=True, **model_kwargs)
    guide_fn = functools.partial(guide, binary_limit=True)
    return model_fn, guide_fn

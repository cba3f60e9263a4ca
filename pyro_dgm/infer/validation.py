"""Strict checks that a guide fits its model, with errors that name the site.

Pyro's own :func:`pyro.util.check_model_guide_match` only *warns* when a latent
site of the model is missing from the guide (the model then silently samples it
from its prior, which biases every importance weight) or when the guide has a site
the model lacks. For importance-weighted objectives both are errors, so we raise.
"""

from __future__ import annotations

import math

import torch
from pyro.poutine import Trace


def _latent_sites(trace: Trace) -> dict[str, dict]:
    return {
        name: site
        for name, site in trace.nodes.items()
        if site["type"] == "sample"
        and not site["is_observed"]
        and type(site["fn"]).__name__ != "_Subsample"
    }


def check_guide_covers_model(model_trace: Trace, guide_trace: Trace) -> None:
    """Raise :class:`ValueError` unless the guide samples exactly the model's latent sites.

    Checks, naming the offending site in the message:

    1. every unobserved sample site of the model is sampled by the guide;
    2. every sample site of the guide is a latent site of the model, unless it is
       marked ``infer={"is_auxiliary": True}``;
    3. at each shared site the guide's value has the shape the model's distribution
       expects (``batch_shape + event_shape`` after broadcasting over plates).
    """
    model_latents = _latent_sites(model_trace)
    guide_sites = _latent_sites(guide_trace)
    missing = [name for name in model_latents if name not in guide_sites]
    if missing:
        raise ValueError(
            f"the guide does not sample the model's latent site(s) {missing}: every "
            "unobserved site of the model needs a guide site of the same name"
        )
    extra = [
        name
        for name, site in guide_sites.items()
        if name not in model_latents and not site["infer"].get("is_auxiliary")
    ]
    if extra:
        observed = [n for n in extra if n in model_trace.nodes]
        detail = (
            f" ({observed} are observed in the model)" if observed else ""
        )
        raise ValueError(
            f"the guide samples site(s) {extra} that are not latent sites of the "
            f"model{detail}; mark guide-only sites infer={{'is_auxiliary': True}}"
        )
    for name, model_site in model_latents.items():
        fn = model_site["fn"]
        expected = tuple(fn.batch_shape + fn.event_shape)
        actual = tuple(guide_sites[name]["value"].shape)
        try:
            compatible = torch.broadcast_shapes(actual, expected) == actual
        except RuntimeError:
            compatible = False
        if not compatible:
            raise ValueError(
                f"shape mismatch at site '{name}': the guide's value has shape "
                f"{actual} but the model's distribution there has shape {expected} "
                f"(batch {tuple(fn.batch_shape)} + event {tuple(fn.event_shape)})"
            )


class ObservedDataError(ValueError):
    """Observed data that no model can score: an empty batch, or NaN / infinite values."""


def check_observed_data(data: torch.Tensor, site: str = "x", batch: str = "") -> None:
    """Raise :class:`ObservedDataError`, naming ``site`` and the data point, unless ``data`` is a finite, non-empty batch.

    Checked where data enters inference, before any guide sees it: otherwise a NaN
    surfaces as invalid logits of the guide's first layer, and an empty batch as a
    division by zero in Pyro's subsample scaling.

    :param data: shape (B, ...), data points along dim 0.
    :param batch: which batch this is, for the message (e.g. ``"training batch 3 of epoch 1"``).
    """
    where = f"observed site '{site}'" + (f", {batch}" if batch else "")
    if data.dim() == 0 or data.size(0) == 0:
        raise ObservedDataError(f"{where}: empty batch (shape {tuple(data.shape)}): there is no data point to score")
    finite = torch.isfinite(data)
    if not finite.all():
        bad = (~finite).flatten(1).any(1) if data.dim() > 1 else ~finite
        index = int(bad.nonzero()[0])
        value = data[index][~finite[index]].flatten()[0].item()
        raise ObservedDataError(
            f"{where}: data point {index} holds {'NaN' if math.isnan(value) else value} ({int(bad.sum())} of {data.size(0)} data points are not finite)"
        )

"""Strict checks that a guide fits its model, with errors that name the site.

Pyro's own :func:`pyro.util.check_model_guide_match` only *warns* when a latent
site of the model is missing from the guide (the model then silently samples it
from its prior, which biases every importance weight) or when the guide has a site
the model lacks. For importance-weighted objectives both are errors, so we raise.
"""

from __future__ import annotations

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

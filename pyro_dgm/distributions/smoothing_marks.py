r"""The mark a model puts on a site :math:`\zeta \sim r(\zeta \mid z)` that smooths a binary site.

Models write ``infer=smooths("z", units)`` on the smoothed site; the DVAE/DVAE++
objectives (:mod:`pyro_dgm.infer.objectives.smoothed_latents`) read it to pair each group of
:math:`\zeta` with the binary units it smooths. It lives here, beside the smoothing
transformations, so that models can mark their sites without importing any objective.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

SMOOTHS = "smooths"
"""Key of a model site's ``infer`` dict: the name of the binary site it smooths."""

UNITS = "units"
"""Key of a model site's ``infer`` dict: which units (last dim) of that site; all if absent."""

Units = slice | Sequence[int] | torch.Tensor | None


def smooths(site: str, units: Units = None) -> dict:
    """The ``infer`` dict that marks a model site as :math:`\\zeta \\sim r(\\zeta \\mid z[..., units])`.

    :param site: name of the binary prior site whose units this site smooths.
    :param units: which units of that site (a slice or indices into its last
        dimension); ``None``: all of them.
    """
    return {SMOOTHS: site, UNITS: units}

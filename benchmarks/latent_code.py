r"""How much of its binary latent code a smoothed model uses: measured on a set of images.

With :math:`q_{nu} = q(z_u = 1 \mid x_n)` the guide's posterior in the binary limit (the
distribution the test :math:`\log p(x)` samples from), over images :math:`x_n`:

* **active units** — units with :math:`\operatorname{Cov}_n(q_{nu}) \ge 10^{-2}` (Burda et al.
  2016, Sec. 5.2, with :math:`\mathbb E_q[z_u] = q_u`;
  :func:`pyro_dgm.diagnostics.bvae_metrics.active_units`): the units whose posterior mean
  moves with the image;
* **units on** — :math:`\frac1N \sum_n \sum_u q_{nu}`, the expected number of units at 1;
* **posterior entropy** — :math:`\frac1N \sum_n \sum_u H(q_{nu})` in nats;
* for an RBM prior (DVAE++ Eq. 1, :math:`E(z) = -a^\top z - z_1^\top W z_2`), its mean bias
  and weight standard deviation.

A code that stops being used (fewer active units, fewer units on) lowers the test
:math:`\log p(x)` although the training objective may still be optimised. The learning
curve of every smoothed row records these (:func:`benchmarks.evaluation.smoothed_curve_log_likelihood`),
and :mod:`benchmarks.latent_usage` measures a trained run folder.
"""

from __future__ import annotations

import pyro
import torch

from pyro_dgm.diagnostics.bvae_metrics import active_units
from pyro_dgm.distributions.independent_bernoulli import bernoulli_entropy


def posterior_logits(guide: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\operatorname{logit} q(z_u = 1 \mid x)` of every smoothed unit, shape (N, units): the guide
    run once in the binary limit, each smoothed site's logits concatenated in site order."""
    with torch.no_grad(), pyro.validation_enabled(False):
        trace = pyro.poutine.trace(guide).get_trace(x, binary_limit=True)
    logits = []
    for site in trace.nodes.values():
        if site["type"] != "sample" or site["is_observed"]:
            continue
        distribution = site["fn"]
        base = getattr(distribution, "base_dist", distribution)
        if hasattr(base, "posterior_probs"):  # a smoother (here its binary limit), not the derived z sites
            logits.append(base.logits.expand(x.size(0), -1))
    if not logits:
        raise ValueError(f"the guide {type(guide).__name__} has no smoothed latent site")
    return torch.cat(logits, dim=-1)


def usage(logits: torch.Tensor) -> dict[str, float]:
    """Active units, expected units on and posterior entropy (module docstring) from (N, units) logits."""
    probs = torch.sigmoid(logits)
    return {
        "units": float(probs.size(-1)),
        "active_units": float(active_units(probs)),
        "units_on": probs.sum(dim=-1).mean().item(),
        "posterior_entropy": bernoulli_entropy(logits).sum(dim=-1).mean().item(),
    }


def prior_summary(model: torch.nn.Module) -> dict[str, float]:
    """Mean bias and weight standard deviation of the model's RBM prior."""
    rbm = model.prior()
    biases = torch.cat([rbm.bias1, rbm.bias2])
    return {"rbm_mean_bias": biases.mean().item(), "rbm_weight_sd": rbm.weight.std().item()}

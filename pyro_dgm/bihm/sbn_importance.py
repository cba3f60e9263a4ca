r"""Importance-weighted :math:`\log p(x)` and :math:`\log \tilde p^*(x)` of a sigmoid belief net, fast.

:func:`~pyro_dgm.infer.log_likelihood` scores any Pyro model/guide pair through traces.
For the Helmholtz pair of a :class:`~pyro_dgm.models.sbn.SigmoidBeliefNet` :math:`p`
and a :class:`~pyro_dgm.models.sbn_guides.BottomUpGuide` :math:`q` this module computes
the same log-weights on the modules' weight matrices (the
:class:`~pyro_dgm.bihm.sbn_partition.SigmoidBeliefStack`), without tracing, so the
:math:`10^4` samples per test example that the UCI protocol asks for stay cheap.

For each example :math:`x_b` and :math:`h_k \sim q(h \mid x_b)`, drawn bottom-up,

.. math::

    \log w_{k,b} = \log p(x_b, h_k) - \log q(h_k \mid x_b), \qquad
    \log \mathcal B(h \mid \sigma(a)) = -\sum_i \operatorname{softplus}((1 - 2h_i)\,a_i),

and from running :math:`\log \sum_k w_k^{a}` (:class:`StreamingLogPowerSums`):

* :math:`\log \hat p(x_b) = \log \frac1K \sum_k w_{k,b}` (BiHM Eq. 5);
* :math:`\log \hat{\tilde p}{}^*(x_b) = 2 \log \frac1K \sum_k \sqrt{w_{k,b}}` (BiHM Eq. 4);
* Kish's ESS of :math:`w` and of BiHM's weights :math:`\sqrt w` (Sec. 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pyro_dgm.bihm.sbn_partition import SOFTPLUS_THRESHOLD, SigmoidBeliefStack
from pyro_dgm.infer.estimators.log_likelihood import StreamingLogPowerSums, iter_chunks
from pyro_dgm.infer.objectives.bihm import BHATTACHARYYA_POWER
from pyro_dgm.models.sbn import SigmoidBeliefNet, check_data
from pyro_dgm.models.sbn_guides import BottomUpGuide

MAX_ROWS_PER_PASS = 8192
"""Rows (samples x examples) of one vectorised pass: buffers of a few MB stay in cache; measured
on this CPU, 200 x 1000 rows at once ran ~5x slower per sample than passes of ~8k rows."""

ACCUMULATED_POWERS = (BHATTACHARYYA_POWER, 1.0, 2.0)
r"""Powers :math:`a` of :math:`\sum_k w_k^a` kept: :math:`\tfrac12` and 1 for :math:`\tilde p^*` and
:math:`p` and the ESS of :math:`\sqrt w`; 2 for the ESS of :math:`w`."""


def bernoulli_log_prob(logits: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_i \log \mathcal B(h_i \mid \sigma(a_i)) = -\sum_i \operatorname{softplus}((1 - 2h_i) a_i)`."""
    signed = torch.addcmul(logits, value, logits, value=-2.0)
    return -torch.nn.functional.softplus(signed, threshold=SOFTPLUS_THRESHOLD).sum(dim=-1)


def sbn_log_weights(stack: SigmoidBeliefStack, x: torch.Tensor, num_samples: int) -> torch.Tensor:
    r"""(K, B) log-weights :math:`\log p(x_b, h_k) - \log q(h_k \mid x_b)`, :math:`h_k \sim q(h \mid x_b)`.

    Draws from torch's global generator (``pyro.set_rng_seed`` fixes them).
    """
    batch = x.shape[0]
    rows = x.unsqueeze(0).expand(num_samples, batch, x.shape[-1]).reshape(num_samples * batch, -1)
    log_weights = torch.zeros(num_samples * batch, dtype=x.dtype, device=x.device)
    states = [rows]
    for recognition in stack.recognition:  # h_l ~ q(h_l | h_{l-1}) bottom-up
        logits = torch.addmm(recognition.bias, states[-1], recognition.weight)
        h = (torch.rand_like(logits) < torch.sigmoid(logits)).to(logits.dtype)
        log_weights -= bernoulli_log_prob(logits, h)
        states.append(h)
    prior = stack.prior_logits.expand(num_samples * batch, -1)
    log_weights += bernoulli_log_prob(prior, states[-1])
    for layer, generative in enumerate(stack.generative):  # p(h_l | h_{l+1}), h_0 = x
        logits = torch.addmm(generative.bias, states[layer + 1], generative.weight)
        log_weights += bernoulli_log_prob(logits, states[layer])
    return log_weights.view(num_samples, batch)


@dataclass
class SBNImportanceEstimate:
    r"""Per-example estimates from one set of K guide samples, shape (B,) each.

    :ivar log_likelihood: :math:`\log \frac1K \sum_k w_k` (BiHM Eq. 5).
    :ivar log_p_tilde_star: :math:`2 \log \frac1K \sum_k \sqrt{w_k}` (BiHM Eq. 4).
    :ivar effective_sample_size: Kish's ESS of :math:`w`.
    :ivar bihm_effective_sample_size: Kish's ESS of :math:`\sqrt w` (BiHM Sec. 4.1).
    :ivar num_samples: K.
    """

    log_likelihood: torch.Tensor
    log_p_tilde_star: torch.Tensor
    effective_sample_size: torch.Tensor
    bihm_effective_sample_size: torch.Tensor
    num_samples: int


def sbn_importance_estimate(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    x: torch.Tensor,
    num_samples: int,
    chunk_size: int | None = None,
    progress: bool = False,
) -> SBNImportanceEstimate:
    """Importance-weighted estimates for every row of ``x`` (see the module docstring), in chunks of samples.

    ``chunk_size``: guide samples per pass (default: as many as keep a pass within
    :data:`MAX_ROWS_PER_PASS` rows).
    """
    check_data(x, model.layer_sizes[0], model)
    if chunk_size is None:
        chunk_size = max(1, min(num_samples, MAX_ROWS_PER_PASS // x.shape[0]))
    stack = SigmoidBeliefStack.from_modules(model, guide)
    sums = StreamingLogPowerSums(ACCUMULATED_POWERS)
    with torch.inference_mode():
        for size in iter_chunks(num_samples, chunk_size, progress, "importance samples"):
            sums.update(sbn_log_weights(stack, x.to(stack.prior_logits), size))
        return SBNImportanceEstimate(
            log_likelihood=sums.log_mean(1.0),
            log_p_tilde_star=sums.log_mean(BHATTACHARYYA_POWER) / BHATTACHARYYA_POWER,
            effective_sample_size=sums.effective_sample_size(1.0),
            bihm_effective_sample_size=sums.effective_sample_size(BHATTACHARYYA_POWER),
            num_samples=num_samples,
        )

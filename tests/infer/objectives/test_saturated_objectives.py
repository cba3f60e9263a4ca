"""The smoothed objectives in float32 with saturated guide logits and uniform draws at 0 or 1.

sigma(logit) rounds to 1 in float32 above ~16.6, and rho = 0 is drawn about once in 2^24
uniforms: Rolfe's Eq. (31) weight (1 - z)/(1 - q) was then 0/0 and the whole gradient NaN.
Every guide unit here sits at one saturated logit and every uniform draw is forced to one
end of [0, 1), so each (smoother, objective) pair meets the rare case on every unit.
"""

from __future__ import annotations

from functools import partial

import pyro
import pytest
import torch

from pyro_dgm.infer.objectives.dvae import DVAEELBO
from pyro_dgm.infer.objectives.dvae_pp import DVAEPlusPlusELBO
from pyro_dgm.models.dvae_smoothing import SMOOTHERS, is_spike, is_tempered
from tests.distributions.test_smoother_saturation import BETA, RHO_EXTREMES, SATURATED_LOGITS
from tests.infer.smoothed_models import TinySmoothedRBM, tiny_data

PAIRS = [(name, DVAEELBO if is_spike(name) else DVAEPlusPlusELBO) for name in SMOOTHERS if name != "binary_limit"]


def _forced_uniform(fill: float):
    """``torch.rand`` that returns ``fill`` everywhere (the smoothers draw rho with it)."""

    def rand(*shape, dtype=None, device=None, **kwargs):
        size = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return torch.full(size, fill, dtype=dtype or torch.get_default_dtype(), device=device)

    return rand


@pytest.mark.filterwarnings("ignore:the smoothers of site .z. have posterior probabilities of exactly 0 or 1")  # nu saturates too
@pytest.mark.parametrize("rho", [RHO_EXTREMES[0], RHO_EXTREMES[-1]], ids=["rho=0", "rho=1-ulp"])
@pytest.mark.parametrize("logit", [value for value in SATURATED_LOGITS if value != 0] + [-value for value in SATURATED_LOGITS if value != 0])
@pytest.mark.parametrize("smoother, objective", PAIRS, ids=[name for name, _ in PAIRS])
def test_loss_and_gradient_are_finite_when_saturated(monkeypatch, smoother, objective, logit, rho):
    family = SMOOTHERS[smoother]
    tiny = TinySmoothedRBM(smoother=partial(family, BETA) if is_tempered(smoother) else family, dtype=torch.float32)
    with torch.no_grad():
        for weight, bias in zip(tiny.encoder_weights, tiny.encoder_biases):
            weight.zero_()
            bias.fill_(logit)
    pyro.clear_param_store()
    monkeypatch.setattr(torch, "rand", _forced_uniform(rho))
    loss = objective(log_partition_gradient="exact").loss_and_grads(tiny.model, tiny.guide, tiny_data().float())
    assert torch.isfinite(torch.tensor(loss))
    for name, parameter in tiny.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name

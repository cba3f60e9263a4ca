"""Training checks: SVI with an objective must improve TinySBN's exact likelihood."""

from __future__ import annotations

import math

from pyro.infer import SVI
from pyro.optim import Adam

from tests.infer.exact_expectations import exact_negative_log_likelihood
from tests.infer.small_models import TinySBN, distinct_binary_data


def assert_svi_improves_the_exact_likelihood(objective, num_steps: int = 150) -> None:
    """SVI on six points: every loss a finite float, and the exact -log p(x) drops by > 1 nat."""
    sbn = TinySBN()
    data = distinct_binary_data(6)
    svi = SVI(sbn.model, sbn.guide, Adam({"lr": 0.05}), loss=objective)
    before = exact_negative_log_likelihood(sbn, data)
    losses = [svi.step(data) for _ in range(num_steps)]
    after = exact_negative_log_likelihood(sbn, data)
    assert all(isinstance(loss, float) and math.isfinite(loss) for loss in losses)
    assert after < before - 1.0, (before, after)

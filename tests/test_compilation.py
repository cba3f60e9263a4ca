"""pyro_dgm.compilation: compiling a kernel leaves torch's distribution validation as it was."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FRESH_PROCESS = textwrap.dedent(
    """
    import torch
    from torch.distributions import Bernoulli
    from pyro_dgm import compilation

    @compilation.fused
    def double(values):
        return 2 * values

    torch.distributions.Distribution.set_default_validate_args(True)
    compilation.MIN_COMPILED_ELEMENTS = 0
    assert torch.equal(double(torch.ones(5)), 2 * torch.ones(5))
    assert torch.distributions.Distribution._validate_args, "validation switched off"
    try:
        Bernoulli(logits=torch.tensor(float("nan")))
    except ValueError:
        print("validated")
    """
)


def test_compiling_a_kernel_keeps_distribution_validation_on():
    """In a fresh process, since Dynamo changes the default only the first time it runs."""
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "validated"

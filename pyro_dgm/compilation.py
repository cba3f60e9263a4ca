r"""Small element-wise kernels compiled once with ``torch.compile``, or run eagerly where that fails.

Passes over large tensors that torch would run as several separate operations
(e.g. sampling and scoring a Bernoulli layer) become one loop each when compiled
by Inductor (a vectorised C++ loop on the CPU, a Triton kernel on CUDA). :func:`fused` compiles a
function on first use with symbolic shapes, so one compilation serves every size.
If compilation is unavailable (no C++ compiler, an unsupported platform) or
switched off (:func:`set_compilation`, or the environment variable
``PYRO_DGM_COMPILE=0``), the same function runs eagerly: same results, slower.

Dynamo, when it first runs, switches torch's default distribution validation off
for the whole process (``torch._dynamo.eval_frame``); :func:`fused` puts the
previous setting back after every compiled call, so compiling our kernels never
silently disables a user's (or Pyro's) validation.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import TypeVar

import torch

COMPILE_ENVIRONMENT_VARIABLE = "PYRO_DGM_COMPILE"
"""Set to ``0`` to run the kernels eagerly (e.g. where no C++ compiler exists)."""

_compilation_enabled = os.environ.get(COMPILE_ENVIRONMENT_VARIABLE, "1") != "0"

Kernel = TypeVar("Kernel", bound=Callable[..., object])


def set_compilation(enabled: bool) -> None:
    """Compile the kernels (``True``, the default) or run them eagerly (``False``)."""
    global _compilation_enabled
    _compilation_enabled = bool(enabled)


def compilation_enabled() -> bool:
    """Whether the kernels are compiled (see :func:`set_compilation`)."""
    return _compilation_enabled


MIN_COMPILED_ELEMENTS = 1 << 14
"""Operands smaller than this run eagerly: a compiled call costs tens of microseconds
of Python and guards, more than the pass it saves, and small sizes (0 and 1
especially) would each cost a recompilation."""


MAX_WARNING_LINES = 3
"""Lines of a compiler error quoted in the fallback warning (Inductor's errors carry the whole compiler output)."""


def _error_summary(error: BaseException) -> str:
    """``error``'s first :data:`MAX_WARNING_LINES` non-empty lines, and how many were left out."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    summary = " ".join(lines[:MAX_WARNING_LINES])
    left_out = len(lines) - MAX_WARNING_LINES
    return f"{summary} [... {left_out} more lines]" if left_out > 0 else summary


def fused(kernel: Kernel) -> Kernel:
    """Run ``kernel`` compiled with symbolic shapes when its first operand is large.

    A kernel whose compilation fails (no C++ compiler, Dynamo's recompile limit, ...)
    warns once and runs eagerly from then on; the other kernels are unaffected.
    """
    state: dict[str, Callable[..., object] | None] = {"compiled": None, "failed": False}

    @functools.wraps(kernel)
    def run(*args: torch.Tensor) -> object:
        if not _compilation_enabled or state["failed"] or args[0].numel() < MIN_COMPILED_ELEMENTS:
            return kernel(*args)
        validation = torch.distributions.Distribution._validate_args
        try:
            if state["compiled"] is None:
                state["compiled"] = torch.compile(kernel, dynamic=True, fullgraph=True)
            return state["compiled"](*args)
        except Exception as error:  # noqa: BLE001 - any compiler failure means: run eagerly
            result = kernel(*args)  # bad arguments raise here too: then the kernel stays compiled
            state["failed"] = True
            warnings.warn(
                f"torch.compile failed for {kernel.__name__} ({type(error).__name__}: {_error_summary(error)}); "
                f"running it eagerly from now on: same results, slower. A C++ compile error can come from a "
                f"stale Inductor cache (TORCHINDUCTOR_CACHE_DIR, by default /tmp/torchinductor_<user>): remove it "
                f"to rebuild, or set {COMPILE_ENVIRONMENT_VARIABLE}=0 to skip compiling",
                RuntimeWarning,
                stacklevel=2,
            )
            return result
        finally:  # Dynamo switches torch's distribution validation off when it first runs
            torch.distributions.Distribution.set_default_validate_args(validation)

    run.eager = kernel  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]

r"""Binarisation of grey images :math:`p \in [0, 1]^D` into binary images :math:`x \in \{0, 1\}^D`.

Both schemes draw each pixel independently, :math:`x_d \sim \mathrm{Bernoulli}(p_d)`,
so :math:`\mathbb{E}[x_d] = p_d` and :math:`\mathrm{Var}[x_d] = p_d (1 - p_d)`
(Salakhutdinov & Murray, 2008, the origin of both binarised-MNIST protocols):

* **dynamic** — a fresh draw every time an image is used (every epoch); the model
  sees many binary versions of each image, a regulariser that the DVAE/IWAE
  literature uses for MNIST and Omniglot;
* **static** — one draw with a fixed seed, reused for the whole run (and across
  runs with the same seed), as in the fixed ``binarized_mnist`` files.
"""

from __future__ import annotations

import torch


def check_probabilities(probs: torch.Tensor, name: str = "probs") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``probs`` is a floating tensor in [0, 1] (NaN fails)."""
    if not isinstance(probs, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(probs).__name__}")
    if not probs.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor of pixel intensities, got {probs.dtype}")
    inside = (probs >= 0) & (probs <= 1)  # NaN compares False, so it is caught here too
    if not bool(inside.all()):
        bad = probs[~inside][0].item()
        raise ValueError(f"{name} must lie in [0, 1] (pixel intensities); found {bad}")


def dynamic_binarize(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One fresh draw :math:`x \sim \mathrm{Bernoulli}(p)`, elementwise, same dtype and device as ``probs``.

    ``generator`` (on the device of ``probs``) makes the draw reproducible; ``None``
    uses torch's global generator.
    """
    check_probabilities(probs)
    return torch.bernoulli(probs, generator=generator)


def static_binarize(probs: torch.Tensor, seed: int) -> torch.Tensor:
    r"""The draw :math:`x \sim \mathrm{Bernoulli}(p)` fixed by ``seed``: the same tensor on every call.

    The generator lives on the device of ``probs``; the same seed on the same device
    always gives the same binary images, independent of torch's global RNG state.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    generator = torch.Generator(device=probs.device if isinstance(probs, torch.Tensor) else "cpu")
    generator.manual_seed(seed)
    return dynamic_binarize(probs, generator)

r"""Total variation (TV) of a sampler's empirical law from the exact one, and its bound.

With n independent exact draws, the empirical TV exceeds

    TV_BOUND(p, n) = 1/2 sum_s sqrt(p_s (1 - p_s) / n)  +  sqrt(log(1 / false_alarm) / (2 n))

with probability at most ``false_alarm``: the first term bounds E[TV] (Jensen on each
|p-hat_s - p_s|), the second is McDiarmid's deviation (one draw moves TV by at most 1/n).
States of binary vectors are indexed by their most-significant-bit-first code, the order
of :func:`pyro_dgm.infer.estimators.exact.all_binary_configurations`.
"""

from __future__ import annotations

import math

import torch

FALSE_ALARM_PROBABILITY = 1e-6
"""Default chance that a correct sampler fails one total-variation check."""


def binary_codes(bits: torch.Tensor) -> torch.Tensor:
    """Most-significant-bit-first integer code of the last dim (the enumeration's order)."""
    weights = 2 ** torch.arange(bits.size(-1) - 1, -1, -1)
    return (bits.long() * weights).sum(-1)


def code_frequencies(codes: torch.Tensor, num_states: int) -> torch.Tensor:
    """Frequencies (float64) of the states 0 .. num_states - 1 among the integer ``codes``."""
    return torch.bincount(codes, minlength=num_states).double() / codes.numel()


def empirical_probabilities(samples: torch.Tensor) -> torch.Tensor:
    """Frequencies of the 2^n states (most significant bit first) among samples (N, n)."""
    return code_frequencies(binary_codes(samples), 2 ** samples.size(-1))


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    return 0.5 * (p - q).abs().sum().item()


def total_variation_threshold(
    probs: torch.Tensor, num_samples: int, false_alarm_probability: float = FALSE_ALARM_PROBABILITY
) -> float:
    """TV_BOUND(probs, num_samples): exceeded with probability <= ``false_alarm_probability``."""
    expected = 0.5 * torch.sqrt(probs * (1 - probs) / num_samples).sum().item()
    deviation = math.sqrt(math.log(1 / false_alarm_probability) / (2 * num_samples))
    return expected + deviation

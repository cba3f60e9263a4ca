r"""How far one evaluated run is ahead of another on the same test images, paired over images.

Two rows of :mod:`benchmarks.reproduce` evaluated on the same test set keep their per-image
estimates :math:`\log \hat p_A(x_i)`, :math:`\log \hat p_B(x_i)` in their run folders'
``evaluation.pt``. Their difference is estimated image by image,

.. math::

    \bar d = \frac1n \sum_{i=1}^n d_i, \quad d_i = \log \hat p_A(x_i) - \log \hat p_B(x_i), \qquad
    \mathrm{s.e.}(\bar d) = \frac{\mathrm{sd}(d)}{\sqrt n},

which removes the images' own spread (each row's s.e. over images is about 0.25 nats on MNIST,
the paired one often 0.05). It measures the two trained models, one seed each: the spread of
training seeds is not in it. An RBM prior's :math:`\log Z` estimate shifts every image of its row
by the same amount, so its error (the result file's ``log_z_se``) is not in it either.

    python -m benchmarks.paired_difference \
        benchmarks/runs/dvaesharp_full_seed0/1_linear/dvae_sharp_power_k5 \
        benchmarks/runs/dvaesharp_full_seed0/1_linear/dvae_pp
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.evaluation import EVALUATION_FILE, standard_error


@dataclass(frozen=True)
class PairedDifference:
    r""":math:`\bar d` of A over B with its standard error, and the share of images on which A is ahead."""

    mean: float
    standard_error: float
    images: int
    share_ahead: float

    def line(self, first: str, second: str) -> str:
        return (f"{first} − {second}: {self.mean:+.2f} ± {self.standard_error:.2f} nats over {self.images:,} test images "
                f"(paired; ahead on {100 * self.share_ahead:.1f}% of them)")


def per_image_log_p(run_folder: Path) -> torch.Tensor:
    """The per-test-image log p(x) a finished evaluation kept in ``run_folder``."""
    path = run_folder / EVALUATION_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_folder}: no {EVALUATION_FILE} (the run's test evaluation has not finished there)")
    return torch.load(path, weights_only=True)["per_image_log_p"].double()


def paired_difference(first: torch.Tensor, second: torch.Tensor) -> PairedDifference:
    """:class:`PairedDifference` of two per-image estimates on the same images, in the same order."""
    if first.shape != second.shape or first.dim() != 1:
        raise ValueError(f"the two evaluations cover different test sets: {tuple(first.shape)} and {tuple(second.shape)} images")
    difference = first - second
    return PairedDifference(difference.mean().item(), standard_error(difference), difference.numel(),
                            (difference > 0).double().mean().item())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.paired_difference", description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="run folder A (with its evaluation.pt)")
    parser.add_argument("second", type=Path, help="run folder B, evaluated on the same test images")
    args = parser.parse_args(argv)
    try:
        result = paired_difference(per_image_log_p(args.first), per_image_log_p(args.second))
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    print(result.line(str(args.first), str(args.second)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

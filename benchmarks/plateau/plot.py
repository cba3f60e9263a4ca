"""Plot the per-epoch validation -ELBO curves written by ``benchmarks.plateau.confirm`` (docs/plateau.md).

``python -m benchmarks.plateau.plot OUT.png RUN.json [RUN.json ...]``
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PIXEL_MARGINAL_NATS = 206.7
"""The plateau: the training loss of the pixel-marginal model (docs/benchmarks.md)."""


def main(output: str, runs: list[str]) -> None:
    figure, axes = plt.subplots(figsize=(5, 3.5))
    for path in runs:
        run = json.load(open(path))
        points = [(p["epoch"], p["valid_neg_elbo"]) for p in run["curve"]]
        axes.plot(*zip(*points), marker="o", label=f"{run['network']} ({run['recipe']} init)")
    axes.axhline(PIXEL_MARGINAL_NATS, color="grey", linestyle=":", label="pixel-marginal model (plateau)")
    axes.set_xlabel("epoch (500 steps of 100 images)")
    axes.set_ylabel("validation -ELBO (nats)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

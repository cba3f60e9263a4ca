r"""How much of its binary latent code each trained RBM-prior row of :mod:`benchmarks.reproduce` uses.

For each run folder (``benchmarks/runs/<table>_<budget>_seed<k>/<group>/<method>``, DVAE++
Table 2 and the DVAE# comparison) it rebuilds the configuration, loads the folder's
``checkpoint.pt`` and prints, on the test images, the measurements of
:mod:`benchmarks.latent_code`: active units, units on, posterior entropy, and the RBM
prior's mean bias and weight standard deviation.

    python -m benchmarks.latent_usage benchmarks/runs/dvaepp2_full_seed0/1_linear/rbm_rolfe \
        benchmarks/runs/dvaepp2_full_seed0/1_linear/rbm_overlapping --data-root ../shared/data/binarized_mnist
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyro
import torch

from benchmarks.latent_code import posterior_logits, prior_summary, usage
from benchmarks.reproduce import build_smoothed_vae, load_images
from benchmarks.reproduce_configs import BUDGETS, budget_for
from pyro_dgm.cli.checkpoint import load_checkpoint
from pyro_dgm.cli.run_directory import CHECKPOINT_FILE

TABLES_WITH_RBM_ROWS = ("dvaepp2", "dvaesharp")
RUNS_DIRECTORY = re.compile(rf"^(?P<table>[a-z0-9]+)_(?P<budget>{'|'.join(BUDGETS)})_seed(?P<seed>\d+)$")


@dataclass(frozen=True)
class RunFolder:
    """Where :mod:`benchmarks.reproduce` keeps one configuration's checkpoint, and which one it is."""

    path: Path
    table: str
    budget: str
    num_layers: int
    network: str
    method: str

    @property
    def label(self) -> str:
        return f"{self.table} {self.num_layers} {self.network}/{self.method}"

    @classmethod
    def parse(cls, path: Path) -> "RunFolder":
        """``<table>_<budget>_seed<k>/<layers>_<network>/<method>``; ``ValueError`` names what does not fit."""
        path = Path(path)
        match = RUNS_DIRECTORY.match(path.parent.parent.name)
        layers, _, network = path.parent.name.partition("_")
        if match is None or match["table"] not in TABLES_WITH_RBM_ROWS or not layers.isdigit():
            raise ValueError(
                f"run folder {str(path)!r}: expected benchmarks/runs/<table>_<budget>_seed<k>/<layers>_<network>/"
                f"<method> with table one of {', '.join(TABLES_WITH_RBM_ROWS)} (e.g. "
                "benchmarks/runs/dvaepp2_full_seed0/1_linear/rbm_overlapping)")
        return cls(path, match["table"], match["budget"], int(layers), network, path.name)


def folder_usage(folder: RunFolder, test: torch.Tensor) -> dict[str, Any]:
    """Rebuild the folder's configuration, load its checkpoint, and measure it on ``test``."""
    budget = budget_for(folder.table, folder.budget)
    columns = {column.name: column for column in budget.columns}
    if folder.method not in columns:
        raise ValueError(f"run folder {str(folder.path)!r}: {folder.method!r} is not a method of {folder.table} "
                         f"({', '.join(columns)})")
    pyro.clear_param_store()  # each folder's modules register under the same names
    model, guide = build_smoothed_vae(columns[folder.method], test.size(-1), folder.num_layers,
                                      budget.units_per_layer, folder.network, budget.beta_start)
    checkpoint = load_checkpoint(folder.path / CHECKPOINT_FILE, map_location="cpu")
    model.load_state_dict(checkpoint["modules"]["model"])
    guide.load_state_dict(checkpoint["modules"]["guide"])
    return {"run": folder.label, "step": checkpoint["step"], **usage(posterior_logits(guide, test)),
            **prior_summary(model)}


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| run | step | units | active | units on | posterior entropy, nats | RBM mean bias | RBM weight sd |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {row['run']} | {row['step']:,} | {row['units']:.0f} | {row['active_units']:.0f} | "
              f"{row['units_on']:.1f} | {row['posterior_entropy']:.1f} | {row['rbm_mean_bias']:.2f} | "
              f"{row['rbm_weight_sd']:.3f} |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latent_usage", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="run folders of RBM-prior rows (with checkpoint.pt)")
    parser.add_argument("--data-root", default=None, help="folder with the papers' static binarised MNIST")
    args = parser.parse_args(argv)
    rows, tests = [], {}
    try:  # a folder that does not fit, names no method of its table, or has no readable checkpoint
        for folder in [RunFolder.parse(path) for path in args.folders]:
            if folder.budget not in tests:
                tests[folder.budget] = load_images(budget_for(folder.table, folder.budget).data, args.data_root,
                                                   torch.device("cpu")).test
            rows.append(folder_usage(folder, tests[folder.budget]))
    except (ValueError, FileNotFoundError) as error:  # RunFolderError is a ValueError
        parser.error(str(error))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

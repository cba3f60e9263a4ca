r"""pyro_dgm's RBM block Gibbs and AIS against the RBM libraries people use: ``rbms`` and ``dwave-pytorch-plugin``.

The peers are an optional extra, never needed by the package or its tests::

    pip install -e ".[bench]"
    OMP_NUM_THREADS=1 python -m benchmarks.peers --output benchmarks/results/peers.json

All libraries run in one process on one torch thread, on the *same* RBM parameters:

* ``rbms`` (``BBRBM``) has our energy :math:`E = -a_1^\top v - a_2^\top h - v^\top W h`
  with :math:`v = z_1`, :math:`h = z_2`: the parameters map one to one.
* ``dwave-pytorch-plugin`` (``GraphRestrictedBoltzmannMachine``) is an Ising model on spins
  :math:`s = 2z - 1` with :math:`p(s) \propto e^{-H(s)}`, :math:`H(s) = \sum_i h_i s_i +
  \sum_{(i,j)} J_{ij} s_i s_j`. Substituting :math:`z = (s + 1)/2` into :math:`-E`:

  .. math::

      h_1 = -\tfrac12 a_1 - \tfrac14 W \mathbf 1, \quad
      h_2 = -\tfrac12 a_2 - \tfrac14 W^\top \mathbf 1, \quad
      J_{ij} = -\tfrac14 W_{ij}, \qquad
      \log Z = \log Z_{\text{Ising}} + \textstyle\sum_{ij} J_{ij} - \sum_i h_i .

:func:`check_mapping` verifies both maps on a 6 + 5 RBM before anything is timed: the
exact :math:`\log Z` of each library (by enumeration) and both conditionals
:math:`p(z_2 \mid z_1)`, :math:`p(z_1 \mid z_2)` must equal ours.

**Block Gibbs** (:func:`gibbs_table`): chain-sweeps per second of each library on
persistent chains, interleaved repeats (the order rotates), each block long enough for
the clock; the ratio is the median of the paired time ratios pyro_dgm / peer (below 1:
pyro_dgm is faster). The *floor* is the two GEMMs of a sweep alone
(:math:`Z_1 W` and :math:`Z_2 W^\top` into preallocated outputs); "floor fraction" is
floor time / pyro_dgm time.

**AIS** (:func:`ais_table`): :math:`\log Z` of 20 + 20 RBMs (exact value known) with weak
and strong couplings, at equal budget :math:`N` chains :math:`\times K` temperatures
(linear in :math:`\beta`, one sweep each), repeated with fresh seeds: bias, spread (sd)
and root-mean-square error against the exact value, and time per run. On a 100 + 100
RBM the estimates are compared with each other. ``dwave-pytorch-plugin`` has no AIS.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pyro_dgm.distributions.binary_states import all_binary_configurations
from pyro_dgm.distributions.gibbs import block_gibbs
from pyro_dgm.distributions.rbm import RBM, exact_log_partition
from pyro_dgm.infer.estimators.ais import annealed_importance_sampling

PEERS = ("rbms", "dwave-pytorch-plugin")
"""The distributions compared against, as pip names them."""

MAPPING_UNITS = (6, 5)
"""The RBM on which the parameter maps are checked: 2^11 states, enumerated by every library."""

MAPPING_TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-5}
"""log Z and probabilities agree to rounding: dwave keeps its parameters in float32."""

GIBBS_ROWS = ((100, 100, 100), (100, 100, 1000), (392, 200, 100), (392, 200, 1000))
"""(n1, n2, chains) of issue 13's table: a DVAE++ RBM prior, and an MNIST-sized RBM."""

WEIGHT_SCALE = 0.1
"""Gibbs benchmark parameters: weights and biases N(0, 0.1^2), as a freshly initialised prior."""

AIS_UNITS = 20
"""Each side of the AIS accuracy RBMs: enumerable, so the exact log Z is known."""

AIS_CASES = {"weak": (0.1, 1.0), "strong": (1.0, 0.5)}
"""Coupling regime -> (weight sd, bias sd) of the 20 + 20 AIS RBMs."""

AGREEMENT_UNITS = 100
"""Each side of the RBM on which the AIS estimates are only compared with each other."""

SEED = 0


@dataclass(frozen=True)
class Budget:
    repeats: int
    min_block_seconds: float
    ais_chains: int
    ais_temperatures: int
    ais_repeats: int


BUDGETS = {
    "tiny": Budget(repeats=2, min_block_seconds=0.0, ais_chains=16, ais_temperatures=20, ais_repeats=2),
    "small": Budget(repeats=5, min_block_seconds=0.2, ais_chains=100, ais_temperatures=1000, ais_repeats=10),
    "full": Budget(repeats=11, min_block_seconds=0.5, ais_chains=100, ais_temperatures=1000, ais_repeats=30),
}


def peer_versions() -> dict[str, str | None]:
    """Installed version of each peer, ``None`` when it is not installed."""
    versions = {}
    for name in PEERS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def random_parameters(n1: int, n2: int, weight_sd: float, bias_sd: float, dtype: torch.dtype, seed: int):
    generator = torch.Generator().manual_seed(seed)
    return (
        bias_sd * torch.randn(n1, generator=generator, dtype=dtype),
        bias_sd * torch.randn(n2, generator=generator, dtype=dtype),
        weight_sd * torch.randn(n1, n2, generator=generator, dtype=dtype),
    )


# ----- the parameter maps --------------------------------------------------------------------


def to_rbms(bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor):
    """``rbms``' Bernoulli-Bernoulli RBM with our parameters: visible = block 1, hidden = block 2."""
    from rbms.bernoulli_bernoulli.classes import BBRBM

    return BBRBM(weight_matrix=weight.clone(), vbias=bias1.clone(), hbias=bias2.clone())


def to_dwave(bias1: torch.Tensor, bias2: torch.Tensor, weight: torch.Tensor):
    r"""The Ising model of ``dwave-pytorch-plugin`` with our RBM's law (module docstring).

    :returns: ``(grbm, log_z_offset)``: nodes ``0 .. n1-1`` are block 1; :math:`\log Z`
        of our RBM is the Ising model's plus ``log_z_offset``.
    """
    from dwave.plugins.torch.models.boltzmann_machine import GraphRestrictedBoltzmannMachine

    n1, n2 = weight.shape
    linear1 = -(bias1 / 2 + weight.sum(1) / 4)
    linear2 = -(bias2 / 2 + weight.sum(0) / 4)
    quadratic = -weight / 4
    edges = [(i, n1 + j) for i in range(n1) for j in range(n2)]
    linear = {node: value for node, value in enumerate(torch.cat([linear1, linear2]).tolist())}
    grbm = GraphRestrictedBoltzmannMachine(
        nodes=range(n1 + n2),
        edges=edges,
        linear=linear,
        quadratic={(i, j): quadratic[i, j - n1].item() for i, j in edges},
    )
    log_z_offset = (quadratic.sum() - linear1.sum() - linear2.sum()).item()
    return grbm, log_z_offset


def dwave_sampler(grbm, num_units1: int, num_chains: int, num_sweeps: int):
    """dwave's ``BlockSampler`` with the two RBM blocks as its colours, ``num_sweeps`` at beta = 1."""
    from dwave.plugins.torch.samplers import BlockSampler

    return BlockSampler(
        grbm, lambda node: 0 if node < num_units1 else 1, num_chains, schedule=[1.0] * num_sweeps, seed=SEED
    )


def check_mapping() -> dict[str, float]:
    """Exact log Z and both conditionals of each peer against ours on a 6 + 5 RBM; raise if they differ.

    :returns: the largest absolute difference of each quantity.
    """
    n1, n2 = MAPPING_UNITS
    bias1, bias2, weight = random_parameters(n1, n2, 1.0, 1.0, torch.float64, SEED)
    rbm = RBM(bias1, bias2, weight)
    z1 = all_binary_configurations(n1, torch.float64)
    z2 = all_binary_configurations(n2, torch.float64)
    probs2, probs1 = torch.sigmoid(rbm._field2(z1)), torch.sigmoid(rbm._field1(z2))  # p(z2=1|z1), p(z1=1|z2)
    log_z = exact_log_partition(bias1, bias2, weight).item()
    differences: dict[str, float] = {}
    versions = peer_versions()

    if versions["rbms"] is not None:
        from rbms.bernoulli_bernoulli.implement import _sample_hiddens, _sample_visibles
        from rbms.partition_function.exact import compute_partition_function

        peer = to_rbms(bias1, bias2, weight)
        differences["rbms log Z"] = abs(compute_partition_function(peer, z1) - log_z)
        _, hidden_probs = _sample_hiddens(z1, peer.weight_matrix, peer.hbias)
        _, visible_probs = _sample_visibles(z2, peer.weight_matrix, peer.vbias)
        differences["rbms p(z2|z1)"] = (hidden_probs - probs2).abs().max().item()
        differences["rbms p(z1|z2)"] = (visible_probs - probs1).abs().max().item()

    if versions["dwave-pytorch-plugin"] is not None:
        grbm, offset = to_dwave(bias1, bias2, weight)
        spins = 2 * all_binary_configurations(n1 + n2, torch.float32) - 1
        with torch.no_grad():
            ising_log_z = torch.logsumexp(-grbm(spins).double(), 0).item()
        differences["dwave log Z"] = abs(ising_log_z + offset - log_z)
        for given, probs, block, name in ((z1, probs2, 1, "dwave p(z2|z1)"), (z2, probs1, 0, "dwave p(z1|z2)")):
            sampler = dwave_sampler(grbm, n1, given.size(0), 1)
            state = torch.ones(given.size(0), n1 + n2)  # the block to draw is overwritten by the field
            columns = slice(0, n1) if block == 1 else slice(n1, n1 + n2)
            state[:, columns] = 2 * given.float() - 1
            sampler._x.data.copy_(state)
            field = sampler._compute_effective_field(sampler._partition[block])
            spin_up = torch.sigmoid(-2 * field)  # BlockSampler._gibbs_update at beta = 1
            differences[name] = (spin_up.double() - probs).abs().max().item()

    for name, difference in differences.items():
        tolerance = MAPPING_TOLERANCE[torch.float32 if name.startswith("dwave") else torch.float64]
        if not difference <= tolerance:
            raise AssertionError(f"parameter map broken: {name} differs by {difference:.3g} (> {tolerance})")
    return differences


# ----- block Gibbs throughput ------------------------------------------------------------------


def gibbs_runners(n1: int, n2: int, num_chains: int) -> dict[str, Callable[[int], None]]:
    """For each library, ``run(num_sweeps)`` advancing its persistent chains; plus the GEMM floor."""
    bias1, bias2, weight = random_parameters(n1, n2, WEIGHT_SCALE, WEIGHT_SCALE, torch.float32, SEED)
    generator = torch.Generator().manual_seed(SEED)
    start = torch.randint(0, 2, (num_chains, n1), generator=generator).float()
    rbm = RBM(bias1, bias2, weight)
    state = {"pyro_dgm": start}

    def pyro_dgm(num_sweeps: int) -> None:
        state["pyro_dgm"], _ = block_gibbs(rbm, state["pyro_dgm"], num_sweeps)

    weight_transposed = weight.T.contiguous()
    floor_out2, floor_out1 = torch.empty(num_chains, n2), torch.empty(num_chains, n1)

    def floor(num_sweeps: int) -> None:
        for _ in range(num_sweeps):
            torch.mm(start, weight, out=floor_out2)
            torch.mm(floor_out2, weight_transposed, out=floor_out1)

    runners = {"pyro_dgm": pyro_dgm, "floor": floor}
    versions = peer_versions()
    if versions["rbms"] is not None:
        peer = to_rbms(bias1, bias2, weight)
        state["rbms"] = peer.init_chains(num_chains, start_v=start.clone())

        def rbms(num_sweeps: int) -> None:
            chains = state["rbms"]
            for _ in range(num_sweeps):  # a sweep: hiddens given visibles, then visibles given hiddens
                chains = peer.sample_visibles(peer.sample_hiddens(chains))
            state["rbms"] = chains

        runners["rbms"] = rbms
    if versions["dwave-pytorch-plugin"] is not None:
        grbm, _ = to_dwave(bias1, bias2, weight)
        samplers: dict[int, object] = {}

        def dwave(num_sweeps: int) -> None:
            if num_sweeps not in samplers:  # the sweep count is fixed when a sampler is built
                samplers[num_sweeps] = dwave_sampler(grbm, n1, num_chains, num_sweeps)
            samplers[num_sweeps].sample()

        runners["dwave-pytorch-plugin"] = dwave
    return runners


def _seconds(run: Callable[[int], None], num_sweeps: int) -> float:
    start = time.perf_counter()
    run(num_sweeps)
    return time.perf_counter() - start


def gibbs_row(n1: int, n2: int, num_chains: int, budget: Budget) -> dict:
    """Chain-sweeps per second of every runner, and the paired time ratios pyro_dgm / other."""
    runners = gibbs_runners(n1, n2, num_chains)
    sweeps = {}
    for name, run in runners.items():
        once = _seconds(run, 1)  # warm-up, and the block length
        sweeps[name] = max(1, math.ceil(budget.min_block_seconds / max(_seconds(run, 1), once, 1e-9)))
    per_sweep: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for repeat in range(budget.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            per_sweep[name].append(_seconds(runners[name], sweeps[name]) / sweeps[name])
    row = {"n1": n1, "n2": n2, "chains": num_chains, "sweeps_per_block": sweeps}
    row["chain_sweeps_per_second"] = {
        name: num_chains / statistics.median(times) for name, times in per_sweep.items()
    }
    row["time_ratio_pyro_dgm_to"] = {
        name: statistics.median(p / q for p, q in zip(per_sweep["pyro_dgm"], times))
        for name, times in per_sweep.items()
        if name != "pyro_dgm"
    }
    return row


# ----- AIS accuracy at equal budget ------------------------------------------------------------

AIS_METHODS = ("pyro_dgm default", "pyro_dgm uniform", "pyro_dgm biases", "rbms")


def ais_estimators(rbm: RBM, budget: Budget) -> dict[str, Callable[[], float]]:
    """Each method's ``estimate()`` of log Z at N = ``budget.ais_chains``, K = ``budget.ais_temperatures``."""
    num_chains, num_temperatures = budget.ais_chains, budget.ais_temperatures

    def ours(base: str | None) -> Callable[[], float]:
        options = {} if base is None else {"base": base}
        return lambda: annealed_importance_sampling(
            rbm, num_chains=num_chains, betas=num_temperatures, **options
        ).log_partition.item()

    estimators = {
        "pyro_dgm default": ours(None),
        "pyro_dgm uniform": ours("uniform"),
        "pyro_dgm biases": ours("biases"),
    }
    if peer_versions()["rbms"] is not None:
        from rbms.partition_function.ais import compute_partition_function_ais

        peer = to_rbms(rbm.bias1, rbm.bias2, rbm.weight)
        estimators["rbms"] = lambda: compute_partition_function_ais(num_chains, num_temperatures, peer)
    return estimators


def ais_runs(rbm: RBM, budget: Budget) -> dict[str, dict[str, list[float]]]:
    """``budget.ais_repeats`` estimates and run times of each method, interleaved, seeds 0, 1, ..."""
    estimators = ais_estimators(rbm, budget)
    runs = {name: {"estimates": [], "seconds": []} for name in estimators}
    names = list(estimators)
    for repeat in range(budget.ais_repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            torch.manual_seed(repeat)
            start = time.perf_counter()
            runs[name]["estimates"].append(estimators[name]())
            runs[name]["seconds"].append(time.perf_counter() - start)
    return runs


def _summary(estimates: list[float], seconds: list[float], exact: float | None) -> dict[str, float]:
    summary = {
        "mean": statistics.fmean(estimates),
        "sd": statistics.stdev(estimates) if len(estimates) > 1 else float("nan"),
        "seconds": statistics.median(seconds),
    }
    if exact is not None:
        errors = [estimate - exact for estimate in estimates]
        summary["bias"] = statistics.fmean(errors)
        summary["rmse"] = math.sqrt(statistics.fmean(error**2 for error in errors))
    return summary


def ais_table(budget: Budget) -> list[dict]:
    """AIS on the 20 + 20 RBMs (against exact log Z) and on a 100 + 100 RBM (agreement)."""
    rows = []
    cases = [(f"20+20 {name}", AIS_UNITS, *scales) for name, scales in AIS_CASES.items()]
    cases.append((f"{AGREEMENT_UNITS}+{AGREEMENT_UNITS} weak", AGREEMENT_UNITS, *AIS_CASES["weak"]))
    for label, units, weight_sd, bias_sd in cases:
        parameters = random_parameters(units, units, weight_sd, bias_sd, torch.float64, SEED)
        exact = exact_log_partition(*parameters).item() if units <= AIS_UNITS else None
        rbm = RBM(*(p.float() for p in parameters))
        runs = ais_runs(rbm, budget)
        rows.append({
            "case": label,
            "exact": exact,
            "chains": budget.ais_chains,
            "temperatures": budget.ais_temperatures,
            "methods": {name: _summary(r["estimates"], r["seconds"], exact) for name, r in runs.items()},
        })
    return rows


# ----- report ----------------------------------------------------------------------------------


def gibbs_markdown(rows: list[dict]) -> str:
    others = [name for name in rows[0]["chain_sweeps_per_second"] if name not in ("pyro_dgm", "floor")]
    header = "| RBM, chains | pyro_dgm | " + " | ".join(f"{n} (ratio)" for n in others) + " | GEMM floor | floor fraction |"
    lines = [header, "|---" * (4 + len(others)) + "|"]
    for row in rows:
        rates, ratios = row["chain_sweeps_per_second"], row["time_ratio_pyro_dgm_to"]
        cells = [f"{rates[n] / 1e3:.1f}k ({ratios[n]:.3g})" for n in others]
        lines.append(
            f"| {row['n1']}+{row['n2']}, {row['chains']} | {rates['pyro_dgm'] / 1e3:.1f}k | " + " | ".join(cells)
            + f" | {rates['floor'] / 1e3:.0f}k | {ratios['floor']**-1:.2f} |"
        )
    return "\n".join(lines)


def ais_markdown(rows: list[dict]) -> str:
    lines = [
        "| RBM | exact log Z | method | mean | bias | sd | RMSE | s / run |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        exact = "—" if row["exact"] is None else f"{row['exact']:.4f}"
        for name, s in row["methods"].items():
            bias = f"{s['bias']:+.4f}" if "bias" in s else "—"
            rmse = f"{s['rmse']:.4f}" if "rmse" in s else "—"
            lines.append(
                f"| {row['case']} | {exact} | {name} | {s['mean']:.4f} | {bias} | {s['sd']:.4f} | {rmse} | {s['seconds']:.3f} |"
            )
    return "\n".join(lines)


def run(budget_name: str, sections: tuple[str, ...]) -> dict:
    torch.set_num_threads(1)
    budget = BUDGETS[budget_name]
    report = {
        "budget": budget_name,
        "versions": {"torch": torch.__version__, **peer_versions()},
        "load_average_at_start": list(os.getloadavg()),
        "mapping_differences": check_mapping(),
    }
    if "gibbs" in sections:
        report["gibbs"] = []
        for n1, n2, chains in GIBBS_ROWS:
            report["gibbs"].append(gibbs_row(n1, n2, chains, budget))
            print(f"gibbs {n1}+{n2} x {chains}: done", file=sys.stderr)
    if "ais" in sections:
        report["ais"] = ais_table(budget)
    report["load_average_at_end"] = list(os.getloadavg())
    return report


def markdown(report: dict) -> str:
    parts = [f"versions: {report['versions']}; load average {report['load_average_at_start']} -> {report['load_average_at_end']}"]
    if "gibbs" in report:
        parts.append("Block Gibbs, chain-sweeps per second (time ratio pyro_dgm / peer):\n\n" + gibbs_markdown(report["gibbs"]))
    if "ais" in report:
        parts.append("AIS log Z at equal budget:\n\n" + ais_markdown(report["ais"]))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    parser.add_argument("--sections", nargs="+", choices=("gibbs", "ais"), default=["gibbs", "ais"])
    parser.add_argument("--output", type=Path, default=None, help="JSON path; the Markdown goes next to it (.md)")
    args = parser.parse_args(argv)
    report = run(args.budget, tuple(args.sections))
    text = markdown(report)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        args.output.with_suffix(".md").write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()

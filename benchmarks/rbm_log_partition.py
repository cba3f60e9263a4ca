r"""log Z of RBMs: exact vs AIS vs parallel tempering, with standard errors and wall times.

Run ``OMP_NUM_THREADS=1 python -m benchmarks.rbm_log_partition`` (about two and a half
minutes on one shared core). Both estimators run with their defaults (AIS: 1024 chains,
1000 linear temperatures from the mean-field base; PT: 32 ladders x 32 adapted
temperatures, 2000 steps, half burn-in, from the uniform base). On the planted RBMs AIS
also runs from the biases base, to show how it fails there. The RBMs, each from its own fixed seed:

* small, with an enumerable side, where the exact value is known: 12 + 30 and
  20 + 20 units with weights N(0, 0.5^2) and biases N(0, 0.5^2), 20 + 20 with
  weights N(0, 1) (strongly coupled), and 20 + 64 with planted patterns (below);
* 64 + 64 (DVAE++'s RBM prior size for MNIST), where only the two estimators can be
  compared: weights N(0, 0.1^2) with biases N(0, 0.1^2) (a freshly initialised prior),
  weights N(0, 0.3^2) with biases -1 (sparse units, strong couplings), and a
  "trained-looking" prior with 4 planted patterns (Hopfield-style couplings
  :math:`W = \frac{c}{\sqrt{n}} \sum_m s_m t_m^\top`, :math:`s, t \in \{\pm 1\}^n`),
  whose distribution has several well-separated modes.

``z`` is (AIS - PT) / sqrt(se_AIS^2 + se_PT^2), or (estimate - exact) / se.

``--checkpoint PATH`` instead checks the :math:`\log Z` of a *trained* RBM prior, the one
number a model's test :math:`\log p(x)` moves with one for one: the RBM of a checkpoint
written by ``pyro-dgm train`` or ``benchmarks/reproduce.py`` (model parameters ``bias1``,
``bias2``, ``weight``) gets AIS at each ``--temperatures`` count (1024 chains; 1000 is what
the test evaluation uses) and PT, each from its own seed, and ``--output`` keeps the
numbers with their provenance. AIS's :math:`\log \hat Z` is biased low (Jensen, Eq. A2 of
``pyro_dgm.infer.estimators.ais``), so if 1000 temperatures were too few, the longer
schedules would come out higher.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.provenance import provenance
from benchmarks.speed import publish
from pyro_dgm.cli.checkpoint import load_checkpoint
from pyro_dgm.distributions.rbm import RBM, exact_log_partition
from pyro_dgm.infer.estimators.ais import annealed_importance_sampling
from pyro_dgm.infer.estimators.parallel_tempering import parallel_tempering

SEED = 0
NUM_PATTERNS = 4
"""Planted patterns of the multimodal 64 + 64 prior."""

PATTERN_STRENGTH = 1.0
"""c of the planted couplings: each pattern's energy gap is ~c sqrt(n) = 8 nats at n = 64."""


def gaussian_rbm(n1: int, n2: int, weight_sd: float, bias_sd: float, dtype) -> RBM:
    return RBM(
        bias_sd * torch.randn(n1, dtype=dtype),
        bias_sd * torch.randn(n2, dtype=dtype),
        weight_sd * torch.randn(n1, n2, dtype=dtype),
    )


def sparse_rbm(n1: int, n2: int, dtype) -> RBM:
    weight = 0.3 * torch.randn(n1, n2, dtype=dtype)
    return RBM(-torch.ones(n1, dtype=dtype), -torch.ones(n2, dtype=dtype), weight)


def planted_rbm(n1: int, n2: int, dtype) -> RBM:
    """Couplings c/sqrt(n) sum_m s_m t_m^T with +-1 patterns; biases keep E[z] near 1/2."""
    s = 2 * torch.randint(0, 2, (NUM_PATTERNS, n1), dtype=dtype) - 1
    t = 2 * torch.randint(0, 2, (NUM_PATTERNS, n2), dtype=dtype) - 1
    weight = PATTERN_STRENGTH / math.sqrt(n1) * s.T @ t
    # with z in {0,1}, z = (1 + sigma)/2: centring biases make the +-1 model's fields symmetric
    return RBM(-0.5 * weight.sum(1), -0.5 * weight.sum(0), weight)


def timed(function: Callable, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def row(name: str, value: float, error: float, seconds: float, reference: float | None) -> str:
    z = "" if reference is None or error == 0 else f"{(value - reference) / error:+6.2f}"
    return f"  {name:<6} {value:12.4f} +- {error:7.4f}  {seconds:7.2f} s  {z}"


def compare(label: str, rbm: RBM, also_biases_base: bool = False) -> None:
    print(f"{label}")
    exact = None
    if rbm.is_enumerable:
        value, seconds = timed(exact_log_partition, rbm.bias1, rbm.bias2, rbm.weight)
        exact = value.item()
        print(row("exact", exact, 0.0, seconds, None))
    ais, ais_seconds = timed(annealed_importance_sampling, rbm)
    pt, pt_seconds = timed(parallel_tempering, rbm)
    print(
        row("AIS", ais.log_partition.item(), ais.standard_error.item(), ais_seconds, exact)
        + f"  ESS {ais.effective_sample_size.item():.0f}/1024"
    )
    print(
        row("PT", pt.log_partition.item(), pt.standard_error.item(), pt_seconds, exact)
        + f"  swap rates {pt.swap_rates.min().item():.2f}..{pt.swap_rates.max().item():.2f},"
        f" barrier {pt.communication_barrier.item():.2f}"
    )
    if also_biases_base:
        biased, seconds = timed(annealed_importance_sampling, rbm, base="biases")
        print(
            row("AIS-b", biased.log_partition.item(), biased.standard_error.item(), seconds, exact)
            + f"  ESS {biased.effective_sample_size.item():.0f}/1024  (biases base)"
        )
    if exact is None:
        combined = math.hypot(ais.standard_error.item(), pt.standard_error.item())
        difference = ais.log_partition.item() - pt.log_partition.item()
        print(f"  AIS - PT = {difference:+.4f}  (z = {difference / combined:+.2f})")


RBM_PARAMETERS = ("bias1", "bias2", "weight")
"""The model parameters of an RBM prior in a checkpoint's ``modules["model"]``."""


def trained_rbm(checkpoint: Path, dtype: torch.dtype) -> RBM:
    """The RBM prior of a training checkpoint, in ``dtype`` (float32: what the test evaluation used)."""
    model = load_checkpoint(checkpoint, map_location="cpu")["modules"]["model"]
    missing = [name for name in RBM_PARAMETERS if name not in model]
    if missing:
        raise SystemExit(f"--checkpoint {checkpoint}: the model has no RBM prior (no parameter "
                         f"{', '.join(missing)}; it has {', '.join(sorted(model))})")
    return RBM(*(model[name].to(dtype) for name in RBM_PARAMETERS))


def check_trained(checkpoint: Path, temperatures: Sequence[int], seed: int, dtype: torch.dtype) -> dict[str, Any]:
    """AIS at each temperature count and PT on the checkpoint's RBM; one seed per estimate."""
    rbm = trained_rbm(checkpoint, dtype)
    estimates = []
    for index, count in enumerate(temperatures):
        torch.manual_seed(seed + index)
        ais, seconds = timed(annealed_importance_sampling, rbm, betas=count)
        estimates.append({"method": f"AIS, 1024 chains x {count} temperatures", "log_z": ais.log_partition.item(),
                          "standard_error": ais.standard_error.item(), "seconds": seconds,
                          "ess": ais.effective_sample_size.item()})
    torch.manual_seed(seed + len(temperatures))
    pt, seconds = timed(parallel_tempering, rbm)
    estimates.append({"method": "PT, 32 ladders x 32 temperatures, 2000 steps", "log_z": pt.log_partition.item(),
                      "standard_error": pt.standard_error.item(), "seconds": seconds,
                      "swap_rate_min": pt.swap_rates.min().item()})
    return {"checkpoint": str(checkpoint), "dtype": str(dtype), "units": [rbm.num_units1, rbm.num_units2],
            "weight_sd": rbm.weight.std().item(), "seed": seed, "estimates": estimates}


def trained_markdown(report: dict[str, Any]) -> str:
    reference = report["estimates"][0]
    lines = [
        f"log Z of the trained {report['units'][0]} + {report['units'][1]} RBM in `{report['checkpoint']}` "
        f"(weights' sd {report['weight_sd']:.3f}); difference to the first row, and z = difference / "
        "combined standard error.",
        "",
        "| estimator | log Z | ± s.e. | − first row | z | s | ESS or min. swap rate |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for estimate in report["estimates"]:
        difference = estimate["log_z"] - reference["log_z"]
        combined = math.hypot(estimate["standard_error"], reference["standard_error"])
        z = "" if estimate is reference else f"{difference / combined:+.2f}"
        extra = (f"ESS {estimate['ess']:.0f}/1024" if "ess" in estimate
                 else f"swap rate ≥ {estimate['swap_rate_min']:.2f}")
        lines.append(f"| {estimate['method']} | {estimate['log_z']:.4f} | {estimate['standard_error']:.4f} | "
                     f"{difference:+.4f} | {z} | {estimate['seconds']:.1f} | {extra} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="check the log Z of this checkpoint's trained RBM prior instead of the planted RBMs")
    parser.add_argument("--temperatures", type=int, nargs="+", default=[1000, 10000],
                        help="with --checkpoint: AIS temperature counts (the test evaluation uses 1000)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--output", type=Path, default=None,
                        help="with --checkpoint: JSON path; the Markdown table goes next to it (.md)")
    args = parser.parse_args(argv)
    if args.checkpoint is not None:
        if any(count < 2 for count in args.temperatures):
            parser.error(f"--temperatures must each be at least 2, got {args.temperatures}")
        report = check_trained(args.checkpoint, args.temperatures, args.seed, getattr(torch, args.dtype))
        report["provenance"] = provenance([], argv)
        publish(report, trained_markdown(report), args.output)
        return
    dtype = getattr(torch, args.dtype)
    cases = [
        (
            "12 + 30, W ~ N(0, 0.5^2), a ~ N(0, 0.5^2)",
            lambda: gaussian_rbm(12, 30, 0.5, 0.5, dtype),
        ),
        (
            "20 + 20, W ~ N(0, 0.5^2), a ~ N(0, 0.5^2)",
            lambda: gaussian_rbm(20, 20, 0.5, 0.5, dtype),
        ),
        ("20 + 20, W ~ N(0, 1), a ~ N(0, 0.5^2)", lambda: gaussian_rbm(20, 20, 1.0, 0.5, dtype)),
        (f"20 + 64, {NUM_PATTERNS} planted patterns", lambda: planted_rbm(20, 64, dtype)),
        (
            "64 + 64, W ~ N(0, 0.1^2), a ~ N(0, 0.1^2)",
            lambda: gaussian_rbm(64, 64, 0.1, 0.1, dtype),
        ),
        ("64 + 64, W ~ N(0, 0.3^2), a = -1", lambda: sparse_rbm(64, 64, dtype)),
        (f"64 + 64, {NUM_PATTERNS} planted patterns", lambda: planted_rbm(64, 64, dtype)),
    ]
    for index, (label, make_rbm) in enumerate(cases):
        torch.manual_seed(SEED + index)  # each RBM from its own seed, whatever ran before
        compare(label, make_rbm(), also_biases_base="planted" in label)


if __name__ == "__main__":
    main()

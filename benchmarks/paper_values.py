"""The published numbers that ``benchmarks/reproduce.py`` compares against, with their source.

Every value is a test-set log-likelihood :math:`\\log p(x)` in nats (negative; higher is
better), whatever sign the paper printed: BiHM Table 3 and BVAE Table I print
:math:`-\\log p(x)` (NLL) and are negated here. Each value names the table it is quoted
from, so the reports can cite it; ``spread`` is the paper's ± where it prints one (a
standard deviation over five runs for DVAE++; BiHM does not say what its ± is).

All MNIST values come from *statically* binarised MNIST (Larochelle's fixed draw)
except where ``note`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperValue:
    """One published log-likelihood, in nats, and where it comes from.

    :ivar log_likelihood: :math:`\\log p(x)` (or the bound named by ``quantity``).
    :ivar source: the paper and table, e.g. ``"BiHM Table 3"``.
    :ivar quantity: what was measured (``"log p(x)"``, ``"log p*(x)"``, ``"bound"``).
    :ivar spread: the paper's ± if printed, else ``None``.
    :ivar note: anything that changes how to read the number.
    """

    log_likelihood: float
    source: str
    quantity: str = "log p(x)"
    spread: float | None = None
    note: str = ""


BIHM_TABLE_3 = "BiHM (Bornschein et al. 2016) Table 3"
BIHM_SECTION_4 = "BiHM (Bornschein et al. 2016) Sec. 4"
DVAEPP_TABLE_1 = "DVAE++ (Vahdat et al. 2018) Table 1"
DVAEPP_TABLE_2 = "DVAE++ (Vahdat et al. 2018) Table 2"
BVAE_TABLE_I = "BVAE (Adigun & Kosko) Table I"

# --- BiHM Table 3 (MNIST): method -> quantity -> value ---------------------------------
BIHM3: dict[str, dict[str, PaperValue]] = {
    "BiHM": {
        "log_p": PaperValue(-84.3, BIHM_TABLE_3, "log p(x)", 0.22, "12 latent layers; ± from Sec. 4"),
        "bound": PaperValue(-89.2, BIHM_TABLE_3, "lower bound", note="bound type and K not stated"),
        "log_p_star": PaperValue(-84.6, BIHM_SECTION_4, "log p*(x)", 0.23),
        "log_p_dynamic": PaperValue(
            -82.9, BIHM_SECTION_4, "log p(x)", note="footnote 1: dynamically binarised MNIST"
        ),
    },
    "RWS": {
        "log_p": PaperValue(-85.4, BIHM_TABLE_3, "log p(x)", note="5 latent layers (not our 12)"),
        "bound": PaperValue(-96.3, BIHM_TABLE_3, "lower bound", note="5 latent layers (not our 12)"),
    },
}
"""BiHM Table 3 has no VIMCO row; NVIL (2 layers) has bound -99.6 only."""

# --- DVAE++ Table 1 (MNIST static, 200 Bernoulli latents): network -> column -> value ---
DVAEPP1: dict[str, dict[str, PaperValue]] = {
    "linear": {
        "joint": PaperValue(-107.98, DVAEPP_TABLE_1, spread=0.10, note="overlapping transformation, Eq. (4)"),
        "marginal": PaperValue(-108.57, DVAEPP_TABLE_1, spread=0.10, note="overlapping transformation, Eq. (5)"),
        "NVIL": PaperValue(-108.35, DVAEPP_TABLE_1, spread=0.06),
        "MuProp": PaperValue(-108.03, DVAEPP_TABLE_1, spread=0.07),
        "REBAR": PaperValue(-107.65, DVAEPP_TABLE_1, spread=0.08),
        "Concrete": PaperValue(-107.00, DVAEPP_TABLE_1, spread=0.10),
    },
    "nonlinear": {
        "joint": PaperValue(-99.16, DVAEPP_TABLE_1, spread=0.12, note="overlapping transformation, Eq. (4)"),
        "marginal": PaperValue(-99.10, DVAEPP_TABLE_1, spread=0.21, note="overlapping transformation, Eq. (5)"),
        "NVIL": PaperValue(-100.00, DVAEPP_TABLE_1, spread=0.10),
        "MuProp": PaperValue(-100.66, DVAEPP_TABLE_1, spread=0.08),
        "REBAR": PaperValue(-100.69, DVAEPP_TABLE_1, spread=0.08),
        "Concrete": PaperValue(-99.54, DVAEPP_TABLE_1, spread=0.06),
    },
}
"""K = 100 importance samples, mean ± sd of five runs (Table 1 caption)."""

# --- DVAE++ Table 2 (MNIST static): "<layers> <network>" -> column -> value -------------
DVAEPP2: dict[str, dict[str, PaperValue]] = {
    "1 linear": {
        "rbm_overlapping": PaperValue(-91.21, DVAEPP_TABLE_2, spread=0.11),
        "rbm_rolfe": PaperValue(-91.55, DVAEPP_TABLE_2, spread=0.08),
        "directed_joint": PaperValue(-106.70, DVAEPP_TABLE_2, spread=0.08),
        "directed_marginal": PaperValue(-106.80, DVAEPP_TABLE_2, spread=0.19),
    },
    "2 linear": {
        "rbm_overlapping": PaperValue(-94.15, DVAEPP_TABLE_2, spread=0.45),
        "rbm_rolfe": PaperValue(-91.06, DVAEPP_TABLE_2, spread=0.21),
        "directed_joint": PaperValue(-98.16, DVAEPP_TABLE_2, spread=0.11),
        "directed_marginal": PaperValue(-98.56, DVAEPP_TABLE_2, spread=0.10),
    },
    "1 nonlinear": {
        "rbm_overlapping": PaperValue(-85.41, DVAEPP_TABLE_2, spread=0.04),
        "rbm_rolfe": PaperValue(-85.57, DVAEPP_TABLE_2, spread=0.03),
        "directed_joint": PaperValue(-95.04, DVAEPP_TABLE_2, spread=0.10),
        "directed_marginal": PaperValue(-95.06, DVAEPP_TABLE_2, spread=0.08),
    },
    "2 nonlinear": {
        "rbm_overlapping": PaperValue(-84.27, DVAEPP_TABLE_2, spread=0.05),
        "rbm_rolfe": PaperValue(-84.52, DVAEPP_TABLE_2, spread=0.05),
        "directed_joint": PaperValue(-87.96, DVAEPP_TABLE_2, spread=0.13),
        "directed_marginal": PaperValue(-88.23, DVAEPP_TABLE_2, spread=0.11),
    },
}
"""K = 4000 importance samples, mean ± sd of five runs (Table 2 caption)."""

# --- BVAE Table I (MNIST, residual networks, 64 latent dims): row -> value -------------
BVAE1: dict[str, PaperValue] = {
    "VAE": PaperValue(-86.72, BVAE_TABLE_I, note="22.1M parameters, 18 active units"),
    "Bidirectional VAE": PaperValue(-86.69, BVAE_TABLE_I, note="11.1M parameters, 15 active units"),
    "beta-VAE (0.5)": PaperValue(-88.12, BVAE_TABLE_I, note="22.1M parameters"),
    "Bidirectional beta-VAE (0.5)": PaperValue(-88.09, BVAE_TABLE_I, note="11.1M parameters"),
    "beta-VAE (1.5)": PaperValue(-86.99, BVAE_TABLE_I, note="22.1M parameters"),
    "Bidirectional beta-VAE (1.5)": PaperValue(-87.21, BVAE_TABLE_I, note="11.1M parameters"),
    "beta-TCVAE (0.5)": PaperValue(-88.18, BVAE_TABLE_I, note="22.1M parameters"),
    "Bidirectional beta-TCVAE (0.5)": PaperValue(-87.99, BVAE_TABLE_I, note="11.1M parameters"),
    "beta-TCVAE (1.0)": PaperValue(-86.87, BVAE_TABLE_I, note="22.1M parameters"),
    "Bidirectional beta-TCVAE (1.0)": PaperValue(-86.68, BVAE_TABLE_I, note="11.1M parameters"),
    "beta-TCVAE (1.5)": PaperValue(-87.20, BVAE_TABLE_I, note="22.1M parameters"),
    "Bidirectional beta-TCVAE (1.5)": PaperValue(-86.90, BVAE_TABLE_I, note="11.1M parameters"),
    "IWAE": PaperValue(-86.02, BVAE_TABLE_I, note="22.1M parameters"),
    "Bidirectional IWAE": PaperValue(-86.00, BVAE_TABLE_I, note="11.1M parameters"),
}
"""NLL negated; the paper does not state K, the binarisation, or the epochs."""

BVAE1_PARAMETERS: dict[str, float] = {"unidirectional": 22.1e6, "bidirectional": 11.1e6}
"""Parameter counts printed in BVAE Table I."""

# --- BiHM Table 1 (UCI): (dataset, method) -> printed quantities ------------------------
BIHM_TABLE_1 = "BiHM (Bornschein et al. 2016) Table 1"

BIHM1: dict[tuple[str, str], dict[str, float | str]] = {
    ("dna", "BiHM"): {"nll": 86.49, "nll_star": 86.92, "minus_2_log_z": 0.56, "ess_percent": 11.2, "source": BIHM_TABLE_1},
    ("mushrooms", "BiHM"): {"nll": 9.40, "nll_star": 9.40, "minus_2_log_z": 0.09, "ess_percent": 92.5,
                            "source": BIHM_TABLE_1},
    ("nips", "BiHM"): {"nll": 272.66, "nll_star": 272.71, "minus_2_log_z": 1.97, "ess_percent": 16.8,
                       "source": BIHM_TABLE_1},
    ("dna", "RWS"): {"nll": 90.63, "source": BIHM_TABLE_1 + " (RWS-SBN, quoted from Bornschein & Bengio 2015)"},
    ("mushrooms", "RWS"): {"nll": 9.90, "source": BIHM_TABLE_1 + " (RWS-SBN, quoted from Bornschein & Bengio 2015)"},
    ("nips", "RWS"): {"nll": 272.54, "source": BIHM_TABLE_1 + " (RWS-SBN, quoted from Bornschein & Bengio 2015)"},
}
"""Negative log-likelihoods in nats as printed (positive; lower is better), −log p*(x), −2 log Z and ESS %."""

"""What ``benchmarks/reproduce.py`` trains for each paper table at each budget.

A budget is one frozen dataclass per table: the data (dataset, how many training and
test images), the training stages (epochs, K, learning rate), the configurations (the
table's rows and columns) and the evaluation (importance samples K, and the samples of
BiHM's :math:`Z^2` or the RBM's AIS). Three budgets per table:

* ``tiny`` — seconds, for the smoke test: 100 embedded-MNIST training images (one step
  per configuration), 20 test images, K = 4; the numbers are meaningless.
* ``small`` — what fits in a few tens of minutes per table on a 2-core CPU: the paper's
  architectures and optimiser settings on the papers' statically binarised MNIST
  (whole training and test sets), but 1 to 10 epochs and K = 100 or 200 at test time.
* ``full`` — the papers' settings as far as the papers give them (for a GPU, hours to
  days) on the papers' protocol: Larochelle's statically binarised MNIST, the whole
  test set, K >= 5,000 importance samples; where a paper leaves a setting open, the
  choice is ours and says so in ``choices``. Checkpoints and finished evaluations are
  kept, so an interrupted run resumes (``benchmarks/reproduce.py --runs-dir``).

Everything the papers fix is quoted with its section; everything they leave open is
listed in the budget's ``choices`` so that the report prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

TABLES = ("bihm3", "dvaepp1", "dvaepp2", "bvae1", "dvaesharp")
"""The tables ``--table`` accepts: BiHM Table 3, DVAE++ Tables 1 and 2, BVAE Table I, and the
DVAE# comparison (DVAE# against DVAE++ and DVAE on DVAE++ Table 2's 1-layer RBM models)."""

BUDGETS = ("tiny", "small", "full")
"""The budgets ``--budget`` accepts."""

STATIC_MNIST = "binarized_mnist"
"""The papers' data (BiHM, DVAE, DVAE++): Larochelle's static binarisation, 50,000/10,000/10,000
(``--data-root`` holds ``binarized_mnist_{train,valid,test}.mat`` or the ``.amat`` files)."""

MNIST_TEST_PARTICLES = 5000
"""Importance samples per test image on the full protocol (DVAE++ evaluates with 4,000)."""

OFFLINE_MNIST = "embedded_mnist"
"""The 3,000/1,000 image subset shipped with pyro_dgm: works offline, used by ``tiny``."""

MINIBATCH_SIZE = 100
"""BiHM Sec. 4 ("a mini-batch size of 100"); used for every table (DVAE++ and BVAE do not state one)."""

DVAEPP_ADAM_EPS = 1e-3
"""DVAE++ Sec. 7.1: Adam with default parameters except epsilon = 1e-3."""

DVAEPP_LEARNING_RATE = 5e-4
"""DVAE++ Sec. 7.1 selects from {1e-4, 5e-4}; without cross-validation we take the larger."""

DVAEPP_BETA_START, DVAEPP_BETA_END = 5.0, 12.0
"""DVAE++ Sec. 7.1 anneals beta linearly from {5,6,7,8} to {12,14,16,18} (cross-validated);
we take the first value of each grid."""

TUCKER_HIDDEN_WIDTH = 200
"""DVAE++ Sec. 7.1 (after Tucker et al.): "two layers of deterministic hidden units of the size
200 with tanh activation" in the nonlinear model."""

NETWORKS: dict[str, tuple[int, ...]] = {"linear": (), "nonlinear": (TUCKER_HIDDEN_WIDTH, TUCKER_HIDDEN_WIDTH)}
"""Deterministic hidden layers of every network (prior conditionals, decoder, guide)."""

NUM_BERNOULLI_LATENTS = 200
"""DVAE++ Sec. 7.1: "factorial Bernoulli with 200 stochastic variables"."""

BIHM_MNIST_LAYERS = (784, 300, 200, 100, 75, 50, 35, 30, 25, 20, 15, 10, 10)
"""BiHM Sec. 4: 1 visible and 12 latent layers (the best MNIST model)."""

BVAE_LATENT_DIM = 64
"""BVAE Table I caption: "The dimension of the latent variable is 64"."""


@dataclass(frozen=True)
class DataBudget:
    """Which images: ``dataset`` and the first ``train_size``/``test_size`` of its splits (``None``: all)."""

    dataset: str
    train_size: int | None
    test_size: int | None


@dataclass(frozen=True)
class Stage:
    """One training stage: ``epochs`` of Adam at ``learning_rate`` with K = ``num_particles``."""

    epochs: int
    learning_rate: float
    num_particles: int = 1
    batch_size: int = MINIBATCH_SIZE
    adam_eps: float = 1e-8


# --- BiHM Table 3 ----------------------------------------------------------------------


@dataclass(frozen=True)
class BiHMBudget:
    """Sigmoid belief nets on MNIST trained by BiHM, RWS and VIMCO at equal budget.

    :ivar stages: BiHM Sec. 4: K = 10 at lr 1e-3 "until convergence", then fine-tuning
        with K = 100 at lr 3e-4.
    :ivar methods: objectives, each on the same architecture ``layer_sizes``.
    :ivar eval_particles: K of the importance-weighted test log p(x) (BiHM Eq. 5).
    :ivar partition_samples: outer samples of BiHM's Z^2 (Eq. 7, K_inner = 1) for log p*(x)
        of the BiHM-trained model; 0 skips it.
    """

    data: DataBudget
    stages: tuple[Stage, ...]
    eval_particles: int
    partition_samples: int
    layer_sizes: tuple[int, ...] = BIHM_MNIST_LAYERS
    methods: tuple[str, ...] = ("BiHM", "RWS", "VIMCO")
    choices: tuple[str, ...] = ()


BIHM_CHOICES = (
    "all three objectives train BiHM's 12-layer architecture (the paper's RWS row used 5 layers)",
    "no L1 weight penalty (BiHM Sec. 4 uses lambda = 1e-3 on all weights)",
    "VIMCO is not in BiHM Table 3; it is our third method at the same budget",
)

# --- DVAE++ Tables 1 and 2 -------------------------------------------------------------


@dataclass(frozen=True)
class SmoothedColumn:
    """One way to train a smoothed-binary-latent VAE (a column, or an extra smoothing variant).

    :ivar name: the key in :mod:`benchmarks.paper_values` (or a variant's label).
    :ivar prior: ``"directed"`` (factorial Bernoulli, DVAE++ Fig. 2c-f), ``"rbm"`` (Fig. 2g) or
        ``"relaxed"`` (DVAE#'s overlapping relaxation of the RBM, mean-field log density).
    :ivar elbo: ``"joint"`` (Eq. 4 / Eq. 6-7, closed-form KL), ``"marginal"`` (Eq. 5,
        ``Trace_ELBO``), ``"rolfe"`` (DVAE's gradient, ``DVAEELBO``) or ``"iw"`` (DVAE#'s
        K-sample importance-weighted bound, ``DVAESharpELBO``).
    :ivar smoother: a name of ``pyro_dgm.models.dvae_smoothing.SMOOTHERS``.
    :ivar beta: a fixed :math:`\beta` (no annealing); ``None``: the budget's annealing.
    :ivar beta_nonlinear: the fixed :math:`\beta` of the nonlinear network, if it differs.
    :ivar num_particles: K of the ``"iw"`` bound.
    """

    name: str
    prior: str
    elbo: str
    smoother: str
    beta: float | None = None
    beta_nonlinear: float | None = None
    num_particles: int = 1

    def fixed_beta(self, network: str) -> float | None:
        """The fixed :math:`\beta` of this column on ``network`` (``None``: annealed)."""
        if network == "nonlinear" and self.beta_nonlinear is not None:
            return self.beta_nonlinear
        return self.beta


JOINT = SmoothedColumn("joint", "directed", "joint", "overlapping_exponential")
MARGINAL = SmoothedColumn("marginal", "directed", "marginal", "overlapping_exponential")
SMOOTHING_VARIANTS = (
    SmoothedColumn("joint, overlapping logistic", "directed", "joint", "overlapping_logistic"),
    SmoothedColumn("joint, mixture of ramps", "directed", "joint", "mixture_of_ramps"),
    SmoothedColumn("joint, spike-and-exponential", "directed", "joint", "spike_and_exponential"),
)
"""Smoothers of pyro_dgm that Table 1 does not have, trained like its "Joint ELBO" column."""

RBM_OVERLAPPING = SmoothedColumn("rbm_overlapping", "rbm", "joint", "overlapping_exponential")
RBM_ROLFE = SmoothedColumn("rbm_rolfe", "rbm", "rolfe", "spike_and_exponential")
DIRECTED_JOINT = SmoothedColumn("directed_joint", "directed", "joint", "overlapping_exponential")
DIRECTED_MARGINAL = SmoothedColumn("directed_marginal", "directed", "marginal", "overlapping_exponential")


@dataclass(frozen=True)
class DVAEPPTable1Budget:
    """200 factorial Bernoulli latents, linear or nonlinear networks (DVAE++ Sec. 7.1).

    :ivar columns: trained for every network (the table's columns).
    :ivar variants: further smoothers, trained for the networks in ``variant_networks``.
    """

    data: DataBudget
    stage: Stage
    eval_particles: int
    networks: tuple[str, ...] = ("linear", "nonlinear")
    columns: tuple[SmoothedColumn, ...] = (JOINT, MARGINAL)
    variants: tuple[SmoothedColumn, ...] = SMOOTHING_VARIANTS
    variant_networks: tuple[str, ...] = ("linear", "nonlinear")
    beta_start: float = DVAEPP_BETA_START
    beta_end: float = DVAEPP_BETA_END
    kl_warmup_fraction: float = 0.0
    choices: tuple[str, ...] = ()


DVAEPP1_CHOICES = (
    f"beta annealed {DVAEPP_BETA_START:g} -> {DVAEPP_BETA_END:g} (no cross-validation)",
    f"Adam lr {DVAEPP_LEARNING_RATE:g}, eps {DVAEPP_ADAM_EPS:g} (Sec. 7.1), batch {MINIBATCH_SIZE}",
    "no KL warm-up (Sec. 7.1 follows Tucker et al.)",
)


FULL_TEST_AIS_TEMPERATURES = 40_000
"""AIS temperatures of the test log Z at the ``full`` budget. On the first two trained 1-linear
RBMs of DVAE++ Table 2 (100 + 100 units, ``python -m benchmarks.rbm_log_partition --checkpoint``),
four draws with 1,000 temperatures (the DVAE++ authors' setting; ESS about 80 of 1,024 chains,
standard errors 0.08-0.30) came out between 0.26 nats below and 0.11 above 40,000 temperatures
(on the third RBM, 0.39 below)
(ESS above 800, standard errors 0.013-0.015), which agreed with parallel tempering within 0.03
(``benchmarks/results/rbm_log_partition_*.md``). Every image's test log p(x) moves with that
error; 40,000 temperatures take about 5 minutes on one core, against the evaluation's half hour."""


@dataclass(frozen=True)
class DVAEPPTable2Budget:
    """RBM prior vs directed prior, 1 or 2 latent layers, linear or nonlinear (DVAE++ Sec. 7.2);
    also the DVAE# comparison's budget (its own ``columns`` and ``rows``).

    :ivar rows: ``(num_layers, network)`` pairs, printed as ``"1 linear"`` etc.
    :ivar units_per_layer: binary units per latent layer; an RBM's layers are its two
        sides (one layer: the units split in two halves, one group; two layers: one side
        each, the hierarchical posterior of Fig. 2d).
    :ivar ais_temperatures: AIS temperatures of the RBM's log Z at each learning-curve point.
    :ivar test_ais_temperatures: AIS temperatures of the log Z that the test log p(x) is
        normalised with (``None``: ``ais_temperatures``). The test's log Z moves every
        image's log p(x) by the same amount, so it gets the longer schedule.
    """

    data: DataBudget
    stage: Stage
    eval_particles: int
    pcd_chains: int
    pcd_sweeps: int
    ais_chains: int
    ais_temperatures: int
    test_ais_temperatures: int | None = None
    rows: tuple[tuple[int, str], ...] = ((1, "linear"), (2, "linear"), (1, "nonlinear"), (2, "nonlinear"))
    columns: tuple[SmoothedColumn, ...] = (RBM_OVERLAPPING, RBM_ROLFE, DIRECTED_JOINT, DIRECTED_MARGINAL)
    units_per_layer: int = NUM_BERNOULLI_LATENTS
    beta_start: float = DVAEPP_BETA_START
    beta_end: float = DVAEPP_BETA_END
    kl_warmup_fraction: float = 0.3
    choices: tuple[str, ...] = ()


DVAEPP2_CHOICES = (
    "layer sizes: App. F is not in our copy of the paper; we use 200 binary units per latent layer "
    "(RBM 100+100 for one layer, 200+200 for two; directed 200 and 200+200)",
    f"beta annealed {DVAEPP_BETA_START:g} -> {DVAEPP_BETA_END:g}, KL warm-up over the first 30% of steps",
    "no batch normalisation and no learning-rate decay (Sec. 7.2 mentions both as Rolfe's)",
    "log Z of the RBM for evaluation by AIS (linear temperatures, one Gibbs sweep each)",
)

# --- DVAE# against DVAE++ and DVAE (issue 16) -----------------------------------------

DVAE_SHARP_POWER_BETA = 40.0
"""DVAE#'s code, MNIST 1-layer linear and nonlinear, power smoother (notes Sec. 1.5 table)."""

DVAESHARP_COLUMNS = (
    SmoothedColumn("dvae", "rbm", "rolfe", "spike_and_exponential", beta=5.0),
    SmoothedColumn("dvae_pp", "rbm", "joint", "overlapping_exponential", beta=12.0, beta_nonlinear=14.0),
    SmoothedColumn("dvae_sharp_power_k1", "relaxed", "iw", "power", beta=DVAE_SHARP_POWER_BETA, num_particles=1),
    SmoothedColumn("dvae_sharp_power_k5", "relaxed", "iw", "power", beta=DVAE_SHARP_POWER_BETA, num_particles=5),
)
"""DVAE (spike-and-exponential, Rolfe's gradient), DVAE++ (overlapping exponential, joint ELBO) and
DVAE# (power smoother, K-sample IW bound, K = 1 and 5) on the same RBM prior and networks; each
with the fixed :math:`\beta` the DVAE# code uses for MNIST 1-layer models (notes Sec. 1.5)."""

DVAESHARP_ROWS = ((1, "linear"), (1, "nonlinear"))
"""Issue 16: the RBM prior, 1 latent layer, linear and nonlinear networks."""

DVAESHARP_CHOICES = (
    "200 binary units: an RBM of 100 + 100, one group, factorial posterior, for all four methods",
    "beta fixed per method at the DVAE# code's MNIST 1-layer values (DVAE 5, DVAE++ 12 linear / 14 nonlinear, "
    "DVAE# power 40); no annealing",
    "KL warm-up over the first 30% of steps for all four (DVAE# warms up the IW log-weights too)",
    "Adam eps 1e-3 at a constant learning rate for all four (DVAE#: 3e-3 piecewise-constant, weight decay 1e-4, "
    "batch normalisation: not used here)",
    "DVAE#'s published MNIST table is not in our copy of the paper (notes Sec. 1.6): no paper column; "
    "the question is the ranking at equal budget",
    "log Z of the RBM for evaluation by AIS (linear temperatures, one Gibbs sweep each)",
)

# --- BVAE Table I ----------------------------------------------------------------------


@dataclass(frozen=True)
class BVAERow:
    """One row of BVAE Table I: a unidirectional VAE or its bidirectional twin, and the objective.

    :ivar objective: ``"elbo"`` (``TraceMeanField_ELBO``; with ``beta`` a beta-VAE),
        ``"tcvae"`` (beta-TCVAE with weight ``beta``) or ``"iwae"`` (K = ``num_particles``).
    :ivar mlp_sizes: this row's fully connected widths, in place of the budget's (MLP budgets only).
    """

    label: str
    bidirectional: bool
    objective: str = "elbo"
    beta: float = 1.0
    num_particles: int = 1
    mlp_sizes: tuple[int, ...] | None = None


def _twin_rows(label: str, objective: str, beta: float = 1.0, num_particles: int = 1) -> tuple[BVAERow, BVAERow]:
    return (
        BVAERow(label, False, objective, beta, num_particles),
        BVAERow(f"Bidirectional {label}", True, objective, beta, num_particles),
    )


IWAE_PARTICLES = 5
"""K of the IWAE rows (BVAE does not state it; Burda et al.'s K = 5)."""

BVAE_CORE_ROWS = (*_twin_rows("VAE", "elbo"), *_twin_rows("IWAE", "iwae", num_particles=IWAE_PARTICLES))

TWIN_SIZED_MLP = (784, 290, 145)
"""Widths at which a unidirectional VAE has its bidirectional twin's parameter count on the
784-512-256 MLP: 568,442 against the twin's 567,696 (+0.13 %; the 784-512-256 VAE has
1,116,560). Same depth and 2:1 width ratio: (784, 2k, k) with the smallest k that reaches the
twin's count."""

TWIN_SIZED_VAE = BVAERow("Twin-sized VAE", False, "elbo", mlp_sizes=TWIN_SIZED_MLP)
"""The VAE with as many parameters as the bidirectional VAE: does the twin trail its VAE for
want of parameters (it shares one network's weights between encoder and decoder) or for
sharing them?"""

BVAE_ALL_ROWS = (
    *BVAE_CORE_ROWS,
    *_twin_rows("beta-VAE (0.5)", "elbo", 0.5),
    *_twin_rows("beta-VAE (1.5)", "elbo", 1.5),
    *_twin_rows("beta-TCVAE (0.5)", "tcvae", 0.5),
    *_twin_rows("beta-TCVAE (1.0)", "tcvae", 1.0),
    *_twin_rows("beta-TCVAE (1.5)", "tcvae", 1.5),
)


@dataclass(frozen=True)
class BVAEBudget:
    """Gaussian-latent VAEs and their bidirectional twins on MNIST (BVAE Sec. IV).

    :ivar network: ``"mlp"`` (:func:`~pyro_dgm.nn.bidirectional_networks.bidirectional_mlp`
        with ``mlp_sizes``) or ``"resnet"`` (``bidirectional_resnet`` with ``resnet_channels``,
        ``resnet_hidden_channels``, ``resnet_blocks``).
    """

    data: DataBudget
    stage: Stage
    eval_particles: int
    rows: tuple[BVAERow, ...]
    network: str = "mlp"
    mlp_sizes: tuple[int, ...] = (784, 512, 256)
    resnet_channels: tuple[int, ...] = (64, 128)
    resnet_hidden_channels: int = 128
    resnet_blocks: int = 2
    latent_dim: int = BVAE_LATENT_DIM
    choices: tuple[str, ...] = ()


BVAE_CHOICES = (
    "Adam at a constant learning rate (the paper: AdamW with OneCycleLR)",
    "Bernoulli likelihood on binarised pixels; the paper's binarisation, K and epochs are not stated",
    f"IWAE rows with K = {IWAE_PARTICLES}",
)

BVAE_NETWORK_NOTES = {
    "mlp": "fully connected 784-512-256 networks instead of residual ones",
    "resnet": "residual networks (64, 128 channels, 2 blocks): the paper's sizes are not stated",
}
"""The note a BVAE budget carries for each of its networks (``BVAEBudget.network``)."""

# --- the budgets -----------------------------------------------------------------------

TINY_DATA = DataBudget(OFFLINE_MNIST, train_size=MINIBATCH_SIZE, test_size=20)
SMALL_DATA = DataBudget(STATIC_MNIST, train_size=None, test_size=None)
FULL_DATA = DataBudget(STATIC_MNIST, train_size=None, test_size=None)

TINY_STAGE = Stage(epochs=1, learning_rate=1e-3, batch_size=MINIBATCH_SIZE)
TINY_PARTICLES = 2
TINY_EVAL_PARTICLES = 4

BUDGET_TABLE: dict[str, dict[str, object]] = {
    "bihm3": {
        "tiny": BiHMBudget(
            TINY_DATA, (Stage(1, 1e-3, TINY_PARTICLES),), TINY_EVAL_PARTICLES, 256, choices=BIHM_CHOICES
        ),
        "small": BiHMBudget(SMALL_DATA, (Stage(3, 1e-3, 10),), 200, 100_000, choices=BIHM_CHOICES),
        "full": BiHMBudget(
            FULL_DATA,
            (Stage(1000, 1e-3, 10), Stage(100, 3e-4, 100)),
            10_000,
            10_000_000,
            choices=(*BIHM_CHOICES, "1000 + 100 epochs stand in for the paper's 'until convergence'"),
        ),
    },
    "dvaepp1": {
        "tiny": DVAEPPTable1Budget(
            TINY_DATA,
            TINY_STAGE,
            TINY_EVAL_PARTICLES,
            networks=("linear",),
            variants=SMOOTHING_VARIANTS[:1],
            variant_networks=("linear",),
            choices=DVAEPP1_CHOICES,
        ),
        "small": DVAEPPTable1Budget(
            SMALL_DATA,
            Stage(10, DVAEPP_LEARNING_RATE, adam_eps=DVAEPP_ADAM_EPS),
            100,
            variant_networks=("linear",),
            choices=(*DVAEPP1_CHOICES, "smoothing variants for the linear network only (time)"),
        ),
        "full": DVAEPPTable1Budget(
            FULL_DATA,
            Stage(2000, DVAEPP_LEARNING_RATE, adam_eps=DVAEPP_ADAM_EPS),
            MNIST_TEST_PARTICLES,
            choices=(
                *DVAEPP1_CHOICES,
                "10^6 steps (2000 epochs): Tucker et al.'s iteration count is not in the DVAE++ text",
            ),
        ),
    },
    "dvaepp2": {
        "tiny": DVAEPPTable2Budget(
            TINY_DATA,
            Stage(1, 1e-3, adam_eps=DVAEPP_ADAM_EPS),
            TINY_EVAL_PARTICLES,
            pcd_chains=10,
            pcd_sweeps=2,
            ais_chains=16,
            ais_temperatures=10,
            rows=((1, "linear"),),
            choices=DVAEPP2_CHOICES,
        ),
        "small": DVAEPPTable2Budget(
            SMALL_DATA,
            Stage(1, 1e-3, adam_eps=DVAEPP_ADAM_EPS),
            200,
            pcd_chains=100,
            pcd_sweeps=10,
            ais_chains=256,
            ais_temperatures=1000,
            choices=(*DVAEPP2_CHOICES, "Adam lr 1e-3, eps 1e-3; 10 PCD sweeps per step"),
        ),
        "full": DVAEPPTable2Budget(
            FULL_DATA,
            Stage(1000, 1e-3, adam_eps=DVAEPP_ADAM_EPS),
            MNIST_TEST_PARTICLES,
            pcd_chains=100,
            pcd_sweeps=100,
            ais_chains=1024,
            ais_temperatures=1000,
            test_ais_temperatures=FULL_TEST_AIS_TEMPERATURES,
            choices=(*DVAEPP2_CHOICES, "Adam lr 1e-3, eps 1e-3, 1000 epochs; 100 PCD sweeps per step",
                     f"the test's log Z by AIS with 1024 chains x {FULL_TEST_AIS_TEMPERATURES:,} temperatures "
                     "(the DVAE++ authors': x 1,000, kept for the curve points)"),
        ),
    },
    "bvae1": {
        "tiny": BVAEBudget(TINY_DATA, TINY_STAGE, TINY_EVAL_PARTICLES, BVAE_CORE_ROWS[:2], choices=BVAE_CHOICES),
        "small": BVAEBudget(
            SMALL_DATA,
            Stage(8, 1e-3),
            200,
            (*BVAE_CORE_ROWS, TWIN_SIZED_VAE),
            choices=(*BVAE_CHOICES, BVAE_NETWORK_NOTES["mlp"],
                     "one more row, not in the paper: the VAE at its twin's parameter count (784-290-145)"),
        ),
        "full": BVAEBudget(
            FULL_DATA,
            Stage(200, 1e-3),
            MNIST_TEST_PARTICLES,
            BVAE_ALL_ROWS,
            network="resnet",
            choices=(*BVAE_CHOICES, BVAE_NETWORK_NOTES["resnet"]),
        ),
    },
}
"""``BUDGET_TABLE[table][budget]`` is the budget dataclass of that table."""


def _dvaesharp_budget(dvaepp2: DVAEPPTable2Budget, budget: str) -> DVAEPPTable2Budget:
    """DVAE++ Table 2's budget (data, stage, K, PCD, AIS) with the DVAE# comparison's rows and columns."""
    extras = dvaepp2.choices[len(DVAEPP2_CHOICES):]  # the budget's own notes (lr, sweeps, epochs)
    rows = DVAESHARP_ROWS[:1] if budget == "tiny" else DVAESHARP_ROWS
    return replace(dvaepp2, rows=rows, columns=DVAESHARP_COLUMNS, choices=(*DVAESHARP_CHOICES, *extras))


BUDGET_TABLE["dvaesharp"] = {budget: _dvaesharp_budget(BUDGET_TABLE["dvaepp2"][budget], budget) for budget in BUDGETS}


def budget_for(table: str, budget: str) -> object:
    """The budget of ``table`` at ``budget``; ``ValueError`` names the allowed values otherwise."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; choose one of: {', '.join(TABLES)}")
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of: {', '.join(BUDGETS)}")
    return BUDGET_TABLE[table][budget]

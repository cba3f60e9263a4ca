r"""DVAE and DVAE++ with an RBM prior, fully connected, in plain Pyro.

The generative model (DVAE Eq. 6-7 and 13; DVAE++ Fig. 2g) is

.. math::

    p(z)\; \prod_{j=1}^{k} r(\zeta_j \mid z_j)\; \prod_{m=1}^{M} p(\mathfrak z_m \mid \zeta, \mathfrak z_{<m})\;
    p(x \mid \zeta, \mathfrak z), \qquad
    p(z) = \frac{e^{a_1^\top z_1 + a_2^\top z_2 + z_1^\top W z_2}}{Z},

an RBM over :math:`z = [z_1, z_2] \in \{0,1\}^{n_1 + n_2}` (site ``"z"``), its units split
into :math:`k` groups that are smoothed at sites ``"zeta1"`` ... ``"zetak"`` (marked
``infer=smooths("z", units)``), optional Gaussian layers ``"continuous1"`` ... (DVAE
Sec. 4) and a Bernoulli decoder at ``"x"``. The groups are the blocks of the hierarchical
posterior (DVAE Eq. 10): with :math:`k = 2` and :math:`n_1 = n_2` they are the RBM's two
sides, DVAE++'s :math:`q(z_1 \mid x)\, q(z_2 \mid x, \zeta_1)` (Fig. 2d).

Guides: :mod:`pyro_dgm.models.dvae_guides`. Objectives (``SVI(model, guide, optim, loss)``):

* :class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO` — overlapping smoothers
  (``overlapping_exponential``, ``overlapping_logistic``, ``mixture_of_ramps``): the
  closed-form KL of DVAE++ Eq. (6-7), :math:`\nabla \log Z` from persistent chains;
* :class:`~pyro_dgm.infer.objectives.dvae.DVAEELBO` — spike smoothers (``spike_and_exponential``,
  ``spike_and_slab``): Rolfe's gradient (DVAE Eq. 11-12);
* :class:`~pyro.infer.Trace_ELBO` — any smoother, unbiased but with a score-function
  term for ``"z"``; it evaluates the RBM's ``log_prob``, so it needs an enumerable RBM
  (:math:`\min(n_1, n_2) \le 20`) and pays its :math:`\log Z` for every data point;
* evaluation: :func:`~pyro_dgm.models.dvae_base.binary_limit_pair` with
  :func:`~pyro_dgm.infer.log_likelihood` (importance-weighted :math:`\log p(x)` at
  :math:`\beta = \infty`).

KL warm-up (``kl_weight``) and β annealing (``beta``) are step keyword arguments
(:mod:`pyro_dgm.models.dvae_base`), honoured by all three objectives.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import torch
from torch import nn

from pyro_dgm.distributions import RBM
from pyro_dgm.distributions.smoothing_marks import smooths
from pyro_dgm.models.dvae_base import SmoothedVAE, binary_limit_pair, sample_images
from pyro_dgm.models.dvae_guides import with_guide
from pyro_dgm.models.dvae_layout import GroupSpec, LatentLayout, check_sizes, smoothed_site_name
from pyro_dgm.models.dvae_smoothing import DEFAULT_BETA, Smoothing
from pyro_dgm.models.plates import check_latent_value

__all__ = ["DiscreteVAE", "binary_limit_pair", "build_dvae", "build_dvae_pp", "rbm_layout", "sample_images"]

PRIOR_SITE = "z"
"""Name of the RBM prior site."""

DEFAULT_NUM_UNITS = 16
r"""Units per RBM side by default: :math:`2^{16}` states, so :math:`\log Z` is exact and cheap."""

RBM_WEIGHT_INIT_SCALE = 0.01
r"""Standard deviation of the initial couplings :math:`W`: a nearly factorial RBM to start,
whose block-Gibbs chains mix at once (biases start at 0)."""


def equal_group_sizes(num_units: int, num_groups: int) -> list[int]:
    """Split ``num_units`` into ``num_groups`` contiguous sizes differing by at most one."""
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or not 1 <= num_groups <= num_units:
        raise ValueError(f"num_groups must be an int in [1, {num_units}] (one unit per group at most), got {num_groups!r}")
    base, extra = divmod(num_units, num_groups)
    return [base + (1 if group < extra else 0) for group in range(num_groups)]


def rbm_layout(
    data_dim: int,
    num_units1: int,
    num_units2: int,
    num_groups: int = 2,
    group_sizes: Sequence[int] | None = None,
    continuous_sizes: Sequence[int] = (),
) -> LatentLayout:
    r"""Sites of an RBM model: ``"z"`` split into groups ``"zeta1"`` ... in unit order.

    ``group_sizes`` (summing to :math:`n_1 + n_2`) overrides the equal split into
    ``num_groups`` contiguous groups of ``[z1, z2]``.
    """
    check_sizes("data_dim, num_units1 and num_units2", (data_dim, num_units1, num_units2))
    num_units = num_units1 + num_units2
    if group_sizes is None:
        sizes = equal_group_sizes(num_units, num_groups)
    else:
        sizes = list(check_sizes("group_sizes", group_sizes, allow_empty=False))
        if sum(sizes) != num_units:
            raise ValueError(
                f"group_sizes must sum to num_units1 + num_units2 = {num_units}, got {sizes} (sum {sum(sizes)})"
            )
    starts = [sum(sizes[:j]) for j in range(len(sizes))]
    groups = tuple(
        GroupSpec(smoothed_site_name(j + 1), size, PRIOR_SITE, start)
        for j, (size, start) in enumerate(zip(sizes, starts))
    )
    return LatentLayout(data_dim, groups, check_sizes("continuous_sizes", continuous_sizes))


class DiscreteVAE(SmoothedVAE):
    r"""A VAE with a smoothed RBM prior: DVAE (spike smoothers) or DVAE++ (overlapping ones).

    Args:
        data_dim: :math:`D`, pixels of a flattened image.
        num_units1, num_units2: :math:`n_1, n_2`, the RBM's two sides.
        smoother: a name of :data:`~pyro_dgm.models.dvae_smoothing.SMOOTHERS`.
        beta: the smoother's default :math:`\beta` (ignored by the families without one).
        num_groups: :math:`k`, groups of the hierarchical posterior (equal contiguous split
            of ``[z1, z2]``); ``group_sizes`` gives them explicitly.
        hidden_sizes: tanh hidden layers of the decoder and of the continuous prior layers.
        continuous_sizes: sizes of Gaussian layers below the RBM (DVAE Sec. 4); none by default.
        name: prefix of the parameters in Pyro's param store.

    RBM biases start at 0 and :math:`W` at :data:`RBM_WEIGHT_INIT_SCALE` times a standard
    normal draw. ``model(x, num_data=N, beta=..., kl_weight=..., binary_limit=...)``
    scores ``x``; ``model(num_samples=S)`` samples.

    Example:
        >>> model = DiscreteVAE(784, 16, 16)
        >>> [group.site for group in model.layout.groups]
        ['zeta1', 'zeta2']
    """

    def __init__(
        self,
        data_dim: int,
        num_units1: int = DEFAULT_NUM_UNITS,
        num_units2: int = DEFAULT_NUM_UNITS,
        *,
        smoother: str = "overlapping_exponential",
        beta: float | None = DEFAULT_BETA,
        num_groups: int = 2,
        group_sizes: Sequence[int] | None = None,
        hidden_sizes: Sequence[int] = (),
        continuous_sizes: Sequence[int] = (),
        name: str = "dvae",
    ) -> None:
        layout = rbm_layout(data_dim, num_units1, num_units2, num_groups, group_sizes, continuous_sizes)
        super().__init__(layout, Smoothing.named(smoother, beta), hidden_sizes, name)
        self.num_units1, self.num_units2 = num_units1, num_units2
        self.bias1 = nn.Parameter(torch.zeros(num_units1))
        self.bias2 = nn.Parameter(torch.zeros(num_units2))
        self.weight = nn.Parameter(RBM_WEIGHT_INIT_SCALE * torch.randn(num_units1, num_units2))

    def prior(self, log_partition: torch.Tensor | float | None = None) -> RBM:
        r"""The RBM :math:`p(z)` (DVAE Eq. 6), with ``log_partition`` as its :math:`\log Z` if given."""
        return RBM(self.bias1, self.bias2, self.weight, log_partition=log_partition)

    def sample_smoothed(
        self, smoothing: Smoothing, batch_size: int, log_partition: torch.Tensor | float | None
    ) -> list[torch.Tensor]:
        z = pyro.sample(PRIOR_SITE, self.prior(log_partition))
        check_latent_value(PRIOR_SITE, z, batch_size, self.num_units1 + self.num_units2)
        zetas = []
        for group in self.layout.groups:
            r = smoothing.conditional(z[..., group.units])  # r(zeta_j | z_j)
            zeta = pyro.sample(group.site, r.to_event(1), infer=smooths(PRIOR_SITE, group.units))
            check_latent_value(group.site, zeta, batch_size, group.size)
            zetas.append(zeta)
        return zetas

    def binary_limit_kwargs(self) -> dict:
        """The exact :math:`\\log Z` (detached) when the RBM is enumerable, computed once."""
        rbm = self.prior()
        return {"log_partition": rbm.log_partition.detach()} if rbm.is_enumerable else {}


def build_dvae_pp(
    data_dim: int,
    num_units1: int = DEFAULT_NUM_UNITS,
    num_units2: int = DEFAULT_NUM_UNITS,
    *,
    smoother: str = "overlapping_exponential",
    beta: float | None = DEFAULT_BETA,
    num_groups: int = 2,
    group_sizes: Sequence[int] | None = None,
    hidden_sizes: Sequence[int] = (),
    continuous_sizes: Sequence[int] = (),
    guide: str = "hierarchical",
    guide_hidden_sizes: Sequence[int] | None = None,
) -> tuple[DiscreteVAE, nn.Module]:
    r"""A DVAE++ (RBM prior, overlapping smoothing by default) and its guide.

    :param guide: ``"hierarchical"`` (group :math:`j` from :math:`x, \zeta_{<j}`, DVAE
        Eq. 10) or ``"factorial"`` (all groups from :math:`x`).
    :param guide_hidden_sizes: the guide's hidden layers; default ``hidden_sizes``.
    :returns: ``(model, guide)``; train with ``DVAEPlusPlusELBO`` (or ``DVAEELBO`` for a
        spike smoother), evaluate with :func:`binary_limit_pair`.

    Example::

        model, guide = build_dvae_pp(784, 16, 16, hidden_sizes=(200, 200))
        svi = SVI(model, guide, Adam({"lr": 1e-3}), DVAEPlusPlusELBO())
    """
    model = DiscreteVAE(
        data_dim,
        num_units1,
        num_units2,
        smoother=smoother,
        beta=beta,
        num_groups=num_groups,
        group_sizes=group_sizes,
        hidden_sizes=hidden_sizes,
        continuous_sizes=continuous_sizes,
    )
    return with_guide(model, guide, smoother, beta, hidden_sizes, guide_hidden_sizes)


def build_dvae(
    data_dim: int,
    num_units1: int = DEFAULT_NUM_UNITS,
    num_units2: int = DEFAULT_NUM_UNITS,
    *,
    smoother: str = "spike_and_exponential",
    **kwargs,
) -> tuple[DiscreteVAE, nn.Module]:
    """Rolfe's DVAE: :func:`build_dvae_pp` with spike-and-exponential smoothing; train with ``DVAEELBO``."""
    return build_dvae_pp(data_dim, num_units1, num_units2, smoother=smoother, **kwargs)

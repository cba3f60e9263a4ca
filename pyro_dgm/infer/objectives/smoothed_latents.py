r"""How a model marks a smoothed binary prior, and how the guide's groups map onto it.

DVAE (Rolfe 2017, Sec. 2-3) and DVAE++ (Vahdat et al. 2018, Sec. 4-5) pair every binary
latent :math:`z_u` with a continuous :math:`\zeta_u \sim r(\zeta_u \mid z_u)` and let the
rest of the model see only :math:`\zeta`. Both programs are written in plain Pyro:

**Model** (generative order): the binary prior at one site, then each group's
:math:`\zeta_j \sim r(\zeta_j \mid z_j)` at its own site, *marked* with
``infer=smooths("z", units)`` (the units of ``"z"`` that this site smooths), then
everything else on :math:`\zeta` only (``r1 = OverlappingExponential(beta,
logits=torch.zeros(2))``: :meth:`conditional` ignores the logits)::

    z = pyro.sample("z", RBM(a1, a2, W))                          # or Bernoulli(...).to_event(1)
    zeta1 = pyro.sample("zeta1", r1.conditional(z[..., :2]).to_event(1), infer=smooths("z", slice(0, 2)))
    zeta2 = pyro.sample("zeta2", r2.conditional(z[..., 2:]).to_event(1), infer=smooths("z", slice(2, 4)))
    pyro.sample("x", decoder(zeta1, zeta2), obs=x)

Pyro's ``replay`` overwrites a latent site's ``infer`` with the guide's; the objectives
trace the model with :func:`trace_model_with_marks`, which keeps the marks.

**Guide** (hierarchical posterior, DVAE Eq. 10): group by group, :math:`\zeta_j` from the
*marginal* smoother :math:`q(\zeta_j \mid x, \zeta_{<j}) = \sum_{z_j} q(z_j \mid x,
\zeta_{<j})\, r(\zeta_j \mid z_j)` (a
:class:`~pyro_dgm.distributions.smoothing.SmoothingTransformation`, reparameterised),
then the binary site from the smoother's posterior
:math:`\nu_j = q(z_j = 1 \mid x, \zeta_{\le j})`::

    q1 = OverlappingExponential(beta, logits=encoder1(x))
    zeta1 = pyro.sample("zeta1", q1.to_event(1))
    q2 = OverlappingExponential(beta, logits=encoder2(x, zeta1))
    zeta2 = pyro.sample("zeta2", q2.to_event(1))
    nu = torch.cat([q1.posterior_probs(zeta1), q2.posterior_probs(zeta2)], -1)
    pyro.sample("z", dist.Bernoulli(probs=nu).to_event(1))

Because :math:`q(\zeta_j \mid \cdot)\, q(z_j \mid \zeta_j, \cdot) = q(z_j \mid \cdot)\,
r(\zeta_j \mid z_j)`, the pair is an ordinary Pyro program and
:class:`~pyro.infer.Trace_ELBO` estimates its ELBO (with a score-function term for the
binary site). :class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO` reads the same two
traces and replaces the binary and smoothed sites by the analytic KL.

The *groups* are the marked sites, in the order the guide samples them; their units
must partition the prior site's units. A directed prior writes one binary site per
group (``"z1"``, then ``"z2"`` conditioned on ``zeta1``), each smoothed by one site.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from pyro import poutine
from pyro.distributions import Bernoulli, ExpandedDistribution, Independent
from pyro.poutine import Trace
from pyro.poutine.messenger import Messenger
from torch.distributions import Distribution

from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.distributions.smoothing import SmoothingConditional, SmoothingTransformation
from pyro_dgm.distributions.smoothing_marks import SMOOTHS, UNITS, Units

SUPPORTED_PRIORS = (RBM, Bernoulli)
"""Binary priors whose KL to a smoothed hierarchical posterior has a closed form."""

class _RecordMarks(Messenger):
    """Remember the smoothing marks of the model's sites before ``replay`` replaces ``infer``."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[str, dict] = {}

    def _pyro_sample(self, msg) -> None:
        if SMOOTHS in msg["infer"]:
            self.marks[msg["name"]] = {
                SMOOTHS: msg["infer"][SMOOTHS],
                UNITS: msg["infer"].get(UNITS),
            }


def trace_model_with_marks(model: Callable, guide_trace: Trace, *args, **kwargs) -> Trace:
    """Trace ``model`` replayed against ``guide_trace``, keeping the model's smoothing marks.

    :func:`pyro.poutine.replay` replaces the ``infer`` dict of every replayed site by the
    guide's, which would erase marks written in the model; they are recorded first and
    merged back into (a copy of) each site's ``infer``.
    """
    recorder = _RecordMarks()
    trace = poutine.trace(poutine.replay(recorder(model), trace=guide_trace)).get_trace(
        *args, **kwargs
    )
    for name, mark in recorder.marks.items():
        site = trace.nodes[name]
        site["infer"] = {**site["infer"], **mark}
    return trace


def smoothed_site_names(model_trace: Trace) -> set[str]:
    """Names of the binary prior sites and of the sites marked as smoothing them."""
    names = set()
    for name, site in model_trace.nodes.items():
        if site["type"] == "sample" and SMOOTHS in site["infer"]:
            names.update((name, site["infer"][SMOOTHS]))
    return names


def unwrap(fn: Distribution) -> Distribution:
    """The distribution under Pyro's ``Independent`` and ``ExpandedDistribution`` wrappers."""
    while isinstance(fn, (Independent, ExpandedDistribution)):
        fn = fn.base_dist
    return fn


@dataclass
class SmoothedGroup:
    r"""One group :math:`j` of the hierarchical posterior, as sampled by the guide.

    :ivar name: the site name, the same in model and guide.
    :ivar units: positions of the group's units in the prior site's last dimension.
    :ivar smoother: the guide's marginal :math:`q(\zeta_j \mid x, \zeta_{<j})`.
    :ivar value: the guide's sample :math:`\zeta_j`, shape (*batch, n_j).
    """

    name: str
    units: torch.Tensor
    smoother: SmoothingTransformation
    value: torch.Tensor

    @property
    def logits(self) -> torch.Tensor:
        r""":math:`\mathrm{logit}\,\mu_j`, :math:`\mu_j = q(z_j = 1 \mid x, \zeta_{<j})`, shape (*batch, n_j)."""
        return self.smoother.logits.expand_as(self.value)

    @property
    def posterior_probs(self) -> torch.Tensor:
        r""":math:`\nu_j = q(z_j = 1 \mid x, \zeta_{\le j})`, shape (*batch, n_j) (DVAE++ Sec. 5)."""
        return self.smoother.posterior_probs(self.value)


@dataclass
class SmoothedPrior:
    """A binary prior site of the model with the guide groups that smooth it, in guide order.

    :ivar name: the prior site's name.
    :ivar prior: its distribution without wrappers (:class:`RBM` or ``Bernoulli``).
    :ivar site: the model trace's site (for ``scale``, ``mask``, the batch shape).
    :ivar groups: the groups, in the order the guide samples them.
    """

    name: str
    prior: Distribution
    site: dict
    groups: list[SmoothedGroup]

    @property
    def num_units(self) -> int:
        return sum(group.units.numel() for group in self.groups)

    def _by_unit(self, per_group: list[torch.Tensor]) -> torch.Tensor:
        batch_shape = torch.broadcast_shapes(*(part.shape[:-1] for part in per_group))
        stacked = torch.cat([part.expand(batch_shape + part.shape[-1:]) for part in per_group], -1)
        order = torch.cat([group.units for group in self.groups])
        # groups contiguous and in unit order (the usual layout): no gather
        if torch.equal(order, torch.arange(order.numel(), device=order.device)):
            return stacked
        return stacked[..., torch.argsort(order).to(stacked.device)]

    def logits(self) -> torch.Tensor:
        r"""All units' :math:`\mathrm{logit}\,\mu` in the prior's unit order, shape (*batch, n)."""
        return self._by_unit([group.logits for group in self.groups])

    def posterior_probs(self) -> torch.Tensor:
        r"""All units' :math:`\nu` in the prior's unit order, shape (*batch, n)."""
        return self._by_unit([group.posterior_probs for group in self.groups])

    def group_of_unit(self) -> torch.Tensor:
        """The group index (guide order) of each unit, shape (n,)."""
        index = torch.empty(self.num_units, dtype=torch.long)
        for position, group in enumerate(self.groups):
            index[group.units] = position
        return index


def _unit_indices(units: Units, num_units: int, name: str, prior_name: str) -> torch.Tensor:
    if units is None:
        return torch.arange(num_units)
    if isinstance(units, slice):
        return torch.arange(num_units)[units]
    index = torch.as_tensor(units, dtype=torch.long).reshape(-1)
    if index.numel() and (index.min() < 0 or index.max() >= num_units):
        raise ValueError(
            f"model site '{name}' smooths units {index.tolist()} of site '{prior_name}', "
            f"which has only {num_units} units"
        )
    return index


def _check_partition(prior_name: str, groups: list[SmoothedGroup], num_units: int) -> None:
    owner: dict[int, str] = {}
    for group in groups:
        for unit in group.units.tolist():
            if unit in owner:
                raise ValueError(
                    f"unit {unit} of site '{prior_name}' is smoothed by both "
                    f"'{owner[unit]}' and '{group.name}'"
                )
            owner[unit] = group.name
    missing = [unit for unit in range(num_units) if unit not in owner]
    if missing:
        raise ValueError(
            f"units {missing} of site '{prior_name}' are smoothed by no site; mark a model "
            f"site infer=smooths('{prior_name}', units) for every unit"
        )


def _check_same_smoothing(
    name: str, model_fn: Distribution, smoother: SmoothingTransformation
) -> None:
    """The model's r(zeta | z) must be the guide's: same family, same parameters but q."""
    conditional = unwrap(model_fn)
    if not isinstance(conditional, SmoothingConditional):
        raise ValueError(
            f"model site '{name}' is marked as a smoothed site but samples "
            f"{type(conditional).__name__}, not r(zeta | z) (smoother.conditional(z))"
        )
    model_smoother = conditional.smoothing
    if type(model_smoother) is not type(smoother):
        raise ValueError(
            f"site '{name}' smooths with {type(model_smoother).__name__} in the model but "
            f"{type(smoother).__name__} in the guide: r(zeta | z) must be the same in both"
        )
    for parameter in set(smoother.arg_constraints) - {"probs", "logits"}:
        model_value, guide_value = getattr(model_smoother, parameter), getattr(smoother, parameter)
        try:
            same = torch.equal(*torch.broadcast_tensors(model_value, guide_value))
        except RuntimeError:  # shapes that do not broadcast
            same = False
        if not same:
            raise ValueError(
                f"site '{name}': the smoothing parameter {parameter} differs between model "
                "and guide: r(zeta | z) must be the same in both"
            )


def _guide_group(
    name: str, units: torch.Tensor, model_site: dict, guide_site: dict, prior_name: str
) -> SmoothedGroup:
    smoother = unwrap(guide_site["fn"])
    if not isinstance(smoother, SmoothingTransformation):
        raise ValueError(
            f"guide site '{name}' must sample the marginal smoother q(zeta | x, ...) of "
            f"site '{prior_name}' (a SmoothingTransformation), got {type(smoother).__name__}"
        )
    _check_same_smoothing(name, model_site["fn"], smoother)
    value = guide_site["value"]
    if tuple(guide_site["fn"].event_shape) != (units.numel(),):
        raise ValueError(
            f"guide site '{name}' has event shape {tuple(guide_site['fn'].event_shape)} but "
            f"the model's '{name}' smooths {units.numel()} units of '{prior_name}': sample "
            f"the group as one event, e.g. smoother.to_event(1)"
        )
    return SmoothedGroup(name=name, units=units, smoother=smoother, value=value)


def find_smoothed_priors(model_trace: Trace, guide_trace: Trace) -> list[SmoothedPrior]:
    """Read the marked smoothed priors of the model and their groups in the guide.

    Raises :class:`ValueError`, naming the site, when a marked site points at no
    binary latent site, the prior is not an RBM or factorial Bernoulli, a guide site
    is not a marginal smoother of the right size, or the groups' units do not
    partition the prior's units. The guide is expected to sample every model latent
    site (:func:`~pyro_dgm.infer.validation.check_guide_covers_model`), and the model
    trace to come from :func:`trace_model_with_marks`.
    """
    marked: dict[str, list[tuple[str, Units]]] = {}
    for name, site in model_trace.nodes.items():
        if site["type"] == "sample" and SMOOTHS in site["infer"]:
            prior_name = site["infer"][SMOOTHS]
            prior_site = model_trace.nodes.get(prior_name)
            if prior_site is None or prior_site["type"] != "sample" or prior_site["is_observed"]:
                raise ValueError(
                    f"model site '{name}' is marked as smoothing '{prior_name}', but the "
                    f"model has no latent sample site '{prior_name}' before it"
                )
            marked.setdefault(prior_name, []).append((name, site["infer"].get(UNITS)))
    guide_order = {name: position for position, name in enumerate(guide_trace.nodes)}
    priors = []
    for prior_name, sites in marked.items():
        prior_site = model_trace.nodes[prior_name]
        prior = unwrap(prior_site["fn"])
        if not isinstance(prior, SUPPORTED_PRIORS):
            raise ValueError(
                f"model site '{prior_name}' is smoothed but its prior is "
                f"{type(prior).__name__}; supported: RBM and factorial Bernoulli"
            )
        if len(prior_site["fn"].event_shape) != 1:
            raise ValueError(
                f"model site '{prior_name}' must have one event dimension of units, got event "
                f"shape {tuple(prior_site['fn'].event_shape)} (use Bernoulli(...).to_event(1))"
            )
        num_units = prior_site["fn"].event_shape[0]
        for name, _ in sites:
            if name not in guide_order:
                raise ValueError(f"the guide does not sample the smoothed site '{name}'")
        sites.sort(key=lambda item: guide_order[item[0]])
        groups = [
            _guide_group(
                name,
                _unit_indices(units, num_units, name, prior_name),
                model_trace.nodes[name],
                guide_trace.nodes[name],
                prior_name,
            )
            for name, units in sites
        ]
        _check_partition(prior_name, groups, num_units)
        priors.append(SmoothedPrior(name=prior_name, prior=prior, site=prior_site, groups=groups))
    return priors

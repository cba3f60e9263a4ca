r"""The DVAE++ objective: an ELBO with the analytic KL of smoothed binary latents (Vahdat et al. 2018)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from pyro import poutine
from pyro.distributions import Bernoulli
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer import Trace_ELBO
from pyro.infer.util import is_validation_enabled, torch_item
from pyro.poutine import Trace
from pyro.poutine.util import prune_subsample_sites
from pyro.util import check_if_enumerated, check_model_guide_match, check_site_shape, warn_if_nan

from pyro_dgm.distributions.rbm import RBM
from pyro_dgm.infer.objectives.rbm_log_partition_term import (
    DEFAULT_NUM_CHAINS,
    DEFAULT_NUM_SWEEPS,
    LogPartitionGradient,
    RBMLogPartitionTerm,
    WithRBMLogPartitions,
)
from pyro_dgm.infer.objectives.smoothed_kl import expected_coupling, rbm_smoothed_kl, smoothed_bernoulli_kl
from pyro_dgm.infer.objectives.smoothed_latents import (
    SmoothedPrior,
    find_smoothed_priors,
    smoothed_site_names,
    trace_model_with_marks,
)
from pyro_dgm.infer.validation import check_guide_covers_model


def _without(trace: Trace, names: set[str]) -> Trace:
    pruned = trace.copy()
    for name in names & set(pruned.nodes):
        pruned.remove_node(name)
    return pruned


def plate_nesting_without_log_prob(model: Callable, guide: Callable, args, kwargs) -> int:
    """The deepest vectorised plate of a guide trace and its replayed model trace (no particle plate).

    Unlike :meth:`pyro.infer.ELBO._guess_max_plate_nesting`, computes no ``log_prob``: for an RBM
    prior that would need its :math:`\\log Z`, intractable for large RBMs.
    """
    with poutine.block():
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    dims = [
        frame.dim
        for trace in (prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace))
        for site in trace.nodes.values()
        if site["type"] == "sample"
        for frame in site["cond_indep_stack"]
        if frame.vectorized
    ]
    return -min(dims) if dims else 0


def _shared_rbm(prior: SmoothedPrior) -> RBM:
    """The RBM of a prior site without the batch dims that plates broadcast it to.

    Plates broadcast the model's RBM by :meth:`RBM.expand`, which remembers the
    original: that one is used as it is (indexing the expanded parameters instead
    would make autograd build and sum a zero gradient of the full particles x data x
    n1 x n2 shape). An RBM built with batched parameters is checked to be shared.
    """
    rbm = prior.prior.unexpanded
    if not rbm.batch_shape:
        return rbm
    first = (0,) * len(rbm.batch_shape)
    shared = [rbm.bias1[first], rbm.bias2[first], rbm.weight[first]]
    for full, one in zip((rbm.bias1, rbm.bias2, rbm.weight), shared):
        if not torch.equal(full, one.expand_as(full)):
            raise ValueError(
                f"the RBM at site '{prior.name}' has parameters that vary across its batch "
                f"{tuple(rbm.batch_shape)}; the objective needs one RBM shared by all data "
                "points (its log Z and persistent chains are global)"
            )
    supplied = rbm.__dict__.get("log_partition")
    return RBM(*shared, log_partition=None if supplied is None else supplied[first])


class DVAEPlusPlusELBO(WithRBMLogPartitions, Trace_ELBO):
    r"""ELBO of a model with smoothed binary latents, with the KL of DVAE++ in closed form.

    The model and guide are written as in :mod:`pyro_dgm.infer.objectives.smoothed_latents`: a
    binary prior site :math:`z` (an :class:`~pyro_dgm.distributions.rbm.RBM` or a
    factorial Bernoulli), sites :math:`\zeta_j \sim r(\zeta_j \mid z_j)` marked
    ``infer=smooths("z", units)``, and a guide that draws each :math:`\zeta_j` from the
    marginal smoother :math:`q(\zeta_j \mid x, \zeta_{<j})` and then :math:`z` from
    :math:`\nu`. The bound is the ELBO of that pair,

    .. math::

        \mathcal L(x) = \mathbb E_{q(\zeta \mid x)}[\log p(x \mid \zeta)]
            - \mathrm{KL}\bigl(q(z, \zeta \mid x) \,\|\, p(z, \zeta)\bigr),

    which :class:`~pyro.infer.Trace_ELBO` also estimates, with a score-function term
    for :math:`z`. Here the binary and smoothed sites are replaced by the KL in closed
    form given the reparameterised :math:`\zeta` (:mod:`~pyro_dgm.infer.objectives.smoothed_kl`):

    * directed factorial prior: :math:`\sum_j \mathbb E_{\zeta_{<j}}\,
      \mathrm{KL}(q(z_j \mid x, \zeta_{<j}) \,\|\, p(z_j \mid \zeta_{<j}))`, the joint
      ELBO of DVAE++ Eq. (4);
    * RBM prior, :math:`k` groups: :math:`\log Z - \sum_j H(q(z_j \mid x, \zeta_{<j}))
      - a^\top \mu - \sum_{uv} W_{uv} m_{uv}` (DVAE++ Eq. 6-7, with
      :math:`m_{uv} = \nu_u \mu_v` when :math:`u`'s group precedes :math:`v`'s).

    Every other site (the decoder, continuous local latents) is handled exactly as in
    :class:`~pyro.infer.Trace_ELBO`. The gradient is the reparameterisation gradient
    of this estimate, except for :math:`\log Z`, whose gradient
    :math:`\nabla_\theta \log Z = \mathbb E_{p(z)}[-\nabla_\theta E(z)]` (DVAE Eq. 11) is
    the exact gradient of the enumerated :math:`\log Z` when the RBM is enumerable
    (the default ``log_partition_gradient="auto"``, or ``"exact"``), else estimated
    from persistent block-Gibbs chains (PCD; DVAE App. H) by
    :func:`~pyro_dgm.distributions.gibbs.log_partition_surrogate` (``"persistent"``
    forces the chains even for an enumerable RBM).

    **Why no chains when log Z is exact.** The reported loss needs the enumerated
    :math:`\log Z` anyway; its exact gradient is one more chunked pass over the same
    states (the expected sufficient statistics), has no Monte Carlo noise, and leaves
    nothing to burn in. Chains would add their sweeps on top of the enumeration and
    only a noisier estimate of the same gradient.

    **Why log Z needs this objective.** Pyro never checks that a ``log_prob`` is
    normalised: a model whose RBM site returned only :math:`-E(z)` would train under
    ``Trace_ELBO`` while silently dropping :math:`-\nabla \log Z` from the prior's
    gradient. This objective never evaluates the RBM's ``log_prob`` (so neither the
    exact :math:`\log Z` per data point nor an intractable one); it adds
    :math:`\log Z` once per data point itself.

    **Reported value.** The loss uses the exact :math:`\log Z` when the RBM is
    enumerable, else an estimate passed as ``RBM(..., log_partition=...)``; with
    neither, the loss omits :math:`\log Z` (it is then the negative ELBO up to
    :math:`N \log Z`), a warning is issued once per site, and
    :attr:`log_partition_source` says so. The gradient always includes it.

    **Assumptions.** The guide samples every latent site of the model; the smoothing
    :math:`r` of the model's marked sites is the one the guide's smoothers use; an
    RBM prior's parameters are shared by all data points; every guide site sampled
    before the last smoothed site is reparameterised (the analytic KL enters no
    score-function term). With an RBM prior the cross term differentiates
    :math:`\nu(\zeta)`, which needs overlapping smoothers (DVAE++ Sec. 3); for
    spike-and-X smoothers use :class:`~pyro_dgm.infer.objectives.dvae.DVAEELBO`.

    Minibatches: the KL of each data point is scaled like the prior site
    (``pyro.plate(..., subsample_size=B)`` multiplies by N/B) and masked like it.

    :param int num_particles: samples of :math:`\zeta` per data point.
    :param max_plate_nesting: as in :class:`pyro.infer.ELBO`.
    :param bool vectorize_particles: as in :class:`pyro.infer.ELBO`.
    :param int num_chains: persistent chains per RBM prior site.
    :param int num_sweeps: block-Gibbs sweeps of the chains per gradient step.
    :param str log_partition_gradient: ``"auto"`` (default: ``"exact"`` when the RBM's
        :math:`\log Z` is enumerated, i.e. enumerable and no estimate supplied, else
        ``"persistent"``), ``"persistent"`` (PCD, any RBM) or ``"exact"`` (autodiff of the
        enumerated :math:`\log Z`; enumerable RBMs only).

    :ivar chains: the :class:`~pyro_dgm.distributions.gibbs.PersistentChains` of each
        RBM prior site whose :math:`\log Z` gradient comes from chains, created on first use.
    :ivar log_partition_source: per RBM prior site, what the last reported value used:
        ``"exact"``, ``"supplied"`` or ``"omitted"``.

    Example::

        svi = SVI(model, guide, Adam({"lr": 1e-3}), DVAEPlusPlusELBO(num_sweeps=10))

    References: A. Vahdat, W. Macready, Z. Bian, A. Khoshaman, E. Andriyash, "DVAE++:
    Discrete Variational Autoencoders with Overlapping Transformations", ICML 2018;
    J. T. Rolfe, "Discrete Variational Autoencoders", ICLR 2017.
    """

    def __init__(
        self,
        num_particles: int = 1,
        max_plate_nesting: float = float("inf"),
        vectorize_particles: bool = False,
        *,
        num_chains: int = DEFAULT_NUM_CHAINS,
        num_sweeps: int = DEFAULT_NUM_SWEEPS,
        log_partition_gradient: LogPartitionGradient = "auto",
    ) -> None:
        # num_particles <= 0 would make every step a silent no-op (no particle, loss 0)
        for name, value in (("num_particles", num_particles), ("num_chains", num_chains), ("num_sweeps", num_sweeps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            vectorize_particles=vectorize_particles,
        )
        self.log_partitions = RBMLogPartitionTerm(num_chains, num_sweeps, log_partition_gradient)
        self.num_chains = num_chains
        self.num_sweeps = num_sweeps
        self.log_partition_gradient = log_partition_gradient
        self._warned: set = set()
        self._checked: set = set()  # checks run once per site and smoother family (the spike scan)

    # ----- traces ---------------------------------------------------------------------

    def _guess_max_plate_nesting(self, model, guide, args, kwargs) -> None:
        r"""As :meth:`pyro.infer.ELBO._guess_max_plate_nesting`, without computing any ``log_prob``.

        Pyro's version validates site shapes through ``log_prob``, which for an RBM
        prior means its :math:`\log Z` (intractable for large RBMs).
        """
        self.max_plate_nesting = plate_nesting_without_log_prob(model, guide, args, kwargs)
        if self.vectorize_particles and self.num_particles > 1:
            self.max_plate_nesting += 1

    def _get_trace(self, model, guide, args, kwargs):
        """Guide trace and replayed model trace, as :func:`pyro.infer.enum.get_importance_trace`.

        The difference: the binary prior and smoothed sites get no ``log_prob`` in the
        model nor score parts in the guide (the closed-form KL replaces them, and an
        RBM's would need its :math:`\\log Z` for every particle and data point).
        """
        if isinstance(poutine.unwrap(guide), poutine.messenger.Messenger):
            raise NotImplementedError(
                f"{type(self).__name__} does not support GuideMessenger guides"
            )
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = trace_model_with_marks(model, guide_trace, *args, **kwargs)
        if is_validation_enabled():
            check_model_guide_match(model_trace, guide_trace, self.max_plate_nesting)
            check_if_enumerated(guide_trace)
        guide_trace = prune_subsample_sites(guide_trace)
        model_trace = prune_subsample_sites(model_trace)
        check_guide_covers_model(model_trace, guide_trace)
        smoothed = smoothed_site_names(model_trace)
        model_trace.compute_log_prob(site_filter=lambda name, site: name not in smoothed)
        # Trace.copy is shallow: the pruned copy's sites are the guide trace's own dicts
        _without(guide_trace, smoothed).compute_score_parts()
        if is_validation_enabled():
            for name, site in model_trace.nodes.items():
                if site["type"] == "sample" and name not in smoothed:
                    check_site_shape(site, self.max_plate_nesting)
        return model_trace, guide_trace

    # ----- loss -----------------------------------------------------------------------

    def loss(self, model: Callable, guide: Callable, *args, **kwargs) -> float:
        """An estimate of the negative ELBO (no chain steps, no gradient)."""
        loss = 0.0
        with torch.no_grad():
            for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
                loss_particle, _ = self._loss_particle(
                    model_trace, guide_trace, sample_chains=False
                )
                loss += loss_particle / self.num_particles
        warn_if_nan(loss, "loss")
        return loss

    def prior_kls(
        self, model: Callable, guide: Callable, *args, **kwargs
    ) -> dict[str, torch.Tensor]:
        r"""The closed-form KL of each smoothed prior site, per particle and data point, unscaled.

        One guide/model pass (particles vectorised if so configured); no chain step: the
        :math:`\log Z` term is the reported value (:meth:`log_partition`), differentiable
        when exact. For monitoring, and for testing the KL against exact values.
        """
        if self.vectorize_particles:
            if self.max_plate_nesting == float("inf"):
                self._guess_max_plate_nesting(model, guide, args, kwargs)
            model_trace, guide_trace = self._get_vectorized_trace(model, guide, args, kwargs)
        else:
            model_trace, guide_trace = self._get_trace(model, guide, args, kwargs)
        return {
            prior.name: self.prior_kl(prior, sample_chains=False)
            for prior in find_smoothed_priors(model_trace, guide_trace)
        }

    def _differentiable_loss_particle(self, model_trace, guide_trace):
        return self._loss_particle(model_trace, guide_trace, sample_chains=True)

    def _loss_particle(self, model_trace: Trace, guide_trace: Trace, sample_chains: bool):
        priors = find_smoothed_priors(model_trace, guide_trace)
        if not priors and "unmarked" not in self._warned:
            self._warned.add("unmarked")
            warnings.warn(
                f"{type(self).__name__} found no model site marked infer=smooths(...): it "
                "reduces to Trace_ELBO",
                stacklevel=4,
            )
        smoothed = smoothed_site_names(model_trace)
        _check_binary_sites_follow_their_groups(guide_trace, priors)
        _check_reparameterised_before(guide_trace, priors, smoothed)
        loss, surrogate_loss = super()._differentiable_loss_particle(
            _without(model_trace, smoothed), _without(guide_trace, smoothed)
        )
        for prior in priors:
            kl = self.prior_kl(prior, sample_chains)
            kl = scale_and_mask(kl, prior.site["scale"], prior.site["mask"]).sum()
            loss = loss + torch_item(kl)
            surrogate_loss = surrogate_loss + kl
        return loss, surrogate_loss

    # ----- the KL of one smoothed prior ------------------------------------------------

    def prior_kl(self, prior: SmoothedPrior, sample_chains: bool = True) -> torch.Tensor:
        r""":math:`\mathrm{KL}(q(z, \zeta \mid x) \,\|\, p(z, \zeta))` of one prior site, per particle and data point.

        :returns: shape the prior site's batch shape; its gradient is this objective's
            estimator (with the :math:`\log Z` term from :meth:`log_partition`).
        :param sample_chains: estimate the gradient of :math:`\log Z` from a step of the
            persistent chains; ``False``: use the value alone.
        """
        logits = prior.logits()
        if isinstance(prior.prior, Bernoulli):
            return smoothed_bernoulli_kl(logits, prior.prior)  # DVAE++ Eq. 4
        rbm = _shared_rbm(prior)
        probs = torch.sigmoid(logits)  # mu, shared by the coupling, entropy and bias terms
        coupling = self.expected_coupling(prior, rbm.weight, probs)
        log_partition = self.log_partition(prior.name, rbm, sample_chains)
        return rbm_smoothed_kl(
            rbm.bias1, rbm.bias2, rbm.weight, logits, coupling, log_partition, probs=probs
        )

    def expected_coupling(
        self, prior: SmoothedPrior, weight: torch.Tensor, probs: torch.Tensor | None = None
    ) -> torch.Tensor:
        r"""Estimate of :math:`\mathbb E_q[z_1^\top W z_2]` whose autodiff gradient is the estimator.

        DVAE++: :math:`\sum_{uv} W_{uv} m_{uv}` of Eq. 7, differentiated through
        :math:`\mu` and :math:`\nu(\zeta)`.

        :param probs: :math:`\mu = \sigma(\text{prior.logits()})` if already computed.
        """
        if probs is None:
            probs = torch.sigmoid(prior.logits())
        posterior_probs = prior.posterior_probs()
        families = tuple(type(group.smoother) for group in prior.groups)
        if torch.is_grad_enabled() and (prior.name, "spike", families) not in self._checked:
            # whether nu is 0 or 1 everywhere is a property of the smoothers' family: look once
            self._checked.add((prior.name, "spike", families))
            if ((posterior_probs == 0) | (posterior_probs == 1)).all():
                warnings.warn(
                    f"the smoothers of site '{prior.name}' have posterior probabilities of "
                    "exactly 0 or 1 (a spike-and-X or binary-limit smoother): the DVAE++ "
                    "gradient of the RBM cross term misses the jump of nu; use DVAEELBO",
                    stacklevel=2,
                )
        return expected_coupling(probs, posterior_probs, weight, prior.group_of_unit())

    def log_partition(self, name: str, rbm: RBM, sample_chains: bool = True) -> torch.Tensor:
        r""":math:`\log Z` of the RBM at site ``name``: reported value plus its gradient estimator.

        Records in :attr:`log_partition_source` which value is reported. When the value
        is exact and ``log_partition_gradient`` is ``"auto"`` or ``"exact"``, it is
        returned differentiable and no chain runs. Otherwise, with ``sample_chains`` the
        chains take :attr:`num_sweeps` sweeps and the gradient is their Monte Carlo
        estimate; without, the value alone is returned (differentiable when exact).
        """
        return self.log_partitions(name, rbm, sample_chains)


def _check_binary_sites_follow_their_groups(guide_trace: Trace, priors) -> None:
    r"""The guide draws each binary prior site after the :math:`\zeta` sites that smooth it.

    The hierarchical posterior (DVAE Eq. 10) draws :math:`z_j` from the smoother's
    posterior :math:`\nu_j(\zeta_j)`; a guide that draws :math:`z` first and
    :math:`\zeta` independently pairs values the model's :math:`r(\zeta \mid z)` may not
    support (in the binary limit :math:`\zeta = z` every such weight is zero).
    """
    order = list(guide_trace.nodes)
    for prior in priors:
        if prior.name not in guide_trace.nodes:
            continue  # check_guide_covers_model names the missing site
        later = [group.name for group in prior.groups if order.index(group.name) > order.index(prior.name)]
        if later:
            raise ValueError(
                f"guide site '{prior.name}' is sampled before {later}, which smooth it: draw "
                f"'{prior.name}' after its zeta sites, from their posterior nu (DVAE Eq. 10)"
            )


def _check_reparameterised_before(guide_trace: Trace, priors, smoothed: set[str]) -> None:
    """The analytic KL enters no score-function term: guide sites it depends on are reparameterised."""
    group_names = {group.name for prior in priors for group in prior.groups}
    positions = [i for i, name in enumerate(guide_trace.nodes) if name in group_names]
    if not positions:
        return
    for name in list(guide_trace.nodes)[: max(positions)]:
        site = guide_trace.nodes[name]
        if site["type"] != "sample" or name in smoothed:
            continue
        if not is_identically_zero(site["score_parts"].score_function):
            raise NotImplementedError(
                f"guide site '{name}' is not reparameterised and is sampled before the "
                "smoothed sites: the closed-form KL depends on it but would get no "
                "score-function term"
            )

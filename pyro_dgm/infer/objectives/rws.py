r"""Reweighted wake-sleep with one importance weight per data point.

Reweighted wake-sleep (RWS; Bornschein & Bengio 2015, the baseline of the BiHM
paper) trains a generative model :math:`p_\theta(x, h)` and an inference network
:math:`q_\phi(h \mid x)` with K samples :math:`h_k \sim q(h \mid x_b)` per data
point and the self-normalised weights

.. math::

    w_{k,b} = \frac{p(x_b, h_{k,b})}{q(h_{k,b} \mid x_b)}, \qquad
    \tilde w_{k,b} = \frac{w_{k,b}}{\sum_{k'} w_{k',b}}.                        \tag{1}

Three gradient estimators (BB15; the equation numbers are this module's), each
summed over the data points b:

.. math::

    \text{wake-}\theta:\;& \textstyle\sum_k \tilde w_{k,b}\, \nabla_\theta \log p(x_b, h_{k,b})
        = \nabla_\theta \log \tfrac1K \sum_k w_{k,b}
        \;\xrightarrow{K\to\infty}\; \nabla_\theta \log p(x_b),                \tag{2}\\
    \text{wake-}\phi:\;& \textstyle\sum_k \tilde w_{k,b}\, \nabla_\phi \log q(h_{k,b} \mid x_b)
        \;\xrightarrow{K\to\infty}\;
        -\nabla_\phi \mathrm{KL}\big(p(h \mid x_b) \,\|\, q(h \mid x_b)\big),  \tag{3}\\
    \text{sleep-}\phi:\;& \nabla_\phi \log q(h' \mid x'), \quad (x', h') \sim p(x, h),
        \quad \mathbb E = -\nabla_\phi\,
        \mathbb E_{p(x)} \mathrm{KL}\big(p(h \mid x) \,\|\, q(h \mid x)\big).  \tag{4}

The samples are treated as observed (no gradient through a sampler). Model
parameters receive only (2): the guide's log-density enters (2) detached, and the
weights in (3) are detached. Guide parameters receive only
``insomnia`` · (3) + (1 - ``insomnia``) · (4): the dreamed (x', h') are detached.

Unlike :class:`pyro.infer.ReweightedWakeSleep`, the weights (1) are normalised over
the K particles of *each data point*; Pyro sums the log-densities over the data
plate and so normalises one weight per minibatch (Pyro issue #2220, and its
docstring: "Mini-batch training is not supported yet"). Under
``pyro.plate(..., subsample_size=B)`` every term is multiplied by the subsample
scale N/B, so each is an unbiased estimate of its full-data sum.

**What sleep-φ needs from a model.** (4) draws (x', h') by running the model under
:func:`pyro.poutine.uncondition` with the *same arguments* as the wake phase: the
observed data serve only as a shape template (the subsample size of the data
plate fixes how many points are dreamed), so an observed site's distribution must
not depend on its observed value. The guide is then run on the dreamed data,
replaying the dreamed latents: by default every guide argument that *is* (the
same tensor object as) the value a model site observes is replaced by that
site's dream, so ``model(x)``/``guide(x)`` pairs that observe ``obs=x`` need
nothing more; a model that observes a transformed or indexed copy of an argument
needs ``dream_inputs=`` (otherwise a :class:`ValueError` names the site). With
the default ``num_sleep_particles=1`` the dreams have exactly the data's shape,
so any guide that runs on data runs on dreams; with S > 1 they carry a leading
sleep-particle dimension, ``(S, B, ...)``, and the guide must size its data plate
from the trailing dimensions (``x.shape[-2]``, not ``len(x)``). No
``observations=`` keyword is required of the guide (Pyro's RWS requires one).

Reference: J. Bornschein and Y. Bengio, "Reweighted Wake-Sleep", ICLR 2015 (BB15).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from pyro_dgm.infer.importance import (
    PARTICLE_PLATE_NAME,
    ImportanceWeightedObjective,
    WeightedParticles,
    effective_sample_size,
    log_mean_exp,
)
from pyro_dgm.infer.validation import check_guide_covers_model

SLEEP_PLATE_NAME = PARTICLE_PLATE_NAME
"""Plate over the S dreams per data point: the wake particle plate's name and dim, so
the per-data-point reduction treats dreams as particles (the runs are separate)."""

DreamInputs = Callable[[dict[str, torch.Tensor], tuple, dict], tuple[tuple, dict]]
"""``(dreamed observations by site name, args, kwargs) -> (guide args, guide kwargs)``."""


@dataclass
class WakeSleepTerms:
    r"""Per-data-point RWS surrogate losses; their gradients are minus Eq. (2)-(4).

    ``wake_theta[b]`` is :math:`-\log \frac1K \sum_k w_{k,b}` with q detached,
    ``wake_phi[b]`` is :math:`-\sum_k \tilde w_{k,b} \log q(h_{k,b} \mid x_b)` with the
    weights detached, ``sleep_phi[b]`` is :math:`-\frac1S \sum_s \log q(h'_{s,b} \mid x'_{s,b})`
    (``None`` when ``insomnia == 1``). All unscaled; ``scale`` and ``sleep_scale`` are
    the subsample scales N/B of the wake and sleep runs.
    """

    wake_theta: torch.Tensor
    wake_phi: torch.Tensor
    sleep_phi: torch.Tensor | None
    effective_sample_size: torch.Tensor
    scale: float | torch.Tensor
    sleep_scale: float | torch.Tensor


@dataclass(frozen=True)
class WakeSleepLosses:
    """The scaled losses of the last step, summed over data points (for monitoring).

    ``sleep_phi`` is NaN when no sleep phase ran (``insomnia == 1``).
    """

    wake_theta: float
    wake_phi: float
    sleep_phi: float
    effective_sample_size: float
    """Kish ESS of the wake weights, averaged over data points (between 1 and K)."""


def substitute_observed_inputs(
    dreams: dict[str, torch.Tensor], observed: dict[str, torch.Tensor], args: tuple, kwargs: dict
) -> tuple[tuple, dict]:
    """Replace every argument that is the very tensor a model site observes by its dream.

    :param dreams: dreamed value per observed site.
    :param observed: the value each of those sites observes in the wake phase.
    :raises ValueError: naming the site, if no argument is its observed tensor.
    """
    replacements = {}
    for name, value in observed.items():
        if not any(arg is value for arg in (*args, *kwargs.values())):
            raise ValueError(
                f"sleep-phi: the model observes site '{name}', but no model/guide argument "
                "is that tensor itself (is it reshaped or indexed inside the model?), so "
                "the guide cannot be run on its dream; pass dream_inputs= to say which "
                "guide argument receives it"
            )
        replacements[id(value)] = dreams[name]
    new_args = tuple(replacements.get(id(arg), arg) for arg in args)
    new_kwargs = {key: replacements.get(id(arg), arg) for key, arg in kwargs.items()}
    return new_args, new_kwargs


class ReweightedWakeSleep(ImportanceWeightedObjective):
    r"""Reweighted wake-sleep (Eq. (1)-(4) of :mod:`pyro_dgm.infer.objectives.rws`), minibatch-correct.

    :param int num_particles: K wake samples per data point (K = 1 gives the classic
        wake phase, all weights 1).
    :param float insomnia: mix of the guide updates, ``insomnia`` · wake-φ +
        (1 - ``insomnia``) · sleep-φ, in [0, 1]; as in Pyro, 1 is wake-φ only and 0
        is sleep-φ only (BB15 discuss wake-φ, sleep-φ and their average, 0.5).
    :param int num_sleep_particles: S dreams per data point of the minibatch
        (default 1: the sleep minibatch has the data's shape; see the module
        docstring for what S > 1 asks of the guide).
    :param dream_inputs: ``(dreams, args, kwargs) -> (args, kwargs)`` for the
        guide's sleep run, where ``dreams`` maps each observed site to its dreamed
        value; by default :func:`substitute_observed_inputs`.
    :param max_plate_nesting: as in :class:`pyro.infer.ELBO`.
    :param str data_plate: see :class:`~pyro_dgm.infer.importance.ImportanceWeightedObjective`.

    :meth:`loss` is the wake-θ loss :math:`-\sum_b \log\frac1K\sum_k w_{k,b}` (scaled),
    a stochastic upper bound on :math:`-\log p(x)`; :meth:`differentiable_loss` has
    that value and the RWS update (2)-(4) as its gradient. After each call the
    components are in :attr:`last_losses` (:class:`WakeSleepLosses`).
    """

    def __init__(
        self,
        num_particles: int = 10,
        insomnia: float = 1.0,
        num_sleep_particles: int = 1,
        dream_inputs: DreamInputs | None = None,
        max_plate_nesting: float = float("inf"),
        data_plate: str | None = None,
    ) -> None:
        if not 0.0 <= insomnia <= 1.0:
            raise ValueError(f"insomnia must lie in [0, 1], got {insomnia}")
        if not isinstance(num_sleep_particles, int) or num_sleep_particles < 1:
            raise ValueError(
                f"num_sleep_particles must be a positive integer, got {num_sleep_particles!r}"
            )
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            data_plate=data_plate,
            detach_samples=True,
        )
        self.insomnia = insomnia
        self.num_sleep_particles = num_sleep_particles
        self.dream_inputs = dream_inputs
        self.last_losses: WakeSleepLosses | None = None

    def dream(self, model, guide, *args, **kwargs) -> WeightedParticles:
        r"""Draw S (x', h') per data point from the model; score them under the guide.

        Returns :class:`WeightedParticles` whose ``guide_log_prob[s, b]`` is
        :math:`\log q(h'_{s,b} \mid x'_{s,b})`, differentiable w.r.t. the guide's
        parameters only (the dreams are detached).
        """
        if self.max_plate_nesting == float("inf"):
            self._guess_max_plate_nesting(model, guide, args, kwargs)
        dream_model = self._vectorized_dreams(poutine.uncondition(model))
        dream_trace = poutine.trace(dream_model).get_trace(*args, **kwargs)
        dream_trace.detach_()
        dreams, observed = {}, {}
        for name, site in dream_trace.nodes.items():
            if site["type"] == "sample" and site["infer"].get("was_observed"):
                site["is_observed"] = True  # observed again, so the guide must not sample it
                dreams[name], observed[name] = site["value"], site["infer"]["obs"]
        if self.dream_inputs is None:
            guide_args, guide_kwargs = substitute_observed_inputs(dreams, observed, args, kwargs)
        else:
            guide_args, guide_kwargs = self.dream_inputs(dreams, args, kwargs)
        dream_guide = self._vectorized_dreams(poutine.replay(guide, trace=dream_trace))
        guide_trace = poutine.trace(dream_guide).get_trace(*guide_args, **guide_kwargs)
        dream_trace = prune_subsample_sites(dream_trace)
        guide_trace = prune_subsample_sites(guide_trace)
        check_guide_covers_model(dream_trace, guide_trace)
        dream_trace.compute_log_prob()
        guide_trace.compute_log_prob()
        return WeightedParticles.from_traces(
            dream_trace, guide_trace, int(self.max_plate_nesting), self.data_plate
        )

    def _vectorized_dreams(self, fn):
        """S > 1 dreams per data point in a plate at the particle dim; S = 1 needs none."""
        if self.num_sleep_particles == 1:
            return fn
        return pyro.plate(
            SLEEP_PLATE_NAME, self.num_sleep_particles, dim=-int(self.max_plate_nesting)
        )(fn)

    def terms(self, model, guide, *args, **kwargs) -> WakeSleepTerms:
        """One wake run (K particles) and, if ``insomnia < 1``, one sleep run (S dreams)."""
        wake = self.weighted_particles(model, guide, *args, **kwargs)
        log_weights = wake.model_log_prob - wake.guide_log_prob.detach()  # Eq. (1)
        normalized_weights = torch.softmax(log_weights.detach(), dim=0)  # Eq. (1)
        sleep_phi, sleep_scale = None, wake.scale
        if self.insomnia < 1.0:
            sleep = self.dream(model, guide, *args, **kwargs)
            sleep_phi = -sleep.guide_log_prob.mean(dim=0)  # Eq. (4)
            sleep_scale = sleep.scale
        return WakeSleepTerms(
            wake_theta=-log_mean_exp(log_weights, dim=0),  # Eq. (2)
            wake_phi=-(normalized_weights * wake.guide_log_prob).sum(dim=0),  # Eq. (3)
            sleep_phi=sleep_phi,
            effective_sample_size=effective_sample_size(log_weights.detach(), dim=0),
            scale=wake.scale,
            sleep_scale=sleep_scale,
        )

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The scaled wake-θ loss, carrying the gradient of the full RWS update.

        Its value is :meth:`loss`; its gradient is minus wake-θ (2) for the model's
        parameters and minus ``insomnia`` · (3) + (1 - ``insomnia``) · (4) for the guide's.
        """
        terms = self.terms(model, guide, *args, **kwargs)
        wake_theta = terms.scale * terms.wake_theta.sum()
        wake_phi = terms.scale * terms.wake_phi.sum()
        guide_surrogate = self.insomnia * wake_phi
        sleep_phi = torch.zeros_like(wake_phi)
        if terms.sleep_phi is not None:
            sleep_phi = terms.sleep_scale * terms.sleep_phi.sum()
            guide_surrogate = guide_surrogate + (1.0 - self.insomnia) * sleep_phi
        self.last_losses = WakeSleepLosses(
            wake_theta=wake_theta.item(),
            wake_phi=wake_phi.item(),
            sleep_phi=sleep_phi.item() if terms.sleep_phi is not None else float("nan"),
            effective_sample_size=terms.effective_sample_size.mean().item(),
        )
        return wake_theta + (guide_surrogate - guide_surrogate.detach())

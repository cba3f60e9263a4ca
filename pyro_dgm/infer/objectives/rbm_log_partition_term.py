r""":math:`\log Z` of the RBM prior sites of an objective: a reported value and a gradient estimator.

Every objective that trains an RBM prior (:class:`~pyro_dgm.infer.objectives.dvae_pp.DVAEPlusPlusELBO`,
:class:`~pyro_dgm.infer.objectives.dvae_sharp.DVAESharpELBO`) needs, per RBM site, a tensor whose value is
the best available :math:`\log Z` and whose gradient is

.. math::

    \nabla_\theta \log Z = \mathbb E_{p(z)}\bigl[-\nabla_\theta E(z)\bigr] \qquad \text{(DVAE Eq. 11)},

estimated from persistent block-Gibbs chains (PCD; DVAE App. H) or, for an enumerable RBM,
taken exactly. :class:`RBMLogPartitionTerm` keeps the chains of each site (checkpointed through
``state_dict``) and records which value it reported.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch

from pyro_dgm.distributions.gibbs import PersistentChains, log_partition_surrogate
from pyro_dgm.distributions.rbm import RBM

__all__ = [
    "DEFAULT_NUM_CHAINS", "DEFAULT_NUM_SWEEPS", "LOG_PARTITION_GRADIENTS", "LogPartitionGradient",
    "RBMLogPartitionTerm", "WithRBMLogPartitions",
]

DEFAULT_NUM_CHAINS = 100
"""Persistent chains per RBM: about one per data point of a typical minibatch of 100."""

DEFAULT_NUM_SWEEPS = 100
"""Block-Gibbs sweeps per step on the persistent chains, as in DVAE (Rolfe 2017, App. H)."""

LogPartitionGradient = Literal["auto", "persistent", "exact"]
LOG_PARTITION_GRADIENTS = ("auto", "persistent", "exact")
"""``"auto"``: exact when the RBM is enumerable (no chains run), else persistent chains."""


class RBMLogPartitionTerm:
    r"""Per RBM site: :math:`\log Z`'s reported value and gradient estimator, with the site's persistent chains.

    :param num_chains: persistent chains per RBM site.
    :param num_sweeps: block-Gibbs sweeps of the chains per gradient step.
    :param gradient: ``"auto"`` (``"exact"`` when the RBM is enumerable and no estimate was
        supplied, so no chains run; otherwise ``"persistent"``), ``"persistent"`` (PCD, any
        RBM) or ``"exact"`` (autodiff of the enumerated :math:`\log Z`; enumerable RBMs only).

    :ivar chains: the :class:`~pyro_dgm.distributions.gibbs.PersistentChains` of each site.
    :ivar source: per site, what the last reported value was: ``"exact"``, ``"supplied"`` (the
        estimate the RBM was built with) or ``"omitted"`` (value 0, with a warning once per site).
    """

    def __init__(
        self, num_chains: int = DEFAULT_NUM_CHAINS, num_sweeps: int = DEFAULT_NUM_SWEEPS,
        gradient: LogPartitionGradient = "auto",
    ) -> None:
        for name, value in (("num_chains", num_chains), ("num_sweeps", num_sweeps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if gradient not in LOG_PARTITION_GRADIENTS:
            raise ValueError(f"log_partition_gradient must be one of {LOG_PARTITION_GRADIENTS}, got {gradient!r}")
        self.num_chains = num_chains
        self.num_sweeps = num_sweeps
        self.gradient = gradient
        self.chains: dict[str, PersistentChains] = {}
        self.source: dict[str, str] = {}
        self._warned: set[str] = set()

    def __call__(self, name: str, rbm: RBM, sample_chains: bool = True) -> torch.Tensor:
        r""":math:`\log Z` of the RBM at site ``name``: reported value plus its gradient estimator.

        With ``sample_chains`` (and ``gradient="persistent"``) the chains take
        :attr:`num_sweeps` sweeps and the gradient is their Monte Carlo estimate; otherwise
        the value alone is returned (differentiable when exact).
        """
        supplied = rbm.log_partition_supplied
        source = "supplied" if supplied else "exact" if rbm.is_enumerable else "omitted"
        self.source[name] = source
        if self.gradient == "auto" and source == "exact":
            return rbm.log_partition
        if self.gradient == "exact":
            if source != "exact":
                raise ValueError(
                    f"log_partition_gradient='exact' needs the exact log Z of the RBM at site "
                    f"'{name}', which has {rbm.num_units1} + {rbm.num_units2} units "
                    f"{'and a supplied estimate' if supplied else '(too many to enumerate)'}"
                )
            return rbm.log_partition
        if source == "omitted":
            self._warn_omitted(name, rbm)
            rbm = RBM(rbm.bias1, rbm.bias2, rbm.weight, log_partition=0.0)  # value 0: omitted
        if not sample_chains:
            return rbm.log_partition
        return log_partition_surrogate(rbm, self._chains(name, rbm).step(rbm, self.num_sweeps))

    def _chains(self, name: str, rbm: RBM) -> PersistentChains:
        chains = self.chains.get(name)
        if chains is None or (chains.num_units1, chains.num_units2) != (rbm.num_units1, rbm.num_units2):
            chains = PersistentChains(self.num_chains, rbm.num_units1, rbm.num_units2, dtype=rbm.bias1.dtype, device=rbm.bias1.device)
            self.chains[name] = chains
        return chains.to(device=rbm.bias1.device, dtype=rbm.bias1.dtype)

    def state_dict(self) -> dict[str, dict]:
        """The persistent chains of every RBM prior site (for checkpoints)."""
        return {
            name: {"num_units1": chains.num_units1, "num_units2": chains.num_units2, "chains": chains.chains.clone()}
            for name, chains in self.chains.items()
        }

    def load_state_dict(self, state: dict[str, dict]) -> None:
        """Restore chains saved by :meth:`state_dict` (they continue exactly where they were)."""
        self.chains = {}
        for name, saved in state.items():
            states = saved["chains"]
            chains = PersistentChains(
                states.size(0), saved["num_units1"], saved["num_units2"], states.shape[1:-1],
                dtype=states.dtype, device=states.device,
            )
            chains.chains.copy_(states)
            self.chains[name] = chains

    def _warn_omitted(self, name: str, rbm: RBM) -> None:
        if name in self._warned:
            return
        self._warned.add(name)
        warnings.warn(
            f"the RBM at site '{name}' has {rbm.num_units1} + {rbm.num_units2} units, too "
            "many to enumerate, and no log_partition estimate: the reported loss omits "
            "log Z (its gradient is still estimated from the persistent chains)",
            stacklevel=4,
        )


class WithRBMLogPartitions:
    """Mixin of an objective holding an :class:`RBMLogPartitionTerm` as ``self.log_partitions``: its public face."""

    log_partitions: RBMLogPartitionTerm

    @property
    def chains(self) -> dict[str, PersistentChains]:
        """The persistent chains of each RBM prior site, created on first use."""
        return self.log_partitions.chains

    @property
    def log_partition_source(self) -> dict[str, str]:
        """Per RBM prior site, what the last reported value used: ``"exact"``, ``"supplied"`` or ``"omitted"``."""
        return self.log_partitions.source

    def state_dict(self) -> dict[str, dict]:
        """The persistent chains of every RBM prior site (for checkpoints)."""
        return self.log_partitions.state_dict()

    def load_state_dict(self, state: dict[str, dict]) -> None:
        """Restore chains saved by :meth:`state_dict` (they continue exactly where they were)."""
        self.log_partitions.load_state_dict(state)

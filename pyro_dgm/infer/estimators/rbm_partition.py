r"""One entry point for :math:`\log Z` of an RBM prior: exact, AIS or parallel tempering.

The log-likelihood of a model with an RBM prior (DVAE, DVAE++) needs
:math:`\log Z` of the prior once per evaluation (DVAE App. H.1; the importance
weights use the unnormalised prior :math:`e^{-E(z)}`). :func:`estimate_log_partition`
picks the method:

``"exact"``
    enumeration of the smaller block (:func:`~pyro_dgm.distributions.rbm.exact_log_partition`),
    standard error 0; needs ``rbm.is_enumerable``.
``"ais"``
    :func:`~pyro_dgm.infer.estimators.ais.annealed_importance_sampling` (DVAE++ authors' evaluation).
``"pt"``
    :func:`~pyro_dgm.infer.estimators.parallel_tempering.parallel_tempering` with Bennett's
    acceptance ratio (DVAE App. H.1).
``"auto"`` (default)
    ``"exact"`` when the RBM is enumerable, else ``"ais"``.

Example::

    estimate = estimate_log_partition(rbm)                   # exact or AIS
    prior = RBM(rbm.bias1, rbm.bias2, rbm.weight, log_partition=estimate.value)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pyro_dgm.distributions.rbm import RBM, exact_log_partition
from pyro_dgm.infer.estimators.ais import annealed_importance_sampling
from pyro_dgm.infer.estimators.parallel_tempering import parallel_tempering

METHODS = ("auto", "exact", "ais", "pt")
"""The methods :func:`estimate_log_partition` accepts."""


@dataclass(frozen=True)
class LogPartitionEstimate:
    r""":math:`\log Z` of an RBM, shape ``rbm.batch_shape``; its standard error; the method used."""

    value: torch.Tensor
    standard_error: torch.Tensor
    method: str


def estimate_log_partition(rbm: RBM, method: str = "auto", **options: Any) -> LogPartitionEstimate:
    r"""Estimate :math:`\log Z` of ``rbm``; ``options`` go to the chosen estimator.

    :param rbm: the :class:`~pyro_dgm.distributions.rbm.RBM` (any batch shape).
    :param method: one of :data:`METHODS`.
    :returns: a detached :class:`LogPartitionEstimate`; ``method`` names the one used.
    """
    if not isinstance(rbm, RBM):
        raise ValueError(f"rbm must be a pyro_dgm RBM, got {type(rbm).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        method = "exact" if rbm.is_enumerable else "ais"
    if method == "exact":
        if options:
            raise ValueError(f"method 'exact' takes no options, got {sorted(options)}")
        if not rbm.is_enumerable:
            raise ValueError(
                f"method 'exact' needs an enumerable RBM (rbm.is_enumerable); this one has "
                f"{rbm.num_units1} + {rbm.num_units2} units: use method='ais' or 'pt'"
            )
        with torch.no_grad():
            value = exact_log_partition(rbm.bias1, rbm.bias2, rbm.weight)
        return LogPartitionEstimate(value, torch.zeros_like(value), "exact")
    estimator = annealed_importance_sampling if method == "ais" else parallel_tempering
    result = estimator(rbm, **options)
    return LogPartitionEstimate(result.log_partition, result.standard_error, method)

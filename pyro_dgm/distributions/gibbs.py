r"""Block Gibbs sampling of an RBM, persistent chains, and the log-partition surrogate.

Given one block the other is factorial (:meth:`RBM.conditional2`,
:meth:`RBM.conditional1`), so a sweep updates a whole block at once:

.. math::

    z_2 \sim p(z_2 \mid z_1) = \prod_j \operatorname{Bernoulli}\bigl(z_{2j};
        \sigma(a_2 + W^\top z_1)_j\bigr), \qquad
    z_1 \sim p(z_1 \mid z_2) = \prod_i \operatorname{Bernoulli}\bigl(z_{1i};
        \sigma(a_1 + W z_2)_i\bigr) .

Persistent chains (Tieleman 2008; DVAE, Rolfe 2017, Sec. 5 and App. H) keep their
state across training steps, so a few sweeps per step track the slowly changing
prior. :func:`log_partition_surrogate` turns their samples into a term whose
gradient is the Monte Carlo estimate of :math:`\nabla \log Z` (DVAE Eq. (11)), the
one term of the DVAE++ KL (Eq. (6)) that automatic differentiation cannot reach
directly (DVAE++ Sec. 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pyro_dgm.distributions.argument_checks import check_int
from pyro_dgm.distributions.gibbs_sweeps import sweep_blocks
from pyro_dgm.distributions.rbm import RBM

INITIAL_ON_PROBABILITY = 0.5
"""Chains start from independent fair coin flips: no state is favoured before the first sweep."""


def block_gibbs(rbm: RBM, z1: torch.Tensor, num_sweeps: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Run ``num_sweeps`` block-Gibbs sweeps from ``z1`` on every chain at once.

    A sweep draws :math:`z_2 \sim p(z_2 \mid z_1)` then :math:`z_1 \sim p(z_1 \mid z_2)`;
    the returned pair is the last sweep's, which is a draw from :math:`p` whenever the
    incoming :math:`z_1` is a draw from the marginal :math:`p(z_1)`.

    :param rbm: the :class:`~pyro_dgm.distributions.rbm.RBM`.
    :param z1: starting states of the first block, shape (*chains, *batch_shape, n1);
        leading dimensions index independent chains.
    :param num_sweeps: at least 1.
    :returns: ``(z1, z2)``, detached, shapes (*chains, *batch_shape, n1) and (..., n2).
    """
    check_int("num_sweeps", num_sweeps)
    if z1.dim() < 1 or z1.size(-1) != rbm.num_units1:
        raise ValueError(f"z1 must have shape (..., {rbm.num_units1}), got {tuple(z1.shape)}")
    try:
        torch.broadcast_shapes(z1.shape[:-1], rbm.batch_shape)
    except RuntimeError as error:
        raise ValueError(
            f"z1 of shape {tuple(z1.shape)} does not broadcast with the RBM's batch shape "
            f"{tuple(rbm.batch_shape)}"
        ) from error
    with torch.no_grad():
        z1 = z1.to(rbm.bias1.dtype)
        # the caller's states are checked once; the sweeps' own draws are binary by construction,
        # so the loop draws as conditional2(z1).sample() does, without re-validating every block
        rbm._check_block(z1, rbm.num_units1, "z1")
        return sweep_blocks(rbm.bias1, rbm.bias2, rbm.weight, z1, num_sweeps)


class PersistentChains(torch.nn.Module):
    r"""Markov chains on an RBM that persist across training steps (PCD).

    The states are a buffer ``chains`` of shape (num_chains, *batch_shape, n1 + n2):
    they move with ``.to(device / dtype)`` and are saved in ``state_dict``.

    :param num_chains: number of independent chains.
    :param num_units1: :math:`n_1` of the RBMs the chains will be run on.
    :param num_units2: :math:`n_2`.
    :param batch_shape: the RBMs' batch shape (one set of chains per batch element).
    :param dtype: floating dtype of the stored states.
    :param device: where the states live.

    Example::

        chains = PersistentChains(num_chains=100, num_units1=64, num_units2=64)
        z = chains.step(rbm, num_sweeps=10)      # (100, 128), detached
        loss = -log_partition_surrogate(rbm, z)  # its gradient: -E_p[-dE/dtheta]
    """

    chains: torch.Tensor

    def __init__(
        self,
        num_chains: int,
        num_units1: int,
        num_units2: int,
        batch_shape: Sequence[int] = (),
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_chains", num_chains),
            ("num_units1", num_units1),
            ("num_units2", num_units2),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
        self.num_units1 = num_units1
        self.num_units2 = num_units2
        shape = (num_chains, *batch_shape, num_units1 + num_units2)
        self.register_buffer("chains", torch.empty(shape, dtype=dtype, device=device))
        self.reset()

    @property
    def num_chains(self) -> int:
        return self.chains.size(0)

    @property
    def batch_shape(self) -> torch.Size:
        return self.chains.shape[1:-1]

    def reset(self) -> None:
        """Re-initialise every chain to independent fair coin flips."""
        with torch.no_grad():
            self.chains.bernoulli_(INITIAL_ON_PROBABILITY)

    def step(self, rbm: RBM, num_sweeps: int) -> torch.Tensor:
        """Advance every chain ``num_sweeps`` block-Gibbs sweeps on ``rbm``; keep the states.

        :returns: the new states ``[z1, z2]``, detached, shape (num_chains, *batch_shape,
            n1 + n2), in the RBM's dtype (a copy: later steps do not change it).
        """
        if (rbm.num_units1, rbm.num_units2) != (self.num_units1, self.num_units2):
            raise ValueError(
                f"rbm has {rbm.num_units1} + {rbm.num_units2} units but the chains were made "
                f"for {self.num_units1} + {self.num_units2}"
            )
        if rbm.batch_shape != self.batch_shape:
            raise ValueError(
                f"rbm has batch shape {tuple(rbm.batch_shape)} but the chains were made for "
                f"{tuple(self.batch_shape)}"
            )
        if rbm.bias1.device != self.chains.device:
            raise ValueError(
                f"rbm is on {rbm.bias1.device} but the chains are on {self.chains.device}; "
                "move them with chains.to(device)"
            )
        z1, z2 = block_gibbs(rbm, self.chains[..., : self.num_units1], num_sweeps)
        states = torch.cat([z1, z2], dim=-1)
        self.chains.copy_(states)
        return states

    def extra_repr(self) -> str:
        return (
            f"num_chains={self.num_chains}, num_units1={self.num_units1}, "
            f"num_units2={self.num_units2}, batch_shape={tuple(self.batch_shape)}, "
            f"dtype={self.chains.dtype}"
        )


def log_partition_surrogate(rbm: RBM, samples: torch.Tensor) -> torch.Tensor:
    r"""A stand-in for :math:`\log Z` with the Monte Carlo gradient from samples of the RBM.

    .. math::

        \nabla_\theta \log Z = \mathbb{E}_{p}\bigl[-\nabla_\theta E(z)\bigr]
        \approx \frac{1}{S} \sum_{s=1}^{S} -\nabla_\theta E(z^{(s)})
        \qquad \text{(DVAE Eq. (11))}

    The returned tensor is ``value + (m - m.detach())`` with
    :math:`m = \frac1S \sum_s -E(z^{(s)})`: its gradient is the estimate above (unbiased
    when the samples are exact draws from :math:`p`) and its value is
    :attr:`RBM.log_partition` (exact when enumerable, else the estimate passed to the
    RBM), or NaN when neither is available.

    :param rbm: the :class:`~pyro_dgm.distributions.rbm.RBM`.
    :param samples: draws of ``[z1, z2]``, shape (num_samples, *batch_shape, n1 + n2);
        detached before use.
    :returns: shape ``rbm.batch_shape``.
    """
    num_units = rbm.num_units1 + rbm.num_units2
    if samples.dim() < 2 or samples.size(-1) != num_units:
        raise ValueError(
            f"samples must have shape (num_samples, *batch_shape, {num_units}), "
            f"got {tuple(samples.shape)}"
        )
    try:
        torch.broadcast_shapes(samples.shape[1:-1], rbm.batch_shape)
    except RuntimeError as error:
        raise ValueError(
            f"samples of shape {tuple(samples.shape)} do not match the RBM's batch shape "
            f"{tuple(rbm.batch_shape)} after the leading sample dimension"
        ) from error
    samples = samples.detach().to(rbm.bias1.dtype)
    monte_carlo = rbm.unnormalized_log_prob(samples).mean(0)
    if rbm.has_log_partition:
        value = rbm.log_partition.detach()
    else:
        value = torch.full_like(monte_carlo, float("nan"))
    return value + (monte_carlo - monte_carlo.detach())

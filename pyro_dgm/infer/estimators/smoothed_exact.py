r"""Exact expectations for small smoothed models: enumerate :math:`z`, integrate :math:`\zeta` by quadrature.

A model/guide pair written as in :mod:`pyro_dgm.infer.objectives.smoothed_latents` has binary
sites :math:`z` and continuous sites :math:`\zeta \in [0,1]`. For a few units, every
expectation under the guide is a finite sum

.. math::

    \mathbb E_{q(z, \zeta \mid x)}[f] = \sum_{z} \sum_{k} w_k\, q(z, \zeta_k \mid x)\, f(z, \zeta_k),

over all binary configurations and a product grid of :math:`\zeta` nodes: per unit,
Gauss-Legendre nodes on :math:`[0, 1]` where :math:`r(\zeta_u \mid z_u)` has a density,
one node of weight 1 where it is a point mass (the spike of spike-and-X smoothers, the
atoms of the binary limit; densities are w.r.t. :math:`\delta + \lambda` as in
:mod:`pyro_dgm.distributions.smoothing`). The integrands are smooth (exponentials,
logistic functions), so the quadrature converges geometrically in the number of nodes.
Model and guide are evaluated at every node in one vectorised pass, differentiably, so

.. math::

    \mathcal L(x) = \mathbb E_q[\log p(x, z, \zeta) - \log q(z, \zeta \mid x)], \qquad
    \log p(x) = \log \sum_z \sum_k w_k\, p(x, z, \zeta_k)

and their gradients are exact up to quadrature error. This is the ground truth the
DVAE and DVAE++ objectives are tested against.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pyro_dgm.infer.estimators.exact import MAX_ENUMERATED_BITS, PresetValues, all_binary_configurations
from pyro_dgm.infer.importance import ImportanceWeightedObjective, WeightedParticles

Atom = float | None
"""Where :math:`r(\\zeta \\mid z)` puts a point mass, or ``None`` for a density on [0, 1]."""

OVERLAPPING: tuple[Atom, Atom] = (None, None)
"""Both conditionals have densities on [0, 1] (overlapping exponential/logistic, ramps)."""

SPIKE: tuple[Atom, Atom] = (0.0, None)
"""Spike-and-X: :math:`r(\\zeta \\mid 0) = \\delta(\\zeta)`, a slab for :math:`z = 1`."""

BINARY_LIMIT: tuple[Atom, Atom] = (0.0, 1.0)
""":math:`\\zeta = z`."""

MAX_GRID_POINTS = 2_000_000
"""Nodes per data point beyond which the vectorised pass would need gigabytes."""


def gauss_legendre(
    num_nodes: int, dtype=torch.float64, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes and weights on [0, 1]: exact for polynomials of degree < 2 num_nodes."""
    nodes, weights = np.polynomial.legendre.leggauss(num_nodes)
    return (
        torch.as_tensor((nodes + 1) / 2, dtype=dtype, device=device),
        torch.as_tensor(weights / 2, dtype=dtype, device=device),
    )


@dataclass
class SmoothedGroupSpec:
    """One smoothed site: its name, the binary site it smooths and which of that site's units."""

    name: str
    binary_site: str
    units: Sequence[int]


@dataclass
class QuadratureGrid:
    """Joint values of the latent sites at every node, and the log quadrature weight of each.

    ``values[name]`` has shape (K, *site_shape); ``log_measure`` shape (K,).
    """

    values: dict[str, torch.Tensor]
    log_measure: torch.Tensor

    @property
    def num_points(self) -> int:
        return self.log_measure.numel()


def smoothed_grid(
    binary_sizes: dict[str, int],
    groups: Sequence[SmoothedGroupSpec],
    atoms: tuple[Atom, Atom],
    num_nodes: int,
    dtype=torch.float64,
    device=None,
) -> QuadratureGrid:
    """Every binary configuration times the product grid of its smoothed units' nodes.

    :param binary_sizes: units of each binary site, in the guide's site order.
    :param groups: the smoothed sites; their units partition the binary sites' units.
    :param atoms: where :math:`r(\\zeta \\mid 0)` and :math:`r(\\zeta \\mid 1)` put a point
        mass (``None``: a density on [0, 1]); :data:`OVERLAPPING`, :data:`SPIKE`,
        :data:`BINARY_LIMIT`.
    :param num_nodes: Gauss-Legendre nodes per unit where there is a density.
    """
    num_bits = sum(binary_sizes.values())
    if num_bits > MAX_ENUMERATED_BITS:
        raise ValueError(f"{num_bits} binary units exceed {MAX_ENUMERATED_BITS} for enumeration")
    offsets = dict(zip(binary_sizes, itertools.accumulate([0, *binary_sizes.values()])))
    nodes, weights = gauss_legendre(num_nodes, dtype, device)
    per_value = [
        (
            (nodes, weights.log())
            if atom is None
            else (
                torch.tensor([atom], dtype=dtype, device=device),
                torch.zeros(1, dtype=dtype, device=device),
            )
        )
        for atom in atoms
    ]
    blocks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    points = 0
    for configuration in all_binary_configurations(num_bits, dtype, device):
        unit_nodes = [per_value[int(bit)] for bit in configuration]
        sizes = [unit[0].numel() for unit in unit_nodes]
        points += math.prod(sizes)
        if points > MAX_GRID_POINTS:
            raise ValueError(f"the grid exceeds {MAX_GRID_POINTS} points: use fewer nodes or units")
        mesh = torch.meshgrid(*[unit[0] for unit in unit_nodes], indexing="ij")
        log_mesh = torch.meshgrid(*[unit[1] for unit in unit_nodes], indexing="ij")
        zeta = torch.stack([m.reshape(-1) for m in mesh], dim=-1)
        log_measure = torch.stack([m.reshape(-1) for m in log_mesh], dim=-1).sum(-1)
        blocks.append((configuration.expand(zeta.size(0), num_bits), zeta, log_measure))
    z_all = torch.cat([block[0] for block in blocks])
    zeta_all = torch.cat([block[1] for block in blocks])
    values = {
        name: z_all[:, offsets[name] : offsets[name] + size] for name, size in binary_sizes.items()
    }
    for group in groups:
        index = torch.as_tensor(list(group.units), device=device) + offsets[group.binary_site]
        values[group.name] = zeta_all[:, index]
    return QuadratureGrid(values=values, log_measure=torch.cat([block[2] for block in blocks]))


def unit_cube_grid(
    sizes: dict[str, int], num_nodes: int, dtype=torch.float64, device=None
) -> QuadratureGrid:
    """The product Gauss-Legendre grid on :math:`[0, 1]^n` for continuous sites only.

    For models whose :math:`z` is summed out (DVAE++ Eq. 5): ``sizes`` gives each
    site's number of units.
    """
    total = sum(sizes.values())
    if num_nodes**total > MAX_GRID_POINTS:
        raise ValueError(f"the grid exceeds {MAX_GRID_POINTS} points: use fewer nodes or units")
    nodes, weights = gauss_legendre(num_nodes, dtype, device)
    index = torch.cartesian_prod(*[torch.arange(num_nodes, device=device)] * total).reshape(
        -1, total
    )
    offsets = itertools.accumulate([0, *sizes.values()])
    values = {
        name: nodes[index[:, start : start + size]]
        for (name, size), start in zip(sizes.items(), offsets)
    }
    return QuadratureGrid(values=values, log_measure=weights.log()[index].sum(-1))


@dataclass
class SmoothedQuadrature:
    r"""Model and guide evaluated at every grid point; exact expectations per data point.

    ``particles.model_log_prob[k, b]`` is :math:`\log p(x_b, h_k)`,
    ``particles.guide_log_prob[k, b]`` is :math:`\log q(h_k \mid x_b)` (differentiable).
    """

    particles: WeightedParticles
    log_measure: torch.Tensor

    @property
    def log_weights(self) -> torch.Tensor:
        r""":math:`\log w_k q(h_k \mid x_b)`, shape (K, B): sums to one over k per data point."""
        return self.particles.guide_log_prob + self.log_measure.unsqueeze(-1)

    def total_mass(self) -> torch.Tensor:
        """:math:`\\sum_k w_k q(h_k \\mid x_b)`, shape (B,): 1 up to quadrature error."""
        return self.log_weights.logsumexp(0).exp()

    def expectation(self, values: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathbb E_q[f]` per data point from ``values[k, b]`` = f at point k, shape (B,)."""
        weights = self.log_weights.exp()
        return (weights * torch.where(weights > 0, values, torch.zeros_like(values))).sum(0)

    def elbo(self) -> torch.Tensor:
        """The exact ELBO of each data point, shape (B,)."""
        return self.expectation(self.particles.log_weights)

    def log_evidence(self) -> torch.Tensor:
        r""":math:`\log p(x_b)`, shape (B,)."""
        return (self.particles.model_log_prob + self.log_measure.unsqueeze(-1)).logsumexp(0)


def at_grid_points(guide: Callable, grid: QuadratureGrid, batch_size: int) -> Callable:
    """The guide with its latent sites set to the grid's points: K particles, B data points.

    Run it inside a particle plate of size K (e.g. an objective with
    ``num_particles=grid.num_points, vectorize_particles=True``).
    """
    values = {
        name: value.reshape(value.size(0), 1, *value.shape[1:]).expand(
            value.size(0), batch_size, *value.shape[1:]
        )
        for name, value in grid.values.items()
    }
    return PresetValues(values)(guide)


def integrate_latents(
    model: Callable,
    guide: Callable,
    grid: QuadratureGrid,
    batch_size: int,
    *args,
    data_plate: str | None = None,
    **kwargs,
) -> SmoothedQuadrature:
    """Run guide and model with the latent sites set to every point of ``grid``, vectorised.

    :param batch_size: B, the number of data points in the plate in this call.
    """
    objective = ImportanceWeightedObjective(
        num_particles=grid.num_points, data_plate=data_plate, detach_samples=False
    )
    objective._guess_max_plate_nesting(model, guide, args, kwargs)
    guide_at_grid = at_grid_points(guide, grid, batch_size)
    particles = objective.weighted_particles(model, guide_at_grid, *args, **kwargs)
    return SmoothedQuadrature(particles=particles, log_measure=grid.log_measure)

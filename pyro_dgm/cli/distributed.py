r"""Data-parallel SVI over a ``torch.distributed`` process group (``torchrun``; gloo on CPU, nccl on CUDA).

Every process iterates the *same* global minibatches (the loader is seeded
identically) and keeps the strided shard ``batch[rank::world_size]``. Under
``pyro.plate("data", N, subsample_size=B_local)`` each process's loss is scaled by
:math:`N / B_\text{local}`, so the average of the processes' gradients is

.. math::

    \frac{1}{W} \sum_{w} \frac{N}{B_\text{local}} \sum_{b \in w} g_b
    = \frac{N}{B_\text{global}} \sum_{b} g_b,

the gradient of the global batch's loss. :class:`DistributedSVI` is Pyro's
:class:`~pyro.infer.SVI` with one all-reduce of the flattened gradients (parameters
ordered by their param-store names, identical on every process) between
``loss_and_grads`` and the optimiser step. Parameters are broadcast from rank 0 at
the start so that every process begins from the same point.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyro
import torch
import torch.distributed as dist
from pyro import poutine
from pyro.infer import SVI
from pyro.infer.util import torch_item, zero_grads


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the group: ``rank`` of ``world_size``."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's strided share of a global minibatch."""
        if batch.size(0) < self.world_size:
            raise ValueError(
                f"a minibatch of {batch.size(0)} examples cannot be shared by {self.world_size} processes"
            )
        return batch[self.rank :: self.world_size]


def init_from_environment(device: torch.device) -> ProcessGroup:
    """Join the group that ``torchrun`` describes in the environment (RANK, WORLD_SIZE, ...)."""
    for variable in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if variable not in os.environ:
            raise RuntimeError(f"--distributed needs torchrun's environment; {variable} is not set")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size())


def leave_group() -> None:
    """Wait for every process, then tear the group down.

    A rank that exits while a peer still uses the connection can make gloo abort that
    peer ("terminate called without an active exception").
    """
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _named_params(params: set[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    store = pyro.get_param_store()
    return sorted(((store.param_name(p), p) for p in params), key=lambda item: item[0])


def all_reduce_mean_(tensors: list[torch.Tensor], world_size: int) -> None:
    """Average ``tensors`` in place over the group with one flattened all-reduce."""
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for tensor in tensors:
        tensor.copy_(flat[offset : offset + tensor.numel()].view_as(tensor))
        offset += tensor.numel()


def broadcast_modules_(modules: list[torch.nn.Module]) -> None:
    """Give every process rank 0's parameters and buffers."""
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


class DistributedSVI(SVI):
    """:class:`pyro.infer.SVI` whose gradients (and reported loss) are averaged over the group."""

    def __init__(self, *args, group: ProcessGroup, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.group = group

    def step(self, *args, **kwargs) -> float:
        with poutine.trace(param_only=True) as param_capture:
            loss = self.loss_and_grads(self.model, self.guide, *args, **kwargs)
        params = {site["value"].unconstrained() for site in param_capture.trace.nodes.values()}
        named = _named_params(params)
        for _, param in named:
            if param.grad is None:
                param.grad = torch.zeros_like(param)  # every rank must contribute to every slot
        all_reduce_mean_([param.grad for _, param in named], self.group.world_size)
        self.optim(params)
        zero_grads(params)
        loss_tensor = torch.tensor([torch_item(loss)], dtype=torch.float64, device=named[0][1].device if named else None)
        all_reduce_mean_([loss_tensor], self.group.world_size)
        return loss_tensor.item()

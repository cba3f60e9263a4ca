"""Data-parallel SVI: 2 gloo processes average to the single-process gradient of the global batch."""

import os
import time

import pyro
import pyro.optim
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pyro.infer import SVI

from pyro_dgm.cli.distributed import DistributedSVI, ProcessGroup, broadcast_modules_, leave_group
from pyro_dgm.infer.estimators.exact import enumerate_latents
from tests.infer.small_models import TinySBN, distinct_binary_data

WORLD_SIZE, GLOBAL_BATCH, NUM_DATA, LEARNING_RATE = 2, 6, 60, 0.1
TIMEOUT_SECONDS = 120.0  # one step of a tiny model takes well under a second


def exact_negative_log_likelihood(latent_shapes):
    """-sum_b (N/B) log p~*(x_b) (BiHM Eq. 1), summed out exactly: deterministic, and both
    model and guide parameters get gradients, so the comparison below is exact and complete."""

    def loss(model, guide, x, num_data):
        particles = enumerate_latents(model, guide, latent_shapes, x.size(0), x, num_data=num_data, dtype=x.dtype)
        geometric_mean = 0.5 * (particles.model_log_prob + particles.guide_log_prob)
        return -(particles.scale * 2 * torch.logsumexp(geometric_mean, dim=0)).sum()

    return loss


def one_step(network, svi_class, batch, **svi_kwargs):
    pyro.clear_param_store()
    svi = svi_class(network.model, network.guide, pyro.optim.SGD({"lr": LEARNING_RATE}),
                    loss=exact_negative_log_likelihood(network.latent_shapes), **svi_kwargs)
    loss = svi.step(batch, num_data=NUM_DATA)
    return loss, {name: value.detach().clone() for name, value in network.state_dict().items()}


def worker(rank, init_file, result_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    torch.manual_seed(100 + rank)  # ranks start from different weights: the broadcast must fix that
    network = TinySBN(seed=1 + rank)
    broadcast_modules_([network])
    group = ProcessGroup(rank=rank, world_size=WORLD_SIZE)
    batch = distinct_binary_data(GLOBAL_BATCH)
    loss, state = one_step(network, DistributedSVI, group.shard(batch), group=group)
    if rank == 0:
        torch.save({"loss": loss, "state": state}, result_file)
    leave_group()  # barrier first: a rank tearing gloo down early aborted its peer in ~1 of 4 runs
    os._exit(0)  # work done and saved: skip interpreter teardown, where gloo's threads still aborted ~1 in 40


@pytest.mark.slow
def test_two_processes_average_to_the_global_batch_gradient(tmp_path):
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path / "result.pt")), nprocs=WORLD_SIZE, join=True)
    distributed = torch.load(tmp_path / "result.pt")
    single_loss, single_state = one_step(TinySBN(seed=1), SVI, distinct_binary_data(GLOBAL_BATCH))
    initial = TinySBN(seed=1).state_dict()
    for name, value in single_state.items():
        assert not torch.equal(value, initial[name]), f"{name} did not move: the test would prove nothing"
        torch.testing.assert_close(distributed["state"][name], value, rtol=1e-12, atol=1e-12)
    assert distributed["loss"] == pytest.approx(single_loss, rel=1e-12)


def non_finite_worker(rank, init_file, result_dir):
    """Rank 1's loss is NaN, rank 0's finite: what does each rank's step report?"""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    network = TinySBN(seed=1)
    group = ProcessGroup(rank=rank, world_size=WORLD_SIZE)
    exact = exact_negative_log_likelihood(network.latent_shapes)

    def loss(model, guide, x, num_data):
        value = exact(model, guide, x, num_data)
        return value * float("nan") if rank == 1 else value

    pyro.clear_param_store()
    svi = DistributedSVI(network.model, network.guide, pyro.optim.SGD({"lr": LEARNING_RATE}), loss=loss, group=group)
    reported = svi.step(group.shard(distinct_binary_data(GLOBAL_BATCH)), num_data=NUM_DATA)
    torch.save(reported, f"{result_dir}/rank{rank}.pt")
    leave_group()
    os._exit(0)


@pytest.mark.slow
def test_a_non_finite_loss_on_one_rank_is_reported_by_every_rank(tmp_path):
    """The Trainer raises ``NonFiniteLoss`` on the loss ``DistributedSVI.step`` returns. That loss
    is the group's mean, so one rank's NaN reaches every rank and all stop at the same step;
    a rank that saw only its own finite loss would go on and block at its next all-reduce."""
    context = mp.spawn(non_finite_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE,
                       join=False)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not context.join(timeout=1.0):  # True once every rank has exited (False: one more did, or none)
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the ranks did not all finish within {TIMEOUT_SECONDS:g} s: one is blocked")
    reported = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]
    assert all(value != value for value in reported), f"each rank's reported loss: {reported}"


def test_shard_is_strided_and_refuses_tiny_batches():
    batch = torch.arange(10).unsqueeze(-1)
    shards = [ProcessGroup(rank, 3).shard(batch) for rank in range(3)]
    assert sorted(torch.cat(shards).squeeze(-1).tolist()) == list(range(10))
    assert shards[1].squeeze(-1).tolist() == [1, 4, 7]
    with pytest.raises(ValueError, match="cannot be shared"):
        ProcessGroup(0, 3).shard(batch[:2])

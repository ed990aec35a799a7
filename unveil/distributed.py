"""Data-parallel training on several processes, started by `torchrun` (one process per GPU, on one
machine or several): each rank keeps only its shard of the training faces on its device, computes its
gradients, and the ranks average them with one all-reduce per optimiser step, so every rank takes the
same step and holds the same weights; BatchNorm statistics are averaged at the end of each epoch. The
configs and the checkpoints are those of a single-device run; rank 0 writes the run folder.

    torchrun --nproc_per_node 4 -m unveil.pipelines.cli train-classifier --config configs/classifier_fer_full.yaml

Why not the `DistributedDataParallel` wrapper: a GAN step runs the discriminator inside the generator's
loss with its parameters frozen, which DDP's gradient hooks cannot follow without
`find_unused_parameters`; averaging the gradients of each optimiser after its backward is the same
arithmetic, for every stage, in a few lines (on top of torch.distributed's collectives).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def init_from_env() -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1); NCCL on GPUs, gloo on CPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return True


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) in a single process."""
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def is_main() -> bool:
    return world()[0] == 0


def local_cuda_device() -> torch.device | None:
    """This rank's GPU under torchrun, else None."""
    if dist.is_initialized() and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return None


def shard_index(n: int) -> torch.Tensor:
    """This rank's faces among `n`: every world-th one, the same count on every rank (a rank with more
    steps than the others would wait for them forever)."""
    rank, size = world()
    per_rank = n // size
    return torch.arange(rank, per_rank * size, size)


def average_gradients(modules: list[nn.Module]) -> None:
    """Average the gradients of `modules` over the ranks, in one flat all-reduce."""
    if world()[1] == 1:
        return
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world()[1]
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def average_buffers(modules: list[nn.Module]) -> None:
    """Average floating buffers (BatchNorm running statistics) over the ranks."""
    if world()[1] == 1:
        return
    for module in modules:
        for buffer in module.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer)
                buffer /= world()[1]


def average_sums(sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mean over ranks of per-rank epoch sums (one all-reduce for all of them)."""
    if world()[1] == 1 or not sums:
        return sums
    stacked = torch.stack([v.float() for v in sums.values()])
    dist.all_reduce(stacked)
    return dict(zip(sums, stacked / world()[1]))

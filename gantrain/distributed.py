"""Several processes (torchrun) with DistributedDataParallel.

``torchrun --nproc_per_node N -m gantrain train ...`` starts N copies of the
training command; torchrun sets RANK, WORLD_SIZE and LOCAL_RANK, and
``init_distributed`` joins them into one process group (NCCL on GPUs, gloo on
CPUs). Each rank holds the dataset and draws its own batches with its own
seed; gradients are averaged by DDP; rank 0 alone writes the run directory.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

# Rank 0 may train the evaluation classifier or evaluate while the other ranks
# wait at a barrier; the default 10-minute timeout would kill such runs.
_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job (world_size 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env() -> DistContext:
    """Read the process's place in the job from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(ctx: DistContext, device: torch.device) -> None:
    """Join the process group (no-op for a single process)."""
    if not ctx.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size, timeout=_TIMEOUT)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def all_reduce_mean(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The mean of ``t`` over ranks (``t`` itself when not distributed)."""
    if not ctx.enabled:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / ctx.world_size


def all_gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def wrap(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``module`` wrapped in DDP when distributed, else unchanged."""
    if not ctx.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)

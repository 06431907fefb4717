"""Data-parallel training under ``torchrun`` (single process stays the default).

Every rank builds the same data and draws the same global batch from the same
seeded generator, then trains on its contiguous slice of it, so the global batch
is ``config.batch_size`` whatever the number of processes and the config key does
not change. DistributedDataParallel averages the gradients, which equals the
gradient of the global-batch mean loss when slices are equal. Random draws inside
a step (lambda, permutations) are the same on every rank; permutations pair images
within a rank's slice. BatchNorm statistics are per rank, as in standard DDP.
Backend: nccl on CUDA, gloo on CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .errors import InvalidParameterError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group torchrun describes in the environment; single process otherwise."""
    if not launched_by_torchrun():
        return SINGLE
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)  # one GPU per process; nccl uses the current device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def local_slice(batch: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's contiguous share of a global batch."""
    if not ctx.enabled:
        return batch
    if len(batch) % ctx.world_size:
        raise InvalidParameterError(
            "batch_size", len(batch), f"a multiple of the number of processes ({ctx.world_size})"
        )
    share = len(batch) // ctx.world_size
    return batch[ctx.rank * share : (ctx.rank + 1) * share]


class _StepModule(nn.Module):
    """Lets DDP see a method's training step as a forward pass (DDP hooks run in forward)."""

    def __init__(self, method):
        super().__init__()
        self.method = method

    def forward(self, x, y, ctx):
        out = self.method.training_step(x, y, ctx)
        return out.loss, out.logs


def step_function(method, ctx: DistContext):
    """``f(x, y, step_ctx) -> StepOutput``: the method's own step, under DDP when distributed."""
    if not ctx.enabled:
        return method.training_step
    from .methods.base import StepOutput

    # device_ids=None: inputs are already on this rank's device, and DDP must not try to
    # move (rebuild) the step context. find_unused_parameters: some learned methods leave
    # a module out of some steps (alternating generator updates); DDP must not wait for those.
    ddp = nn.parallel.DistributedDataParallel(_StepModule(method), device_ids=None, find_unused_parameters=True)

    def step(x, y, step_ctx):
        loss, logs = ddp(x, y, step_ctx)
        return StepOutput(loss, logs)

    return step


def mean_over_ranks(values: dict[str, float], ctx: DistContext, device: torch.device) -> dict[str, float]:
    """Average per-rank numbers (epoch loss, method logs) over all ranks."""
    if not ctx.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: v / ctx.world_size for k, v in zip(keys, t.tolist())}


@torch.no_grad()
def broadcast_buffers(module: nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (BN statistics, which each rank updates on its own slice).

    Called after each epoch, so all ranks evaluate, and rank 0 saves, the same networks.
    """
    if ctx.enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()

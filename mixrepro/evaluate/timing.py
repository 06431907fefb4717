"""Wall-clock cost of a training step (REFERENCE.md section 8).

CUDA launches are asynchronous, so on a GPU the clock is read only after
``torch.cuda.synchronize``; warm-up steps (cuDNN autotuning, allocator growth,
lazy initialisation) are run first and not timed.
"""
from __future__ import annotations

import copy
import statistics
import time
from typing import Callable

import torch

from ..errors import InvalidParameterError


def device_sync(device) -> Callable[[], None]:
    """A function that waits for all queued work on ``device`` (a no-op off CUDA)."""
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_training_steps(
    step_fn: Callable[[int], object], n_steps: int = 20, warmup: int = 5, sync: Callable[[], None] | None = None,
    images_per_step: int | None = None,
) -> dict:
    """Time ``step_fn(i)`` over ``n_steps`` calls after ``warmup`` untimed ones.

    Returns seconds per step (mean over the timed steps, and the median of per-step
    times, which is robust to a stray slow step), and images per second when
    ``images_per_step`` is given.
    """
    if not (isinstance(n_steps, int) and n_steps > 0):
        raise InvalidParameterError("n_steps", n_steps, "a positive integer")
    if not (isinstance(warmup, int) and warmup >= 0):
        raise InvalidParameterError("warmup", warmup, "a non-negative integer")
    sync = sync or (lambda: None)
    for i in range(warmup):
        step_fn(i)
    sync()
    per_step = []
    start = time.perf_counter()
    for i in range(warmup, warmup + n_steps):
        t0 = time.perf_counter()
        step_fn(i)
        sync()
        per_step.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    result = {
        "seconds_per_step": total / n_steps,
        "median_seconds_per_step": statistics.median(per_step),
        "n_steps": n_steps,
        "warmup": warmup,
    }
    if images_per_step is not None:
        result["images_per_second"] = images_per_step * n_steps / total
    return result


def time_method(
    method, x: torch.Tensor, y: torch.Tensor, *, n_steps: int = 20, warmup: int = 5,
    optimizer_factory: Callable | None = None, seed: int = 0, copy_method: bool = True,
) -> dict:
    """Time a Method's full iteration on one fixed batch: training_step, backward, optimiser step, after_step.

    ``optimizer_factory(params)`` builds the optimiser (default: the papers' SGD, lr 0.1,
    momentum 0.9, weight decay 1e-4). With ``copy_method`` (default) a deep copy is
    trained, so the caller's method keeps its weights.
    """
    from ..methods.base import StepContext

    if copy_method:
        method = copy.deepcopy(method)
    method.train()
    params = [p for p in method.parameters() if p.requires_grad]
    if optimizer_factory is None:
        optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
    else:
        optimizer = optimizer_factory(params)
    generator = torch.Generator().manual_seed(seed)
    total = warmup + n_steps

    def step(i: int) -> None:
        ctx = StepContext(step=i, total_steps=total, epoch=0, generator=generator)
        out = method.training_step(x, y, ctx)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        method.after_step(ctx)

    result = time_training_steps(step, n_steps, warmup, device_sync(x.device), images_per_step=len(x))
    result["device"] = str(x.device)
    result["batch_size"] = len(x)
    return result

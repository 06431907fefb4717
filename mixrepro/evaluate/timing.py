"""Wall-clock cost of a training step (REFERENCE.md section 8).

CUDA launches are asynchronous, so on a GPU the clock is read only after
``torch.cuda.synchronize``; warm-up steps (cuDNN autotuning, allocator growth,
lazy initialisation) are run first and not timed.
"""
from __future__ import annotations

import copy
import statistics
import sys
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


def compare_method_costs(methods, *, dataset: str = "cifar10-jpeg", model: str = "resnet18", width: float = 1.0,
                         batch_size: int = 100, n_steps: int = 10, warmup: int = 2, device=None,
                         data_root=None) -> list[dict]:
    """Seconds per training step of each method on one real batch, one after another, same model.

    Each row also gives the cost relative to the first method (usually Mixup), so the ratio is
    measured under the same conditions (REFERENCE.md section 8 quotes such ratios).
    """
    from ..data import load_dataset
    from ..methods.registry import build_method
    from ..models import build_model

    ds = load_dataset(dataset, root=data_root)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    x = ds.train_x[:batch_size].permute(0, 3, 1, 2).float().div(255).to(device)
    y = ds.train_y[:batch_size].to(device)
    rows = []
    for name in methods:
        torch.manual_seed(0)
        net = build_model(model, ds.num_classes, width=width, mean=ds.mean, std=ds.std)
        method = build_method(name, net, ds.num_classes).to(device)
        timing = time_method(method, x, y, n_steps=n_steps, warmup=warmup, copy_method=False)
        rows.append({"method": name, **timing})
    for row in rows:
        row["relative_to_first"] = row["seconds_per_step"] / rows[0]["seconds_per_step"]
    return rows


def main(argv=None) -> int:
    """``python -m mixrepro.evaluate.timing --methods mixup automix ...``: a cost table."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m mixrepro.evaluate.timing", description=main.__doc__)
    parser.add_argument("--methods", nargs="+", default=["mixup", "automix", "samix", "adautomix", "puzzlemix"])
    parser.add_argument("--dataset", default="cifar10-jpeg")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    from ..errors import MixreproError

    try:
        rows = compare_method_costs(args.methods, dataset=args.dataset, width=args.width,
                                    batch_size=args.batch_size, n_steps=args.steps, device=args.device)
    except MixreproError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for row in rows:
        print(f"{row['method']:<10} {row['seconds_per_step']:.3f} s/step  {row['images_per_second']:.0f} img/s  "
              f"x{row['relative_to_first']:.2f}")
    print(json.dumps({"device": rows[0]["device"], "threads": torch.get_num_threads(), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The one training loop: epochs of method steps, per-epoch evaluation, checkpoints, resume.

Per iteration the loop only calls the method's contract
(``training_step`` -> backward -> SGD step -> ``after_step``); it never branches
on the method's name. Per epoch it records the lr, the mean train loss and method
logs, top-1/top-5 of the online and EMA networks on the test split, and times.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field

import torch

from .. import distributed
from ..config import RunConfig
from ..errors import InvalidParameterError
from ..environment import collect_environment
from ..methods.base import StepContext
from ..results import RunRecord, ResultsStore
from . import checkpoint as ckpt
from . import components
from .runtime import Runtime, make_runtime, pinned_threads, reproducible_kernels, resolve_device
from .schedule import build_optimizer, cosine_lr, set_lr
from .summary import build_summary

PROGRESS_EVERY = 20  # steps between loss updates of the progress bar
# Test-set scoring is a large share of an epoch on the CPU (a 10,000-image pass of two networks
# costs about as much as training on 3,000 images), so both networks are scored in every epoch of
# the window the reported numbers come from (the reference's 11-epoch median covers the paper's
# last-10 rule) and at CURVE_POINTS evenly spaced epochs before it for the learning curve.
SCORED_WINDOW = 11
CURVE_POINTS = 10


def scored_epoch(epoch: int, epochs: int) -> bool:
    """Whether 1-based ``epoch`` of an ``epochs``-epoch run is scored on the test set."""
    every = max(1, epochs // CURVE_POINTS)
    return epoch > epochs - SCORED_WINDOW or epoch % every == 0 or epoch == 1


class TrainingInterrupted(RuntimeError):
    """Raised by ``fit(stop_after_step=n)`` before global step n: a simulated kill."""


@dataclass
class TrainState:
    """What a checkpoint restores besides the networks, the optimiser and the RNGs."""

    epoch: int = 0  # completed epochs
    step: int = 0  # completed iterations
    epochs: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0  # sum over completed epochs (resumes add up)
    resumed_at: list[int] = field(default_factory=list)  # completed epochs at each resume
    predictions: dict = field(default_factory=dict)  # final epoch's test predictions (evaluate.predictions)


@dataclass
class Run:
    """A run's live objects."""

    config: RunConfig
    runtime: Runtime
    dataset: object
    method: object
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    state: TrainState

    @property
    def min_lr(self) -> float:
        return self.config.min_lr if self.config.min_lr is not None else self.method.default_min_lr


def fit(
    config: RunConfig,
    *,
    results_root=None,
    device=None,
    compile: bool = False,
    amp: bool | None = None,
    channels_last: bool | None = None,
    threads: int | None = None,
    progress: bool = True,
    resume: bool = True,
    stop_after_step: int | None = None,
    data_root=None,
) -> RunRecord:
    """Train ``config`` (resuming from its checkpoint if one exists), publish it to the results store.

    ``amp`` (bf16 autocast) / ``channels_last`` default to on for CUDA and off on the CPU;
    ``compile`` uses torch.compile on the networks; ``threads`` pins torch's intra-op threads
    for the run (None: torch's current count). All four are recorded with the run and in its
    checkpoint: a resume takes the recorded values where they are not given and refuses
    different ones (they change the bits). ``resume=False`` ignores an existing checkpoint.
    ``stop_after_step`` raises :class:`TrainingInterrupted` before that global step (tests
    use it to simulate a kill). Under torchrun, trains data-parallel; rank 0 writes.
    """
    base_device = resolve_device(device)
    saved = ckpt.load_checkpoint(ckpt.checkpoint_path(config), config) if resume else None
    recorded = ckpt.runtime_to_resume(saved, device_type=base_device.type, amp=amp,
                                      channels_last=channels_last, threads=threads, compile=compile)
    runtime = make_runtime(base_device, compile=compile, dist=distributed.init_from_env(base_device), **recorded)
    with reproducible_kernels(runtime.device), pinned_threads(runtime.threads):
        run = start_run(config, runtime, data_root=data_root, saved=saved)
        train_epochs(run, progress=progress, stop_after_step=stop_after_step)
    record = RunRecord(
        config=config,
        epochs=run.state.epochs,
        summary=build_summary(run.state.epochs, train_time_s=sum(r["train_time_s"] for r in run.state.epochs),
                              wall_time_s=run.state.wall_time_s, dataset_label=run.dataset.label),
        environment={**collect_environment(runtime.device, runtime.dist.world_size),
                     "torch_threads": runtime.threads, "runtime": runtime.describe(),
                     "method_code_version": run.method.code_version,
                     "resumed_at_epochs": run.state.resumed_at},
        predictions=run.state.predictions,
    )
    if runtime.dist.is_main:
        ResultsStore(results_root).publish(record)
    distributed.barrier(runtime.dist)
    return record


def start_run(config: RunConfig, runtime: Runtime, *, data_root=None, saved: dict | None = None) -> Run:
    """The run's live objects, restored from the checkpoint ``saved`` when one is given."""
    dataset = components.load_run_data(config, data_root)
    method = components.build_run_method(config, dataset, runtime)
    method.ema_schedule = config.ema_schedule
    run = Run(config, runtime, dataset, method, build_optimizer(config, method.param_groups()),
              components.step_generator(config), TrainState())
    if saved is not None:
        restore(run, saved)
        run.state.resumed_at.append(run.state.epoch)
        if runtime.dist.is_main:
            print(f"mixrepro: resuming run {config.key()} after epoch {run.state.epoch} "
                  f"from {ckpt.checkpoint_path(config)}", file=sys.stderr)
    return run


def restore(run: Run, saved: dict) -> None:
    run.method.load_state_dict(saved["method"])
    run.optimizer.load_state_dict(saved["optimizer"])
    run.generator.set_state(saved["generator"])
    ckpt.restore_rng_state(saved["rng"], run.runtime.device)
    run.state = TrainState(**saved["state"])


def save(run: Run) -> None:
    if not run.runtime.dist.is_main:
        return
    state = run.state
    ckpt.save_checkpoint(
        ckpt.checkpoint_path(run.config), run.config,
        method=run.method.state_dict(), optimizer=run.optimizer.state_dict(),
        generator=run.generator.get_state(), rng=ckpt.rng_state(run.runtime.device),
        state=dataclasses.asdict(state), runtime=run.runtime.describe(),
        method_code_version=run.method.code_version,
    )


def train_epochs(run: Run, *, progress: bool = True, stop_after_step: int | None = None) -> None:
    from tqdm.auto import tqdm

    config, state = run.config, run.state
    batches = components.train_batcher(config, run.dataset, run.runtime)
    tests = components.test_batcher(run.dataset, run.runtime)
    if len(batches) == 0:
        raise InvalidParameterError("batch_size", config.batch_size,
                                    f"at most {len(run.dataset.train_y)} (the number of training images)")
    step_fn = distributed.step_function(run.method, run.runtime.dist)
    show = progress and run.runtime.dist.is_main
    bar = tqdm(total=config.epochs, initial=state.epoch, desc=f"{config.method} {config.dataset}",
               unit="epoch", disable=not show)
    for epoch in range(state.epoch, config.epochs):
        start = time.perf_counter()
        lr = cosine_lr(epoch, config.epochs, config.lr, run.min_lr)
        set_lr(run.optimizer, lr)
        row = {"epoch": epoch + 1, "lr": lr}
        row.update(train_one_epoch(run, step_fn, batches, epoch, show=show, stop_after_step=stop_after_step))
        if scored_epoch(epoch + 1, config.epochs):
            scores, predictions = evaluate_networks(run, tests)
            row.update(scores)
            if epoch + 1 == config.epochs:
                state.predictions = predictions
        row["epoch_time_s"] = time.perf_counter() - start
        state.epoch, state.wall_time_s = epoch + 1, state.wall_time_s + row["epoch_time_s"]
        state.epochs.append(row)
        save(run)
        if "online_top1" in row:
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", top1=f"{row['online_top1']:.2f}",
                            ema_top1=f"{row['ema_top1']:.2f}")
        bar.update(1)
    bar.close()


def train_one_epoch(run: Run, step_fn, batches, epoch: int, *, show: bool, stop_after_step=None) -> dict:
    """One pass over the training set; returns the epoch's mean loss and logs, and its throughput."""
    from tqdm.auto import tqdm

    rt, state, total = run.runtime, run.state, run.config.epochs * len(batches)
    sums: dict[str, torch.Tensor | float] = {}
    images, n = 0, 0
    rt.synchronize()
    start = time.perf_counter()
    run.method.train()
    bar = tqdm(batches.epoch(run.generator), total=len(batches), desc=f"epoch {epoch + 1}", leave=False,
               disable=not show)
    for x, y in bar:
        if stop_after_step is not None and state.step == stop_after_step:
            raise TrainingInterrupted(f"stopped before global step {stop_after_step} (stop_after_step)")
        ctx = StepContext(step=state.step, total_steps=total, epoch=epoch, generator=run.generator)
        out = train_step(run, step_fn, x, y, ctx)
        for key, value in {"train_loss": out.loss.detach(), **out.logs}.items():
            sums[key] = sums.get(key, 0.0) + (accumulable(value) if torch.is_tensor(value) else value)
        state.step, images, n = state.step + 1, images + len(x), n + 1
        if show and n % PROGRESS_EVERY == 0:  # .item() waits for the GPU: not every step
            bar.set_postfix(loss=f"{out.loss.item():.3f}")
    distributed.broadcast_buffers(run.method, rt.dist)
    rt.synchronize()
    seconds = time.perf_counter() - start
    means = distributed.mean_over_ranks({k: float(v) / n for k, v in sums.items()}, rt.dist, rt.device)
    return {**means, "train_images": images, "train_time_s": seconds, "train_images_per_s": images / seconds}


def accumulable(value: torch.Tensor) -> torch.Tensor:
    """A logged tensor as summed over an epoch: at least float32 (bf16 logs would lose the sum), float64
    kept (a float64 log sums exactly as the Python float it replaces, without a host sync per step)."""
    return value.detach().to(torch.promote_types(value.dtype, torch.float32))


def train_step(run: Run, step_fn, x: torch.Tensor, y: torch.Tensor, ctx: StepContext):
    """One iteration on this rank's slice of the global batch."""
    rt = run.runtime
    x, y = rt.layout(distributed.local_slice(x, rt.dist)), distributed.local_slice(y, rt.dist)
    with rt.autocast():
        out = step_fn(x, y, ctx)
    run.optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    run.optimizer.step()
    run.method.after_step(ctx)
    return out


def evaluate_networks(run: Run, tests) -> tuple[dict, dict]:
    """Top-1/top-5 (percent) of each of the method's networks on the test split and the time it took,
    and each network's predicted classes (encoded by ``evaluate.predictions``) for paired tests."""
    from ..evaluate.accuracy import predict_logits, topk_accuracy
    from ..evaluate.predictions import encode_predictions

    rt = run.runtime
    ks = (1, 5) if run.dataset.num_classes >= 5 else (1,)
    row, predicted = {}, {}
    start = time.perf_counter()
    for name, network in run.method.eval_networks().items():
        batches = ((rt.layout(x), y) for x, y in tests.epoch(torch.Generator().manual_seed(0)))
        with rt.autocast():
            logits, labels = predict_logits(network, batches)
        row.update({f"{name}_{k}": v for k, v in topk_accuracy(logits, labels, ks).items()})
        predicted[name] = logits.argmax(1)
    rt.synchronize()
    row["eval_time_s"] = time.perf_counter() - start
    return row, encode_predictions(predicted, labels)

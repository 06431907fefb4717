"""``mixrepro bench``: wall-clock cost of one training step of each method.

The papers' published costs are collected in book/protocol_notes.md, "Published costs".

A benchmarked step is a training step: the run is built by the trainer's own
builders (``components.load_run_data``, ``build_run_method``, ``train_batcher``) and
each step is ``loop.train_step`` (batch from the batcher, the method's step under the
run's autocast and layout, backward, SGD, ``after_step``), under the trainer's kernel
settings and pinned thread count. Every method is measured in one process on one
device, from the same seed, with its own fresh model and optimiser, after untimed
warm-up steps (cuDNN autotuning, allocator growth, lazy initialisation); the timed
steps of all methods are taken in interleaved rounds (see ``time_interleaved``).

Results go to ``<results root>/bench/<device type>/<UTC time>-<settings hash>.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import InvalidParameterError
from ..validation import check_choice, check_finite, check_positive_int

DM_LOSS = "dm_ce"
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Variant:
    """One row of the table: a registered method with parameter overrides (DM(CE) variants, ``vary`` rows)."""

    name: str
    method: str
    params: dict = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class BenchSettings:
    """What ``mixrepro bench`` measures; None picks the runtime's default for the device."""

    methods: tuple[str, ...] = ()  # empty: every registered method
    dm_on: tuple[str, ...] = ()  # methods that also get a DM(CE) row
    vary: tuple[str, ...] = ()  # 'method.param=v1,v2': one more row of the method per value (parse_vary)
    model: str = "resnet18"
    width: float = 0.25
    batch_size: int = 100
    device: str = "auto"
    precision: str | None = None  # None: bf16 on CUDA, fp32 on the CPU (as training)
    channels_last: bool | None = None  # None: on for CUDA, off on the CPU (as training)
    threads: int | None = None  # None: torch's current intra-op thread count
    warmup: int = 3
    repeats: int = 10
    dataset: str = "cifar10-jpeg"


def validate_settings(settings: BenchSettings) -> None:
    """Raise on any value a run could not use, before anything is built or timed."""
    from ..data import DATASETS
    from ..models import MODELS
    from .runtime import validate_threads

    check_positive_int("batch_size", settings.batch_size)
    check_positive_int("warmup", settings.warmup)  # the first step pays one-off costs and gives the peak
    check_positive_int("repeats", settings.repeats)
    check_finite("width", settings.width, ok=lambda v: v > 0, allowed="a positive number")
    if settings.precision is not None:
        check_choice("precision", settings.precision, PRECISIONS)
    validate_threads(settings.threads)
    MODELS.get(settings.model)
    DATASETS.get(settings.dataset)


def bench_variants(methods=(), dm_on=(), vary=()) -> list[Variant]:
    """The rows to measure: vanilla first (the ratios' reference), then ``methods`` (default: all
    registered ones, sorted), each DM(CE) variant right after its method, each ``vary`` row
    (:func:`parse_vary`) after its method's rows. Unknown names, methods without a ``loss`` parameter
    and invalid parameter values raise before anything is timed."""
    from ..methods import METHODS
    from .command import format_value

    names = list(dict.fromkeys(methods or METHODS.names()))
    for name in [*names, *dm_on]:
        METHODS.get(name)
    names = ["vanilla", *(n for n in names if n != "vanilla")]
    rows = []
    for name in [*names, *(n for n in dm_on if n not in names)]:
        rows.append(Variant(name, name))
        if name in dm_on:
            rows.append(Variant(f"{name}+{DM_LOSS}", name, {"loss": DM_LOSS}))
    for method, param, values in (parse_vary(item) for item in vary):
        if method not in names:
            rows.append(Variant(method, method))
            names.append(method)
        at = max(i for i, row in enumerate(rows) if row.method == method) + 1
        rows[at:at] = [Variant(f"{method}[{param}={format_value(v)}]", method, {param: v}) for v in values]
    for row in rows:
        cls = METHODS.get(row.method)
        cls.validate_params({**cls.default_params, **row.params})  # e.g. a learned method has no `loss`
    return rows


def parse_vary(item: str) -> tuple[str, str, list]:
    """'adautomix.num_sources=2,4,5' -> ('adautomix', 'num_sources', [2, 4, 5]): rows of one method that
    differ in one parameter (values as ``mixrepro train --set method.PARAM=VALUE`` reads them)."""
    from ..methods import METHODS
    from .command import parse_method_value

    key, sep, text = item.partition("=")
    method, dot, param = key.strip().partition(".")
    if not (sep and dot and text):
        raise InvalidParameterError("--vary", item, "METHOD.PARAM=V1,V2,... (e.g. adautomix.num_sources=2,4,5)")
    cls = METHODS.get(method)
    if param not in cls.default_params:
        raise InvalidParameterError(f"--vary {method} parameter", param, f"one of {sorted(cls.default_params)}")
    return method, param, [parse_method_value(v.strip()) for v in text.split(",")]


class PreparedStep:
    """One variant's run, warmed up and ready to take timed steps; ``step()`` is one training iteration."""

    def __init__(self, settings: BenchSettings, variant: Variant, dataset, batcher, runtime):
        from .. import distributed
        from . import components, loop
        from .schedule import build_optimizer

        self.variant, self.config = variant, run_config(settings, variant)
        method = components.build_run_method(self.config, dataset, runtime)
        self.run = loop.Run(self.config, runtime, dataset, method, build_optimizer(self.config, method.parameters()),
                            components.step_generator(self.config), loop.TrainState())
        self.step_fn = distributed.step_function(method, runtime.dist)
        self.batches = endless_batches(batcher, self.run.generator)
        self.total_steps = self.config.epochs * len(batcher)  # schedules see an early step of a full-length run
        self.index, self.output = 0, None
        method.train()

    def step(self) -> None:
        from ..methods.base import StepContext
        from .loop import train_step

        x, y = next(self.batches)  # the training loop pays for the batch's crop and flip too
        ctx = StepContext(step=self.index, total_steps=self.total_steps, epoch=0, generator=self.run.generator)
        self.output = train_step(self.run, self.step_fn, x, y, ctx)
        self.index += 1


def endless_batches(batcher, generator: torch.Generator):
    """Training batches epoch after epoch, drawn from ``generator`` as the training loop draws them."""
    while True:
        yield from batcher.epoch(generator)


def make_bench_runtime(settings: BenchSettings):
    from .runtime import make_runtime

    amp = None if settings.precision is None else settings.precision == "bf16"
    return make_runtime(settings.device, amp=amp, channels_last=settings.channels_last, threads=settings.threads)


def run_config(settings: BenchSettings, variant: Variant):
    from ..config import RunConfig

    return RunConfig(method=variant.method, dataset=settings.dataset, model=settings.model, width=settings.width,
                     batch_size=settings.batch_size, method_params=dict(variant.params))


def prepare(settings: BenchSettings, variant: Variant, dataset, batcher, runtime, on_step=None) -> tuple:
    """(PreparedStep after its warm-up steps, its peak CUDA memory in MiB or None off CUDA).

    Warm-up steps pay the one-off costs (lazy initialisation, cuDNN autotuning, allocator
    growth) and are not timed. The peak is taken over them, above what was allocated before
    the build (the resident data set and the variants built earlier), so it is this variant's
    own: weights, optimiser state and one step's activations.
    """
    cuda = runtime.device.type == "cuda"
    if cuda:
        runtime.synchronize()
        torch.cuda.reset_peak_memory_stats(runtime.device)
        baseline = torch.cuda.memory_allocated(runtime.device)
    prepared = PreparedStep(settings, variant, dataset, batcher, runtime)
    for _ in range(settings.warmup):
        prepared.step()
        if on_step:
            on_step()
    runtime.synchronize()
    peak = (torch.cuda.max_memory_allocated(runtime.device) - baseline) / 2**20 if cuda else None
    return prepared, peak


def time_interleaved(steps: list[Callable[[], object]], repeats: int,
                     synchronize: Callable[[], None], on_step=None) -> list[list[float]]:
    """Seconds of ``repeats`` calls of each function, in rounds (one call of each per round).

    Rounds, not one method after another: on a shared machine the load of other processes
    changes over minutes, and interleaving lets it hit every method alike, so the ratios to
    vanilla stay fair even when absolute times drift. A plain perf_counter loop rather than
    torch.utils.benchmark's autorange: a training step lasts milliseconds to seconds, far above
    the clock's resolution and the cost of a synchronisation, so blocking buys nothing, and a
    fixed count keeps the slow learned methods' cost predictable. ``synchronize`` runs before
    each clock read because CUDA launches are asynchronous: without it the clock would time
    the launches (or the previous method's queued work), not this step.
    """
    check_positive_int("repeats", repeats)
    seconds: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for times, step in zip(seconds, steps):
            synchronize()
            start = time.perf_counter()
            step()
            synchronize()
            times.append(time.perf_counter() - start)
            if on_step:
                on_step()
    return seconds


def make_row(settings: BenchSettings, prepared: PreparedStep, peak, seconds: list[float]) -> dict:
    """One row: seconds per step (median over the repeats), images/s, peak CUDA memory, last loss."""
    median = statistics.median(seconds)
    variant = prepared.variant
    return {"method": variant.name, "base_method": variant.method, "method_params": dict(variant.params),
            "seconds_per_step": median, "mean_seconds_per_step": statistics.fmean(seconds),
            "min_seconds_per_step": min(seconds), "step_seconds": seconds,
            "images_per_s": settings.batch_size / median, "peak_memory_mb": peak,
            "last_loss": float(prepared.output.loss.detach())}


def release_memory(runtime) -> None:
    """Give back the measured runs' memory, so whatever runs next in this process starts clean."""
    gc.collect()
    if runtime.device.type == "cuda":
        torch.cuda.empty_cache()


def described_settings(settings: BenchSettings, runtime, variants: list[Variant]) -> dict:
    """The settings as run (defaults resolved), which the results file is named by."""
    return {**dataclasses.asdict(settings), "methods": [v.name for v in variants], "device": str(runtime.device),
            "precision": "bf16" if runtime.amp else "fp32", "channels_last": runtime.channels_last,
            "threads": runtime.threads}


def run_bench(settings: BenchSettings, *, data_root=None, progress: bool = True, stop_at: float | None = None) -> dict:
    """Measure every variant; returns {'settings', 'environment', 'dataset_label', 'rows', 'skipped'}.

    ``stop_at`` (a ``time.time()`` value): variants not yet built by then are skipped and listed,
    so a caller with a deadline keeps the rows of the others.
    """
    from tqdm.auto import tqdm

    from ..environment import collect_environment
    from . import components
    from .runtime import pinned_threads, reproducible_kernels

    validate_settings(settings)
    variants = bench_variants(settings.methods, settings.dm_on, settings.vary)
    runtime = make_bench_runtime(settings)
    with reproducible_kernels(runtime.device), pinned_threads(runtime.threads):
        reference = run_config(settings, variants[0])
        dataset = components.load_run_data(reference, data_root)
        if settings.batch_size > len(dataset.train_y):
            raise InvalidParameterError("batch_size", settings.batch_size,
                                        f"at most {len(dataset.train_y)} (the training images of {settings.dataset})")
        batcher = components.train_batcher(reference, dataset, runtime)
        bar = tqdm(total=len(variants) * (settings.warmup + settings.repeats), desc="bench", unit="step",
                   disable=not progress)
        prepared, peaks, skipped = [], [], []
        for variant in variants:
            if stop_at is not None and time.time() >= stop_at:
                skipped.append(variant.name)
                continue
            bar.set_postfix(warming=variant.name)
            step, peak = prepare(settings, variant, dataset, batcher, runtime, on_step=lambda: bar.update(1))
            prepared.append(step)
            peaks.append(peak)
        bar.set_postfix(timing="interleaved")
        seconds = time_interleaved([p.step for p in prepared], settings.repeats, runtime.synchronize,
                                   on_step=lambda: bar.update(1))
        bar.close()
        rows = [make_row(settings, p, peak, t) for p, peak, t in zip(prepared, peaks, seconds)]
        environment = {**collect_environment(runtime.device), "runtime": runtime.describe()}
    del prepared
    release_memory(runtime)
    for row in rows:
        row["ratio_to_vanilla"] = row["seconds_per_step"] / rows[0]["seconds_per_step"]
    return {"settings": described_settings(settings, runtime, variants), "environment": environment,
            "dataset_label": dataset.label, "rows": rows, "skipped": skipped}


def results_path(report: dict, results_root=None, now: float | None = None) -> Path:
    """``<root>/bench/<device type>/<UTC time>-<hash of the settings>.json``."""
    from ..results import default_results_root

    root = Path(results_root) if results_root is not None else default_results_root()
    blob = json.dumps(report["settings"], sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return root / "bench" / report["environment"]["device_type"] / f"{stamp}-{digest}.json"


def save_report(report: dict, results_root=None) -> Path:
    from ..io import atomic_write_json

    path = results_path(report, results_root)
    atomic_write_json(path, report)
    return path


def format_table(report: dict) -> str:
    """The rows as an aligned text table, with the settings they were measured under."""
    s, env = report["settings"], report["environment"]
    lines = [f"{env['device_name']} ({s['device']}), torch {env['torch']}, {s['threads']} thread(s), "
             f"{s['precision']}, {'channels_last' if s['channels_last'] else 'contiguous'}, "
             f"{s['model']} width {s['width']:g}, batch {s['batch_size']}, {report['dataset_label']}, "
             f"median of {s['repeats']} interleaved steps after {s['warmup']} warm-up",
             f"{'method':<16} {'s/step':>9} {'img/s':>9} {'peak MiB':>9} {'x vanilla':>9}"]
    for r in report["rows"]:
        peak = "n/a" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.0f}"
        lines.append(f"{r['method']:<16} {r['seconds_per_step']:>9.4f} {r['images_per_s']:>9.0f} {peak:>9} "
                     f"{r['ratio_to_vanilla']:>9.2f}")
    if report["skipped"]:
        lines.append(f"skipped (deadline): {', '.join(report['skipped'])}")
    return "\n".join(lines)


def settings_from_args(args) -> BenchSettings:
    return BenchSettings(
        methods=tuple(args.methods or ()), dm_on=tuple(args.dm_on or ()), vary=tuple(args.vary or ()),
        model=args.model, width=args.width,
        batch_size=args.batch_size, device=args.device, precision=args.precision,
        channels_last=args.channels_last, threads=args.threads, warmup=args.warmup, repeats=args.repeats,
        dataset=args.dataset,
    )


def cli_bench(args) -> int:
    """Run, save, print: the table (to stderr with --json, whose document goes to stdout)."""
    report = run_bench(settings_from_args(args), progress=not args.no_progress)
    path = save_report(report, args.out)
    table = f"{format_table(report)}\nsaved: {path}"
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps({"file": str(path), **report}, indent=2, default=str))
    else:
        print(table)
    return 0


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    d = BenchSettings()
    parser.add_argument("--methods", nargs="+", default=None,
                        help="methods to time (default: every registered one); vanilla is always timed, first")
    parser.add_argument("--dm-on", nargs="+", default=None, metavar="METHOD",
                        help=f"also time these methods with the DM(CE) loss (rows named METHOD+{DM_LOSS})")
    parser.add_argument("--vary", nargs="+", default=None, metavar="METHOD.PARAM=V1,V2",
                        help="also time METHOD with each value of one parameter (rows named METHOD[PARAM=V]), "
                        "e.g. adautomix.num_sources=2,4,5")
    parser.add_argument("--model", default=d.model)
    parser.add_argument("--width", type=float, default=d.width, help="channel multiplier of the model")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="default: bf16 autocast on CUDA, fp32 on the CPU (as training)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="default: on for CUDA, off on the CPU (as training)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=d.warmup, help="untimed steps per method (at least 1)")
    parser.add_argument("--repeats", type=int, default=d.repeats, help="timed steps per method (median reported)")
    parser.add_argument("--dataset", default=d.dataset, help="e.g. cifar10-jpeg or synthetic")
    parser.add_argument("--out", default=None,
                        help="results root (default: $MIXREPRO_RESULTS, else notebooks/results)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")

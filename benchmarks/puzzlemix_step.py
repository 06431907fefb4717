"""Seconds per training step of vanilla / mixup / PuzzleMix on the CPU, and a bit-exact record of PuzzleMix steps.

Builds each run as training does (``load_run_data``, ``build_run_method`` at the ``cpu`` budget with
``train_subset=2000``: width-0.25 ResNet-18, batch 100), one torch thread, and times ``train_step`` of
the training loop (forward, backward, optimizer step) on the same real CIFAR-10 batches, methods
interleaved step by step so that load from other processes hits them alike.

    MIXREPRO_DATA=/work/shared/data python benchmarks/puzzlemix_step.py time --steps 12
    MIXREPRO_DATA=/work/shared/data python benchmarks/puzzlemix_step.py profile --method puzzlemix
    MIXREPRO_DATA=/work/shared/data python benchmarks/puzzlemix_step.py record out.pt   # 3 steps + mixes
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import time

import torch

from mixrepro.config import config_for_budget
from mixrepro.methods.base import StepContext
from mixrepro.training import components
from mixrepro.training.loop import Run, TrainState, train_step
from mixrepro.training.runtime import make_runtime
from mixrepro.training.schedule import build_optimizer

VARIANTS = {
    "vanilla": ("vanilla", {}),
    "mixup": ("mixup", {}),
    "puzzlemix": ("puzzlemix", {}),
    "puzzlemix_clean0": ("puzzlemix", {"clean_lam": 0.0}),
    # the code before the speed-up (same bits): clean graph backpropagated twice, dense transport costs,
    # the data term pooling each image once per pair
    "puzzlemix_before": ("puzzlemix", {}),
    "puzzlemix_clean0_before": ("puzzlemix", {"clean_lam": 0.0}),
}


def reference_data_smoothness(x_a, x_b, grid, weight, neigh_size):
    """``data_smoothness`` as it was: :func:`boundary_discrepancy` (two poolings) for each of the 4 pairs."""
    import numpy as np

    from mixrepro.mixers.puzzlemix import boundary_discrepancy

    imgs = {"a": x_a, "b": x_b}
    pairs = {(s, t): boundary_discrepancy(imgs[s], imgs[t], grid, neigh_size) for s in "ab" for t in "ab"}
    show = {s: torch.zeros(len(x_a), grid, grid, device=x_a.device) for s in "ab"}
    extra = []
    for axis, (first, second) in enumerate([(np.s_[:, :-1, :], np.s_[:, 1:, :]), (np.s_[:, :, :-1], np.s_[:, :, 1:])]):
        P = {st: weight * pairs[st][axis] for st in pairs}
        for s in "ab":
            show[s][first] += (P[s, "a"] + P[s, "b"]) / 2
            show[s][second] += (P["a", s] + P["b", s]) / 2
        extra.append((P["a", "b"] + P["b", "a"] - P["a", "a"] - P["b", "b"]) / 2)
    return show["a"], show["b"], extra[0], extra[1]


@contextlib.contextmanager
def reference_mixers(active: bool = True):
    """Within the block, PuzzleMix mixes through the reference paths (a no-op unless ``active``)."""
    import mixrepro.mixers.puzzlemix as pm
    from mixrepro.mixers.puzzlemix_transport import transport

    if not active:
        yield
        return
    saved = pm.data_smoothness, pm.transport_blocks
    pm.data_smoothness, pm.transport_blocks = reference_data_smoothness, functools.partial(transport, fast=False)
    try:
        yield
    finally:
        pm.data_smoothness, pm.transport_blocks = saved


def build(variant: str, dataset=None, fast: bool = False, **extra):
    method_name, params = VARIANTS[variant]
    config = config_for_budget("cpu", method=method_name, train_subset=2000, method_params={**params, **extra})
    runtime = make_runtime("cpu", amp=fast, channels_last=fast, threads=1)
    dataset = dataset if dataset is not None else components.load_run_data(config)
    method = components.build_run_method(config, dataset, runtime)
    run = Run(config, runtime, dataset, method, build_optimizer(config, method.parameters()),
              components.step_generator(config), TrainState())
    run.method.train()
    run.reference = variant.endswith("_before")
    if run.reference:
        run.method.merged_clean_backward = False
    return run


def batches(run, n: int):
    out = []
    it = components.train_batcher(run.config, run.dataset, run.runtime).epoch(torch.Generator().manual_seed(0))
    for x, y in it:
        out.append((x, y))
        if len(out) == n:
            break
    return out


def one_step(run, x, y, i):
    ctx = StepContext(step=i, total_steps=1000, epoch=0, generator=run.generator)
    with reference_mixers(getattr(run, "reference", False)):
        return train_step(run, run.method.training_step, x, y, ctx)


def cmd_time(args):
    torch.set_num_threads(1)
    variants = args.variants.split(",")
    first = build(variants[0], fast=args.fast)
    runs = {variants[0]: first, **{v: build(v, first.dataset, fast=args.fast) for v in variants[1:]}}
    data = batches(first, args.warmup + args.steps)
    times = {v: [] for v in variants}
    for i in range(args.warmup + args.steps):
        x, y = data[i % len(data)]
        for v in variants:
            start = time.perf_counter()
            one_step(runs[v], x, y, i)
            if i >= args.warmup:
                times[v].append(time.perf_counter() - start)
    ref = times.get("mixup")
    print(f"{'variant':<24} {'median s/step':>13} {'mean':>7} {'min':>7} {'ratio: median of per-step':>26} "
          f"{'mean/mean':>10}")
    for v in variants:
        med, mean = statistics.median(times[v]), statistics.fmean(times[v])
        ratio = statistics.median(t / r for t, r in zip(times[v], ref)) if ref else float("nan")
        mean_ratio = mean / statistics.fmean(ref) if ref else float("nan")
        print(f"{v:<24} {med:13.3f} {mean:7.3f} {min(times[v]):7.3f} {ratio:26.2f} {mean_ratio:10.2f}")


def cmd_profile(args):
    torch.set_num_threads(1)
    run = build(args.method, fast=args.fast)
    data = batches(run, args.warmup + args.steps)
    for i in range(args.warmup):
        one_step(run, *data[i], i)
    if args.tool == "pyinstrument":
        from pyinstrument import Profiler

        prof = Profiler(interval=0.001)
        prof.start()
        for i in range(args.warmup, args.warmup + args.steps):
            one_step(run, *data[i], i)
        prof.stop()
        print(prof.output_text(unicode=False, color=False, show_all=False))
    else:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for i in range(args.warmup, args.warmup + args.steps):
            one_step(run, *data[i], i)
        prof.disable()
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(45)


def record_steps(n_steps: int = 3, clean_lam: float = 1.0, before: bool = False, **extra) -> dict:
    """Losses, logs and mixed batches of ``n_steps`` PuzzleMix training steps, plus the final weights."""
    import mixrepro.methods.puzzlemix as method_module

    torch.set_num_threads(1)
    variant = ("puzzlemix" if clean_lam == 1.0 else "puzzlemix_clean0") + ("_before" if before else "")
    run = build(variant, **extra)
    data = batches(run, n_steps)
    mixes = []
    original = method_module.puzzlemix

    def recording(*a, **k):
        x_mix, target = original(*a, **k)
        mixes.append((x_mix.detach().clone(), target.weights.detach().clone(), target.labels.clone()))
        return x_mix, target

    method_module.puzzlemix = recording
    try:
        losses, logs = [], []
        for i, (x, y) in enumerate(data):
            out = one_step(run, x, y, i)
            losses.append(out.loss.detach().clone())
            logs.append(out.logs)
    finally:
        method_module.puzzlemix = original
    return {"losses": losses, "logs": logs, "mixes": mixes,
            "params": [p.detach().clone() for p in run.method.model.parameters()]}


def cmd_record(args):
    out = {lam: record_steps(args.steps, clean_lam=lam, fast=args.fast) for lam in (1.0, 0.0)}
    torch.save(out, args.path)
    for lam, rec in out.items():
        print(lam, [float(x) for x in rec["losses"]], [log["block_num"] for log in rec["logs"]])


def cmd_compare(args):
    """Steps now vs a record (``path``), or vs the reference paths in this process (``path`` = "before")."""
    want = ({lam: record_steps(args.steps, clean_lam=lam, before=True, fast=args.fast) for lam in (1.0, 0.0)}
            if args.path == "before" else torch.load(args.path, weights_only=False))
    ok = True
    for lam, rec in want.items():
        got = record_steps(len(rec["losses"]), clean_lam=lam, fast=args.fast)
        same = (all(torch.equal(a, b) for a, b in zip(got["losses"], rec["losses"]))
                and got["logs"] == rec["logs"]
                and all(all(torch.equal(a, b) for a, b in zip(g, w)) for g, w in zip(got["mixes"], rec["mixes"]))
                and all(torch.equal(a, b) for a, b in zip(got["params"], rec["params"])))
        print(f"clean_lam={lam}: {'bit-identical' if same else 'DIFFERENT'}")
        ok &= same
    return 0 if ok else 1


def main(argv=None):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time")
    t.add_argument("--variants", default="vanilla,mixup,puzzlemix,puzzlemix_clean0,puzzlemix_before,"
                                         "puzzlemix_clean0_before")
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--steps", type=int, default=10)
    t.add_argument("--fast", action="store_true", help="the cpu budget's bf16 + channels_last fast path")
    pr = sub.add_parser("profile")
    pr.add_argument("--method", default="puzzlemix", choices=sorted(VARIANTS))
    pr.add_argument("--warmup", type=int, default=2)
    pr.add_argument("--steps", type=int, default=8)
    pr.add_argument("--tool", default="cprofile", choices=["cprofile", "pyinstrument"])
    pr.add_argument("--fast", action="store_true")
    r = sub.add_parser("record")
    r.add_argument("path")
    r.add_argument("--steps", type=int, default=3)
    r.add_argument("--fast", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("path", help='a file written by "record", or "before": the reference paths, run here')
    c.add_argument("--steps", type=int, default=3, help='steps for "before"')
    c.add_argument("--fast", action="store_true")
    args = p.parse_args(argv)
    return {"time": cmd_time, "profile": cmd_profile, "record": cmd_record, "compare": cmd_compare}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())

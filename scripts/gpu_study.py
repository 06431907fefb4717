"""The GPU study on a lent machine, in one command under a hard deadline (``scripts/gpu_study.sh`` runs it).

Phases, in order, each given only what the deadline leaves:

1. ``data``: decode the dataset once into the cache the later processes share.
2. ``validate``: a short Mixup run in fp32, in bf16 + channels_last, and the same compiled
   (in a child process with a time limit, since compilation cannot be interrupted);
   each curve against fp32's, with a stated tolerance on the mean loss of the last steps.
3. ``flops``: forward FLOPs of the model (FlopCounterMode) and a measured bf16 matmul rate,
   giving a FLOP floor (training counted as 3 forward passes).
4. ``bench``: ``mixrepro bench`` at each width, and vanilla at larger batches.
5. ``sweep``: ``mixrepro sweep PLAN`` workers sharing the device until the deadline, then
   stopped; a run is reported only if it finished (the store publishes whole runs only).

Everything lands under ``--out``: ``summary.json`` (rewritten after every phase, so a
killed study still leaves one), ``results.tar.gz`` (the results root: bench files, finished
runs, logs) and the shell script's ``study.log``. ``--dry-run`` runs every phase on the CPU
with tiny settings and a 20 s deadline, to test the script where no GPU is.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from mixrepro import distributed
from mixrepro.config import RunConfig
from mixrepro.data import load_dataset
from mixrepro.environment import REPO_ROOT, collect_environment, git_revision
from mixrepro.errors import InvalidParameterError, MixreproError
from mixrepro.io import atomic_write_json
from mixrepro.methods import METHODS
from mixrepro.methods.base import StepContext
from mixrepro.models import build_model
from mixrepro.results import ResultsStore
from mixrepro.plans import get_plan
from mixrepro.training import components, loop
from mixrepro.training.bench import BenchSettings, endless_batches, format_table, run_bench, save_report
from mixrepro.training.runtime import make_runtime, pinned_threads, reproducible_kernels, resolve_device
from mixrepro.validation import check_finite, check_positive_int

VARIANTS = {  # runtime of each validation curve; the first is the reference
    "fp32": {"amp": False, "channels_last": False, "compile": False},
    "bf16-cl": {"amp": True, "channels_last": True, "compile": False},
    "bf16-cl-compile": {"amp": True, "channels_last": True, "compile": True},
}
IN_PROCESS_VARIANTS = ("fp32", "bf16-cl")
SUMMARY = "summary.json"
ARCHIVE = "results.tar.gz"


@dataclass(frozen=True)
class StudySettings:
    dataset: str = "cifar10-jpeg"
    device: str = "cuda"
    threads: int | None = None  # torch intra-op threads of this process (None: torch's default)
    validate_method: str = "mixup"
    validate_steps: int = 200
    validate_width: float = 1.0
    validate_batch: int = 100
    tail_steps: int = 50  # the tolerance is on the mean loss of the last tail_steps steps
    tolerance: float = 0.02  # relative difference of that mean from fp32's
    compile_limit_s: float = 150.0
    model: str = "resnet18"
    bench_widths: tuple[float, ...] = (1.0, 0.25)
    bench_batch: int = 100
    big_batches: tuple[int, ...] = (256, 512, 1024)  # vanilla only; the best is compared to the FLOP floor
    bench_methods: tuple[str, ...] = ()  # () = every registered method
    dm_on: tuple[str, ...] = ("mixup", "cutmix")
    bench_warmup: int = 3
    bench_repeats: int = 10
    matmul_size: int = 8192
    workers: int = 4
    budget_s: float = 570.0  # from the script's start: 9.5 min, inside the machine's 10 min per command
    stop_margin_s: float = 30.0  # kept after the sweep to stop workers, pack and write
    sweep_min_s: float = 120.0  # bench stops starting methods when less than this is left for the sweep
    poll_s: float = 10.0  # how often the sweep phase samples the device's load


DRY_RUN = StudySettings(  # every phase, small enough for a 2-core CPU that other processes share
    dataset="synthetic", device="cpu", threads=1, validate_steps=4, validate_width=0.0625, validate_batch=8,
    tail_steps=2, compile_limit_s=1.5, bench_widths=(0.0625,), bench_batch=8, big_batches=(16,),
    bench_methods=("vanilla", "mixup"), dm_on=("mixup",), bench_warmup=1, bench_repeats=2, matmul_size=256,
    workers=1, budget_s=20.0, stop_margin_s=2.0, sweep_min_s=2.0, poll_s=0.5,
)


class Clock:
    """Seconds left before a deadline counted from the script's start (setup time included)."""

    def __init__(self, started_at: float, budget_s: float):
        self.started_at, self.deadline = started_at, started_at + budget_s

    def left(self, reserve: float = 0.0) -> float:
        return self.deadline - reserve - time.time()

    def elapsed(self) -> float:
        return time.time() - self.started_at


# ---------------------------------------------------------------- validation: loss curves


def curve_config(s: StudySettings):
    return RunConfig(method=s.validate_method, dataset=s.dataset, model=s.model, width=s.validate_width,
                     batch_size=s.validate_batch, seed=0)


def loss_curve(s: StudySettings, variant: str, data_root=None) -> dict:
    """Per-step training loss of ``validate_steps`` steps under ``variant``'s runtime, from the same
    seed (same initial weights, batches and mixing draws in every variant), and its speed."""
    config, runtime = curve_config(s), make_runtime(s.device, threads=s.threads, **VARIANTS[variant])
    with reproducible_kernels(runtime.device), pinned_threads(runtime.threads):
        run = loop.start_run(config, runtime, data_root=data_root)
        batcher = components.train_batcher(config, run.dataset, runtime)
        batches = endless_batches(batcher, run.generator)
        step_fn = distributed.step_function(run.method, runtime.dist)
        run.method.train()
        losses, first_step_s = [], None
        start = time.perf_counter()
        for i in range(s.validate_steps):
            x, y = next(batches)
            ctx = StepContext(step=i, total_steps=s.validate_steps, epoch=0, generator=run.generator)
            losses.append(loop.train_step(run, step_fn, x, y, ctx).loss.detach().float())
            if i == 0:  # includes compilation and autotuning, so it is kept apart
                runtime.synchronize()
                first_step_s = time.perf_counter() - start
        runtime.synchronize()
        seconds = time.perf_counter() - start
    rest = max(seconds - first_step_s, 1e-9)
    return {"variant": variant, "runtime": runtime.describe(), "data_device": str(batcher.x.device),
            "losses": torch.stack(losses).tolist(),
            "seconds": seconds, "first_step_s": first_step_s,
            "images_per_s_after_first": s.validate_batch * (s.validate_steps - 1) / rest}


def compare_curves(reference: list[float], other: list[float], tail: int, tolerance: float) -> dict:
    """How far ``other`` is from ``reference``: per-step relative differences (informative: two
    trajectories drift apart step by step) and the tested one, the mean loss of the last ``tail``
    steps, which must agree within ``tolerance`` (relative)."""
    ref, oth = torch.tensor(reference, dtype=torch.float64), torch.tensor(other, dtype=torch.float64)
    if ref.shape != oth.shape:
        raise InvalidParameterError("loss curve", f"{len(other)} steps", f"{len(reference)} steps, as the reference")
    rel = (oth - ref).abs() / ref.abs().clamp_min(1e-12)
    tail_ref, tail_oth = ref[-tail:].mean().item(), oth[-tail:].mean().item()
    tail_rel = abs(tail_oth - tail_ref) / max(abs(tail_ref), 1e-12)
    finite = bool(torch.isfinite(oth).all())
    return {"first_step_rel_diff": rel[0].item(), "max_rel_diff": rel.max().item(),
            "max_rel_diff_step": int(rel.argmax()), "tail_steps": tail, "tail_mean_fp32": tail_ref,
            "tail_mean": tail_oth, "tail_rel_diff": tail_rel, "tolerance": tolerance,
            "within_tolerance": finite and tail_rel <= tolerance, "finite": finite}


# ---------------------------------------------------------------- child processes


def signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # its own session: the group is the child and what it started
    except ProcessLookupError:
        pass


def stop_children(procs: list[subprocess.Popen], grace_s: float = 10.0) -> list[str]:
    """Stop children started in their own sessions, with everything they started (compile workers).

    SIGINT to all at once, so each Python unwinds (releasing its sweep claim) while the others
    do; SIGKILL to what is left after ``grace_s``, then to each group once more, so no
    grandchild outlives the study.
    """
    outcomes = {id(p): f"exited {p.returncode}" for p in procs if p.poll() is not None}
    running = stopping = [p for p in procs if id(p) not in outcomes]
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGKILL, 10.0)):
        for proc in running:
            signal_group(proc, sig)
        until = time.time() + wait_s
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, until - time.time()))
                outcomes[id(proc)] = f"stopped by {sig.name}"
            except subprocess.TimeoutExpired:
                pass
        running = [p for p in running if id(p) not in outcomes]
    for proc in stopping:  # only groups reaped just now: an old group's number may have been reused
        signal_group(proc, signal.SIGKILL)
    return [outcomes.get(id(p), "still running") for p in procs]


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> str:
    return stop_children([proc], grace_s)[0]


def start_child(cmd: list[str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def run_limited(cmd: list[str], limit_s: float, log_path: Path) -> dict:
    """Run ``cmd`` for at most ``limit_s`` seconds; its output goes to ``log_path``."""
    start = time.time()
    proc = start_child(cmd, log_path)
    try:
        proc.wait(timeout=max(limit_s, 0.1))
        return {"rc": proc.returncode, "timed_out": False, "seconds": time.time() - start}
    except subprocess.TimeoutExpired:
        return {"rc": None, "timed_out": True, "stopped": stop_group(proc, grace_s=3.0),
                "seconds": time.time() - start}


def tail_of(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# ---------------------------------------------------------------- phases


def data_phase(s: StudySettings, state: dict) -> dict:
    """Load (and on a fresh machine decode and cache) the dataset once, before any child needs it."""
    start = time.perf_counter()
    dataset = load_dataset(s.dataset)
    state["num_classes"] = dataset.num_classes
    return {"dataset": s.dataset, "label": dataset.label, "train_images": len(dataset.train_y),
            "seconds": time.perf_counter() - start}


def compiled_curve(s: StudySettings, clock: Clock, logs: Path, dry_run: bool) -> dict:
    """The compiled variant in a child process, stopped if it runs past its time limit."""
    limit = min(s.compile_limit_s, clock.left(reserve=s.sweep_min_s + s.stop_margin_s))
    if limit < 1:
        return {"skipped": "no time left under the deadline"}
    result_path = logs / "curve-compile.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "curve", "--variant", "bf16-cl-compile",
           "--json-out", str(result_path), *(["--dry-run"] if dry_run else [])]
    outcome = run_limited(cmd, limit, logs / "curve-compile.log")
    if outcome["timed_out"]:
        return {"skipped": f"did not compile and run within {limit:.0f} s", **outcome}
    if outcome["rc"] != 0 or not result_path.is_file():
        return {"error": f"exit code {outcome['rc']}", "log_tail": tail_of(logs / "curve-compile.log"), **outcome}
    return {**json.loads(result_path.read_text()), "child": outcome}


def validate_phase(s: StudySettings, clock: Clock, logs: Path, dry_run: bool) -> dict:
    curves = {name: loss_curve(s, name) for name in IN_PROCESS_VARIANTS}
    curves["bf16-cl-compile"] = compiled_curve(s, clock, logs, dry_run)
    reference = curves["fp32"]["losses"]
    for name, curve in curves.items():
        if name != "fp32" and "losses" in curve:
            curve["against_fp32"] = compare_curves(reference, curve["losses"], s.tail_steps, s.tolerance)
    return {"method": s.validate_method, "width": s.validate_width, "batch_size": s.validate_batch,
            "steps": s.validate_steps, "fp32_math": fp32_math(), "curves": curves}


def fp32_math() -> dict:
    """Whether "fp32" convolutions and matmuls may use TF32 on this build (it changes what fp32 means)."""
    try:
        return {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}
    except (AttributeError, RuntimeError) as err:  # later torch versions may refuse the legacy flags
        return {"unknown": str(err)}


def forward_flops_per_image(model_name: str, width: float, num_classes: int) -> int:
    """FLOPs of one image's forward pass (convolutions and matmuls, 2 per multiply-add), counted on
    the CPU: the count does not depend on the device, and the model is built the way runs build it."""
    model = build_model(model_name, num_classes, width=width).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    return int(counter.get_total_flops())


def bf16_matmul_flops(device, n: int, repeats: int = 20) -> float:
    """Measured FLOP/s of an n x n x n bf16 matrix product (a ceiling for the model's convolutions)."""
    device = resolve_device(device)
    a, b = (torch.randn(n, n, device=device).to(torch.bfloat16) for _ in range(2))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def flops_phase(s: StudySettings, state: dict) -> dict:
    rate = bf16_matmul_flops(s.device, s.matmul_size)
    rows = {}
    for width in s.bench_widths:
        forward = forward_flops_per_image(s.model, width, state.get("num_classes", 10))
        rows[f"{width:g}"] = {"forward_flops_per_image": forward, "train_flops_per_image": 3 * forward,
                              "floor_images_per_s": rate / (3 * forward)}
    return {"bf16_matmul_tflops": rate / 1e12, "matmul_size": s.matmul_size, "widths": rows,
            "note": "training counted as 3 forward passes; only convolutions and matmuls are counted"}


def bench_methods(s: StudySettings, maxflow: str) -> tuple[str, ...]:
    names = s.bench_methods or tuple(METHODS.names())
    return tuple(n for n in names if maxflow != "stub" or n != "puzzlemix")


def one_bench(settings, clock: Clock, s: StudySettings, results_root: Path) -> dict:
    report = run_bench(settings, progress=False, stop_at=clock.deadline - s.sweep_min_s - s.stop_margin_s)
    path = save_report(report, results_root)
    print(format_table(report), flush=True)
    return {"file": str(path.relative_to(results_root)), "settings": report["settings"],
            "rows": report["rows"], "skipped": report["skipped"], "device_name": report["environment"]["device_name"]}


def bench_phase(s: StudySettings, clock: Clock, results_root: Path, maxflow: str, flops: dict | None) -> dict:
    common = dict(model=s.model, device=s.device, threads=s.threads, warmup=s.bench_warmup, repeats=s.bench_repeats,
                  dataset=s.dataset)
    out = {"methods": {}, "vanilla_batches": {}}
    for width in s.bench_widths:
        settings = BenchSettings(methods=bench_methods(s, maxflow), dm_on=s.dm_on, width=width,
                                 batch_size=s.bench_batch, **common)
        out["methods"][f"{width:g}"] = one_bench(settings, clock, s, results_root)
    for width in s.bench_widths:
        rows = [row for batch in (s.bench_batch, *s.big_batches)
                for row in vanilla_rows(batch, width, common, clock, s, results_root)]
        out["vanilla_batches"][f"{width:g}"] = vanilla_against_floor(rows, width, flops)
    if maxflow == "stub":
        out["note"] = "PuzzleMix left out: PyMaxflow could not be installed on this machine"
    return out


def vanilla_rows(batch: int, width: float, common: dict, clock: Clock, s: StudySettings, results_root: Path):
    result = one_bench(BenchSettings(methods=("vanilla",), width=width, batch_size=batch, **common),
                       clock, s, results_root)
    return [{"batch_size": batch, **row} for row in result["rows"]]


def vanilla_against_floor(rows: list[dict], width: float, flops: dict | None) -> dict:
    """Vanilla's images/s at each batch, the best of them, and its share of the FLOP floor's rate."""
    table = {r["batch_size"]: {"images_per_s": r["images_per_s"], "seconds_per_step": r["seconds_per_step"],
                               "peak_memory_mb": r["peak_memory_mb"]} for r in rows}
    if not table:
        return {"batches": {}, "skipped": "deadline"}
    best = max(table, key=lambda b: table[b]["images_per_s"])
    floor = (flops or {}).get("widths", {}).get(f"{width:g}", {}).get("floor_images_per_s")
    ratio = table[best]["images_per_s"] / floor if floor else None
    return {"batches": table, "best_batch": best, "best_images_per_s": table[best]["images_per_s"],
            "floor_images_per_s": floor, "share_of_floor_rate": ratio}


def device_load() -> dict | None:
    """Utilisation and memory of the GPU from nvidia-smi (None where it is missing)."""
    query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
    try:
        text = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        util, memory = (float(v) for v in text.split(","))
        return {"t": time.time(), "gpu_util_pct": util, "memory_used_mib": memory}
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def sweep_phase(s: StudySettings, clock: Clock, plan: str, results_root: Path, logs: Path) -> dict:
    """``s.workers`` sweep workers until the deadline; then every one is stopped and the store read."""
    get_plan(plan)
    if clock.left(reserve=s.stop_margin_s) < 1:
        return {"plan": plan, "skipped": "no time left under the deadline"}
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # this process's cached blocks would only crowd the workers
    cmd = [sys.executable, "-m", "mixrepro.cli", "sweep", plan, "--out", str(results_root)]
    workers = [start_child(cmd, logs / f"worker-{i}.log") for i in range(s.workers)]
    samples, start = [], time.time()
    while clock.left(reserve=s.stop_margin_s) > 0 and any(w.poll() is None for w in workers):
        sample = device_load() if s.device != "cpu" else None
        if sample:
            samples.append(sample)
        time.sleep(max(0.0, min(s.poll_s, clock.left(reserve=s.stop_margin_s))))
    grace = max(1.0, s.stop_margin_s / 3)  # SIGINT's grace, so that shutdown fits in the margin
    stopped = stop_children(workers, grace_s=grace)
    return {"plan": plan, "workers": s.workers, "seconds": time.time() - start, "worker_outcomes": stopped,
            "worker_pids": [w.pid for w in workers], "device_load": samples,
            "finished_runs": finished_runs(results_root),
            "log_tails": {f"worker-{i}": tail_of(logs / f"worker-{i}.log", 600) for i in range(s.workers)}}


def finished_runs(results_root: Path) -> list[dict]:
    return [{"key": r.config.key(), "method": r.config.method, "seed": r.config.seed,
             "train_subset": r.config.train_subset, "epochs": r.config.epochs, "summary": r.summary}
            for r in ResultsStore(results_root).runs()]


# ---------------------------------------------------------------- the study


def carried_revision() -> dict:
    """The code revision: from git where the checkout has it, else from what `make gpu-carry` wrote."""
    note = REPO_ROOT / ".gpu-carry" / "git-revision.txt"
    return {"git": git_revision(), "carried": note.read_text() if note.is_file() else None}


def run_phase(summary: dict, name: str, out: Path, fn, *args) -> dict | None:
    """Run one phase; an error is recorded and the study goes on (one broken phase must not cost the rest)."""
    start = time.time()
    print(f"gpu-study: phase {name} at {start - summary['started_at']:.0f} s", flush=True)
    try:
        result = fn(*args)
    except Exception as err:  # noqa: BLE001  (recorded, then the next phase runs)
        result = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]}
    summary["phases"][name] = {"seconds": time.time() - start, **(result or {})}
    write_summary(summary, out)
    return result


def write_summary(summary: dict, out: Path) -> None:
    atomic_write_json(out / SUMMARY, summary)


def pack_results(results_root: Path, out: Path) -> str | None:
    """One archive instead of the results tree: the machine returns few files, none deep."""
    if not results_root.exists():
        return None
    with tarfile.open(out / ARCHIVE, "w:gz") as tar:
        tar.add(results_root, arcname="results")
    shutil.rmtree(results_root)
    return ARCHIVE


def run_study(s: StudySettings, out: Path, *, plan: str, started_at: float, maxflow: str, dry_run: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    clock, results_root = Clock(started_at, s.budget_s), out / "results"
    logs, state = results_root / "logs", {}
    summary = {"started_at": started_at, "dry_run": dry_run, "plan": plan, "maxflow": maxflow,
               "settings": dataclasses.asdict(s), "deadline_s": s.budget_s, "source": carried_revision(),
               "environment": collect_environment(resolve_device(s.device)), "phases": {}}
    run_phase(summary, "data", out, data_phase, s, state)
    run_phase(summary, "validate", out, validate_phase, s, clock, logs, dry_run)
    flops = run_phase(summary, "flops", out, flops_phase, s, state)
    run_phase(summary, "bench", out, bench_phase, s, clock, results_root, maxflow, flops)
    run_phase(summary, "sweep", out, sweep_phase, s, clock, plan, results_root, logs)
    summary["archive"] = pack_results(results_root, out)
    summary["elapsed_s"] = clock.elapsed()
    write_summary(summary, out)
    return summary


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/gpu_study.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="the whole study")
    p.add_argument("--out", required=True, help="folder for summary.json and results.tar.gz")
    # The study plan is trained on the CPU (every method's seeds and the equal-compute arm are in); a GPU's
    # minutes go to the pages plan, the ablation arms and sweep points the book's untested claims wait for.
    p.add_argument("--plan", default="pages", help="the sweep plan the workers train (default pages)")
    p.add_argument("--workers", type=int, default=None, help="sweep worker processes sharing the device")
    p.add_argument("--started-at", type=float, default=None, help="the script's start (seconds since the epoch)")
    p.add_argument("--maxflow", default="present", choices=("present", "installed", "stub"))
    p.add_argument("--dry-run", action="store_true", help="tiny settings on the CPU, 20 s deadline")
    p.add_argument("--budget-s", type=float, default=None,
                   help="seconds from --started-at to the end of the study (default: 570, dry run 20)")
    p = sub.add_parser("curve", help="one validation curve (the study runs the compiled one this way)")
    p.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    p.add_argument("--json-out", required=True)
    p.add_argument("--dry-run", action="store_true")
    return parser.parse_args(argv)


def settings_from_args(s: StudySettings, args) -> StudySettings:
    """``s`` with the command line's overrides, checked."""
    if args.workers is not None:
        s = dataclasses.replace(s, workers=check_positive_int("workers", args.workers))
    if args.budget_s is not None:
        budget = check_finite("budget_s", args.budget_s, ok=lambda v: v > 0, allowed="a positive number of seconds")
        s = dataclasses.replace(s, budget_s=budget)
    return s


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run_command(args)
    except MixreproError as err:
        print(f"gpu-study: error: {err}", file=sys.stderr)
        return 2


def run_command(args) -> int:
    s = DRY_RUN if args.dry_run else StudySettings()
    if args.command == "curve":
        atomic_write_json(args.json_out, loss_curve(s, args.variant))
        return 0
    s = settings_from_args(s, args)
    get_plan(args.plan)  # an unknown plan fails now, not after minutes of device time
    started_at = args.started_at if args.started_at is not None else time.time()
    summary = run_study(s, Path(args.out), plan=args.plan, started_at=started_at, maxflow=args.maxflow,
                        dry_run=args.dry_run)
    print(f"gpu-study: done in {summary['elapsed_s']:.0f} s (deadline {s.budget_s:.0f} s); "
          f"{Path(args.out) / SUMMARY}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

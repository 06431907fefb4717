"""``mixrepro sweep PLAN``: train a study's planned runs in order, several worker processes at once.

A plan is an ordered list of run configs (the study's priorities: a full table at seed 0
first, then more seeds). Each worker takes the next run that is neither stored nor claimed
by a live worker, trains it with the plan's runtime (one pinned thread per worker: two
one-thread processes train about twice as fast in total as one two-thread process), and
publishes it to the results store the moment it ends. A killed sweep resumes where it
stopped: finished runs are in the store, the interrupted ones resume from their checkpoints.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunConfig, config_for_budget
from .registry import Registry


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    configs: tuple[RunConfig, ...]
    runtime: dict = field(default_factory=lambda: {"amp": True, "channels_last": True, "threads": 1})
    evaluations: tuple[str, ...] = ()


def pilot_configs() -> tuple[RunConfig, ...]:
    """The reduced-budget pilot: Vanilla and Mixup, two seeds, at two settings of equal cost (1.2M images).

    full-data: all 50,000 training images for 24 epochs; small-data: 10,000 images for 120 epochs.
    Both: width-16 ResNet-18, every test image, step-scaled EMA.
    """
    settings = {"full-data": {"train_subset": None, "epochs": 24},
                "small-data": {"train_subset": 10000, "epochs": 120}}
    order = [("full-data", 0), ("small-data", 0), ("full-data", 1), ("small-data", 1)]
    return tuple(
        config_for_budget("cpu", method=method, dataset="cifar10-jpeg", seed=seed, test_subset=None,
                          ema_schedule="step-scaled", **settings[setting])
        for setting, seed in order for method in ("vanilla", "mixup")
    )


PLANS: Registry[Plan] = Registry("sweep plan")
PLANS.add("pilot", Plan("pilot", pilot_configs.__doc__.splitlines()[0], pilot_configs()))


def claim_dir() -> Path:
    from .data.paths import cache_root

    return cache_root() / "sweep-claims"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def try_claim(config: RunConfig) -> Path | None:
    """Atomically mark ``config`` as taken by this process; None if a live worker holds it."""
    folder = claim_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{config.key()}.claim"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = int(path.read_text() or 0)
            except (OSError, ValueError):
                holder = 0
            if holder and _alive(holder):
                return None
            path.unlink(missing_ok=True)  # left by a killed worker
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        return path
    return None


def pending(plan: Plan, store) -> list[RunConfig]:
    """The plan's runs the store does not yet hold, in plan order."""
    return [c for c in plan.configs if store.load(c) is None]


def run_worker(plan: Plan, *, results_root=None, progress: bool = False) -> int:
    """Train pending runs of ``plan`` until none is left unclaimed; returns how many this worker trained."""
    from .results import ResultsStore
    from .runs import train_or_load

    store, trained = ResultsStore(results_root), 0
    for config in pending(plan, store):
        claim = try_claim(config)
        if claim is None:
            continue
        try:
            if store.load(config) is not None:  # finished by another worker meanwhile
                continue
            record = train_or_load(config, results_root=store.root, evaluations=plan.evaluations,
                                   progress=progress, **plan.runtime)
            trained += 1
            print(f"sweep {plan.name}: finished {config.method} seed {config.seed} ({config.key()}) -> "
                  f"{record.run_dir}", flush=True)
        finally:
            claim.unlink(missing_ok=True)
    return trained


def cli_sweep(args) -> int:
    plan = PLANS.get(args.plan)
    if args.list:
        from .results import ResultsStore

        store = ResultsStore(args.out)
        for config in plan.configs:
            state = "stored" if store.load(config) is not None else "pending"
            print(f"{state:8s} {config.key()} {config.method:10s} seed {config.seed} epochs {config.epochs} "
                  f"train {config.train_subset or 'all'}")
        return 0
    trained = run_worker(plan, results_root=args.out, progress=args.progress)
    print(f"sweep {plan.name}: this worker trained {trained} run(s)", file=sys.stderr)
    return 0


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", help=f"plan name ({', '.join(PLANS.names())})")
    parser.add_argument("--list", action="store_true", help="list the plan's runs and whether each is stored")
    parser.add_argument("--out", default=None, help="results root (default: $MIXREPRO_RESULTS, else notebooks/results)")
    parser.add_argument("--progress", action="store_true", help="progress bars")

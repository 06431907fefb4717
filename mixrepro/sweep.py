"""``mixrepro sweep PLAN``: train a study's planned runs in order, several worker processes at once.

A plan is an ordered list of run configs (the study's priorities: a full table at seed 0
first, then more seeds). Each worker takes the next run that is neither stored nor claimed
by a live worker, trains it with the plan's runtime (one pinned thread per worker: two
one-thread processes train about twice as fast in total as one two-thread process), and
publishes it to the results store the moment it ends. A killed sweep resumes where it
stopped: finished runs are in the store, the interrupted ones resume from their checkpoints,
from the machine's cache or, on a new machine, from the ones ``--park`` put beside the results
and that were carried over (``mixrepro.parking``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .config import RunConfig
from .errors import InvalidParameterError
from .plans import PLANS, Plan, get_plan


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


def run_state(plan: Plan, store, config: RunConfig) -> str:
    """'done', 'evaluate' (stored, some of the plan's evaluations missing) or 'train' (absent or stale)."""
    from .runs import is_stale, missing_evaluations

    record = store.load(config)
    if record is None or is_stale(record):
        return "train"
    return "evaluate" if missing_evaluations(record, plan.evaluations_for(config)) else "done"


def pending(plan: Plan, store) -> list[RunConfig]:
    """The plan's runs still to train or evaluate: runs a killed worker left half-trained first
    (their checkpoint is hours of work a reordered plan must not strand), then plan order."""
    todo = [c for c in plan.configs if run_state(plan, store, c) != "done"]
    started = [c for c in todo if half_trained(store, c)]
    return started + [c for c in todo if c not in started]


def half_trained(store, config: RunConfig) -> bool:
    """Not stored, but a worker left a training checkpoint for it in the cache or parked it."""
    from .parking import read_manifest
    from .training.checkpoint import checkpoint_path

    started = checkpoint_path(config).is_file() or read_manifest(store.root, config) is not None
    return started and store.load(config) is None


def hours_left(store, config: RunConfig, evaluations=()) -> float | None:
    """Estimated hours of one core to finish ``config`` (``plans.run_cost_hours``): the training and test
    scoring its checkpoint has not done yet plus the ``evaluations`` its record lacks; evaluations alone
    for a stored run whose weights are here; None when the bench report cannot price its method."""
    from .parking import epochs_done
    from .plans import overhead_hours, run_hours
    from .runs import missing_evaluations

    record = store.load(config)
    missing = missing_evaluations(record, evaluations) if record is not None else list(evaluations)
    training, overhead = run_hours(config), overhead_hours(config, missing)
    if training is None or overhead is None:
        return None
    scoring, evaluating = overhead
    done = (epochs_done(store.root, config) or 0) / config.epochs
    if record is not None and done < 1.0:  # stored, weights lost: a verified retrain first
        done = 0.0
    return (1.0 - done) * (training + scoring) + evaluating


def fits(store, config: RunConfig, deadline: float | None, margin: float, evaluations=()) -> tuple[bool, str]:
    """(whether ``config`` and its ``evaluations`` can finish before ``deadline`` with ``margin`` x the
    estimate, why not)."""
    if deadline is None:
        return True, ""
    hours = hours_left(store, config, evaluations)
    left = (deadline - time.time()) / 3600
    if hours is None:
        return False, "the bench report cannot price it"
    if margin * hours > left:
        return False, (f"it needs about {hours:.2f} h of one core, {margin * hours:.2f} h with the x{margin:g} "
                       f"margin, and {max(left, 0):.2f} h are left")
    return True, ""


def run_worker(plan: Plan, *, results_root=None, progress: bool = False, deadline: float | None = None,
               margin: float = 1.25) -> int:
    """Train and evaluate pending runs of ``plan`` until none is left unclaimed; returns how many it did.

    With a ``deadline`` (seconds since the epoch) the worker only starts a run whose estimate
    (:func:`hours_left`) times ``margin`` ends before it, taking the next run of the plan that
    fits: a session that ends at a known time spends its last hours on runs that finish (a
    half-trained checkpoint is lost with the machine unless it is parked).

    A run whose checkpoint was parked (``--park``) further along than the cache's is restored from
    it first, and its parked files are deleted once the run is done. A stored run still to evaluate
    whose final weights are neither in the checkpoint cache nor parked (a new machine) is retrained
    under its recorded runtime first (:func:`restore_weights`); when that retrain does not
    reproduce the stored numbers bit for bit, the run is reported and skipped, as is a run whose
    training or evaluation fails with a mixrepro error (a parked file with a wrong checksum too).
    """
    from .errors import MissingWeightsError, MixreproError
    from .parking import remove_parked, unpark
    from .results import ResultsStore

    store, done = ResultsStore(results_root), 0
    for config in pending(plan, store):
        claim = try_claim(config)  # first: a run another worker holds is neither started nor reported
        if claim is None:
            continue
        try:
            ok, why = fits(store, config, deadline, margin, evaluations_to_run(plan, store, config))
            if not ok:
                print(f"sweep {plan.name}: not starting {config.method} seed {config.seed} ({config.key()}): "
                      f"{why}", flush=True)
                continue
            if run_state(plan, store, config) == "done":  # finished by another worker meanwhile
                continue
            if unpark(store.root, config):
                print(f"sweep {plan.name}: resuming {config.key()} from its parked checkpoint", flush=True)
            record = train_and_evaluate(plan, store, config, progress)
            remove_parked(store.root, config)
            done += 1
            print(f"sweep {plan.name}: finished {config.method} seed {config.seed} ({config.key()}) -> "
                  f"{record.run_dir}", flush=True)
        except MissingWeightsError as err:
            print(f"sweep {plan.name}: cannot evaluate {config.key()}: {err}", file=sys.stderr, flush=True)
        except MixreproError as err:  # one run's failure must not stop the plan's other runs
            print(f"sweep {plan.name}: {config.key()} failed, moving on: {err}", file=sys.stderr, flush=True)
        finally:
            claim.unlink(missing_ok=True)
    return done


def train_and_evaluate(plan: Plan, store, config: RunConfig, progress: bool = False):
    """``train_or_load`` with the plan's evaluations; lost final weights are restored by a verified retrain."""
    from .errors import MissingWeightsError
    from .runs import train_or_load

    def attempt():
        return train_or_load(config, results_root=store.root, evaluations=evaluations_to_run(plan, store, config),
                             evaluation_options=plan.evaluation_options, progress=progress, **plan.runtime)

    try:
        return attempt()
    except MissingWeightsError:
        if not restore_weights(store, config, data_root=plan.runtime.get("data_root"), progress=progress):
            raise
        return attempt()


def evaluations_to_run(plan: Plan, store, config: RunConfig) -> tuple[str, ...]:
    """The run's evaluations in the plan, with the plan's optional ones where its final weights are at hand
    without a retrain: a run still to train (training leaves them in the cache) or one whose checkpoint is cached."""
    from .training.checkpoint import checkpoint_path

    at_hand = run_state(plan, store, config) == "train" or checkpoint_path(config).exists()
    needed = plan.evaluations_for(config)
    return needed + plan.optional_evaluations if at_hand else needed


def restore_weights(store, config: RunConfig, *, data_root=None, progress: bool = False) -> bool:
    """Retrain a stored run into the checkpoint cache; True when it reproduced the run bit for bit.

    The final weights live in a machine-local cache, so a run trained in an earlier session may
    be stored without them. Training is deterministic on the CPU under the recorded runtime, so
    the retrain's weights are the run's own exactly when its per-epoch numbers and predictions
    come back identical; otherwise they are discarded (``mixrepro.verify``).
    """
    from .verify import verify_run

    print(f"sweep: {config.key()} has no final weights here; retraining it to restore them", flush=True)
    result = verify_run(store.run_dir(config), data_root=data_root, progress=progress, keep_weights=True)
    print(f"sweep: {result.summary()}", flush=True)
    return result.identical


def describe(config: RunConfig) -> str:
    """One line of ``sweep --list``: key, method, its overrides (a set cosine floor too), seed, epochs, data."""
    floor = [("min_lr", config.min_lr)] if config.min_lr is not None else []
    overrides = sorted(config.method_params.items()) + floor
    params = ",".join(f"{k}={v}" for k, v in overrides)
    return (f"{config.key()} {config.method:11s} {params:12s} seed {config.seed} epochs {config.epochs:4d} "
            f"train {config.train_subset or 'all'}")


def cli_sweep(args) -> int:
    """``mixrepro sweep PLAN [PLAN ...]``: each plan in turn (a worker that finishes one goes on to the next)."""
    plans = [get_plan(name) for name in args.plan]  # an unknown name fails before any work
    if args.overtime and args.hours is None:
        raise InvalidParameterError("--overtime", "without --hours",
                                    "only together with --hours H (overtime goes past that deadline)")
    if args.list or args.park:
        if args.workers > 1:
            raise InvalidParameterError("--workers", args.workers, "1 with --list or --park (they start no worker)")
        for plan in plans:
            (list_plan if args.list else park_plan)(plan, args.out)
        return 0
    if args.workers > 1:
        return spawn_workers(args.workers, worker_argv(args))
    deadline = None if args.hours is None else time.time() + args.hours * 3600
    for plan, limit in work_passes(plans, deadline, args.overtime):
        if limit is not deadline:
            print(f"sweep {plan.name}: past its runs that end before the deadline, going on with the rest "
                  "(overtime: their checkpoints carry on where this machine persists)", flush=True)
        done = run_worker(plan, results_root=args.out, progress=args.progress, deadline=limit, margin=args.margin)
        print(f"sweep {plan.name}: this worker trained or evaluated {done} run(s)", file=sys.stderr)
    return 0


def worker_argv(args) -> list[str]:
    """The command line of one worker of ``args`` (``python`` arguments): the same plans and options."""
    argv = ["-m", "mixrepro.cli", "sweep", *args.plan, "--margin", repr(args.margin)]
    if args.out is not None:
        argv += ["--out", str(args.out)]
    if args.hours is not None:
        argv += ["--hours", repr(args.hours)]
    return argv + (["--overtime"] if args.overtime else []) + (["--progress"] if args.progress else [])


def spawn_workers(count: int, argv: list[str]) -> int:
    """Run ``count`` worker processes of ``argv`` at once (each trains on one pinned thread and claims its
    runs, so they never train the same one); wait for all and return the first failure's exit status, else 0.
    Interrupting the parent stops the workers; their runs resume from their checkpoints."""
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    children = [subprocess.Popen([sys.executable, *argv], env=env) for _ in range(count)]
    try:
        codes = [child.wait() for child in children]
    except KeyboardInterrupt:
        for child in children:
            child.terminate()
        for child in children:
            child.wait()
        raise
    return next((code for code in codes if code), 0)


def work_passes(plans: list, deadline: float | None, overtime: bool) -> list[tuple]:
    """(plan, deadline) of a worker's passes. Without ``overtime``: the runs that end before ``deadline``,
    in every plan in turn. With it, plan by plan: a plan's runs that end before the deadline, then the
    rest of that plan, then the next plan. A core left idle at a session's end earns nothing, while a
    run started anyway is checkpointed each epoch and resumes on a machine that persists (it is lost
    only with a new machine, which would have lost the idle time too); and a later plan's short runs
    must not keep an earlier plan's long ones waiting session after session (seen: the pages plan's
    hundred runs of one to two hours would have gone before the study's AdAutoMix seed and its
    equal-compute arm, none of which fits a session)."""
    if not overtime or deadline is None:
        return [(plan, deadline) for plan in plans]
    return [(plan, limit) for plan in plans for limit in (deadline, None)]


def list_plan(plan: Plan, results_root=None) -> None:
    """``sweep PLAN --list``: each run's state and hours left, then the plan's total."""
    from .results import ResultsStore

    store = ResultsStore(results_root)
    left = []
    for config in plan.configs:
        state = run_state(plan, store, config)
        state = "resume" if state == "train" and half_trained(store, config) else state
        hours = hours_left(store, config, evaluations_to_run(plan, store, config)) if state != "done" else 0.0
        if state != "done":
            left.append(hours)
        print(f"{state:8s} {describe(config)} {'?' if hours is None else f'{hours:5.2f}'} h left")
    priced = [h for h in left if h is not None]
    print(f"{len(left)} runs to go: about {sum(priced):.1f} hours of one core by the bench report"
          f"{f' ({len(left) - len(priced)} unpriced)' if len(priced) < len(left) else ''}")
    print(evaluation_drift_text(store.runs(dataset=plan.configs[0].dataset) if plan.configs else []))


def evaluation_drift_text(records) -> str:
    """'final evaluations measured on the stored runs, in Vanilla steps per 10,000 test images (the estimates'
    constant in brackets): ece 85 [92] (6 runs), ...', or why there is nothing to show."""
    from .plans import EVALUATION_VANILLA_STEPS_PER_IMAGE, measured_evaluation_steps

    measured = measured_evaluation_steps(records)
    if not measured:
        return "final evaluations: no stored run of this plan's dataset recorded their times on one CPU thread yet"
    parts = [f"{name} {steps:.0f} [{EVALUATION_VANILLA_STEPS_PER_IMAGE[name] * 10000:.0f}] ({runs} run"
             f"{'s' if runs > 1 else ''})" for name, (steps, runs) in sorted(measured.items())]
    return ("final evaluations measured on the stored runs, in Vanilla steps per 10,000 test images read (the "
            "estimates' constant in brackets): " + ", ".join(parts))


def park_plan(plan: Plan, results_root=None) -> None:
    """``sweep PLAN --park``: park the checkpoint of every run of the plan not done yet (mixrepro.parking)."""
    from .parking import park
    from .results import ResultsStore

    store = ResultsStore(results_root)
    parked = [c for c in plan.configs if run_state(plan, store, c) != "done" and park(store.root, c)]
    for config in parked:
        print(f"parked {describe(config)}")
    print(f"sweep {plan.name}: parked {len(parked)} checkpoint(s) under {store.root / 'parked'}"
          + (" (git-ignored: copy the folder to the machine that goes on)" if parked else ""))


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", nargs="+", help=f"plan names, run in turn ({', '.join(PLANS.names())}), e.g. "
                                                 "'study pages': a worker done with the study goes on to the pages")
    parser.add_argument("--list", action="store_true",
                        help="list the plan's runs: done, evaluate (stored, evaluations missing), resume "
                             "(half-trained checkpoint in the cache) or train")
    parser.add_argument("--park", action="store_true",
                        help="copy the checkpoint of every run not done yet into <results root>/parked "
                             "(git-ignored; copy it to a new machine and its worker resumes from it)")
    parser.add_argument("--out", default=None, help="results root (default: $MIXREPRO_RESULTS, else notebooks/results)")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    parser.add_argument("--hours", type=_positive, default=None,
                        help="only start runs estimated to finish within this many hours (bench report x "
                             "--margin): a session's last hours go to runs that end")
    parser.add_argument("--overtime", action="store_true",
                        help="with --hours: plan by plan, once none of a plan's runs ends before the deadline, "
                             "go on with its other runs, half-trained first, before the next plan (checkpointed "
                             "each epoch; they resume next session where the machine persists)")
    parser.add_argument("--workers", type=_count, default=1,
                        help="worker processes to start at once, one pinned thread each (default 1; use the "
                             "machine's cores: two one-thread workers train about twice as fast as one two-thread one)")
    parser.add_argument("--margin", type=_positive, default=1.25,
                        help="safety factor on the run-time estimate under --hours (default 1.25)")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of workers (1 or more)")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of hours (or factor)")
    return value

"""Runs on demand: load a run from the results store, or train it first; add evaluations to a stored run.

This layer sits above both the store (``mixrepro.results``, which only stores and
loads) and training (``mixrepro.training``), so neither depends on the other's caller.
"""
from __future__ import annotations

import contextlib
import shlex
from pathlib import Path

from .config import BUDGETS, RunConfig, config_for_budget
from .errors import MissingRunError, StaleRunError
from .results import NETWORKS, ResultsStore, RunRecord, default_results_root
from .training import fit
from .training.command import set_arguments
from .training.final import evaluate_final_weights


def train_command(config: RunConfig, results_root=None) -> str:
    """The ``mixrepro train`` command line that produces exactly ``config``."""
    best = min(BUDGETS.names(), key=lambda b: len(set_arguments(config, _budget_base(config, b))))
    parts = ["mixrepro train", f"--method {config.method}", f"--dataset {config.dataset}",
             f"--budget {best}", f"--seed {config.seed}"]
    parts += [f"--set {shlex.quote(item)}" for item in set_arguments(config, _budget_base(config, best))]
    if results_root is not None and Path(results_root) != default_results_root():
        parts.append(f"--out {shlex.quote(str(results_root))}")
    return " ".join(parts)


def _budget_base(config: RunConfig, budget: str) -> RunConfig:
    return config_for_budget(budget, method=config.method, dataset=config.dataset, seed=config.seed)


def train_or_load(config: RunConfig, *, results_root=None, train: bool = True, evaluations=(),
                  evaluation_options: dict | None = None, accept_stale: bool = False, **fit_kwargs) -> RunRecord:
    """The stored run for ``config``; trained first if missing and ``train``; with ``evaluations`` added.

    A run trained by an older version of its method's code is retrained (or, with
    ``train=False``, refused with StaleRunError) unless ``accept_stale`` (audits of
    historical runs). Evaluations already in evaluations.json are not recomputed; missing ones run on the
    final weights from the checkpoint cache, for both the online and the EMA network;
    ``evaluation_options[name]`` are that evaluation's keyword arguments.
    """
    store = ResultsStore(results_root)
    record = store.load(config)
    if record is not None and (accept_stale or not is_stale(record)) and not missing_evaluations(record, evaluations):
        return record  # complete: nothing to do, no lock to wait for
    with run_lock(config):  # another process (a page, a sweep worker) may be training or evaluating it
        return _train_or_load_locked(config, store, train, evaluations, evaluation_options, accept_stale,
                                     fit_kwargs)


def _train_or_load_locked(config, store, train, evaluations, evaluation_options, accept_stale, fit_kwargs):
    results_root = store.root
    record = store.load(config)  # again: a process that held the lock may have finished it meanwhile
    if record is not None and is_stale(record) and not accept_stale:
        if not train:
            raise StaleRunError(config, record, current_code_version(config.method),
                                train_command(config, results_root) + " --restart")
        record, fit_kwargs = None, {**fit_kwargs, "resume": False}
    if record is None:
        if not train:
            raise MissingRunError(config, store.run_dir(config), train_command(config, results_root))
        record = fit(config, results_root=store.root, **fit_kwargs)
    missing = missing_evaluations(record, evaluations)
    if missing:
        add_evaluations(store, record, missing, device=fit_kwargs.get("device"), data_root=fit_kwargs.get("data_root"),
                        options=evaluation_options, threads=fit_kwargs.get("threads"))
    return record


def missing_evaluations(record: RunRecord, evaluations) -> list[str]:
    """The names of ``evaluations`` the record lacks for at least one network."""
    return [name for name in evaluations if any(name not in record.evaluations.get(n, {}) for n in NETWORKS)]


@contextlib.contextmanager
def run_lock(config: RunConfig):
    """Hold an exclusive lock on ``config``'s run, machine-wide, for the block (waits for a holder).

    Pages run in parallel (``notebook_runner --jobs``) and sweep workers may want the same run;
    its checkpoint in the shared cache must have one writer. The lock is an ``flock`` on a file
    in the cache, released by the system if the holder dies; without ``fcntl`` (not POSIX) there
    is no lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    from .data.paths import cache_root

    path = cache_root() / "run-locks" / f"{config.key()}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def add_evaluations(store: ResultsStore, record: RunRecord, names: list[str], *, device, data_root,
                    options: dict | None = None, threads: int | None = None) -> None:
    def keep(done: dict, timing: dict) -> None:  # each evaluation is stored as it ends: a kill loses only that one
        (name,) = {name for results in done.values() for name in results}
        store.save_evaluations(record, {net: {**record.evaluations.get(net, {}), **done[net]} for net in NETWORKS},
                               times={**record.evaluation_times, name: timing})

    evaluate_final_weights(record.config, names, device=device, data_root=data_root,
                           command=train_command(record.config, store.root), options=options, threads=threads,
                           on_evaluation=keep)


def current_code_version(method: str) -> int | None:
    """The installed code version of ``method``; None for a method outside the registry (a test double)."""
    from .methods import METHODS

    return METHODS.get(method).code_version if method in METHODS.names() else None


def is_stale(record: RunRecord) -> bool:
    """Whether the run was trained by another version of its method's code than the one installed."""
    current = current_code_version(record.config.method)
    return current is not None and record.method_code_version != current


def stale_runs(results_root=None) -> list[RunRecord]:
    """Every stored run whose method code has changed since it was trained."""
    return [record for record in ResultsStore(results_root).runs() if is_stale(record)]


def cli_runs(args) -> int:
    """``mixrepro runs [--stale]``: the stored runs, one line each (or only the stale ones)."""
    records = stale_runs(args.out) if args.stale else ResultsStore(args.out).runs()
    for record in records:
        c, s = record.config, record.summary
        state = "STALE" if is_stale(record) else "ok"
        print(f"{state:5s} {c.dataset}/{c.method}/{c.key()} seed {c.seed} epochs {c.epochs} "
              f"train {c.train_subset or 'all'} online {s['online']['median_last10']:.2f} "
              f"ema {s['ema']['median_last10']:.2f} (code v{record.method_code_version})")
    if args.stale:
        print(f"{len(records)} stale run(s)")
    return 0

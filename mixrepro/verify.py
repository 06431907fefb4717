"""``mixrepro verify RUN_DIR``: retrain a stored run from its record and say whether its numbers come back.

The run is retrained from scratch under the runtime it recorded (device type,
precision, memory layout, thread count), into a scratch results store and a
scratch checkpoint cache, so neither the committed run nor its final weights are
touched (``--keep-weights`` keeps the retrained weights in the real cache when they
reproduce the run: how a new machine gets a stored run's weights back to evaluate
it). Then every per-epoch number (losses, method logs, test scores; wall times aside)
and the final per-image predictions are compared: on the CPU with the same thread count,
precision and torch build they must be bit-identical; otherwise the report says how far
each column moved.

``--epochs N`` retrains only the first N epochs and compares those: a check in minutes that this
machine computes the same bits as the one that trained the run, before a long rerun or before
resuming a parked checkpoint here (a resumed run equals an uninterrupted one only where both
machines compute the same bits).

``--record`` keeps the outcome: ``<results root>/verifications/<key>-<time>.json`` names the run, the
epochs compared, the columns that moved, and both machines (the one that trained the run, from its
``environment.json``, and this one), so the book can show on which machines the committed runs came
back bit for bit (:func:`load_verifications`).
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from dataclasses import dataclass, field

from pathlib import Path

from .errors import InvalidParameterError
from .results import TIMING_COLUMNS, ResultsStore, RunRecord

VERIFICATIONS_DIR = "verifications"
MACHINE_FIELDS = ("device_name", "cpu_capability", "platform", "torch")  # what decides the bits, and the CPU's name


@dataclass
class Verification:
    run_dir: str
    runtime: dict
    identical: bool
    predictions_identical: bool | None  # None: not compared (none stored, or only the first epochs retrained)
    max_abs_difference: dict[str, float] = field(default_factory=dict)  # per column that differs
    epochs_compared: int | None = None  # None: the whole run
    record: RunRecord | None = field(default=None, repr=False, compare=False)  # the stored run (for --record)

    def summary(self) -> str:
        where = (f"{self.runtime.get('device_type', 'cpu')}, {self.runtime.get('precision', 'fp32')}, "
                 f"{self.runtime.get('threads')} thread(s)")
        if self.epochs_compared is not None:
            where += f", first {self.epochs_compared} epoch(s) only"
        if self.identical:
            return f"{self.run_dir}: reproduced bit for bit ({where})"
        worst = sorted(self.max_abs_difference.items(), key=lambda kv: -kv[1])[:5]
        columns = ", ".join(f"{k} {v:.3g}" for k, v in worst)
        return f"{self.run_dir}: NOT identical ({where}); largest differences: {columns}"


def recorded_runtime(record: RunRecord) -> dict:
    """The runtime a run recorded; runs from before runtimes were recorded ran fp32 on their device."""
    env = record.environment
    runtime = dict(env.get("runtime") or {})
    runtime.setdefault("device_type", env.get("device_type", "cpu"))
    runtime.setdefault("precision", "fp32")
    runtime.setdefault("channels_last", False)
    runtime.setdefault("threads", env.get("torch_threads"))
    return runtime


def column_differences(stored: list[dict], again: list[dict]) -> dict[str, float]:
    """{column: max |difference|} over epochs for every numeric column that differs (timings aside)."""
    if len(stored) != len(again):
        return {"epochs": float(abs(len(stored) - len(again)))}
    differences: dict[str, float] = {}
    for old, new in zip(stored, again):
        for key in set(old) | set(new):
            if key in TIMING_COLUMNS:
                continue
            a, b = old.get(key), new.get(key)
            if a == b:
                continue
            gap = abs(a - b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else float("inf")
            differences[key] = max(differences.get(key, 0.0), gap)
    return differences


def verify_run(run_dir, *, data_root=None, progress: bool = False, keep_weights: bool = False,
               epochs: int | None = None) -> Verification:
    """Retrain the run in ``run_dir`` from scratch under its recorded runtime and compare.

    ``keep_weights``: retrain into the real checkpoint cache instead of a scratch one, so a
    stored run whose final weights were lost (a new machine) can be evaluated again; the
    weights are kept only when the retrain reproduced the stored numbers bit for bit, since
    evaluations of other weights would not belong to the stored run. ``epochs``: retrain and
    compare only the first ``epochs`` epochs (the final predictions are then not compared).
    """
    record = ResultsStore.load_dir(run_dir)
    runtime = recorded_runtime(record)
    epochs = validate_epochs(epochs, record, keep_weights)
    if epochs is not None:
        return _verify_first_epochs(record, runtime, str(run_dir), epochs, data_root, progress)
    if runtime["device_type"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InvalidParameterError("run", str(run_dir), "a run trained on the CPU (this machine has no CUDA)")
    with tempfile.TemporaryDirectory(prefix="mixrepro-verify-") as scratch:
        cache = None if keep_weights else os.path.join(scratch, "cache")
        again = _retrain(record, runtime, os.path.join(scratch, "results"), cache, data_root, progress)
    differences = column_differences(record.epochs, again.epochs)
    predictions = (record.predictions == again.predictions) if record.predictions else None
    result = Verification(str(run_dir), runtime, not differences and predictions is not False, predictions,
                          differences, record=record)
    if keep_weights and not result.identical:
        from .training.checkpoint import checkpoint_path

        checkpoint_path(record.config).unlink(missing_ok=True)
    return result


def validate_epochs(epochs, record: RunRecord, keep_weights: bool) -> int | None:
    """``epochs`` checked against the stored run; None when the whole run is to be retrained."""
    if epochs is None:
        return None
    total = len(record.epochs)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= total:
        raise InvalidParameterError("epochs", epochs, f"an integer from 1 to {total} (the epochs the run stored)")
    if keep_weights and epochs < total:
        raise InvalidParameterError("keep_weights", keep_weights,
                                    "False when only the first epochs are retrained (they are not the final weights)")
    return None if epochs == total else epochs


def _verify_first_epochs(record: RunRecord, runtime: dict, run_dir: str, epochs: int, data_root,
                         progress: bool) -> Verification:
    """Retrain ``record``'s first ``epochs`` epochs into scratch stores and compare their rows."""
    import torch

    from .training.checkpoint import checkpoint_path
    from .training.loop import TrainingInterrupted

    steps = math.ceil(record.epochs[0]["train_images"] / record.config.batch_size)
    with tempfile.TemporaryDirectory(prefix="mixrepro-verify-") as scratch:
        cache = os.path.join(scratch, "cache")
        try:
            _retrain(record, runtime, os.path.join(scratch, "results"), cache, data_root, progress,
                     stop_after_step=epochs * steps)
        except TrainingInterrupted:
            pass  # the first step of epoch epochs + 1: the checkpoint holds exactly the epochs wanted
        saved = torch.load(checkpoint_path(record.config, cache), map_location="cpu", weights_only=True)
    differences = column_differences(record.epochs[:epochs], saved["state"]["epochs"])
    return Verification(run_dir, runtime, not differences, None, differences, epochs_compared=epochs, record=record)


def _retrain(record: RunRecord, runtime: dict, results_root: str, cache: str | None, data_root, progress: bool,
             stop_after_step: int | None = None):
    """``fit`` of the record's config under ``runtime``; checkpoints go to ``cache`` (None: the usual cache)."""
    from .training import fit

    previous_cache = os.environ.get("MIXREPRO_CACHE")
    if cache is not None:
        os.environ["MIXREPRO_CACHE"] = cache
    try:
        return fit(record.config, results_root=results_root, device=runtime["device_type"],
                   amp=runtime["precision"] == "bf16", channels_last=runtime["channels_last"],
                   threads=runtime["threads"], resume=False, progress=progress, data_root=data_root,
                   stop_after_step=stop_after_step)
    finally:
        if previous_cache is None:
            os.environ.pop("MIXREPRO_CACHE", None)
        else:
            os.environ["MIXREPRO_CACHE"] = previous_cache


def record_verification(result: Verification, results_root=None) -> Path:
    """Write ``result`` with both machines' descriptions under ``<results root>/verifications/`` (the root
    the run is stored in when None); returns the file."""
    import datetime

    from .environment import collect_environment
    from .io import atomic_write_json

    run_dir, record = Path(result.run_dir), result.record
    root = Path(results_root) if results_root is not None else run_dir.parents[2]  # <root>/<dataset>/<method>/<key>
    here = collect_environment("cpu")
    now = datetime.datetime.now(datetime.timezone.utc)
    entry = {
        "key": record.config.key(), "method": record.config.method, "seed": record.config.seed,
        "run_dir": run_dir.resolve().relative_to(root.resolve()).as_posix(),
        "epochs_compared": result.epochs_compared or len(record.epochs), "epochs": len(record.epochs),
        "identical": result.identical, "predictions_identical": result.predictions_identical,
        "max_abs_difference": result.max_abs_difference, "runtime": result.runtime,
        "trained_on": {name: record.environment.get(name) for name in MACHINE_FIELDS},
        "verified_on": {**{name: here[name] for name in MACHINE_FIELDS}, "commit": here["git"]["commit"]},
        "verified_at": now.isoformat(timespec="seconds"),
    }
    path = root / VERIFICATIONS_DIR / f"{entry['key']}-{now.strftime('%Y%m%dT%H%M%S.%fZ')}.json"
    atomic_write_json(path, entry)
    return path


def load_verifications(results_root) -> list[dict]:
    """Every recorded verification under ``results_root``, oldest first."""
    import json

    folder = Path(results_root) / VERIFICATIONS_DIR
    entries = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(entries, key=lambda e: (e["verified_at"], e["key"]))


def cli_verify(args) -> int:
    """Exit status 0 when every run reproduced bit for bit, 1 otherwise."""
    results = []
    for run_dir in args.run_dirs:  # each outcome printed and recorded as it comes: a kill keeps the finished ones
        result = verify_run(run_dir, data_root=args.data_root, progress=not args.no_progress,
                            keep_weights=args.keep_weights, epochs=args.epochs)
        print(result.summary(), flush=True)
        if args.record:
            print(f"  recorded in {record_verification(result)}", flush=True)
        results.append(result)
    return 0 if all(r.identical for r in results) else 1


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a stored run directory")
    parser.add_argument("--data-root", default=None, help="data root (default: $MIXREPRO_DATA, else ./data)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--record", action="store_true",
                        help="keep the outcome with both machines' descriptions in <results root>/verifications/ "
                             "(the study overview page lists them)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="retrain and compare only the first EPOCHS epochs: minutes instead of the run's hours, "
                             "to check that this machine computes the same bits as the one that trained it")
    parser.add_argument("--keep-weights", action="store_true",
                        help="keep the retrained final weights in the checkpoint cache when they reproduce the run "
                             "(restores a run's weights for evaluations on a new machine)")


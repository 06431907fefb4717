"""The results store: one directory per run, keyed by the hash of its full config.

Layout::

    <root>/<dataset>/<method>/<config key>/
        config.json        the RunConfig (RunConfig.from_dict reads it back)
        epochs.csv         one row per epoch: lr, train loss, method logs, top-1/top-5
                           of the online and EMA networks, times
        summary.json       final / median-of-last-epochs / best per network, wall time, img/s
        environment.json   versions, device, git commit (mixrepro.environment)
        evaluations.json   optional: {'online': {name: result}, 'ema': {...}}
        predictions.json   optional: the final networks' predicted class per test image
                           (mixrepro.evaluate.predictions), for paired comparisons
        evaluation_times.json  optional: {name: {'seconds', 'device', 'threads'}} of each final
                           evaluation (both networks), kept apart from evaluations.json because
                           wall time is not reproducible

A run directory is written in full under a hidden temporary name and then
renamed into place, so a reader never sees a half-written run. Only small text
files live here (they are committed); checkpoints live in the cache
(``mixrepro.training.checkpoint``).
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunConfig
from .environment import REPO_ROOT
from .errors import MixreproError
from .io import atomic_write_json, atomic_write_text

NETWORKS = ("online", "ema")
TIMING_COLUMNS = ("epoch_time_s", "train_time_s", "eval_time_s", "train_images_per_s")
RUN_FILES = ("config.json", "epochs.csv", "summary.json", "environment.json")


def default_results_root() -> Path:
    """$MIXREPRO_RESULTS, else the committed store ``<repo>/notebooks/results``."""
    return Path(os.environ.get("MIXREPRO_RESULTS") or REPO_ROOT / "notebooks" / "results")


@dataclass
class RunRecord:
    """Everything the store keeps about one run."""

    config: RunConfig
    epochs: list[dict]
    summary: dict
    environment: dict
    evaluations: dict = field(default_factory=dict)
    run_dir: Path | None = None
    predictions: dict = field(default_factory=dict)
    evaluation_times: dict = field(default_factory=dict)

    def curve(self, column: str) -> list[float]:
        """One epochs.csv column as a list, e.g. ``record.curve('ema_top1')`` (None where not measured)."""
        return [row.get(column) for row in self.epochs]

    @property
    def method_code_version(self) -> int:
        """The version of the method's code that trained the run (runs before versions were recorded: 1)."""
        return self.environment.get("method_code_version", 1)


def same_numbers(a: list[dict], b: list[dict]) -> bool:
    """Whether two runs' per-epoch values agree, wall-clock times aside."""
    def strip(rows):
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]

    return strip(a) == strip(b)


def epochs_to_csv(epochs: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in epochs for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(epochs)  # str(float) is repr: values read back bit-identical
    return buffer.getvalue()


def _parse_cell(text: str):
    if text == "":
        return None
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def epochs_from_csv(text: str) -> list[dict]:
    return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def _read_json(path: Path, default=None):
    return json.loads(path.read_text()) if path.exists() else default


def _write_run_files(folder: Path, record: RunRecord) -> None:
    atomic_write_json(folder / "config.json", record.config.to_dict())
    atomic_write_text(folder / "epochs.csv", epochs_to_csv(record.epochs))
    atomic_write_json(folder / "summary.json", record.summary)
    atomic_write_json(folder / "environment.json", record.environment)
    if record.evaluations:
        atomic_write_json(folder / "evaluations.json", record.evaluations)
    if record.predictions:
        atomic_write_json(folder / "predictions.json", record.predictions)
    if record.evaluation_times:
        atomic_write_json(folder / "evaluation_times.json", record.evaluation_times)


class ResultsStore:
    """Runs under ``root``, one directory each (see the module docstring)."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_results_root()

    def run_dir(self, config: RunConfig) -> Path:
        return self.root / config.dataset / config.method / config.key()

    def publish(self, record: RunRecord) -> Path:
        """Write the whole run under a temporary name, then rename it into place.

        Republishing a run whose per-epoch numbers are unchanged (a rerun or a resume that
        reproduced them) keeps the evaluations already stored: they came from the same weights.
        """
        final = self.run_dir(record.config)
        previous = self.load(record.config)
        if previous is not None and not record.evaluations and same_numbers(previous.epochs, record.epochs):
            record.evaluations, record.evaluation_times = previous.evaluations, previous.evaluation_times
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.writing."))
        try:
            _write_run_files(staging, record)
            _replace_dir(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        record.run_dir = final
        return final

    def load(self, config: RunConfig) -> RunRecord | None:
        """The stored run with exactly this config, or None."""
        folder = self.run_dir(config)
        if not (folder / "config.json").exists():
            return None
        record = self.load_dir(folder)
        if record.config != config:  # a 12-hex-digit key collision, or a hand-edited folder
            raise MixreproError(f"{folder} holds a different config than key {config.key()} implies")
        return record

    @staticmethod
    def load_dir(folder) -> RunRecord:
        """Read one run directory (e.g. the RUN_DIR of ``mixrepro eval``)."""
        folder = Path(folder)
        missing = [name for name in RUN_FILES if not (folder / name).exists()]
        if missing:
            raise MixreproError(f"{folder} is not a complete run directory (missing {', '.join(missing)})")
        return RunRecord(
            config=RunConfig.from_dict(_read_json(folder / "config.json")),
            epochs=epochs_from_csv((folder / "epochs.csv").read_text()),
            summary=_read_json(folder / "summary.json"),
            environment=_read_json(folder / "environment.json"),
            evaluations=_read_json(folder / "evaluations.json", {}),
            run_dir=folder,
            predictions=_read_json(folder / "predictions.json", {}),
            evaluation_times=_read_json(folder / "evaluation_times.json", {}),
        )

    def runs(self, **filters) -> list[RunRecord]:
        """Every stored run whose config fields equal ``filters`` (e.g. method='mixup', seed=0)."""
        known = set(RunConfig().to_dict())
        unknown = set(filters) - known
        if unknown:
            from .errors import InvalidParameterError

            raise InvalidParameterError("filter", sorted(unknown)[0], f"one of {sorted(known)}")
        records = []
        for config_file in sorted(self.root.glob("*/*/*/config.json")):
            if config_file.parent.name.startswith("."):
                continue
            config = _read_json(config_file)
            if all(config.get(k) == v for k, v in filters.items()):
                records.append(self.load_dir(config_file.parent))
        return records

    def save_evaluations(self, record: RunRecord, evaluations: dict, times: dict | None = None) -> None:
        """Store the run's evaluations (and, when given, their ``times``: see evaluation_times.json)."""
        folder = record.run_dir or self.run_dir(record.config)
        # Times first: a kill between the two writes leaves a time without its result (the evaluation
        # is redone and retimed), never a stored result without its time.
        if times is not None:
            atomic_write_json(folder / "evaluation_times.json", times)
            record.evaluation_times = times
        atomic_write_json(folder / "evaluations.json", evaluations)
        record.evaluations = evaluations


def _replace_dir(new: Path, final: Path) -> None:
    """Rename ``new`` to ``final``; an older ``final`` is moved aside first and then removed."""
    if final.exists():
        old = final.with_name(f".{final.name}.old.{os.urandom(6).hex()}")
        os.rename(final, old)
        try:
            os.rename(new, final)
        except BaseException:
            os.rename(old, final)  # put the previous complete run back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new, final)

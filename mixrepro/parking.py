"""Half-trained runs carried from one machine to the next: a sweep's checkpoints parked beside the results.

The training checkpoints live in a machine-local cache (``training.checkpoint``). A session's
machine may be a new one next time, and a run longer than a session (AdAutoMix at the cpu budget,
about 3.5 hours of one core) would then start over every session and never finish.
``mixrepro sweep PLAN --park`` copies the checkpoint of every run of the plan that is not done
(half-trained, or trained and not yet evaluated) to ``<results root>/parked/<key>.pt``, beside a
manifest ``<key>.json`` with its epoch, size, sha256 and CPU kernel set. The folder is git-ignored
(checkpoints are never committed): copy it to the next machine's results root. A sweep worker on any machine
restores a parked checkpoint into its cache before it takes the run (:func:`unpark`), when the
cache holds nothing further along: the sha256 is checked before a byte is unpickled, and the file
is loaded weights-only by the trainer. When the run is stored with its evaluations, its parked
files are deleted (:func:`remove_parked`).

The parked file is the cache's own checkpoint, byte for byte, so a run resumed from it continues
exactly as the killed worker would have (resume equals uninterrupted, as with any checkpoint) on a
machine that computes the same bits; the run records the runtime it was trained with.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from .config import RunConfig
from .environment import cpu_capability
from .errors import ChecksumError, MixreproError
from .io import atomic_write_bytes, atomic_write_json

PARKED_DIR = "parked"


def parked_paths(results_root, config: RunConfig) -> tuple[Path, Path]:
    """(checkpoint, manifest) of ``config``'s parked checkpoint under ``results_root``."""
    folder = Path(results_root) / PARKED_DIR
    return folder / f"{config.key()}.pt", folder / f"{config.key()}.json"


def read_manifest(results_root, config: RunConfig) -> dict | None:
    """The parked checkpoint's manifest, or None when nothing is parked for ``config``.

    A manifest written for another config (a file renamed by hand) is refused: its epoch would
    price and resume the wrong run.
    """
    _, manifest_path = parked_paths(results_root, config)
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("config") != config.to_dict():
        raise MixreproError(f"{manifest_path} does not describe run {config.key()} (its config differs); "
                            "delete it and its .pt file")
    return manifest


def cached_epoch(config: RunConfig) -> int | None:
    """Epochs the cache's checkpoint of ``config`` has done, or None when the cache has none."""
    from .training.checkpoint import checkpoint_path, load_checkpoint

    saved = load_checkpoint(checkpoint_path(config), config)
    return None if saved is None else int(saved["state"]["epoch"])


def epochs_done(results_root, config: RunConfig) -> int | None:
    """The furthest checkpoint of ``config`` here: the cache's or the parked one (None: neither exists)."""
    manifest = read_manifest(results_root, config)
    found = [cached_epoch(config), None if manifest is None else manifest["epoch"]]
    return max((e for e in found if e is not None), default=None)


def park(results_root, config: RunConfig) -> bool:
    """Copy ``config``'s cache checkpoint into the parked folder if it is further along than the
    parked one; True when it wrote one. A stored run's checkpoint is parked only when it holds the
    final weights (its evaluations are still to do)."""
    from .results import ResultsStore
    from .training.checkpoint import checkpoint_path

    epoch = cached_epoch(config)
    manifest = read_manifest(results_root, config)
    if epoch is None or (manifest is not None and manifest["epoch"] >= epoch):
        return False
    if epoch < config.epochs and ResultsStore(results_root).load(config) is not None:
        return False  # a stored run's weights being restored: that retrain never resumes (mixrepro.verify)
    data = checkpoint_path(config).read_bytes()  # checkpoints are replaced atomically: one whole version
    checkpoint_file, manifest_path = parked_paths(results_root, config)
    atomic_write_bytes(checkpoint_file, data)
    atomic_write_json(manifest_path, {"key": config.key(), "epoch": epoch, "epochs": config.epochs,
                                      "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                      "cpu_capability": cpu_capability(), "config": config.to_dict()})
    return True


def unpark(results_root, config: RunConfig) -> bool:
    """Restore ``config``'s parked checkpoint into the cache when the cache has nothing as far along;
    True when it did. A parked file whose sha256 differs from its manifest raises ChecksumError and
    is not used."""
    from .training.checkpoint import checkpoint_path, load_checkpoint

    manifest = read_manifest(results_root, config)
    epoch = cached_epoch(config)
    if manifest is None or (epoch is not None and epoch >= manifest["epoch"]):
        return False
    checkpoint_file, _ = parked_paths(results_root, config)
    data = checkpoint_file.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest["sha256"]:
        raise ChecksumError(checkpoint_file, manifest["sha256"], actual)
    warn_if_other_kernels(config, manifest)
    target = checkpoint_path(config)
    atomic_write_bytes(target, data)
    try:
        load_checkpoint(target, config)  # weights-only, and the config it records must be this run's
    except Exception:
        target.unlink(missing_ok=True)
        raise
    return True


def warn_if_other_kernels(config: RunConfig, manifest: dict) -> None:
    """Say so when the parked run was trained with another CPU kernel set than this machine's: it resumes,
    but need not end bit-identical to an uninterrupted run (``mixrepro verify --epochs`` tells)."""
    parked_on, here = manifest.get("cpu_capability"), cpu_capability()
    if parked_on is not None and parked_on != here:
        print(f"mixrepro: run {config.key()} was parked on a {parked_on} machine and resumes on a {here} one: "
              "it need not end bit-identical to an uninterrupted run", file=sys.stderr, flush=True)


def remove_parked(results_root, config: RunConfig) -> bool:
    """Delete ``config``'s parked files (its run is stored and evaluated); True when there were any."""
    paths = [p for p in parked_paths(results_root, config) if p.exists()]
    for path in paths:
        path.unlink()
    return bool(paths)

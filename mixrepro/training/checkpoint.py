"""Per-epoch checkpoints in the cache (outside git), enough to resume bit-exactly.

One file per run, ``<cache>/checkpoints/<config key>/last.pt``, rewritten
atomically after every epoch. It holds only tensors and plain Python values so it
loads with ``torch.load(weights_only=True)``. After the last epoch it is the
run's final weights, kept for later evaluations (``mixrepro eval``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import RunConfig
from ..errors import MixreproError
from ..io import atomic_torch_save

FORMAT = 2  # 2 records the runtime (threads, precision, layout) and the method's code version
READABLE_FORMATS = (1, 2)


def checkpoint_path(config: RunConfig, cache_dir=None) -> Path:
    from ..data.paths import cache_root

    return cache_root(cache_dir) / "checkpoints" / config.key() / "last.pt"


def rng_state(device: torch.device) -> dict:
    """Global RNG states: nothing in mixrepro draws from them after init, but a resume must not depend on that."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(path: Path, config: RunConfig, **state) -> None:
    atomic_torch_save({"format": FORMAT, "config": config.to_dict(), **state}, path)


def load_checkpoint(path: Path, config: RunConfig) -> dict | None:
    """The checkpoint at ``path`` (on the CPU), or None if there is none."""
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") not in READABLE_FORMATS or state.get("config") != config.to_dict():
        raise MixreproError(
            f"{path} does not belong to this config (format {state.get('format')}, key {config.key()}); "
            "delete it or train with --restart"
        )
    return state


class ResumeMismatchError(MixreproError):
    """A resume asked for a runtime that differs from the one the checkpoint was trained with."""

    def __init__(self, name: str, recorded, requested):
        super().__init__(
            f"the checkpoint was trained with {name}={recorded}; resuming with {name}={requested} would not "
            f"reproduce an uninterrupted run. Resume with {name}={recorded} (or leave it unset), "
            "or start over with --restart"
        )


def runtime_to_resume(saved: dict | None, *, device_type: str, amp, channels_last, threads, compile) -> dict:
    """make_runtime's amp / channels_last / threads for a run resuming from ``saved``.

    Values not given follow the checkpoint; given values must equal it (a different thread
    count, precision or layout changes the bits from the resume on). Format-1 checkpoints
    recorded no runtime and constrain nothing.
    """
    wanted = {"amp": amp, "channels_last": channels_last, "threads": threads}
    recorded = (saved or {}).get("runtime")
    if recorded is None:
        return wanted
    if recorded["device_type"] != device_type:
        raise ResumeMismatchError("device", recorded["device_type"], device_type)
    if recorded.get("compile") is not None and bool(compile) != recorded["compile"]:
        raise ResumeMismatchError("compile", recorded["compile"], bool(compile))
    was = {"amp": recorded["precision"] == "bf16", "channels_last": recorded["channels_last"],
           "threads": recorded["threads"]}
    for name, value in wanted.items():
        if value is not None and value != was[name]:
            raise ResumeMismatchError(name, was[name], value)
    return was

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

FORMAT = 1


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
    if state.get("format") != FORMAT or state.get("config") != config.to_dict():
        raise MixreproError(
            f"{path} does not belong to this config (format {state.get('format')}, key {config.key()}); "
            "delete it or train with --restart"
        )
    return state

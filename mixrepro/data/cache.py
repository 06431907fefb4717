"""Cache of decoded uint8 arrays, keyed by the checksum of their source.

Decoding 60,000 JPEGs or un-pickling a 160 MB archive takes seconds to a minute;
loading the decoded tensors back takes well under a second. The cache file name
holds the dataset name, the source's checksum and the cache format version, so a
different copy of the source (or a new decoder) never reuses a stale file.
Files are written atomically: a crash mid-write leaves no half file behind.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch

from ..io import atomic_torch_save
from .paths import cache_root

CACHE_FORMAT = 1  # bump when the decoded layout changes
_log = logging.getLogger(__name__)


def cache_path(name: str, source_key: str, cache_dir=None) -> Path:
    return cache_root(cache_dir) / "arrays" / f"{name}-{source_key[:20]}-v{CACHE_FORMAT}.pt"


def cached_arrays(
    name: str, source_key: str, build: Callable[[], dict], cache_dir=None
) -> dict:
    """The dict ``build()`` returns, from the cache when a file for this source exists.

    ``build`` must return a dict of tensors and plain Python values (lists of
    strings), which ``torch.load(weights_only=True)`` can read back safely.
    """
    path = cache_path(name, source_key, cache_dir)
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception as err:  # an unreadable cache is rebuilt, never trusted
            _log.warning("ignoring unreadable cache file %s (%s); rebuilding it", path, err)
    arrays = build()
    atomic_torch_save(arrays, path)
    return arrays

"""Where data lives, where decoded arrays are cached, and file checksums.

The data root is the folder under which each dataset keeps its official layout
(``<root>/cifar-10-python.tar.gz``, ``<root>/tiny-imagenet-200/`` ...). It is the
explicit ``root`` argument, else ``$MIXREPRO_DATA``, else ``./data`` (relative to
the current directory). Decoded uint8 arrays are cached under ``cache_dir``,
else ``$MIXREPRO_CACHE``, else ``~/.cache/mixrepro``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

DATA_ENV = "MIXREPRO_DATA"
CACHE_ENV = "MIXREPRO_CACHE"


def data_root(root=None) -> Path:
    """The data root: ``root``, else ``$MIXREPRO_DATA``, else ``./data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.cwd() / "data"


def cache_root(cache_dir=None) -> Path:
    """The cache folder: ``cache_dir``, else ``$MIXREPRO_CACHE``, else ``~/.cache/mixrepro``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mixrepro"


def file_digest(path, algorithm: str = "sha256", chunk_size: int = 1 << 22) -> str:
    """Hex digest of a file, read in chunks so large archives need little memory."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path, expected: str | None, algorithm: str = "sha256") -> str:
    """Digest of ``path``; raises ChecksumError when ``expected`` is given and differs.

    Returns the digest either way, so callers can key caches by it.
    """
    from ..errors import ChecksumError

    actual = file_digest(path, algorithm)
    if expected is not None and actual != expected:
        raise ChecksumError(path, expected, actual, what=algorithm)
    return actual


def tree_fingerprint(folder, pattern: str = "**/*") -> str:
    """Cheap fingerprint of a folder of many files: relative paths, sizes and mtimes.

    Hashing the content of 100,000 images would cost more than decoding them; a
    changed, added or removed file changes its size, mtime or the listing, which
    is enough to keep a decoded cache from being reused for a different copy.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.glob(pattern) if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def check_count(path, what: str, expected: int, actual: int) -> None:
    """Raise ChecksumError when a split or class holds the wrong number of items."""
    from ..errors import ChecksumError

    if expected != actual:
        raise ChecksumError(path, str(expected), str(actual), what=what)

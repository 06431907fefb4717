"""What a run ran on: software versions, device, code revision (no hostname, no user names).

Stored as ``environment.json`` beside every run so a number can be traced to the
code and hardware that produced it.
"""
from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path

import torch

from . import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent


CODE_PATHS = ("mixrepro", "pyproject.toml", "requirements.lock")


def git_revision(repo: Path = REPO_ROOT) -> dict:
    """{'commit': sha or None, 'dirty': bool or None}; None where git or the repository is absent.

    ``dirty`` looks at the code that makes numbers only (``CODE_PATHS``: the package and the
    pinned dependencies): edited notebooks, results or docs do not change what produced a number.
    """
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        status = git("status", "--porcelain", "--untracked-files=all", "--", *CODE_PATHS)
        return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def cpu_model() -> str:
    """The CPU's marketing name where Linux tells it, else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_capability() -> str:
    """The CPU kernel set torch dispatches to (e.g. AVX512, AVX2): two machines with the same torch build
    compute the same CPU bits when it agrees, and may round differently when it does not."""
    return torch.backends.cpu.get_cpu_capability()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def collect_environment(device: torch.device | str = "cpu", world_size: int = 1) -> dict:
    """Versions, device and code revision of this process, as plain JSON values."""
    import numpy

    device = torch.device(device)
    cuda = device.type == "cuda"
    return {
        "mixrepro": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device_type": device.type,
        "device_name": device_name(device),
        "world_size": world_size,
        "cpu_count": os.cpu_count(),
        "cpu_capability": cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "git": git_revision(),
    }

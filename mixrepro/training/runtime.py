"""How a run executes, without changing its numbers' meaning: device, bf16, memory layout, compile.

On CUDA the defaults are bf16 autocast, channels_last and cudnn autotuning; on the
CPU fp32 with deterministic algorithms, so a seed gives the same bits every time.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..distributed import SINGLE, DistContext
from ..errors import InvalidParameterError


def resolve_device(device=None) -> torch.device:
    """``None``/'auto' -> cuda if available, else cpu; any other value must name an available device."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidParameterError("device", device, "auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("device", str(device), "cpu (no CUDA device is available here)")
    if device.type not in ("cpu", "cuda"):
        raise InvalidParameterError("device", str(device), "auto, cpu, cuda or cuda:N")
    return device


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp: bool
    channels_last: bool
    compile: bool
    dist: DistContext = SINGLE
    threads: int = 1  # torch intra-op threads; on the CPU the bits of a run depend on it

    def describe(self) -> dict:
        """What a run records of how it ran (and what a resume must match to stay bit-exact)."""
        return {"device_type": self.device.type, "precision": "bf16" if self.amp else "fp32",
                "channels_last": self.channels_last, "compile": self.compile, "threads": self.threads}

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def synchronize(self) -> None:
        """Wait for queued GPU work, so wall times measure the work itself."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def validate_threads(threads) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidParameterError("threads", threads, "a positive integer (torch intra-op threads)")
    return threads


def make_runtime(device=None, *, amp=None, channels_last=None, compile=False, dist: DistContext = SINGLE,
                 threads: int | None = None) -> Runtime:
    """The run's runtime; ``threads=None`` keeps torch's current thread count (it is recorded either way)."""
    threads = validate_threads(threads)
    device = resolve_device(device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    cuda = device.type == "cuda"
    return Runtime(
        device=device,
        amp=cuda if amp is None else bool(amp),
        channels_last=cuda if channels_last is None else bool(channels_last),
        compile=bool(compile),
        dist=dist,
        threads=threads or torch.get_num_threads(),
    )


@contextlib.contextmanager
def pinned_threads(threads: int):
    """torch's intra-op thread count set to ``threads`` for the block, then restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def reproducible_kernels(device: torch.device):
    """Deterministic algorithms on the CPU (bit-identical reruns); cudnn autotuning on CUDA (speed)."""
    if device.type == "cuda":
        previous = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = previous
        return
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    # warn_only: an op without a deterministic kernel warns instead of stopping a long run;
    # the bit-identity tests catch any real nondeterminism.
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])

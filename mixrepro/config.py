"""Run configuration and budget profiles.

A :class:`RunConfig` fully describes a training run; its hash keys the results
store. A budget profile (``smoke``, ``cpu``, ``gpu``, ``paper``) changes only
dataset size, model width, epochs and seeds; every other value keeps the paper's
setting (AutoMix, ECCV 2022, section 4.1; book/protocol_notes.md). What a budget changes is reported by
:func:`budget_deviations` so notebooks can print it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from .errors import InvalidParameterError
from .registry import Registry


EMA_SCHEDULES = ("paper", "step-scaled")
# Fields added to RunConfig later, with the value all runs before them implicitly had.
KEY_NEUTRAL_DEFAULTS = {"ema_schedule": "paper"}


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's numbers (runtime options like compile are not here)."""

    method: str = "mixup"
    dataset: str = "cifar10-jpeg"
    model: str = "resnet18"
    width: float = 1.0  # channel multiplier; 1.0 is the standard 64-128-256-512 ResNet
    epochs: int = 800
    batch_size: int = 100
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    min_lr: float | None = None  # cosine floor; None takes the method's reference value
    train_subset: int | None = None  # first n of a seeded class-balanced subset; None = all
    test_subset: int | None = None
    seed: int = 0
    method_params: dict = field(default_factory=dict)  # overrides of the method's defaults (alpha...)
    # EMA momentum schedule: "paper" (0.999 -> 0.999999 by progress, whatever the run's length) or
    # "step-scaled" (1 - m scaled so the averaging horizon is the same fraction of training as in
    # the paper's 800 epochs x 500 iterations; see mixrepro.methods.base.step_scaled_momentum).
    ema_schedule: str = "paper"

    def __post_init__(self):
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "width": self.width}
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and value > 0):
                raise InvalidParameterError(name, value, "a positive number")
        for name in ("train_subset", "test_subset"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value > 0):
                raise InvalidParameterError(name, value, "None or a positive integer")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise InvalidParameterError("seed", self.seed, "a non-negative integer")
        if self.ema_schedule not in EMA_SCHEDULES:
            raise InvalidParameterError("ema_schedule", self.ema_schedule, " or ".join(EMA_SCHEDULES))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InvalidParameterError("config key", sorted(unknown)[0], f"one of {sorted(known)}")
        return cls(**d)

    def key(self) -> str:
        """Stable 12-hex-digit hash of the full config (the results-store key).

        Fields added after the first runs were stored are left out of the hash while they hold
        the value every earlier run had (``KEY_NEUTRAL_DEFAULTS``), so those runs keep their keys.
        """
        fields = {k: v for k, v in self.to_dict().items()
                  if not (k in KEY_NEUTRAL_DEFAULTS and v == KEY_NEUTRAL_DEFAULTS[k])}
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Budget:
    name: str
    description: str
    overrides: dict  # RunConfig fields this budget sets
    seeds: tuple[int, ...]
    # bf16 autocast + channels_last by default (a runtime choice, recorded with each run; not
    # part of the config): about 1.8x faster on the CPU; smoke stays fp32, the exact path.
    fast_path: bool = True


def budget_runtime(budget: str) -> dict:
    """fit()'s runtime for the runs the study makes at ``budget`` (notebook pages and sweeps alike).

    The budget's fast path (bf16 autocast + channels_last; ``None`` leaves the device's default,
    which is on for CUDA) and one pinned thread per process. The pin matters twice on the CPU: a
    run's bits depend on its thread count (pinned, a page retrains the same bits on any machine),
    and two-thread processes beside other busy processes lose most of their speed to waiting
    threads (smoke runs were measured at 1-2 images/s that way, against ~170 on a quiet machine).
    """
    fast = BUDGETS.get(budget).fast_path or None
    return {"amp": fast, "channels_last": fast, "threads": 1}


BUDGETS: Registry[Budget] = Registry("budget")
for _b in (
    Budget(
        "smoke",
        "CPU, under a minute: 1,000 training images, width-16 ResNet, 2 epochs; checks that code runs",
        {"width": 0.25, "epochs": 2, "train_subset": 1000, "test_subset": 500},
        (0,),
        fast_path=False,
    ),
    Budget(
        "cpu",
        "two CPU cores, one process per core: 10,000 training images, width-16 ResNet, 120 epochs, "
        "every test image, step-scaled EMA (chosen by the pilot, book/protocol_pilot)",
        {"width": 0.25, "epochs": 120, "train_subset": 10000, "test_subset": None, "ema_schedule": "step-scaled"},
        (0, 1, 2),
    ),
    Budget(
        "cpu-short",
        "the first reduced budget (session 1; the protocol audit's runs): 10,000 training images, "
        "5,000 test images, width-16 ResNet, 30 epochs, the paper's EMA schedule",
        {"width": 0.25, "epochs": 30, "train_subset": 10000, "test_subset": 5000},
        (0, 1, 2),
    ),
    Budget("gpu", "one GPU: full data, paper model, 200 epochs", {"width": 1.0, "epochs": 200}, (0, 1, 2)),
    Budget("paper", "the paper's exact settings (800 epochs on CIFAR)", {"width": 1.0, "epochs": 800}, (0, 1, 2)),
):
    BUDGETS.add(_b.name, _b)


def config_for_budget(budget: str, **fields) -> RunConfig:
    """A RunConfig at ``budget``; explicit ``fields`` win over the budget's overrides."""
    return RunConfig(**{**BUDGETS.get(budget).overrides, **fields})


def budget_deviations(config: RunConfig, paper: RunConfig | None = None) -> dict[str, tuple]:
    """Fields where ``config`` differs from the paper's protocol: {field: (ours, paper's)}."""
    paper = paper or RunConfig(method=config.method, dataset=config.dataset, model=config.model, seed=config.seed)
    ours, ref = config.to_dict(), paper.to_dict()
    return {k: (ours[k], ref[k]) for k in ours if ours[k] != ref[k] and k != "seed"}

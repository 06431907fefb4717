"""The one home of value checks and of the eval-mode context, shared by every layer above.

Each check raises :class:`~mixrepro.errors.InvalidParameterError` naming the parameter,
the value and what is allowed, so every user-facing error reads the same way.
"""
from __future__ import annotations

import contextlib
import math

from .errors import InvalidParameterError


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise InvalidParameterError(name, value, f"one of {list(choices)}")


def check_range(name: str, value, low: float, high: float) -> None:
    """A real number (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidParameterError(name, value, f"a number in [{low}, {high}]")


def check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise InvalidParameterError(name, value, "True or False")


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(name, value, "a positive integer")
    return value


def check_finite(name: str, value, ok=lambda v: True, allowed: str = "a finite number") -> float:
    """A finite real number (not a bool) for which ``ok(value)`` holds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise InvalidParameterError(name, value, allowed)
    return float(value)


@contextlib.contextmanager
def eval_mode(model):
    """Every submodule in eval mode (BN uses running statistics, dropout off); on exit each one
    gets back its own previous flag, so a sub-network kept in eval inside a training module stays so."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, was_training in flags:
            module.training = was_training

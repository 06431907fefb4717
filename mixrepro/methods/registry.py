"""The registry of training methods and a factory for them.

Method modules register their class with ``@METHODS.register("name")``;
``mixrepro.methods`` imports every method module so the registry is complete.
"""
from __future__ import annotations

from ..registry import Registry

METHODS = Registry("method")


def build_method(name: str, model, num_classes: int, **params):
    """Instantiate method ``name`` around ``model``; ``params`` override its paper defaults."""
    return METHODS.get(name)(model, num_classes, **params)


def describe_methods() -> list[dict]:
    """One row per method: name, default hyperparameters, cosine floor."""
    return [
        {"method": name, "min_lr": cls.default_min_lr, "defaults": dict(cls.default_params)}
        for name, cls in METHODS.items()
    ]


def print_methods() -> None:
    for row in describe_methods():
        defaults = ", ".join(f"{k}={v}" for k, v in row["defaults"].items())
        print(f"{row['method']:<14} min_lr={row['min_lr']:<5} {defaults}")

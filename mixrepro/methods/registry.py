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


def describe_method(name: str) -> dict:
    """Name, one-line summary, cosine floor and default hyperparameters of a method."""
    cls = METHODS.get(name)
    if hasattr(cls, "describe"):
        return cls.describe()
    summary = getattr(cls, "summary", None) or (cls.__doc__ or "").strip().splitlines()[0]
    return {"method": name, "summary": summary, "min_lr": cls.default_min_lr, "defaults": dict(cls.default_params)}


def describe_methods() -> list[dict]:
    """One row per registered method (see :func:`describe_method`)."""
    return [describe_method(name) for name in METHODS.names()]


def print_methods() -> None:
    for row in describe_methods():
        defaults = ", ".join(f"{k}={v}" for k, v in row["defaults"].items())
        print(f"{row['method']:<12} {row['summary']}")
        print(f"{'':<12} min_lr={row['min_lr']}  {defaults}")

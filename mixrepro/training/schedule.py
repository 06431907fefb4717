"""Optimiser and learning-rate schedule of the common CIFAR protocol.

AutoMix (ECCV 2022), section 4.1, and the reference configs; the cosine floor per method
is in book/protocol_notes.md, "Optimiser and learning-rate schedule".

SGD with momentum and weight decay on every trainable parameter of the method
(backbone and Mix Block / generator alike, as in the reference CIFAR configs);
cosine annealing stepped once per epoch down to a floor, no warm-up. The lr is a
pure function of the epoch, so a resumed run needs no scheduler state.
"""
from __future__ import annotations

import math

import torch

from ..config import RunConfig


def cosine_lr(epoch: int, epochs: int, base_lr: float, min_lr: float) -> float:
    """lr during 0-based ``epoch``: ``min_lr + (base_lr - min_lr) * (1 + cos(pi * epoch / epochs)) / 2``.

    The closed form of the reference toolbox's per-epoch cosine hook: ``base_lr`` in the
    first epoch, approaching ``min_lr`` in the last (reached only after it).
    """
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def build_optimizer(config: RunConfig, parameters) -> torch.optim.SGD:
    """SGD over ``parameters``: tensors, or a method's ``param_groups()`` (dicts, optional "lr_mult")."""
    parameters = list(parameters)
    groups = parameters if parameters and isinstance(parameters[0], dict) else [{"params": parameters}]
    # the EMA copy is excluded: it is not trained
    groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The scheduled lr, times each group's ``lr_mult`` (1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)

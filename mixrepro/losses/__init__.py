"""Classification losses on mixed targets: MCE, mixup BCE, DM(CE), DM(BCE).

Every loss takes logits [B, C] and a :class:`~mixrepro.mixers.base.MixTarget` and
returns a scalar. ``build_loss(name, preset=None, **params)`` validates the
parameters once and returns a callable ``loss(logits, target)``:

    mce     soft_ce                  no parameters
    bce     mixup_bce                targets="one"|"two", threshold=None, reduction="sum_classes"|"mean"
    dm_ce   dm_ce                    eta=0.1, xi=None, t=None, terms="both", same_class="ce";
                                     presets "static" (eta 0.1), "dynamic" (eta 1)
    dm_bce  dm_bce                   t=1, xi=0.8, reduction="sum_classes";
                                     presets "cutting" (t 1, xi 0.8), "interpolation" (t 0.5, xi 1)

Explicit parameters override a preset's. Each method names its paper preset
(``Method.dm_ce_preset`` / ``Method.dm_bce_preset``).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import InvalidParameterError
from ..mixers.base import MixTarget
from ..registry import Registry
from .decoupled import (DM_BCE_PRESETS, DM_CE_PRESETS, decoupled_log_odds_form, decoupled_logit_gradient,
                        decoupled_part, decoupled_terms, dm_bce, dm_bce_params, dm_bce_targets,
                        dm_ce, dm_ce_logit_gradient, dm_ce_params, lam_rescale)
from .mixup_bce import mixup_bce, mixup_bce_params, mixup_bce_targets
from .soft_ce import mce_logit_gradient, soft_ce


def _no_params() -> dict:
    return {}


@dataclass(frozen=True)
class LossSpec:
    fn: Callable[..., torch.Tensor]
    check: Callable[..., dict]  # validates keyword parameters, returns them with defaults filled in
    presets: Registry | None = None


LOSSES: Registry[LossSpec] = Registry("loss function")
LOSSES.add("mce", LossSpec(soft_ce, _no_params))
LOSSES.add("bce", LossSpec(mixup_bce, mixup_bce_params))
LOSSES.add("dm_ce", LossSpec(dm_ce, dm_ce_params, DM_CE_PRESETS))
LOSSES.add("dm_bce", LossSpec(dm_bce, dm_bce_params, DM_BCE_PRESETS))


@dataclass(frozen=True)
class Loss:
    """A loss with validated parameters: ``loss(logits, target) -> scalar``."""

    name: str
    fn: Callable[..., torch.Tensor] = field(repr=False)
    params: dict

    def __call__(self, logits: torch.Tensor, target: MixTarget) -> torch.Tensor:
        return self.fn(logits, target, **self.params)


def build_loss(name: str, preset: str | None = None, **params) -> Loss:
    """The loss ``name`` with ``params`` (over the ``preset``'s values) validated now."""
    spec = LOSSES.get(name)
    allowed = list(inspect.signature(spec.check).parameters)
    for key in params:
        if key not in allowed:
            raise InvalidParameterError(f"{name} parameter", key, ", ".join(allowed) or "none")
    if preset is not None:
        if spec.presets is None:
            raise InvalidParameterError("preset", preset, f"None ({name} has no presets)")
        params = {**spec.presets.get(preset), **params}
    return Loss(name, spec.fn, spec.check(**params))


__all__ = [
    "LOSSES", "Loss", "build_loss", "soft_ce", "mixup_bce", "dm_ce", "dm_bce", "mce_logit_gradient",
    "decoupled_logit_gradient", "dm_ce_logit_gradient", "decoupled_terms", "decoupled_log_odds_form",
    "decoupled_part", "dm_bce_targets", "mixup_bce_targets", "lam_rescale", "DM_CE_PRESETS", "DM_BCE_PRESETS",
    "dm_ce_params", "dm_bce_params", "mixup_bce_params",
]

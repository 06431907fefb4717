"""Checks and views of a :class:`MixTarget` shared by the losses."""
from __future__ import annotations

import torch

from ..errors import InvalidParameterError
from ..mixers.base import MixTarget


def check_target(logits: torch.Tensor, target: MixTarget) -> None:
    """Shapes only (no device sync): logits [B, C], labels and weights [B, K]."""
    if logits.dim() != 2:
        raise InvalidParameterError("logits", tuple(logits.shape), "a [B, C] tensor")
    b = logits.shape[0]
    if target.labels.dim() != 2 or target.labels.shape[0] != b or target.weights.shape != target.labels.shape:
        raise InvalidParameterError(
            "target", (tuple(target.labels.shape), tuple(target.weights.shape)),
            f"labels and weights of shape [B, K] with B = {b} (the logits' batch)")


def at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """Logits in float32 or float64: half-precision logits (autocast) are upcast so the losses
    and the lambda weights are computed in float32 (differentiable cast)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def class_mask(logits: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """Boolean [B, C], True at (row, cls[row]); built by scatter (no device sync, unlike one_hot)."""
    return torch.zeros(logits.shape, dtype=torch.bool, device=logits.device).scatter_(1, cls[:, None], True)


def soft_labels(logits: torch.Tensor, target: MixTarget) -> torch.Tensor:
    """The soft label matrix [B, C] in the logits' dtype and device (equal labels add up)."""
    check_target(logits, target)
    return target.to(logits.device).soft(logits.shape[1]).to(logits.dtype)


def two_sources(logits: torch.Tensor, target: MixTarget):
    """(y_a, y_b, lam_a, lam_b), each [B], for the two-source losses (DM); other K is an error."""
    check_target(logits, target)
    if target.num_sources != 2:
        raise InvalidParameterError(
            "target", f"{target.num_sources} sources per sample",
            "exactly 2 (the decoupled losses are defined for two-source mixes such as "
            "MixTarget.pair; use 'mce' or 'bce' for clean or N-source targets)")
    labels, weights = target.labels.to(logits.device), target.weights.to(logits.device, logits.dtype)
    return labels[:, 0], labels[:, 1], weights[:, 0], weights[:, 1]

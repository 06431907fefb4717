"""Mixup binary cross-entropy (MBCE): sigmoid BCE with logits on mixup targets.

The DM paper (000, B.2 and Table A4) uses MBCE in the RSB A3 ImageNet recipe and
reports two target conventions: "MBCE (one)", the mixup soft label whose entries
sum to one (lam on y_a, 1 - lam on y_b; the default here, ``targets="one"``), and
"MBCE (two)", a two-hot label with 1 on each mixed class (``targets="two"``).
timm's RSB recipes can also binarise targets above a threshold
(``threshold``, None = off).

Reduction (neither paper states it; the two implementations differ by a factor C):
``"sum_classes"`` (default) sums the C per-class terms and averages over the batch,
as the DM authors' OpenMixup code does (mmcls ``avg_factor`` = batch size);
``"mean"`` averages over all B x C terms, as timm and PyTorch's default do.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InvalidParameterError
from ..mixers.base import MixTarget
from .targets import at_least_float32, soft_labels

REDUCTIONS = ("sum_classes", "mean")
BCE_TARGETS = ("one", "two")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise InvalidParameterError("reduction", reduction, " or ".join(REDUCTIONS))
    return reduction


def bce_on_targets(logits: torch.Tensor, probs: torch.Tensor, reduction: str = "sum_classes") -> torch.Tensor:
    """BCE with logits against per-class target probabilities, reduced as ``reduction`` says."""
    loss = F.binary_cross_entropy_with_logits(at_least_float32(logits), probs, reduction="none")
    return loss.sum(1).mean() if check_reduction(reduction) == "sum_classes" else loss.mean()


def mixup_bce_params(targets: str = "one", threshold: float | None = None, reduction: str = "sum_classes") -> dict:
    """Validated parameters of :func:`mixup_bce` (defaults filled in)."""
    if targets not in BCE_TARGETS:
        raise InvalidParameterError("targets", targets, "'one' (soft label, sums to 1) or 'two' (two-hot)")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0 <= threshold < 1):
        raise InvalidParameterError("threshold", threshold, "None or a number in [0, 1)")
    return dict(targets=targets, threshold=threshold, reduction=check_reduction(reduction))


def mixup_bce_targets(logits: torch.Tensor, target: MixTarget, targets: str = "one",
                      threshold: float | None = None) -> torch.Tensor:
    """The [B, C] BCE target matrix: soft label, or two-hot, optionally binarised at ``threshold``."""
    probs = soft_labels(at_least_float32(logits), target)
    if targets == "two":
        probs = (probs > 0).to(probs.dtype)
    if threshold is not None:
        probs = (probs > threshold).to(probs.dtype)
    return probs


def mixup_bce(logits: torch.Tensor, target: MixTarget, *, targets: str = "one", threshold: float | None = None,
              reduction: str = "sum_classes") -> torch.Tensor:
    """Mixup BCE: BCE with logits on the mixup targets (module docstring: conventions)."""
    p = mixup_bce_params(targets, threshold, reduction)
    probs = mixup_bce_targets(logits, target, p["targets"], p["threshold"])
    return bce_on_targets(logits, probs, p["reduction"])

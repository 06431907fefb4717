"""One-step FGSM white-box attack (Goodfellow et al. 2015; book/protocol_notes.md, "FGSM").

x_adv = clamp(x + eps * sign(grad_x CE(model(x), y)), 0, 1), with x in [0, 1]
pixel space and eps = 8/255 as in the papers' tables. The model is in eval mode
and normalises internally, so eps is a pixel-space budget. (Older reference code
added eps to the normalised tensor and clamped that to [0, 1]; not done here.)
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidParameterError
from .accuracy import eval_mode

PAPER_EPS = 8 / 255


def _check_eps(eps) -> float:
    if not (isinstance(eps, (int, float)) and 0 <= eps <= 1):
        raise InvalidParameterError("eps", eps, "a number in [0, 1] (pixel-space L-inf radius, e.g. 8/255)")
    return float(eps)


def fgsm_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = PAPER_EPS) -> torch.Tensor:
    """Adversarial copies of ``x`` (float [B, C, H, W] in [0, 1]); the model's parameters get no gradient."""
    eps = _check_eps(eps)
    with eval_mode(model), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)
    return (x.detach() + eps * grad.sign()).clamp_(0, 1)


def fgsm_accuracy(model: nn.Module, batches: Iterable, eps: float = PAPER_EPS) -> dict[str, float]:
    """Clean and adversarial top-1 (%) and the FGSM error (100 - adversarial top-1) the papers report."""
    eps = _check_eps(eps)
    clean = adversarial = total = 0
    with eval_mode(model):
        for x, y in batches:
            x_adv = fgsm_examples(model, x, y, eps)
            with torch.no_grad():
                clean += (model(x).argmax(1) == y).sum().item()
                adversarial += (model(x_adv).argmax(1) == y).sum().item()
            total += len(y)
    if total == 0:
        raise InvalidParameterError("batches", "an empty iterable", "at least one (x, y) batch")
    fgsm_top1 = 100.0 * adversarial / total
    return {"clean_top1": 100.0 * clean / total, "fgsm_top1": fgsm_top1, "fgsm_error": 100.0 - fgsm_top1, "eps": eps}

"""Mixup cross-entropy (MCE) and its logit gradient (Decoupled Mixup, NeurIPS 2023, appendix A.1, Proposition 1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..mixers.base import MixTarget
from .targets import at_least_float32, soft_labels


def soft_ce(logits: torch.Tensor, target: MixTarget) -> torch.Tensor:
    """MCE = mean over the batch of -sum_c y_c log softmax(z)_c, with y = target.soft(C).

    For a two-source target this is lam * CE(z, y_a) + (1 - lam) * CE(z, y_b); for any
    K it is the cross-entropy with the probability targets ``target.soft(C)``.
    """
    logits = at_least_float32(logits)
    soft = soft_labels(logits, target)
    return -(soft * F.log_softmax(logits, dim=1)).sum(1).mean()


def mce_logit_gradient(logits: torch.Tensor, target: MixTarget) -> torch.Tensor:
    """Per-sample gradient of MCE with respect to the logits, [B, C] (Proposition 1).

    (d L_MCE / d z)_l = softmax(z)_l - y_l: for a two-class mix this is
    p_a - lam at l = y_a, p_b - (1 - lam) at l = y_b and p_l elsewhere, i.e.
    minimising MCE regresses the predicted probabilities of the two mixed classes
    onto lam and 1 - lam (the "lambda constraint"). The paper's typeset formula
    is garbled in our text copy (000, A.1); this is the form its proof derives.
    These are gradients of the per-sample loss; the batch-mean ``soft_ce``'s
    gradient is this divided by B.
    """
    logits = at_least_float32(logits)
    return torch.softmax(logits, dim=1) - soft_labels(logits, target)

"""Accuracy on mixed samples (AutoMix Fig. 4 right, DM Fig. A1 left; book/protocol_notes.md).

For a sample mixed from sources with labels y_a and y_b:

- top-1 correct: the top prediction is y_a or y_b;
- top-2 correct: the two top predictions are exactly {y_a, y_b}.

A pair with y_a == y_b is not a two-class mix (the label set has one element,
which two distinct predictions can never equal), so by default such samples are
left out of both rates and counted in ``n_same_label``. ``same_label="as_clean"``
instead scores them like a clean sample: both correct iff the top prediction is
y_a.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from ..errors import InvalidParameterError
from ..mixers.base import MixTarget
from .accuracy import eval_mode

SAME_LABEL_RULES = ("exclude", "as_clean")


def mixed_correct(logits: torch.Tensor, target: MixTarget) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top1 [B] bool, top2 [B] bool, same_label [B] bool) for a two-source target."""
    if target.num_sources != 2:
        raise InvalidParameterError("target sources", target.num_sources, "2 (a two-source MixTarget)")
    y_a, y_b = target.labels.to(logits.device).unbind(1)
    top2 = logits.topk(2, dim=1).indices
    first, second = top2.unbind(1)
    top1_ok = (first == y_a) | (first == y_b)
    top2_ok = ((first == y_a) & (second == y_b)) | ((first == y_b) & (second == y_a))
    same = y_a == y_b
    return top1_ok, top2_ok & ~same, same


def mixed_sample_accuracy(
    model: nn.Module, batches: Iterable, mixer: Callable, generator: torch.Generator, same_label: str = "exclude"
) -> dict:
    """Top-1 and top-2 mixed-sample accuracy (%) of ``model`` on ``mixer(x, y, generator)`` outputs.

    ``mixer`` is any static mixer callable returning ``(x_mix, MixTarget)`` with two sources.
    """
    if same_label not in SAME_LABEL_RULES:
        raise InvalidParameterError("same_label", same_label, f"one of {SAME_LABEL_RULES}")
    top1 = top2 = n = n_same = 0
    with eval_mode(model), torch.no_grad():
        for x, y in batches:
            x_mix, target = mixer(x, y, generator)
            logits = model(x_mix)
            ok1, ok2, same = mixed_correct(logits, target)
            if same_label == "exclude":
                keep = ~same
                top1 += ok1[keep].sum().item()
                top2 += ok2[keep].sum().item()
                n += keep.sum().item()
            else:
                clean_ok = ok1 & same  # for y_a == y_b, top-1 correct means argmax == y_a
                top1 += ok1.sum().item()
                top2 += (ok2 | clean_ok).sum().item()
                n += len(y)
            n_same += same.sum().item()
    if n == 0:
        raise InvalidParameterError("batches", "no two-class mixed samples", "at least one pair with y_a != y_b")
    return {"top1": 100.0 * top1 / n, "top2": 100.0 * top2 / n, "n": n, "n_same_label": n_same,
            "same_label_rule": same_label}

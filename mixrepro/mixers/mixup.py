"""Mixup (Zhang et al., ICLR 2018): a convex combination of two images and of their labels.

    x_mix = lam * x + (1 - lam) * x[perm],   target = (y: lam, y[perm]: 1 - lam),   lam ~ Beta(alpha, alpha)

One lam and one permutation per batch (book/protocol_notes.md, "Static mixers").
"""
from __future__ import annotations

import torch

from .base import MixTarget, PairMixer, check_alpha


def mixup(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor) -> tuple[torch.Tensor, MixTarget]:
    """Mix ``x`` with its partner ``x[perm]``; works on images and on feature maps alike."""
    x_mix = x * lam + x[perm] * (1 - lam)
    return x_mix, MixTarget.pair(y, perm, lam)


class Mixup(PairMixer):
    """Mixup with lam ~ Beta(alpha, alpha); the paper's CIFAR alpha is 1.

    ``__call__(x, y, generator)`` draws lam, then the permutation, from ``generator``.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_alpha(alpha)

    def mix(self, x, y, lam, perm, generator):
        return mixup(x, y, lam, perm)

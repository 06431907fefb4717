"""CutMix (Yun et al., ICCV 2019): paste a box of the partner image; the label follows the box area.

The box has sides sqrt(1 - lam) * (H, W) around a uniformly drawn centre and is
clipped to the image, so lam is recomputed from the clipped area (book/protocol_notes.md,
"Static mixers"). Half sides are ``int(0.5 * scale * side)``, which equals the CutMix
paper code's ``int(scale * side) // 2`` and torchvision's ``int(r * side)``.

``Box``, ``box_around``, ``random_box``, ``crop``, ``paste`` and ``box_lam`` are shared
with SaliencyMix and ResizeMix.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..errors import InvalidParameterError
from .base import MixTarget, PairMixer, check_alpha


class Box(NamedTuple):
    """Rows ``top:bottom`` and columns ``left:right`` of an image (half-open, may be empty)."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def area(self) -> int:
        return (self.bottom - self.top) * (self.right - self.left)


def box_around(cy: int, cx: int, scale: float, height: int, width: int) -> Box:
    """A box of sides ``scale * (height, width)`` centred at (cy, cx), clipped to the image."""
    half_h, half_w = int(0.5 * scale * height), int(0.5 * scale * width)
    return Box(max(cy - half_h, 0), max(cx - half_w, 0), min(cy + half_h, height), min(cx + half_w, width))


def random_box(scale: float, height: int, width: int, generator: torch.Generator | None) -> Box:
    """``box_around`` a uniformly drawn pixel (row drawn first, then column)."""
    if generator is None:
        raise InvalidParameterError("generator", None, "a torch.Generator (or pass box=)")
    cy = int(torch.randint(height, (1,), generator=generator))
    cx = int(torch.randint(width, (1,), generator=generator))
    return box_around(cy, cx, scale, height, width)


def crop(x: torch.Tensor, box: Box) -> torch.Tensor:
    return x[..., box.top:box.bottom, box.left:box.right]


def paste(x: torch.Tensor, patch: torch.Tensor, box: Box) -> torch.Tensor:
    """A copy of ``x`` whose ``box`` holds ``patch`` (of the box's size)."""
    out = x.clone()
    out[..., box.top:box.bottom, box.left:box.right] = patch
    return out


def box_lam(box: Box, height: int, width: int) -> float:
    """Weight of the image outside the box: 1 - box area / image area."""
    return 1.0 - box.area / (height * width)


def cutmix(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor, box: Box | None = None,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, MixTarget]:
    """Paste ``box`` of ``x[perm]`` into ``x`` (a box for ``lam`` is drawn from ``generator`` when None).

    The target weight of ``y`` is recomputed from the box actually pasted.
    """
    height, width = x.shape[-2:]
    if box is None:
        box = random_box(math.sqrt(1.0 - lam), height, width, generator)
    return paste(x, crop(x, box)[perm], box), MixTarget.pair(y, perm, box_lam(box, height, width))


class CutMix(PairMixer):
    """CutMix with lam ~ Beta(alpha, alpha); the paper's CIFAR alpha is 0.2.

    ``__call__(x, y, generator)`` draws lam, the permutation, then the box centre.
    """

    def __init__(self, alpha: float = 0.2):
        self.alpha = check_alpha(alpha)

    def mix(self, x, y, lam, perm, generator):
        return cutmix(x, y, lam, perm, generator=generator)

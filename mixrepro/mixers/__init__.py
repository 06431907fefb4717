"""Static mixers: a pure function per mixer plus a small class that draws its randomness.

``MIXERS`` maps a name to the mixer class; ``build_mixer(name, **params)`` validates
the parameters (defaults: the papers' CIFAR values). An instance is called as

    x_mix, target = mixer(x, y, generator)            # mixup, cutmix, saliencymix, fmix, resizemix
    logits, target = mixer(model, x, y, generator)    # manifoldmix mixes inside the model

with one lam and one permutation per batch, every draw from ``generator``
(book/protocol_notes.md, "Static mixers"). The pure functions (``mixup(x, y, lam, perm)``,
``cutmix(x, y, lam, perm, box)``...) take those draws as arguments.
PuzzleMix lives in its own modules (``puzzlemix*.py``).
"""
from __future__ import annotations

import inspect

from ..errors import InvalidParameterError
from ..registry import Registry
from .base import MixTarget, check_alpha, sample_beta, sample_perm
from .cutmix import Box, CutMix, box_around, cutmix
from .fmix import FMix, fmix, fmix_mask
from .manifoldmix import ManifoldMix, manifold_mix_forward
from .mixup import Mixup, mixup
from .resizemix import ResizeMix, resizemix
from .saliencymix import SaliencyMix, fine_grained_saliency, saliencymix

MIXERS: Registry[type] = Registry("mixer")
for _name, _cls in (("mixup", Mixup), ("cutmix", CutMix), ("manifoldmix", ManifoldMix),
                    ("saliencymix", SaliencyMix), ("fmix", FMix), ("resizemix", ResizeMix)):
    MIXERS.add(_name, _cls)


def mixer_defaults(name: str) -> dict:
    """The parameters of mixer ``name`` and their defaults (the papers' CIFAR values)."""
    signature = inspect.signature(MIXERS.get(name).__init__)
    return {k: p.default for k, p in signature.parameters.items() if k != "self"}


def build_mixer(name: str, **params):
    """The static mixer ``name`` with ``params`` over its defaults; unknown names or parameters raise."""
    allowed = mixer_defaults(name)
    for key in params:
        if key not in allowed:
            raise InvalidParameterError(f"{name} parameter", key, ", ".join(allowed))
    return MIXERS.get(name)(**params)


__all__ = [
    "MIXERS", "build_mixer", "mixer_defaults", "MixTarget", "check_alpha", "sample_beta", "sample_perm",
    "Box", "box_around",
    "Mixup", "mixup", "CutMix", "cutmix", "ManifoldMix", "manifold_mix_forward", "SaliencyMix", "saliencymix",
    "fine_grained_saliency", "FMix", "fmix", "fmix_mask", "ResizeMix", "resizemix",
]

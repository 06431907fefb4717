"""Manifold Mixup (Verma et al., ICML 2019): Mixup of hidden representations at a random stage.

Per batch: a stage k drawn uniformly from ``stages`` (default {0, 1, 2}: the input,
after residual stage 1, after stage 2; book/protocol_notes.md, "Static mixers"), then

    h = model.forward_features(x, k);  logits = model.forward_from(lam * h + (1 - lam) * h[perm], k)

so the mixer needs the model: ``ManifoldMix.__call__(model, x, y, generator)`` returns
``(logits, MixTarget)`` instead of a mixed image.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from ..errors import InvalidParameterError
from .base import MixTarget, check_alpha, sample_beta, sample_perm
from .mixup import mixup

if TYPE_CHECKING:  # the mixer only calls the model's interface; no import of the models package needed
    from ..models.base import StagedClassifier


def manifold_mix_forward(model: StagedClassifier, x: torch.Tensor, y: torch.Tensor, lam: float,
                         perm: torch.Tensor, stage: int) -> tuple[torch.Tensor, MixTarget]:
    """Logits of the batch mixed after ``stage`` (0 mixes the input) and the mixed target."""
    stage = model.check_stage(stage)
    h_mix, target = mixup(model.forward_features(x, stage), y, lam, perm)
    return model.forward_from(h_mix, stage), target


def _check_stages(stages: Sequence[int]) -> tuple[int, ...]:
    ok = (isinstance(stages, (list, tuple)) and len(stages) > 0
          and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in stages))
    if not ok:
        raise InvalidParameterError("stages", stages, "a non-empty list of stage indices >= 0 (0 = input)")
    return tuple(stages)


class ManifoldMix:
    """Manifold Mixup with lam ~ Beta(alpha, alpha); the paper's CIFAR alpha is 2 (AutoMix appendix).

    ``__call__(model, x, y, generator)`` draws lam, the permutation, then the stage.
    """

    def __init__(self, alpha: float = 2.0, stages: Sequence[int] = (0, 1, 2)):
        self.alpha = check_alpha(alpha)
        self.stages = _check_stages(stages)

    def sample_stage(self, generator: torch.Generator) -> int:
        return self.stages[int(torch.randint(len(self.stages), (1,), generator=generator))]

    def __call__(self, model: StagedClassifier, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        lam = sample_beta(self.alpha, generator)
        perm = sample_perm(len(x), generator, x.device)
        return manifold_mix_forward(model, x, y, lam, perm, self.sample_stage(generator))

    def __repr__(self) -> str:
        return f"ManifoldMix(alpha={self.alpha}, stages={list(self.stages)})"

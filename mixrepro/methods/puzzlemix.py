"""PuzzleMix as a training method: saliency from the clean batch, the PuzzleMix mixer, per-sample targets.

The mixing itself (graph cut, transport) lives in ``mixrepro/mixers/puzzlemix.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InvalidParameterError
from ..mixers.base import check_alpha, sample_beta, sample_perm
from ..mixers.puzzlemix import (PUZZLEMIX_DEFAULTS, check_puzzlemix_params, frozen_bn_saliency, puzzlemix,
                                saliency_from_gradient)
from .base import Method, StepContext, StepOutput
from .registry import METHODS
from .static import LOSS_DEFAULTS, method_loss


@METHODS.register("puzzlemix")
class PuzzleMix(Method):
    """PuzzleMix: loss(mixed batch, per-sample targets) + clean_lam * CE(clean batch).

    ``loss``/``loss_params`` as for the static methods (default "mce", the soft CE
    ``mixrepro.losses.soft_ce``; "dm_ce"/"dm_bce" take the DM paper's presets for
    PuzzleMix: dynamic eta = 1, cutting-based (t, xi) = (1, 0.8)).

    With ``clean_lam > 0`` (official code) one train-mode forward of the clean
    batch gives both the clean loss and, through ``autograd.grad`` on the input,
    the saliency (BN statistics update there as in any training forward). With
    ``clean_lam = 0`` (OpenMixup) the saliency comes from an extra eval-mode pass
    with BN frozen (:func:`frozen_bn_saliency`). Random draws from ``ctx.generator``
    in the order lam, permutation, block count.
    """

    name = "puzzlemix"
    label, color = "PuzzleMix", "#e377c2"
    dm_ce_preset, dm_bce_preset = "dynamic", "cutting"
    default_params = {"alpha": 1.0, **PUZZLEMIX_DEFAULTS, "clean_lam": 1.0, **LOSS_DEFAULTS}
    default_min_lr = 0.0

    def __init__(self, model, num_classes: int, **params):
        super().__init__(model, num_classes, **params)
        self.loss_fn = method_loss(self.params["loss"], type(self), self.params["loss_params"])

    @classmethod
    def validate_params(cls, params: dict) -> dict:
        params = super().validate_params(params)
        check_alpha(params["alpha"])
        if not (isinstance(params["clean_lam"], (int, float)) and params["clean_lam"] >= 0):
            raise InvalidParameterError("clean_lam", params["clean_lam"], "a number >= 0")
        return {**params, **check_puzzlemix_params({k: params[k] for k in PUZZLEMIX_DEFAULTS})}

    def saliency_and_clean_loss(self, x, y):
        """(saliency [B, H, W], clean CE or None); see the class docstring."""
        if self.params["clean_lam"] == 0:
            return frozen_bn_saliency(self.model, x, y), None
        x_in = x.detach().requires_grad_(True)
        clean = F.cross_entropy(self.model(x_in), y)
        (grad,) = torch.autograd.grad(clean, x_in, retain_graph=True)
        return saliency_from_gradient(grad), clean

    def training_step(self, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        p = self.params
        saliency, clean = self.saliency_and_clean_loss(x, y)
        lam = sample_beta(p["alpha"], ctx.generator)
        perm = sample_perm(len(x), ctx.generator, x.device)
        block_num = p["block_nums"][int(torch.randint(len(p["block_nums"]), (1,), generator=ctx.generator))]
        hp = {k: p[k] for k in PUZZLEMIX_DEFAULTS if k != "block_nums"}
        x_mix, target = puzzlemix(x, y, lam, perm, saliency, block_num, **hp)
        loss_mix = self.loss_fn(self.model(x_mix), target)
        loss = loss_mix if clean is None else loss_mix + p["clean_lam"] * clean
        logs = {"loss_mix": float(loss_mix.detach()), "lam": lam, "lam_mask": float(target.weights[:, 0].mean()),
                "block_num": block_num}
        if clean is not None:
            logs["loss_clean"] = float(clean.detach())
        return StepOutput(loss, logs)

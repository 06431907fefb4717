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
from .base import LOSS_DEFAULTS, Method, StepContext, StepOutput, method_loss
from .registry import METHODS


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


class _PrecomputedGradients(torch.autograd.Function):
    """``value`` (a detached loss); its backward gives ``tensors`` the precomputed ``grads`` times the incoming one.

    Multiplying by an incoming 1.0 is exact, so for a loss that adds this term with weight 1 the
    tensors receive exactly the gradients a backward through the original graph would give them.
    """

    @staticmethod
    def forward(ctx, value, grads, *tensors):
        ctx.grads = grads
        return value.clone()

    @staticmethod
    def backward(ctx, grad_out):
        grads, ctx.grads = ctx.grads, None
        return (None, None, *(None if g is None else g * grad_out for g in grads))


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

    Cost: with ``clean_lam = 1`` in fp32 the clean batch is backpropagated once
    (input and parameter gradients together, ``merged_clean_backward``), so a step
    costs about two Mixup steps plus the mixing; under bf16 autocast, and for other
    ``clean_lam > 0``, the clean graph is backpropagated twice, since a single pass
    would change the gradients' bits there (see ``saliency_and_clean_loss``).
    """

    name = "puzzlemix"
    label, color = "PuzzleMix", "#e377c2"
    dm_ce_preset, dm_bce_preset = "dynamic", "cutting"
    default_params = {"alpha": 1.0, **PUZZLEMIX_DEFAULTS, "clean_lam": 1.0, **LOSS_DEFAULTS}
    # Speed only, same bits: one backward of the clean CE for saliency and parameter gradients
    # (``saliency_and_clean_loss``); False keeps the clean graph for a second backward (reference path).
    merged_clean_backward: bool = True
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
        """(saliency [B, H, W], clean CE or None); see the class docstring.

        With ``clean_lam = 1`` (the default) one backward pass of the clean CE gives both the input
        gradient and the parameter gradients; the returned clean loss hands the latter to the step's
        backward (:class:`_PrecomputedGradients`) instead of a second backward through the clean graph.
        The gradients are the same bits (the clean branch is seeded with the same 1.0 either way). For
        any other ``clean_lam``, and under autocast (where the input gradient is taken inside autocast
        but the step's backward runs outside it, which changes the bits of the parameter gradients), the
        clean graph is kept and backpropagated again, as before.
        """
        if self.params["clean_lam"] == 0:
            return frozen_bn_saliency(self.model, x, y), None
        x_in = x.detach().requires_grad_(True)
        clean = F.cross_entropy(self.model(x_in), y)
        if self.params["clean_lam"] != 1 or not self.merged_clean_backward or _autocast_enabled(x.device.type):
            (grad,) = torch.autograd.grad(clean, x_in, retain_graph=True)
            return saliency_from_gradient(grad), clean
        params = [p for p in self.model.parameters() if p.requires_grad]
        grad, *param_grads = torch.autograd.grad(clean, [x_in, *params], allow_unused=True)
        return saliency_from_gradient(grad), _PrecomputedGradients.apply(clean.detach(), param_grads, *params)

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
        # float64 tensors, not float(): they sum over the epoch exactly as Python floats would, without
        # a host synchronisation per step on CUDA (the trainer reduces logs once per epoch).
        logs = {"loss_mix": loss_mix.detach().double(), "lam": lam, "lam_mask": target.weights[:, 0].mean().double(),
                "block_num": block_num}
        if clean is not None:
            logs["loss_clean"] = clean.detach().double()
        return StepOutput(loss, logs)

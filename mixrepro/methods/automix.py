"""AutoMix (Liu, Li et al., ECCV 2022; paper 001): a learned Mix Block trained through a momentum pipeline.

One training step (paper Eq. 8, Alg. 1, Fig. 11; REFERENCE.md section 3)::

    z        = k.features(x, stage 3)                     # EMA encoder k, no gradient
    mask_gen = MixBlock(z, perm_gen, lam_gen)             # Mix Block's own pair
    loss_gen = MCE(k(mix(x, x[perm_gen], mask_gen)))      # gradient -> Mix Block only (k is frozen)
             + w(t) * l_lambda(mask_gen, lam_gen)         # Eq. 7
    mask_cls = MixBlock(z, perm_cls, lam_cls).detach()    # backbone's pair (constant lam near 0/1)
    loss_cls = CE(q(x), y) + MCE(q(mix(x, x[perm_cls], mask_cls)))   # gradient -> q only
    loss     = loss_cls + loss_gen                         # one backward, one SGD step

then ``after_step`` moves k towards q with the AutoMix momentum schedule (base.py).

Choices where the paper and the reference code differ (defaults follow the paper):

- ``lam_embed``: the paper concatenates lambda as a feature channel (Eq. 4-6, Table 9). The
  reference CIFAR configs switch it off; ``lam_embed=False`` reproduces them. Our CIFAR default
  is the paper's ``True``.
- ``mask_loss_schedule``: the paper decays the l_lambda weight linearly to 0 (``"linear"``); the
  reference keeps it constant on CIFAR (``"constant"``) and anneals it by cosine on ImageNet
  (``"cosine"``).
- ``mask_adjust``: probability of rescaling the backbone's mask so each sample's mask mean equals
  lambda (reference option, default 0). ``mask_adjust_lambda="backbone"`` uses the backbone pair's
  lambda (correct); ``"mixblock"`` reproduces the reference, which uses the Mix Block pair's lambda.
- ``lam_margin``: the reference replaces the backbone mask by the constant lambda (plain Mixup)
  when lambda <= 0.08 or >= 0.92; 0 disables it.

``AutoMix.reference_params`` collects the reference CIFAR configuration's choices. Note: the
Mix Block's N(0, 0.01) initialisation makes the attention nearly uniform at the start, so the
first masks are spatially almost constant (logged ``mask_std_gen`` ~1e-4); spatial structure
appears as the q/k weights grow, more slowly for narrow (width < 1) encoders.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidParameterError
from ..losses import soft_ce
from ..mixers.base import MixTarget, check_alpha, sample_beta, sample_perm
from ..visualize import MixDisplay
from .base import Method, StepContext, StepOutput
from .registry import METHODS

MASK_LOSS_SCHEDULES = ("linear", "constant", "cosine")
MASK_ADJUST_LAMBDAS = ("backbone", "mixblock")

# The momentum-pipeline hyperparameters every Mix Block method shares (SAMix reuses them).
PIPELINE_DEFAULTS = {
    "alpha": 2.0,  # Beta(alpha, alpha) for both lambdas (paper section 4: alpha = 2)
    "feature_stage": 3,  # "l = 3": stage-3 features of k (256 x width channels, 8x8 at 32 px)
    "lam_margin": 0.08,  # backbone pair falls back to plain Mixup when lam <= m or >= 1 - m
    "mask_loss_weight": 0.1,  # gamma of Eq. 7 at the start of training
    "mask_loss_margin": 0.1,  # epsilon of Eq. 7
    "mask_loss_schedule": "linear",  # paper: linear decay to 0; reference CIFAR: "constant"
    "mask_adjust": 0.0,  # probability of rescaling the backbone mask mean to lambda
    "mask_adjust_lambda": "backbone",  # "mixblock" = the reference's (wrong) lambda
    "init_seed": None,  # seed of the Mix Block's N(0, 0.01) init; None: drawn from torch's seeded global RNG
}


# ----------------------------------------------------------------------------------------------
# Pieces shared by the Mix Block methods (SAMix and AdAutoMix import them)
# ----------------------------------------------------------------------------------------------


@dataclass
class PairDraws:
    """The random draws of one momentum-pipeline step: one pair for the Mix Block, one for the backbone."""

    lam_gen: float
    perm_gen: torch.Tensor
    lam_cls: float
    perm_cls: torch.Tensor


def draw_pairs(batch_size: int, alpha: float, generator: torch.Generator, device) -> PairDraws:
    """Two independent lambdas and permutations, drawn in a fixed order from ``generator``."""
    lam_gen = sample_beta(alpha, generator)
    lam_cls = sample_beta(alpha, generator)
    perm_gen = sample_perm(batch_size, generator, device)
    perm_cls = sample_perm(batch_size, generator, device)
    return PairDraws(lam_gen, perm_gen, lam_cls, perm_cls)


def mix_pair(x: torch.Tensor, perm: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mask * x + (1 - mask) * x[perm]; ``mask`` [B, 1, H, W] is the weight of x (or a float)."""
    return mask * x + (1 - mask) * x[perm]


def normal_init_(module: nn.Module, generator: torch.Generator, std: float = 0.01) -> nn.Module:
    """The Mix Blocks' initialisation: conv/linear weights N(0, std), biases 0, norms (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q^T k / sqrt(d)) v for q, k [..., d, HW] and v [..., HW, 1] -> [..., HW, 1].

    Rows of the attention are q's positions. Runs in float32 with autocast off: the reference
    forces fp32 here because the logits overflow in half precision, and the masks built from
    the result should not be quantised to bf16.
    """
    with torch.autocast(q.device.type, enabled=False):
        q, k, v = q.float(), k.float(), v.float()
        p = torch.softmax(q.transpose(-2, -1) @ k / math.sqrt(q.shape[-2]), dim=-1)
        return p @ v


def lambda_planes(z: torch.Tensor, lam: float) -> torch.Tensor:
    """A constant feature plane of value ``lam`` shaped like one channel of z."""
    return torch.full_like(z[:, :1], lam)


def mask_mean_loss(mask: torch.Tensor, lam: float, margin: float) -> torch.Tensor:
    """Eq. 7 without its weight: max(|lam - mean(mask)| - margin, 0), mean over the whole batch.

    ``mask`` is the weight of x (so |lam - mean(mask_i)| = |1 - mean(mask_j) - lam|, the reference form).
    """
    return torch.clamp((lam - mask.mean()).abs() - margin, min=0.0)


def scheduled_weight(weight: float, schedule: str, progress: float) -> float:
    """The l_lambda weight at ``progress`` in [0, 1]: linear decay (paper), constant, or cosine decay."""
    if schedule == "linear":
        return weight * (1.0 - progress)
    if schedule == "cosine":
        return weight * (1.0 + math.cos(math.pi * progress)) / 2
    return weight


def adjust_mask_mean(mask: torch.Tensor, lam: float) -> torch.Tensor:
    """Rescale each sample's mask so its mean is exactly ``lam`` while staying in [0, 1].

    Mean above lam: scale the mask down (mask * lam / mean); below: scale its complement down
    (1 - (1 - mask) * (1 - lam) / (1 - mean)). This is the reference's two-sided rule; SAMix's
    "lambda adjusting" (paper 002, section 3.2) is its mean < lam side.
    """
    mean = mask.mean(dim=(1, 2, 3), keepdim=True).clamp(1e-6, 1 - 1e-6)
    down = mask * (lam / mean)
    up = 1 - (1 - mask) * ((1 - lam) / (1 - mean))
    return torch.where(mean > lam, down, up)


def mask_statistics(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch mean, mean per-sample spatial std) of a [B, 1, H, W] mask: std -> 0 means a collapsed Mix Block."""
    m = mask.detach()
    return m.mean(), m.flatten(1).std(dim=1).mean()


def to_logs(values: dict) -> dict[str, float]:
    """Floats for StepOutput.logs with a single device sync for all tensor entries."""
    tensors = {k: v.detach().float().reshape(()) for k, v in values.items() if torch.is_tensor(v)}
    out = {k: float(v) for k, v in values.items() if not torch.is_tensor(v)}
    if tensors:
        out.update(zip(tensors, torch.stack(list(tensors.values())).tolist()))
    return out


@contextmanager
def eval_mode(module: nn.Module):
    """Run ``module`` in eval mode (no BN statistic updates, no dropout), then restore its mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise InvalidParameterError(name, value, f"one of {list(choices)}")


def check_range(name: str, value, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidParameterError(name, value, f"a number in [{low}, {high}]")


# ----------------------------------------------------------------------------------------------
# AutoMix's Mix Block
# ----------------------------------------------------------------------------------------------


class MixBlock(nn.Module):
    """AutoMix Mix Block (paper Eq. 4-6; reference CIFAR structure, REFERENCE.md section 3).

    Shared 1x1 conv W_P (q = k, C(+1) -> C/2, bias, no norm/activation) and value 1x1 conv
    (C(+1) -> 1) on the partner x_j = x[perm] (Eq. 5 leaves open whose value embedding multiplies
    P; we follow the reference, which predicts the partner's mask from the partner's value):

        P      = softmax(q_i k_j^T / sqrt(C/2))          [HW_i, HW_j]
        mask_j = sigmoid(upsample_nearest(P v_j))        weight of x[perm]
        mask_i = 1 - mask_j                               weight of x (returned)

    With ``lam_embed`` a constant channel lam (for x) / 1 - lam (for x[perm]) is concatenated
    to the features first (paper Eq. 4). Channel sizes follow the encoder's width.
    """

    def __init__(self, in_channels: int, lam_embed: bool, generator: torch.Generator):
        super().__init__()
        self.lam_embed = lam_embed
        cin = in_channels + int(lam_embed)
        self.qk = nn.Conv2d(cin, max(1, in_channels // 2), 1)
        self.value = nn.Conv2d(cin, 1, 1)
        normal_init_(self, generator)

    def forward(self, z: torch.Tensor, perm: torch.Tensor, lam: float, size, generator=None) -> torch.Tensor:
        z_i, z_j = z, z[perm]
        if self.lam_embed:
            z_i = torch.cat([z_i, lambda_planes(z_i, lam)], 1)
            z_j = torch.cat([z_j, lambda_planes(z_j, 1 - lam)], 1)
        b, _, h, w = z.shape
        v_j = self.value(z_j).flatten(2).transpose(1, 2)
        logits_j = attend(self.qk(z_i).flatten(2), self.qk(z_j).flatten(2), v_j).view(b, 1, h, w)
        mask_j = torch.sigmoid(F.interpolate(logits_j, size=size, mode="nearest"))
        return 1 - mask_j  # float32 even under autocast


# ----------------------------------------------------------------------------------------------
# The method
# ----------------------------------------------------------------------------------------------



def check_init_seed(seed) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidParameterError("init_seed", seed, "None (seeded by the run) or an integer")


def mask_init_generator(seed: int | None) -> torch.Generator:
    """Generator of a mask module's initialisation: ``seed``, or one draw of torch's global RNG.

    The trainer seeds the global RNG from the run's seed, so with None every run seed gets
    its own (reproducible) Mix Block initialisation.
    """
    if seed is None:
        seed = int(torch.randint(2**62, (1,)))
    return torch.Generator().manual_seed(seed)

@METHODS.register("automix")
class AutoMix(Method):
    """AutoMix: Mix Block + momentum pipeline; see the module docstring for the step and options."""

    name = "automix"
    default_params = {**PIPELINE_DEFAULTS, "lam_embed": True}
    # Overrides that reproduce the reference code's CIFAR behaviour (REFERENCE.md section 3).
    reference_params = {"lam_embed": False, "mask_loss_schedule": "constant", "mask_adjust_lambda": "mixblock"}
    default_min_lr = 0.05
    ema_copies_buffers = False  # k runs in train mode and keeps its own BN statistics

    def __init__(self, model, num_classes: int, **params):
        super().__init__(model, num_classes, **params)
        in_channels = model.stage_channels[self.params["feature_stage"]]
        init_gen = mask_init_generator(self.params["init_seed"])
        self.mix_block = self.build_mix_block(in_channels, init_gen)

    # -- hooks SAMix overrides -----------------------------------------------------------------

    def build_mix_block(self, in_channels: int, generator: torch.Generator) -> nn.Module:
        return MixBlock(in_channels, self.params["lam_embed"], generator)

    def generation_loss(self, logits: torch.Tensor, target: MixTarget) -> torch.Tensor:
        """Loss of k's prediction on the Mix Block's mixed batch (paper: mixup CE)."""
        return soft_ce(logits, target)

    def mask_loss(self, mask: torch.Tensor, lam: float) -> tuple[torch.Tensor, dict]:
        """Unweighted mask regulariser and its parts for the logs (AutoMix: l_lambda of Eq. 7)."""
        loss = mask_mean_loss(mask, lam, self.params["mask_loss_margin"])
        return loss, {"loss_lambda": loss}

    # -- validation ----------------------------------------------------------------------------

    @classmethod
    def validate_params(cls, params: dict) -> dict:
        params = super().validate_params(params)
        check_alpha(params["alpha"])
        check_range("lam_margin", params["lam_margin"], 0.0, 0.5)
        check_range("mask_loss_weight", params["mask_loss_weight"], 0.0, math.inf)
        check_range("mask_loss_margin", params["mask_loss_margin"], 0.0, 1.0)
        check_range("mask_adjust", params["mask_adjust"], 0.0, 1.0)
        check_choice("mask_loss_schedule", params["mask_loss_schedule"], MASK_LOSS_SCHEDULES)
        check_choice("mask_adjust_lambda", params["mask_adjust_lambda"], MASK_ADJUST_LAMBDAS)
        if isinstance(params["feature_stage"], bool) or params["feature_stage"] not in (1, 2, 3, 4):
            raise InvalidParameterError("feature_stage", params["feature_stage"], "a stage index in 1..4")
        check_init_seed(params["init_seed"])
        return params

    # -- the step ------------------------------------------------------------------------------

    def encoder_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stage-l features of the EMA encoder k (in whatever mode the method is in); no gradient."""
        with torch.no_grad():
            return self.ema.forward_features(x, self.params["feature_stage"])

    def classifier_mask(self, z, x, draws: PairDraws, generator) -> torch.Tensor:
        """The backbone's mask: Mix Block output without gradient, constant near lam = 0 or 1, optionally adjusted."""
        lam, margin = draws.lam_cls, self.params["lam_margin"]
        if lam <= margin or lam >= 1 - margin:
            return torch.full_like(x[:, :1], lam)
        with torch.no_grad():
            mask = self.mix_block(z, draws.perm_cls, lam, x.shape[-2:], generator)
            p = self.params["mask_adjust"]
            if p > 0 and float(torch.rand((), generator=generator)) < p:
                target = lam if self.params["mask_adjust_lambda"] == "backbone" else draws.lam_gen
                mask = adjust_mask_mean(mask, target)
        return mask

    def training_step(self, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        g = ctx.generator
        draws = draw_pairs(len(x), self.params["alpha"], g, x.device)
        z = self.encoder_features(x)

        # Generation: the Mix Block learns through the frozen k (k's params need no grad).
        mask_gen = self.mix_block(z, draws.perm_gen, draws.lam_gen, x.shape[-2:], g)
        target_gen = MixTarget.pair(y, draws.perm_gen, draws.lam_gen)
        loss_gen = self.generation_loss(self.ema(mix_pair(x, draws.perm_gen, mask_gen)), target_gen)
        mask_reg, mask_parts = self.mask_loss(mask_gen, draws.lam_gen)
        weight = scheduled_weight(self.params["mask_loss_weight"], self.params["mask_loss_schedule"], ctx.progress)

        # Classification: q learns from clean and mixed images; the mask carries no gradient.
        mask_cls = self.classifier_mask(z, x, draws, g)
        target_cls = MixTarget.pair(y, draws.perm_cls, draws.lam_cls)
        loss_clean = F.cross_entropy(self.model(x), y)
        loss_mix = soft_ce(self.model(mix_pair(x, draws.perm_cls, mask_cls)), target_cls)

        loss = loss_clean + loss_mix + loss_gen + weight * mask_reg
        mean_gen, std_gen = mask_statistics(mask_gen)
        mean_cls, std_cls = mask_statistics(mask_cls)
        logs = {
            "loss_clean": loss_clean, "loss_mix": loss_mix, "loss_gen": loss_gen, "mask_loss_weight": weight,
            "lam_gen": draws.lam_gen, "mask_mean_gen": mean_gen, "mask_std_gen": std_gen,
            "mask_mean_gap_gen": (mean_gen - draws.lam_gen).abs(),
            "lam_cls": draws.lam_cls, "mask_mean_cls": mean_cls, "mask_std_cls": std_cls,
            **mask_parts,
        }
        return StepOutput(loss, to_logs(logs))

    @torch.no_grad()
    def mix_for_display(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> MixDisplay:
        """The Mix Block's mask for one drawn (lam, perm), in eval mode (no state changes)."""
        lam = sample_beta(self.params["alpha"], generator)
        perm = sample_perm(len(x), generator, x.device)
        with eval_mode(self):
            mask = self.mix_block(self.encoder_features(x), perm, lam, x.shape[-2:], generator)
        masks = torch.cat([mask, 1 - mask], 1)
        weights = torch.tensor([lam, 1 - lam], device=x.device).expand(len(x), 2)
        return MixDisplay([x, x[perm]], masks, mix_pair(x, perm, mask), weights)

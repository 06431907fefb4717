"""AutoMix (Liu, Li et al., ECCV 2022): a learned Mix Block trained through a momentum pipeline.

One training step (AutoMix paper, Eq. 8, Alg. 1, Fig. 11)::

    z        = k.features(x, stage 3)                     # EMA encoder k, no gradient
    mask_gen = MixBlock(z, perm_gen, lam_gen)             # Mix Block's own pair
    loss_gen = MCE(k(mix(x, x[perm_gen], mask_gen)))      # gradient -> Mix Block only (k is frozen)
             + w(t) * l_lambda(mask_gen, lam_gen)         # Eq. 7
    mask_cls = MixBlock(z, perm_cls, lam_cls).detach()    # backbone's pair (constant lam near 0/1)
    loss_cls = CE(q(x), y) + MCE(q(mix(x, x[perm_cls], mask_cls)))   # gradient -> q only
    loss     = loss_cls + loss_gen                         # one backward, one SGD step

then ``after_step`` moves k towards q with the AutoMix momentum schedule (base.py).

Choices where the paper and the reference code (OpenMixup) differ; defaults follow the paper,
``AutoMix.reference_params`` collects the reference CIFAR configuration's choices:

- ``lam_embed``: the paper concatenates lambda as a feature channel (Eq. 4-6, Table 9). The
  reference CIFAR configs switch it off; ``lam_embed=False`` reproduces them.
- ``mask_loss_mean``: Eq. 7 holds each sample's mask mean near lambda (``"sample"``, the mean
  of the per-sample terms); the reference applies the margin once to the whole batch's mean
  (``"batch"``), which lets per-sample means scatter freely around lambda.
- ``mask_loss_schedule``: the paper decays the l_lambda weight linearly to 0 (``"linear"``); the
  reference keeps it constant on CIFAR (``"constant"``) and anneals it by cosine on ImageNet
  (``"cosine"``).
- ``mask_adjust``: probability of rescaling the backbone's mask so each sample's mask mean equals
  lambda (reference option, default 0; ``mask_adjust_rule`` "two-sided", the reference's rule).
  ``mask_adjust_lambda="backbone"`` uses the backbone pair's lambda (correct); ``"mixblock"``
  reproduces the reference, which uses the Mix Block pair's lambda.
- ``lam_margin``: the reference replaces the backbone mask by the constant lambda (plain Mixup)
  when lambda <= 0.08 or >= 0.92; 0 disables it.
- ``mixblock_lr_mult``: the reference configs can give the Mix Block its own lr multiplier
  (1 on CIFAR). The method exposes it through ``param_groups()``; the trainer must build its
  optimiser from those groups and scale each group's lr by its ``lr_mult``.
- ``separate_heads``: the reference classifies clean images with one linear head and mixed
  images with another (both on the same backbone), and trains the Mix Block through the EMA
  copy of the mixed head. Off by default (the paper describes one classifier). When on, the
  clean head is the model's own (``online``/``ema`` networks) and the mixed head is scored
  too (``online_mixhead``/``ema_mixhead``).
- The momentum schedule (base.py) holds 0.999 for the first 10 % of iterations and then rises
  by a cosine remapped onto the last 90 %; the reference evaluates its cosine over the whole
  run's progress (so it starts the rise from the cosine's value at 10 %, not from its start).
  Both end at 0.999999; we keep ours.
- Ablation options (defaults: the method as published). ``momentum_pipeline=False`` removes the
  momentum pipeline (AutoMix Fig. 6, Table 10 "(none)"): one pair per step, the Mix Block mixes it
  from the online network q's stage-l features (with gradient: the block is nested in q) and learns
  from q's own mixed loss in the same backward as q, so their gradients are entangled (Eq. 9).
  ``ema_momentum=m`` replaces k's momentum schedule by a constant (Table 10's "+MP(m = 0)": k is a
  copy of q after every step; k is also the scored EMA network, so its score then equals a
  BN-statistics variant of q's). ``clean_ce=False`` drops Eq. 8's CE on clean images (Table 10's
  "CE" column). ``mask_source="random_grid"`` replaces the Mix Block by random grids (Table 9's
  first row, which the paper does not define further: each cell of the stage-l feature grid comes
  from x with probability lam, nearest-upsampled; nothing is learned, so there is no generation term).
- ``loss`` / ``loss_params``: the classifier's loss on its mixed batch; "mce" by default, "dm_ce"
  for the DM paper's AutoMix + DM(CE) (its "dynamic" preset, eta = 1, appendix B.3). The Mix
  Block's generation loss through k stays MCE.

Logs: besides losses and mask statistics, every step logs the lambda-response moments of the
Mix Block's own pair and the fraction of saturated mask values (keys in ``mixblock.py``;
``mixblock.lambda_response`` turns an epoch's averages into correlation, slope and gap, and
``AutoMix.lambda_floor()`` gives the gap a lambda-blind mask would score).

Note: the Mix Block's N(0, 0.01) initialisation makes the attention nearly uniform at the start,
so the first masks are spatially almost constant (logged ``mask_std_gen`` ~1e-4); spatial
structure appears as the q/k weights grow, more slowly for narrow (width < 1) encoders.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidParameterError
from ..losses import soft_ce
from ..mixers.base import MixTarget, check_alpha, sample_beta, sample_perm
from .base import LOSS_DEFAULTS, Method, StepContext, StepOutput, method_loss
from .mixblock import (
    MASK_ADJUST_RULES,
    MASK_LOSS_MEANS,
    HeadSwap,
    MixDisplay,
    adjust_mask_mean,
    attend,
    check_bool,
    check_choice,
    check_init_seed,
    check_range,
    detached_logs,
    eval_mode,
    fresh_head,
    ignore_lambda_floor,
    lambda_planes,
    lambda_response_logs,
    mask_init_generator,
    mask_mean_loss,
    mask_statistics,
    normal_init_,
    split_param_groups,
)
from .registry import METHODS

MASK_LOSS_SCHEDULES = ("linear", "constant", "cosine")
MASK_SOURCES = ("mix_block", "random_grid")
MASK_ADJUST_LAMBDAS = ("backbone", "mixblock")

# The momentum-pipeline hyperparameters every Mix Block method shares (SAMix reuses them).
PIPELINE_DEFAULTS = {
    "alpha": 2.0,  # Beta(alpha, alpha) for both lambdas (paper section 4: alpha = 2)
    "feature_stage": 3,  # "l = 3": stage-3 features of k (256 x width channels, 8x8 at 32 px)
    "lam_margin": 0.08,  # backbone pair falls back to plain Mixup when lam <= m or >= 1 - m
    "mask_loss_weight": 0.1,  # gamma of Eq. 7 at the start of training
    "mask_loss_margin": 0.1,  # epsilon of Eq. 7
    "mask_loss_mean": "sample",  # Eq. 7 per sample (paper); "batch": the reference's batch-mean form
    "mask_loss_schedule": "linear",  # paper: linear decay to 0; reference CIFAR: "constant"
    "mask_adjust": 0.0,  # probability of rescaling the backbone mask mean to lambda
    "mask_adjust_lambda": "backbone",  # "mixblock" = the reference's (wrong) lambda
    "mask_adjust_rule": "two-sided",  # mixblock.adjust_mask_mean; SAMix's paper rule is "one-sided"
    "mixblock_lr_mult": 1.0,  # lr multiplier of the Mix Block's parameter group (param_groups())
    "separate_heads": False,  # reference: clean and mixed images through separate linear heads
    "init_seed": None,  # seed of the Mix Block's N(0, 0.01) init; None: drawn from torch's seeded global RNG
    # Ablations of the AutoMix paper (Table 9, Table 10, Fig. 6); the defaults are the method as published.
    "momentum_pipeline": True,  # False: no MP, the Mix Block mixes from q's features and learns jointly with q
    "ema_momentum": None,  # a constant momentum for k (0: k is a copy of q, Table 10's m = 0); None: the schedule
    "clean_ce": True,  # the CE term on the clean images of Eq. 8 (Table 10's "CE")
    "mask_source": "mix_block",  # "random_grid": Bernoulli(lam) cells of the feature grid (Table 9's first row)
    # The classifier's loss on its mixed batch: "mce" (the paper) or a DM loss (the DM paper's
    # "dynamic" DM(CE) preset, eta = 1); the Mix Block's generation loss stays MCE either way.
    **LOSS_DEFAULTS,
}


# ----------------------------------------------------------------------------------------------
# The momentum pipeline's draws and mixing (SAMix inherits them; shared Mix Block pieces: mixblock.py)
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


def random_grid_mask(feature_shape, lam: float, size, generator: torch.Generator) -> torch.Tensor:
    """[B, 1, H, W] binary mask (weight of x): each cell of the [h, w] feature grid is 1 with
    probability lam, nearest-upsampled to the image ``size`` (AutoMix Table 9's random grids)."""
    b, _, h, w = feature_shape
    cells = (torch.rand(b, 1, h, w, generator=generator) < lam).float()
    return F.interpolate(cells, size=size, mode="nearest")


def scheduled_weight(weight: float, schedule: str, progress: float) -> float:
    """The l_lambda weight at ``progress`` in [0, 1]: linear decay (paper), constant, or cosine decay."""
    if schedule == "linear":
        return weight * (1.0 - progress)
    if schedule == "cosine":
        return weight * (1.0 + math.cos(math.pi * progress)) / 2
    return weight


# ----------------------------------------------------------------------------------------------
# AutoMix's Mix Block
# ----------------------------------------------------------------------------------------------


class MixBlock(nn.Module):
    """AutoMix Mix Block (AutoMix paper, Eq. 4-6; the reference code's CIFAR structure).

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


@METHODS.register("automix")
class AutoMix(Method):
    """AutoMix: Mix Block + momentum pipeline; see the module docstring for the step and options."""

    name = "automix"
    label, color = "AutoMix", "#17becf"
    scored_network = "ema"  # the papers report the momentum (EMA) network
    dm_ce_preset, dm_bce_preset = "dynamic", "cutting"  # DM appendix B.3: a dynamic mixing method
    # 2: l_lambda per sample by default (Eq. 7; mask_loss_mean="sample"), was the batch mean.
    code_version = 2
    default_params = {**PIPELINE_DEFAULTS, "lam_embed": True}
    # Overrides that reproduce the reference code's CIFAR behaviour.
    reference_params = {"lam_embed": False, "mask_loss_schedule": "constant", "mask_adjust_lambda": "mixblock",
                        "mask_loss_mean": "batch"}
    default_min_lr = 0.05
    ema_copies_buffers = False  # k runs in train mode and keeps its own BN statistics

    def __init__(self, model, num_classes: int, **params):
        super().__init__(model, num_classes, **params)
        model.check_stage(self.params["feature_stage"])  # e.g. WRN-28-8 has 3 stages, not 4
        in_channels = model.stage_channels[self.params["feature_stage"]]
        self.mix_loss = method_loss(self.params["loss"], type(self), self.params["loss_params"])
        init_gen = mask_init_generator(self.params["init_seed"])
        self.mix_block = self.build_mix_block(in_channels, init_gen)
        if self.params["separate_heads"]:  # drawn after the Mix Block: its init is the same either way
            self.mix_head = fresh_head(model, init_gen)
            self.mix_head_ema = copy.deepcopy(self.mix_head).requires_grad_(False)

    # -- hooks SAMix overrides -----------------------------------------------------------------

    def build_mix_block(self, in_channels: int, generator: torch.Generator) -> nn.Module:
        return MixBlock(in_channels, self.params["lam_embed"], generator)

    def generation_loss(self, logits: torch.Tensor, target: MixTarget) -> torch.Tensor:
        """Loss of k's prediction on the Mix Block's mixed batch (paper: mixup CE)."""
        return soft_ce(logits, target)

    def mask_loss(self, mask: torch.Tensor, lam: float) -> tuple[torch.Tensor, dict]:
        """Unweighted mask regulariser and its parts for the logs (AutoMix: l_lambda of Eq. 7)."""
        loss = mask_mean_loss(mask, lam, self.params["mask_loss_margin"], self.params["mask_loss_mean"])
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
        check_choice("mask_loss_mean", params["mask_loss_mean"], MASK_LOSS_MEANS)
        check_choice("mask_adjust_rule", params["mask_adjust_rule"], MASK_ADJUST_RULES)
        check_range("mixblock_lr_mult", params["mixblock_lr_mult"], 0.0, math.inf)
        check_bool("separate_heads", params["separate_heads"])
        check_bool("momentum_pipeline", params["momentum_pipeline"])
        check_bool("clean_ce", params["clean_ce"])
        check_choice("mask_source", params["mask_source"], MASK_SOURCES)
        if params["ema_momentum"] is not None:
            check_range("ema_momentum", params["ema_momentum"], 0.0, 1.0)
        if not params["momentum_pipeline"] and params["mask_source"] != "mix_block":
            raise InvalidParameterError("mask_source", params["mask_source"],
                                        "'mix_block' when momentum_pipeline=False (without MP the Mix Block is what "
                                        "learns; random grids learn nothing)")
        if isinstance(params["feature_stage"], bool) or params["feature_stage"] not in (1, 2, 3, 4):
            raise InvalidParameterError("feature_stage", params["feature_stage"], "a stage index in 1..4")
        check_init_seed(params["init_seed"])
        method_loss(params["loss"], cls, params["loss_params"])  # unknown loss or parameter: fails here
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
        if self.params["mask_source"] == "random_grid":
            return random_grid_mask(z.shape, lam, x.shape[-2:], generator).to(x.device)
        with torch.no_grad():
            mask = self.mix_block(z, draws.perm_cls, lam, x.shape[-2:], generator)
            p = self.params["mask_adjust"]
            if p > 0 and float(torch.rand((), generator=generator)) < p:
                target = lam if self.params["mask_adjust_lambda"] == "backbone" else draws.lam_gen
                mask = adjust_mask_mean(mask, target, self.params["mask_adjust_rule"])
        return mask

    def classify(self, network: nn.Module, x: torch.Tensor, mixed: bool) -> torch.Tensor:
        """Logits of ``network`` (``self.model`` or ``self.ema``); mixed images use the mixed head if separate."""
        if not (mixed and self.params["separate_heads"]):
            return network(x)
        head = self.mix_head if network is self.model else self.mix_head_ema
        return head(network.forward_features(x, network.num_stages))

    def generation_terms(self, x, y, z, draws: PairDraws, generator, progress: float):
        """The Mix Block's half of the step on its own pair, through the frozen k.

        Returns (MCE of k on the mix, weighted mask regulariser, the mask, logs); the gradient of
        both losses reaches the Mix Block only (k's parameters need no grad).
        """
        mask_gen = self.mix_block(z, draws.perm_gen, draws.lam_gen, x.shape[-2:], generator)
        target_gen = MixTarget.pair(y, draws.perm_gen, draws.lam_gen)
        loss_gen = self.generation_loss(self.classify(self.ema, mix_pair(x, draws.perm_gen, mask_gen), True),
                                        target_gen)
        mask_reg, mask_parts = self.mask_loss(mask_gen, draws.lam_gen)
        weight = scheduled_weight(self.params["mask_loss_weight"], self.params["mask_loss_schedule"], progress)
        mean_gen, std_gen = mask_statistics(mask_gen)
        logs = {
            "loss_gen": loss_gen, "mask_loss_weight": weight, "lam_gen": draws.lam_gen,
            "mask_mean_gen": mean_gen, "mask_std_gen": std_gen, "mask_mean_gap_gen": (mean_gen - draws.lam_gen).abs(),
            **lambda_response_logs(mask_gen, [draws.lam_gen]), **mask_parts,
        }
        return loss_gen, weight * mask_reg, mask_gen, logs

    def clean_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Eq. 8's CE of q on the clean images (zero with ``clean_ce=False``)."""
        if not self.params["clean_ce"]:
            return x.new_zeros(())
        return F.cross_entropy(self.classify(self.model, x, False), y)

    def training_step(self, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        g = ctx.generator
        draws = draw_pairs(len(x), self.params["alpha"], g, x.device)
        if not self.params["momentum_pipeline"]:
            return self.joint_step(x, y, draws, g, ctx.progress)
        z = self.encoder_features(x)

        # Generation: the Mix Block learns through the frozen k (random grids learn nothing).
        if self.params["mask_source"] == "mix_block":
            loss_gen, mask_term, _, gen_logs = self.generation_terms(x, y, z, draws, g, ctx.progress)
        else:
            loss_gen, mask_term, gen_logs = x.new_zeros(()), x.new_zeros(()), {}

        # Classification: q learns from clean and mixed images; the mask carries no gradient.
        mask_cls = self.classifier_mask(z, x, draws, g)
        target_cls = MixTarget.pair(y, draws.perm_cls, draws.lam_cls)
        loss_clean = self.clean_loss(x, y)
        loss_mix = self.mix_loss(self.classify(self.model, mix_pair(x, draws.perm_cls, mask_cls), True), target_cls)

        loss = loss_clean + loss_mix + loss_gen + mask_term
        mean_cls, std_cls = mask_statistics(mask_cls)
        logs = {
            "loss_clean": loss_clean, "loss_mix": loss_mix, **gen_logs,
            "lam_cls": draws.lam_cls, "mask_mean_cls": mean_cls, "mask_std_cls": std_cls,
        }
        return StepOutput(loss, detached_logs(logs))

    def joint_step(self, x, y, draws: PairDraws, generator, progress: float) -> StepOutput:
        """The step without the momentum pipeline (``momentum_pipeline=False``): on the Mix Block's own
        pair, the mask comes from q's features and q's mixed loss trains q and the Mix Block together."""
        z = self.model.forward_features(x, self.params["feature_stage"])  # with gradient: nested in q
        mask = self.mix_block(z, draws.perm_gen, draws.lam_gen, x.shape[-2:], generator)
        target = MixTarget.pair(y, draws.perm_gen, draws.lam_gen)
        loss_mix = self.mix_loss(self.classify(self.model, mix_pair(x, draws.perm_gen, mask), True), target)
        mask_reg, mask_parts = self.mask_loss(mask, draws.lam_gen)
        weight = scheduled_weight(self.params["mask_loss_weight"], self.params["mask_loss_schedule"], progress)
        loss_clean = self.clean_loss(x, y)
        mean, std = mask_statistics(mask)
        logs = {
            "loss_clean": loss_clean, "loss_mix": loss_mix, "mask_loss_weight": weight, "lam_gen": draws.lam_gen,
            "mask_mean_gen": mean, "mask_std_gen": std, "mask_mean_gap_gen": (mean - draws.lam_gen).abs(),
            **lambda_response_logs(mask, [draws.lam_gen]), **mask_parts,
        }
        return StepOutput(loss_clean + loss_mix + weight * mask_reg, detached_logs(logs))

    # -- trainer hooks -------------------------------------------------------------------------

    def ema_momentum(self, ctx: StepContext) -> float:
        """k's momentum: the run's schedule, or the constant ``ema_momentum`` option (Table 10's m)."""
        constant = self.params["ema_momentum"]
        return super().ema_momentum(ctx) if constant is None else float(constant)

    def param_groups(self) -> list[dict]:
        """Optimiser groups: one group, or the Mix Block apart with ``lr_mult = mixblock_lr_mult``."""
        return split_param_groups(self, [self.mix_block], self.params["mixblock_lr_mult"])

    @torch.no_grad()
    def after_step(self, ctx: StepContext) -> None:
        super().after_step(ctx)
        if self.params["separate_heads"]:  # the mixed head's EMA copy follows with the same momentum
            m = self.ema_momentum(ctx)
            for p_ema, p in zip(self.mix_head_ema.parameters(), self.mix_head.parameters()):
                p_ema.mul_(m).add_(p.detach(), alpha=1 - m)

    def eval_networks(self) -> dict[str, nn.Module]:
        networks = super().eval_networks()
        if self.params["separate_heads"]:
            networks["online_mixhead"] = HeadSwap(self.model, self.mix_head)
            networks["ema_mixhead"] = HeadSwap(self.ema, self.mix_head_ema)
        return networks

    def lambda_floor(self) -> float:
        """E|mask mean - lambda| of the best lambda-blind mask under this run's Beta(alpha, alpha)."""
        return self.lambda_floor_of(self.params)

    @classmethod
    def lambda_floor_of(cls, params: dict) -> float:
        """lambda_floor for a run with ``params`` (the defaults updated by its method_params)."""
        return ignore_lambda_floor(float(params["alpha"]), 2, "beta")

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

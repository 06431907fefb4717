"""AdAutoMix (Qin, Jin et al., "Adversarial AutoMixup", ICLR 2024): an adversarial N-image mixing generator.

Paper step (Eq. 2-16, Alg. 1), ``schedule="paper"`` (default)::

    lam_1..N   = Beta(a, a) draws / their sum          (reference; "dirichlet" as an option)
    sources    = x, x[perm_2], ..., x[perm_N]
    z_n        = k.features(x_n, stage 3)              # EMA encoder, no gradient
    masks      = G(z_1..z_N)                           # [B, N, H, W], softmax over N per pixel
    x_mix      = sum_n masks_n * x_n                    # Eq. 7
    target W minimises  L_amce(W; x_mix) + a L_mce(W; sum_n lam_n x_n) + (1 - a) L_ace(W)   (Eq. 14)
    generator maximises L_amce(W; x_mix) - b L_amce(k; x_mix) + (1 - b) L_cos(k)            (Eq. 15-16)

with a = ``mce_weight`` (0.5), b = ``teacher_weight`` (0.3), L_cos = sum_n lam_n cos(k(x_mix), k(x_n)).
L_ace's weight is 1 - a unless ``ace_weight`` sets it apart (Tables 5 and 8 add L_ace and L_mce one at a time).
The trainer does one backward and one SGD step, so x_mix enters the target network through a
gradient-reversal function: forward identity, backward multiplies by -1. The single scalar

    L_amce(W; GRL(x_mix)) + a L_mce + (1 - a) L_ace + b L_amce(k; x_mix) - (1 - b) L_cos

therefore gives W the gradient of Eq. 14 and the generator the gradient of minus Eq. 15, i.e.
SGD descends for W and ascends Eq. 15 for the generator (with the backbone's learning rate
standing in for the paper's gamma). The EMA teacher's parameters need no grad, so the teacher
terms reach only the generator (paper: "independent of W"). L_ace (Eq. 2) is the lambda-weighted
CE of the clean sources; the sources are permutations of one batch and the lambdas are shared by
the batch, so it equals the CE of the clean batch, computed once.

Reference options:

- ``cosine_sign="reference"``: the official code adds +(1 - b) L_cos to the generator's
  minimised loss, pushing the similarity down; the paper keeps the mix similar (default "paper").
- ``schedule="reference"``: the official code builds two mixes per step with independent
  permutations: the target trains on one with a detached mask (no gradient to the generator);
  the generator learns from the other only through the teacher, alternating every iteration
  between an adversarial step (even steps: minimise -b L_amce(k) +/- (1 - b) L_cos) and a
  cooperative AutoMix step (odd steps: minimise L_amce(k)).
- ``cosine_on``: the paper's psi outputs class probabilities ("probs", default); the reference
  takes the cosine of the teacher's logits ("logits").
- ``lam_embed``: the paper concatenates lambda_n as a feature channel (default); the reference
  CIFAR configs do not (False).

- ``lam_margin``: the official CIFAR configs set 0.03 (the class default there, -1, disables
  it): when the first source's lambda is <= m or >= 1 - m, the target network's generated mix is
  replaced by the plain linear N-mix (constant masks lambda_n) for that step, so in the paper
  schedule the generator gets no ascent gradient that step. The paper describes no margin, so
  our default is 0 (off). Not implemented: the OpenMixup port's flipped comparison, which takes
  the fallback whenever lambda_1 > m, i.e. almost always.
- ``mixblock_lr_mult``: lr multiplier of the generator's parameter group (``param_groups()``;
  the trainer scales each group's lr by its ``lr_mult``). Note that in the paper schedule
  ``ascent_scale`` scales only the adversarial part of the generator's gradient.

``AdAutoMix.reference_params`` collects these. Not implemented: the reference's separate clean
and mixed classifier heads (AutoMix and SAMix have ``separate_heads``).

Logs: losses, mask statistics (``mask_std``, ``mask_mean_gap``, ``mask_max``, each also for the
target's mix with suffix ``_cls``), and the lambda-response moments shared with AutoMix and
SAMix over every (sample, source) of the generator's mix (keys in ``mixblock.py``;
``AdAutoMix.lambda_floor()`` is the gap a lambda-blind generator would score).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scipy.special import gammaincinv
from torch import nn

from ..errors import InvalidParameterError
from ..losses import soft_ce
from ..mixers.base import MixTarget, check_alpha, sample_beta, sample_perm
from .base import Method, StepContext, StepOutput
from .mixblock import (
    MixDisplay,
    attend,
    check_choice,
    check_init_seed,
    check_range,
    detached_logs,
    eval_mode,
    ignore_lambda_floor,
    lambda_planes,
    lambda_response_logs,
    mask_init_generator,
    normal_init_,
    split_param_groups,
)
from .registry import METHODS

LAMBDA_SAMPLERS = ("normalized_beta", "dirichlet")
SCHEDULES = ("paper", "reference")
COSINE_SIGNS = ("paper", "reference")
COSINE_ON = ("probs", "logits")
UPSAMPLE_MODES = ("bilinear", "nearest")


class _GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by -scale (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """x in the forward pass; -scale * dL/dx flows back to whatever produced x."""
    return _GradientReversal.apply(x, scale)


def sample_mix_weights(n: int, alpha: float, method: str, generator: torch.Generator) -> list[float]:
    """N mixing ratios summing to 1: Beta(a, a) draws normalised by their sum (reference) or Dirichlet(a).

    Dirichlet draws are Gamma(a) draws normalised, each by inverse CDF of a generator uniform.
    """
    if method == "dirichlet":
        u = torch.rand(n, generator=generator, dtype=torch.float64).clamp_min(1e-12).numpy()
        draws = [float(v) for v in gammaincinv(alpha, u)]
    else:
        draws = sample_beta(alpha, generator, size=n).double().tolist()
    total = sum(draws)
    if total <= 0:  # every draw underflowed (tiny alpha): fall back to equal weights
        return [1.0 / n] * n
    return [d / total for d in draws]


class AdAutoMixGenerator(nn.Module):
    """Attention-based N-image mask generator (AdAutoMix paper, Eq. 5-7, Fig. 3).

    Per image: q_n, k_n = ReLU(1x1 conv C(+1) -> C/2), v_n = 1x1 conv C(+1) -> 1;
    P_n = softmax(sum_{m != n} q_n k_m^T / sqrt(C/2)) v_n; masks = softmax over n of the
    upsampled P_n. Returns [B, N, H, W] masks that sum to 1 per pixel.
    """

    def __init__(self, in_channels: int, lam_embed: bool, upsample: str, generator: torch.Generator):
        super().__init__()
        cin, hidden = in_channels + int(lam_embed), max(1, in_channels // 2)
        self.lam_embed, self.upsample = lam_embed, upsample
        self.query = nn.Conv2d(cin, hidden, 1)
        self.key = nn.Conv2d(cin, hidden, 1)
        self.value = nn.Conv2d(cin, 1, 1)
        normal_init_(self, generator)

    def forward(self, feats: list[torch.Tensor], lams: list[float], size) -> torch.Tensor:
        if self.lam_embed:
            feats = [torch.cat([z, lambda_planes(z, lam)], 1) for z, lam in zip(feats, lams)]
        b, _, h, w = feats[0].shape
        z = torch.stack(feats, 1).flatten(0, 1)  # [B*N, C, h, w]: one conv call for all sources
        n = len(feats)
        q = F.relu(self.query(z)).flatten(2).view(b, n, -1, h * w)  # [B, N, d, hw]
        k = F.relu(self.key(z)).flatten(2).float().view(b, n, -1, h * w)  # float32 before summing
        v = self.value(z).flatten(2).view(b, n, h * w, 1)
        k_others = k.sum(1, keepdim=True) - k  # sum_{m != n} k_m, so q_n^T k_others = sum_{m != n} q_n^T k_m
        p = attend(q, k_others, v).view(b, n, h, w)
        mode = {"mode": self.upsample} if self.upsample == "nearest" else {"mode": "bilinear", "align_corners": False}
        return torch.softmax(F.interpolate(p, size=size, **mode), dim=1)  # float32 even under autocast


def mix_sources(sources: list[torch.Tensor], weights) -> torch.Tensor:
    """sum_n weights_n * sources_n; weights are [B, N, H, W] masks or N floats."""
    if torch.is_tensor(weights):
        return sum(weights[:, i : i + 1] * s for i, s in enumerate(sources))
    return sum(w * s for w, s in zip(weights, sources))


def weighted_cosine(mix_out: torch.Tensor, source_outs: list[torch.Tensor], lams: list[float]) -> torch.Tensor:
    """L_cos = mean over the batch of sum_n lam_n cos(out(x_mix), out(x_n))."""
    return sum(lam * F.cosine_similarity(mix_out, o, dim=-1) for lam, o in zip(lams, source_outs)).mean()


def mask_logs(masks: torch.Tensor, lams: list[float], suffix: str = "") -> dict:
    """Collapse indicators of N-way masks: spatial std, |mask mean - lambda| per source, mean max weight."""
    m = masks.detach()
    gap = (m.mean(dim=(0, 2, 3)) - torch.tensor(lams, device=m.device, dtype=m.dtype)).abs().mean()
    return {f"mask_std{suffix}": m.flatten(2).std(dim=2).mean(), f"mask_mean_gap{suffix}": gap,
            f"mask_max{suffix}": m.max(dim=1).values.mean()}


@METHODS.register("adautomix")
class AdAutoMix(Method):
    """AdAutoMix: target network vs. an adversarial N-image mask generator; see the module docstring."""

    name = "adautomix"
    label, color = "AdAutoMix", "#08306b"
    scored_network = "ema"  # the papers report the momentum (EMA) network
    default_params = {
        "alpha": 1.0,  # Beta(alpha, alpha) concentration ("lambda = 1.0" in appendix A.2)
        "num_sources": 3,  # N
        "mce_weight": 0.5,  # paper's alpha (Eq. 10)
        "ace_weight": None,  # weight of L_ace; None: 1 - mce_weight (Eq. 10); set apart for Table 5/8's ablation rows
        "teacher_weight": 0.3,  # paper's beta (Eq. 11)
        "cosine_weight": None,  # None: 1 - teacher_weight, as in the paper
        "lambda_sampler": "normalized_beta",  # reference; "dirichlet" option
        "schedule": "paper",  # "reference": two mixes, alternating adversarial / cooperative
        "cosine_sign": "paper",  # "reference": the official code's sign (similarity pushed down)
        "cosine_on": "probs",  # "logits": the official code
        "lam_embed": True,  # paper; reference CIFAR: False
        "upsample": "bilinear",
        "ascent_scale": 1.0,  # gradient-reversal factor: generator lr / backbone lr
        "feature_stage": 3,
        "init_seed": None,
        "lam_margin": 0.0,  # paper: none; official CIFAR configs 0.03 (plain N-mix for the target near 0/1)
        "mixblock_lr_mult": 1.0,  # lr multiplier of the generator's parameter group (param_groups())
    }
    # Overrides that reproduce the official repository's behaviour.
    reference_params = {"schedule": "reference", "cosine_sign": "reference", "cosine_on": "logits", "lam_embed": False,
                        "lam_margin": 0.03}
    default_min_lr = 0.05
    ema_copies_buffers = False  # the teacher runs in train mode and keeps its own BN statistics

    def __init__(self, model, num_classes: int, **params):
        super().__init__(model, num_classes, **params)
        model.check_stage(self.params["feature_stage"])  # e.g. WRN-28-8 has 3 stages, not 4
        in_channels = model.stage_channels[self.params["feature_stage"]]
        init_gen = mask_init_generator(self.params["init_seed"])
        self.generator_net = AdAutoMixGenerator(
            in_channels, self.params["lam_embed"], self.params["upsample"], init_gen)

    @classmethod
    def validate_params(cls, params: dict) -> dict:
        params = super().validate_params(params)
        check_alpha(params["alpha"])
        n = params["num_sources"]
        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 5:
            raise InvalidParameterError("num_sources", n, "an integer in 2..5")
        check_range("mce_weight", params["mce_weight"], 0.0, 1.0)
        if params["ace_weight"] is not None:
            check_range("ace_weight", params["ace_weight"], 0.0, 1.0)
        check_range("teacher_weight", params["teacher_weight"], 0.0, 1.0)
        if params["cosine_weight"] is not None:
            check_range("cosine_weight", params["cosine_weight"], 0.0, math.inf)
        check_range("ascent_scale", params["ascent_scale"], 0.0, math.inf)
        check_range("lam_margin", params["lam_margin"], 0.0, 0.5)
        check_range("mixblock_lr_mult", params["mixblock_lr_mult"], 0.0, math.inf)
        check_choice("lambda_sampler", params["lambda_sampler"], LAMBDA_SAMPLERS)
        check_choice("schedule", params["schedule"], SCHEDULES)
        check_choice("cosine_sign", params["cosine_sign"], COSINE_SIGNS)
        check_choice("cosine_on", params["cosine_on"], COSINE_ON)
        check_init_seed(params["init_seed"])
        check_choice("upsample", params["upsample"], UPSAMPLE_MODES)
        if isinstance(params["feature_stage"], bool) or params["feature_stage"] not in (1, 2, 3, 4):
            raise InvalidParameterError("feature_stage", params["feature_stage"], "a stage index in 1..4")
        return params

    # -- pieces --------------------------------------------------------------------------------

    def param_groups(self) -> list[dict]:
        """Optimiser groups: one group, or the generator apart with ``lr_mult = mixblock_lr_mult``."""
        return split_param_groups(self, [self.generator_net], self.params["mixblock_lr_mult"])

    def lambda_floor(self) -> float:
        """E|mask mean - lambda| of the best lambda-blind generator under this run's lambda sampler."""
        return self.lambda_floor_of(self.params)

    @classmethod
    def lambda_floor_of(cls, params: dict) -> float:
        """lambda_floor for a run with ``params`` (the defaults updated by its method_params)."""
        return ignore_lambda_floor(float(params["alpha"]), params["num_sources"], params["lambda_sampler"])

    def margin_fallback(self, lams: list[float]) -> bool:
        """Whether lam_margin sends the target network the plain linear N-mix this step."""
        m = self.params["lam_margin"]
        return m > 0 and (lams[0] <= m or lams[0] >= 1 - m)

    @property
    def cosine_weight(self) -> float:
        w = self.params["cosine_weight"]
        return 1.0 - self.params["teacher_weight"] if w is None else w

    def draw_perms(self, batch_size: int, generator, device) -> list[torch.Tensor]:
        """Source 1 is the batch as given; sources 2..N are independent permutations of it."""
        ident = torch.arange(batch_size, device=device)
        return [ident] + [sample_perm(batch_size, generator, device) for _ in range(self.params["num_sources"] - 1)]

    def teacher_pass(self, x: torch.Tensor):
        """Stage-l features and logits of the clean batch from the EMA teacher, without gradient."""
        with torch.no_grad():
            z = self.ema.forward_features(x, self.params["feature_stage"])
            return z, self.ema.forward_from(z, self.params["feature_stage"])

    def generate(self, x, z, perms, lams):
        """(masks [B, N, H, W], x_mix) for the sources x[perm_n]."""
        masks = self.generator_net([z[p] for p in perms], lams, x.shape[-2:])
        return masks, mix_sources([x[p] for p in perms], masks)

    def target_for(self, y, perms, lams) -> MixTarget:
        labels = torch.stack([y[p] for p in perms], 1)
        weights = torch.tensor(lams, dtype=torch.float32, device=y.device).expand(len(y), -1)
        return MixTarget(labels, weights)

    def teacher_terms(self, x_mix, target, clean_logits_k, perms, lams):
        """(L_amce of the teacher on x_mix, L_cos); both carry gradient to the generator only."""
        logits_mix_k = self.ema(x_mix)
        loss_k = soft_ce(logits_mix_k, target)
        probs = self.params["cosine_on"] == "probs"

        def prep(logits):
            return torch.softmax(logits.float(), -1) if probs else logits.float()

        cos = weighted_cosine(prep(logits_mix_k), [prep(clean_logits_k[q]) for q in perms], lams)
        return loss_k, cos

    # -- the step ------------------------------------------------------------------------------

    def training_step(self, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        g, p = ctx.generator, self.params
        lams = sample_mix_weights(p["num_sources"], p["alpha"], p["lambda_sampler"], g)
        perms = self.draw_perms(len(x), g, x.device)
        z, clean_logits_k = self.teacher_pass(x)
        target = self.target_for(y, perms, lams)
        cos_sign = -1.0 if p["cosine_sign"] == "paper" else 1.0  # sign in the generator's minimised loss

        masks, x_mix = self.generate(x, z, perms, lams)
        if p["schedule"] == "paper":  # one mix; the target sees it through the gradient reversal
            perms_cls, masks_cls, target_cls, adversarial = perms, masks, target, True
            x_cls = reverse_gradient(x_mix, p["ascent_scale"])
        else:  # reference: a second, detached mix for the target; adversarial on even steps
            perms_cls = self.draw_perms(len(x), g, x.device)
            with torch.no_grad():
                masks_cls, x_cls = self.generate(x, z, perms_cls, lams)
            target_cls, adversarial = self.target_for(y, perms_cls, lams), ctx.step % 2 == 0
        fallback = self.margin_fallback(lams)
        if fallback:  # lam_margin: the target trains on the plain linear N-mix, no generated mask
            masks_cls = torch.cat([torch.full_like(masks[:, :1], lam) for lam in lams], 1)
            x_cls = mix_sources([x[q] for q in perms_cls], lams)
            adversarial = adversarial and p["schedule"] != "paper"

        # Target network (Eq. 14): generated mix + linear N-mix + clean CE.
        loss_amce = soft_ce(self.model(x_cls), target_cls)
        loss_mce = soft_ce(self.model(mix_sources([x[q] for q in perms_cls], lams)), target_cls)
        loss_ace = F.cross_entropy(self.model(x), y)
        ace_weight = 1 - p["mce_weight"] if p["ace_weight"] is None else p["ace_weight"]
        loss_target = loss_amce + p["mce_weight"] * loss_mce + ace_weight * loss_ace

        # Generator regularisers through the frozen teacher (Eq. 15). In the paper schedule the
        # ascent on the target's L_amce reaches the generator through the gradient reversal above.
        loss_k, cos = self.teacher_terms(x_mix, target, clean_logits_k, perms, lams)
        if p["schedule"] == "paper":
            loss_gen = p["teacher_weight"] * loss_k + cos_sign * self.cosine_weight * cos
        elif adversarial:
            loss_gen = -p["teacher_weight"] * loss_k + cos_sign * self.cosine_weight * cos
        else:
            loss_gen = loss_k

        logs = {
            "loss_amce": loss_amce, "loss_mce": loss_mce, "loss_ace": loss_ace, "loss_teacher": loss_k,
            "cosine": cos, "loss_generator": loss_gen, "adversarial": float(adversarial),
            "lam_margin_fallback": float(fallback),
            **mask_logs(masks, lams), **mask_logs(masks_cls, lams, suffix="_cls"),
            **{f"lam_{i + 1}": lam for i, lam in enumerate(lams)},
            **lambda_response_logs(masks, lams),
        }
        return StepOutput(loss_target + loss_gen, detached_logs(logs))

    @torch.no_grad()
    def mix_for_display(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> MixDisplay:
        """The generator's N masks for one draw of lambdas and permutations, in eval mode."""
        p = self.params
        lams = sample_mix_weights(p["num_sources"], p["alpha"], p["lambda_sampler"], generator)
        perms = self.draw_perms(len(x), generator, x.device)
        with eval_mode(self):
            z, _ = self.teacher_pass(x)
            masks, x_mix = self.generate(x, z, perms, lams)
        weights = torch.tensor(lams, device=x.device).expand(len(x), -1)
        return MixDisplay([x[q] for q in perms], masks, x_mix, weights)

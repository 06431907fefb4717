"""Pieces the learned-mask methods share: AutoMix, SAMix and AdAutoMix.

Each method file holds its own method (``automix.py``: the Mix Block and the momentum pipeline;
``samix.py``: Mix Block+; ``adautomix.py``: the N-image generator); what they have in common
lives here, once:

- building blocks: the N(0, 0.01) initialisation, the fp32 attention, the constant lambda plane;
- the mask-mean regulariser l_lambda (AutoMix, ECCV 2022, Eq. 7) and the lambda adjusting of
  the backbone's mask (AutoMix reference option; SAMix, section 3.2);
- logs: mask statistics, and one set of lambda-response keys for all three methods, with the
  function that turns an epoch's averaged logs into correlation, slope and gap
  (:func:`lambda_response`) and the gap a mask that ignores lambda would score
  (:func:`ignore_lambda_floor`);
- optimiser parameter groups with the mask module's lr multiplier (``split_param_groups``),
  and the second (mixed-sample) classifier head of the reference's separate-heads option;
- parameter validation, the mask module's initialisation generator, eval mode;
- :class:`MixDisplay`, what a method's ``mix_for_display`` returns (``mixrepro.visualize``
  draws it; the methods never import plotting code).
"""
from __future__ import annotations

import copy
import functools
import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import InvalidParameterError
from ..validation import check_bool, check_choice, check_range  # noqa: F401  (the methods import them here)

# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Mask losses and lambda adjusting (AutoMix and SAMix)
# ----------------------------------------------------------------------------------------------


MASK_LOSS_MEANS = ("sample", "batch")
MASK_ADJUST_RULES = ("two-sided", "one-sided")


def mask_mean_loss(mask: torch.Tensor, lam: float, margin: float, mean: str) -> torch.Tensor:
    """l_lambda without its weight (AutoMix, ECCV 2022, Eq. 7): max(|lam - mean(mask)| - margin, 0).

    ``mean="sample"`` (the paper: Eq. 7 takes the spatial mean of each sample's mask s_i, so each
    sample is held near lambda) averages the per-sample terms over the batch; ``"batch"`` (the
    reference code) applies the margin once to the mean over the whole batch, so masks whose
    means scatter around lambda cost nothing. ``mask`` [B, 1, H, W] is the weight of x (so
    |lam - mean(mask_i)| = |1 - mean(mask_j) - lam|, the reference form).
    """
    check_choice("mask_loss_mean", mean, MASK_LOSS_MEANS)
    if mean == "batch":
        return torch.clamp((lam - mask.mean()).abs() - margin, min=0.0)
    per_sample = mask.mean(dim=tuple(range(1, mask.dim())))
    return torch.clamp((lam - per_sample).abs() - margin, min=0.0).mean()


def adjust_mask_mean(mask: torch.Tensor, lam: float, rule: str = "two-sided") -> torch.Tensor:
    """Lambda adjusting of each sample's mask [B, 1, H, W] (the weight of x), kept in [0, 1].

    ``"two-sided"`` (the AutoMix reference's ``mask_adjust``): the mean becomes exactly lam. Mean
    above lam: scale the mask down (mask * lam / mean); below: scale its complement down
    (1 - (1 - mask) * (1 - lam) / (1 - mean)).

    ``"one-sided"`` (SAMix, section 3.2): only a mask whose mean is below lam is rescaled, by
    lam / mean; masks at or above lam are left alone. The paper does not say what happens to
    values pushed above 1; we clip them at 1 (a weight above 1 would extrapolate the images),
    so a mask that is already near 1 somewhere ends with a mean somewhat below lam.
    """
    check_choice("mask_adjust_rule", rule, MASK_ADJUST_RULES)
    mean = mask.mean(dim=(1, 2, 3), keepdim=True).clamp(1e-6, 1 - 1e-6)
    down = mask * (lam / mean)
    if rule == "one-sided":
        return torch.where(mean < lam, down.clamp(max=1.0), mask)
    up = 1 - (1 - mask) * ((1 - lam) / (1 - mean))
    return torch.where(mean > lam, down, up)


# ----------------------------------------------------------------------------------------------
# Logs
# ----------------------------------------------------------------------------------------------


def mask_statistics(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch mean, mean per-sample spatial std) of a [B, 1, H, W] mask: std -> 0 means a collapsed Mix Block."""
    m = mask.detach()
    return m.mean(), m.flatten(1).std(dim=1).mean()


def detached_logs(values: dict) -> dict:
    """StepOutput.logs: tensors detached as 0-d float tensors, numbers as they are.

    No ``.item()`` or ``float()`` here: reading a GPU tensor waits for the device, and the
    training loop sums the logs over an epoch on the device and reads them once per epoch.
    """
    return {k: v.detach().float().reshape(()) if torch.is_tensor(v) else v for k, v in values.items()}


# The lambda response: one set of keys for AutoMix, SAMix and AdAutoMix. Per step each method
# logs the moments below over its units (AutoMix/SAMix: the samples of the Mix Block's own pair,
# m = the spatial mean of x's mask, lam = that pair's lambda; AdAutoMix: every (sample, source),
# m = the spatial mean of that source's mask, lam = its lambda). The trainer averages each key
# over the epoch's steps (equal batches), which gives the epoch's moments over all units, and
# ``lambda_response`` turns them into a correlation and a slope.
LAMRESP_M = "lamresp_m"  # E[m]
LAMRESP_LAM = "lamresp_lam"  # E[lam]
LAMRESP_M_LAM = "lamresp_m_lam"  # E[m lam]
LAMRESP_M2 = "lamresp_m2"  # E[m^2]
LAMRESP_LAM2 = "lamresp_lam2"  # E[lam^2]
LAMRESP_ABS_GAP = "lamresp_abs_gap"  # E|m - lam|
MASK_SATURATED = "mask_saturated"  # fraction of mask values within SATURATION_BAND of 0 or 1
LAMBDA_RESPONSE_KEYS = (LAMRESP_M, LAMRESP_LAM, LAMRESP_M_LAM, LAMRESP_M2, LAMRESP_LAM2, LAMRESP_ABS_GAP,
                        MASK_SATURATED)
SATURATION_BAND = 0.01


def lambda_response_logs(masks: torch.Tensor, lams) -> dict:
    """One step's lambda-response moments (keys ``LAMBDA_RESPONSE_KEYS``) of masks [B, N, H, W].

    ``masks[:, n]`` is the weight of source n and ``lams[n]`` (Python floats) its lambda; AutoMix
    and SAMix pass x's mask [B, 1, H, W] and ``[lam]``. Mask moments are detached tensors
    (no device sync); lambda moments are Python floats.
    """
    m = masks.detach().float().mean(dim=(2, 3))  # [B, N] per-sample, per-source mask means
    lams = [float(v) for v in lams]
    n = len(lams)
    col = m.mean(0)  # [N]
    return {
        LAMRESP_M: m.mean(),
        LAMRESP_LAM: sum(lams) / n,
        LAMRESP_M_LAM: sum(lam * col[i] for i, lam in enumerate(lams)) / n,
        LAMRESP_M2: (m * m).mean(),
        LAMRESP_LAM2: sum(lam * lam for lam in lams) / n,
        LAMRESP_ABS_GAP: sum((m[:, i] - lam).abs().mean() for i, lam in enumerate(lams)) / n,
        MASK_SATURATED: mask_saturation(masks),
    }


def mask_saturation(masks: torch.Tensor, band: float = SATURATION_BAND) -> torch.Tensor:
    """Fraction of mask values within ``band`` of 0 or 1: near 1 means saturated (binary or constant) masks."""
    m = masks.detach()
    return ((m <= band) | (m >= 1 - band)).float().mean()


def lambda_response(row: dict, floor: float | None = None) -> dict:
    """Correlation and slope of mask mean against lambda, and E|m - lam|, from an epoch's averaged logs.

    ``row`` holds the ``LAMBDA_RESPONSE_KEYS`` averaged over an epoch (a training loop epoch row,
    or the logs of one step). correlation = cov(m, lam) / (sd(m) sd(lam)) and slope = cov / var(lam)
    are those of the least-squares line m ~ lam over all the epoch's units; both are NaN where a
    variance is zero (e.g. one step of AutoMix, whose lambda is shared by the batch). A Mix Block
    that follows lambda has correlation and slope near 1 and a small gap; one that ignores lambda
    has correlation near 0 and a gap of at least ``floor`` (see :func:`ignore_lambda_floor`),
    returned beside it when given.
    """
    missing = [k for k in LAMBDA_RESPONSE_KEYS[:6] if k not in row]
    if missing:
        raise InvalidParameterError("epoch row", sorted(row)[:8], f"a row with the keys {list(missing)}")
    m, lam = float(row[LAMRESP_M]), float(row[LAMRESP_LAM])
    cov = float(row[LAMRESP_M_LAM]) - m * lam
    var_m = float(row[LAMRESP_M2]) - m * m
    var_lam = float(row[LAMRESP_LAM2]) - lam * lam
    tiny = 1e-12
    out = {
        "correlation": cov / math.sqrt(var_m * var_lam) if var_m > tiny and var_lam > tiny else math.nan,
        "slope": cov / var_lam if var_lam > tiny else math.nan,
        "abs_gap": float(row[LAMRESP_ABS_GAP]),
    }
    if floor is not None:
        out["floor"] = float(floor)
    return out


LAMBDA_SAMPLERS = ("beta", "normalized_beta", "dirichlet")


@functools.lru_cache(maxsize=32)
def ignore_lambda_floor(alpha: float, num_sources: int = 2, sampler: str = "beta") -> float:
    """The smallest E|m - lam| a mask whose mean m ignores lambda can score: E|lam - median(lam)|.

    Whatever a lambda-blind mask's means are, E|m - lam| >= min_c E|c - lam|, reached at the
    median of lam's distribution. ``sampler`` is how the lambdas are drawn:

    - ``"beta"``: lam ~ Beta(alpha, alpha), the two-image lambda of AutoMix and SAMix
      (Beta(2, 2): exactly 3/16 = 0.1875);
    - ``"normalized_beta"``: lam_1 = b_1 / (b_1 + ... + b_N), b_n ~ Beta(alpha, alpha), AdAutoMix's
      N-image lambdas (Beta(1, 1), N = 3: 0.144);
    - ``"dirichlet"``: lam_1 ~ Beta(alpha, (N - 1) alpha), the Dirichlet marginal.

    Deterministic quadrature on quantile grids (midpoint rule in each Beta draw's quantile):
    1-D with 200,000 points for the Beta marginals, N-D with about 4 million points for the
    normalised draws (error below 1e-3 for N <= 5). In numpy, whose float sums do not depend on
    the thread count (torch's parallel reductions do: the pages that print this floor must read
    the same on any machine).
    """
    from scipy.special import betaincinv

    check_choice("sampler", sampler, LAMBDA_SAMPLERS)
    if isinstance(num_sources, bool) or not isinstance(num_sources, int) or num_sources < 2:
        raise InvalidParameterError("num_sources", num_sources, "an integer >= 2")
    if sampler == "beta" and num_sources != 2:
        raise InvalidParameterError("num_sources", num_sources, "2 for the two-image 'beta' sampler")
    if sampler == "normalized_beta":
        k = max(8, int(round(4e6 ** (1 / num_sources))))
        q = betaincinv(alpha, alpha, (np.arange(k) + 0.5) / k)
        grids = np.meshgrid(*([q] * num_sources), indexing="ij", sparse=True)
        lam = (grids[0] / sum(grids)).ravel()
    else:
        k = 200_000
        b = alpha if sampler == "beta" else (num_sources - 1) * alpha
        lam = betaincinv(alpha, b, (np.arange(k) + 0.5) / k)
    return float(np.abs(lam - np.median(lam)).mean())


# ----------------------------------------------------------------------------------------------
# Validation, initialisation generator, modes
# ----------------------------------------------------------------------------------------------


@contextmanager
def eval_mode(module: nn.Module):
    """Run ``module`` in eval mode (no BN statistic updates, no dropout), then restore its mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


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


# ----------------------------------------------------------------------------------------------
# Optimiser groups and separate classifier heads
# ----------------------------------------------------------------------------------------------


def split_param_groups(method: nn.Module, mask_modules, lr_mult: float) -> list[dict]:
    """The optimiser's parameter groups: the mask modules' parameters get ``"lr_mult": lr_mult``.

    With ``lr_mult == 1`` a single group of every trainable parameter, in ``method.parameters()``
    order: the optimiser the trainer builds from ``method.parameters()``, bit for bit. Otherwise
    two groups (everything else first); the trainer multiplies its scheduled lr by a group's
    ``lr_mult`` (the reference configs' ``paramwise_options`` lr multiplier of the Mix Block).
    """
    trainable = [p for p in method.parameters() if p.requires_grad]
    if lr_mult == 1.0:
        return [{"params": trainable}]
    mask_ids = {id(p) for module in mask_modules for p in module.parameters()}
    return [{"params": [p for p in trainable if id(p) not in mask_ids]},
            {"params": [p for p in trainable if id(p) in mask_ids], "lr_mult": float(lr_mult)}]


def fresh_head(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """A second classifier head shaped like ``model.head``, its linear layers freshly initialised.

    For the reference's separate clean / mixed heads: both read the same last-stage features.
    Norm layers inside the head (if any) are copied at their initial values (1, 0).
    """
    from ..models.base import init_linear

    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        raise InvalidParameterError("separate_heads", True, "a model with a .head module (StagedNet)")
    head = copy.deepcopy(head)
    for m in head.modules():
        if isinstance(m, nn.Linear):
            init_linear(m, generator)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
            m.reset_running_stats()
    return head


class HeadSwap(nn.Module):
    """``network`` with ``head`` in place of its own: head(network.forward_features(x, last stage))."""

    def __init__(self, network: nn.Module, head: nn.Module):
        super().__init__()
        self.network, self.swapped_head = network, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.swapped_head(self.network.forward_features(x, self.network.num_stages))


# ----------------------------------------------------------------------------------------------
# What a method shows (drawn by mixrepro.visualize)
# ----------------------------------------------------------------------------------------------


@dataclass
class MixDisplay:
    """What ``mixrepro.visualize.mixed_samples_figure`` draws: N sources, their per-pixel masks, the mix.

    sources  list of N tensors [B, C, H, W]
    masks    [B, N, H, W], each pixel's masks sum to 1
    mixed    [B, C, H, W]
    weights  [B, N] label weights (the lambdas)
    """

    sources: list
    masks: torch.Tensor
    mixed: torch.Tensor
    weights: torch.Tensor

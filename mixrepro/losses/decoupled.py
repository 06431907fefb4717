"""Decoupled Mixup losses DM(CE) and DM(BCE) (Liu, Li et al., NeurIPS 2023, appendix; protocol notes).

Notation for a two-source mixed sample: classes a = y_a, b = y_b with weights
lam_a = lam, lam_b = 1 - lam; logits z, p = softmax(z).

DM(CE) = MCE + eta * mean_B [ sum_{i in {a, b}} w_i * l_i ],
    l_a = -log( e^{z_a} / (e^{z_a} + sum_{c not in {a,b}} e^{z_c}) ) = -log( p_a / (1 - p_b) ),
    l_b likewise with a and b swapped:
a softmax that leaves out the other mixed class ("decoupled softmax"). By default
w_i = 1 (the paper); with ``xi`` set, w_i = min(1, (lam_i / t)^xi), the reference
code's optional "pow" rescaling of the eta weights.

Rows that are not a mix of two different classes (y_a == y_b, or a source with
weight exactly 0) have no other class to leave out; the paper's matrix formula is
degenerate there (its i = j entry is the log-odds p/(1 - p), unbounded). We define
(``same_class="ce"``, default) their decoupled part as the plain cross-entropy of
the present class, -log p_y, with weight 1: the formula above with {a, b} taken as
a set. ``same_class="drop"`` gives them no decoupled part (the reference code:
such rows get MCE = CE only).

``terms``: "both" (the paper's sum over a and b), or one term per row as the
reference configs' ``eta_weight`` modes: "minor" (the class with the smaller weight,
"less"; ties go to b) or "major" (the larger weight, "more"; ties go to a).

Reference-code names (OpenMixup ``ClsMixupHead``): eta_weight.eta = eta,
lam_scale_mode="pow" with lam_thr = t and lam_idx = xi, eta_weight.mode
"both"/"less"/"more" = terms "both"/"minor"/"major".

The reference implementation builds the two eta weights in (y_a, y_b) order but
applies them to the mixed classes in class-index order of the batch's first
sample, so whenever that sample has y_a > y_b the two weights are swapped for the
whole batch; it also skips the decoupled part when lam = 0.5 exactly. Neither is
reproduced here: each weight follows its own source.

DM(BCE) = BCE with logits against targets r_c = min(1, sum_{i: y_i = c} min(1, (lam_i / t)^xi))
on the mixed classes and 0 elsewhere (so a same-class row gets target 1 for the
paper's presets; the reference adds the two rescaled weights unclipped, which can
exceed 1 there). Presets (paper B.3 / C.5): cutting-based mixers t = 1, xi = 0.8;
interpolation-based (Mixup, ManifoldMix) t = 0.5, xi = 1. Reduction as
:mod:`mixrepro.losses.mixup_bce`.

eta presets (paper B.3, CIFAR-100 and ImageNet): 0.1 for static mixers, 1 for
dynamic ones (PuzzleMix, AutoMix, SAMix). For Tiny-ImageNet and fine-grained data
the paper uses eta = 1 for static mixers on ResNet-18 and 0.1 on ResNeXt-50; pass
eta explicitly there.

Our text copy of the appendix garbles the typeset formulas of Propositions 1-2;
the forms used here are those the proofs derive (see the function docstrings).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F

from ..errors import InvalidParameterError
from ..validation import check_finite
from ..mixers.base import MixTarget
from ..registry import Registry
from .mixup_bce import bce_on_targets, check_reduction
from .soft_ce import mce_logit_gradient, soft_ce
from .targets import at_least_float32, class_mask, two_sources

TERMS = ("both", "minor", "major")
SAME_CLASS = ("ce", "drop")

DM_CE_PRESETS: Registry[dict] = Registry("dm_ce preset")
DM_CE_PRESETS.add("static", {"eta": 0.1})
DM_CE_PRESETS.add("dynamic", {"eta": 1.0})
DM_BCE_PRESETS: Registry[dict] = Registry("dm_bce preset")
DM_BCE_PRESETS.add("cutting", {"t": 1.0, "xi": 0.8})
DM_BCE_PRESETS.add("interpolation", {"t": 0.5, "xi": 1.0})

# ---------------------------------------------------------------- parameters

def _check_t_xi(t, xi) -> tuple[float, float]:
    t = check_finite("t", t, lambda v: 0 < v <= 1, "a number in (0, 1]")
    xi = check_finite("xi", xi, lambda v: v > 0, "a positive number")
    return t, xi


def dm_ce_params(eta: float = 0.1, xi: float | None = None, t: float | None = None, terms: str = "both",
                 same_class: str = "ce") -> dict:
    """Validated parameters of :func:`dm_ce` (defaults filled in)."""
    eta = check_finite("eta", eta, lambda v: v >= 0, "a number >= 0 (0.1 static mixers, 1 dynamic)")
    if xi is None:
        if t is not None:
            raise InvalidParameterError("t", t, "None unless xi is set (t only scales (lam/t)^xi)")
    else:
        t, xi = _check_t_xi(1.0 if t is None else t, xi)
    if terms not in TERMS:
        raise InvalidParameterError("terms", terms, ", ".join(TERMS))
    if same_class not in SAME_CLASS:
        raise InvalidParameterError("same_class", same_class, ", ".join(SAME_CLASS))
    return dict(eta=eta, xi=xi, t=t, terms=terms, same_class=same_class)


def dm_bce_params(t: float = 1.0, xi: float = 0.8, reduction: str = "sum_classes") -> dict:
    """Validated parameters of :func:`dm_bce` (defaults: the cutting-based preset)."""
    t, xi = _check_t_xi(t, xi)
    return dict(t=t, xi=xi, reduction=check_reduction(reduction))


# ---------------------------------------------------------------- pieces

def lam_rescale(lam: torch.Tensor, t: float, xi: float) -> torch.Tensor:
    """min(1, (lam / t)^xi), and 0 where lam <= 0 (an absent source stays absent)."""
    scaled = (lam.clamp(min=0) / t).pow(xi).clamp(max=1)
    return torch.where(lam > 0, scaled, torch.zeros_like(scaled))


def _leave_out(logits: torch.Tensor, cls: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Logits with class ``cls`` removed (set to -inf) in the rows where ``where`` holds."""
    return logits.masked_fill(class_mask(logits, cls) & where[:, None], float("-inf"))


def _pieces(logits: torch.Tensor, target: MixTarget):
    """Sources, which rows are two-class mixes, and which class dominates each row."""
    y_a, y_b, lam_a, lam_b = two_sources(at_least_float32(logits), target)
    two_class = (y_a != y_b) & (lam_a > 0) & (lam_b > 0)
    y_major = torch.where(lam_a >= lam_b, y_a, y_b)
    return y_a, y_b, lam_a, lam_b, two_class, y_major


def _term_weights(lam_a, lam_b, xi, t, terms) -> tuple[torch.Tensor, torch.Tensor]:
    """w_a, w_b: (lam_i / t)^xi rescaling (or 1), times the term selection."""
    if xi is None:
        w_a, w_b = torch.ones_like(lam_a), torch.ones_like(lam_b)
    else:
        w_a, w_b = lam_rescale(lam_a, t, xi), lam_rescale(lam_b, t, xi)
    if terms == "minor":
        a_minor = (lam_a < lam_b).to(lam_a.dtype)
        w_a, w_b = w_a * a_minor, w_b * (1 - a_minor)
    elif terms == "major":
        a_major = (lam_a >= lam_b).to(lam_a.dtype)
        w_a, w_b = w_a * a_major, w_b * (1 - a_major)
    return w_a, w_b


def decoupled_terms(logits: torch.Tensor, target: MixTarget) -> torch.Tensor:
    """[B, 2]: l_a = -log(e^{z_a} / (e^{z_a} + sum_{c not in {a,b}} e^{z_c})) and l_b likewise.

    In rows that are not two-class mixes nothing is left out, so both entries are
    the plain cross-entropy of their own label.
    """
    logits = at_least_float32(logits)
    y_a, y_b, _, _, two_class, _ = _pieces(logits, target)
    l_a = F.cross_entropy(_leave_out(logits, y_b, two_class), y_a, reduction="none")
    l_b = F.cross_entropy(_leave_out(logits, y_a, two_class), y_b, reduction="none")
    return torch.stack([l_a, l_b], 1)


def decoupled_log_odds_form(logits: torch.Tensor, target: MixTarget) -> torch.Tensor:
    """[B, 2]: -log(p_a / (1 - p_b)) and -log(p_b / (1 - p_a)) from p = softmax(z) (Proposition 2).

    Proposition 2 (000, A.2; garbled in our copy, read from the proof's last lines)
    writes the decoupled part as sum_{i,j} y_a^i y_b^j (log(p^i / (1 - p^j)) +
    log(p^j / (1 - p^i))). Our copy shows no leading minus sign, i.e. a log-likelihood
    to maximise; the loss is its negative (what the reference code minimises). For a
    two-class row it equals ``decoupled_terms``; this independent form exists to
    check that identity (for y_a == y_b it is the log-odds, not a cross-entropy).
    """
    y_a, y_b, _, _ = two_sources(logits, target)
    p = torch.softmax(at_least_float32(logits), dim=1)
    p_a, p_b = p.gather(1, y_a[:, None])[:, 0], p.gather(1, y_b[:, None])[:, 0]
    return torch.stack([-torch.log(p_a / (1 - p_b)), -torch.log(p_b / (1 - p_a))], 1)


def decoupled_part(logits: torch.Tensor, target: MixTarget, xi: float | None = None, t: float | None = None,
                   terms: str = "both", same_class: str = "ce") -> torch.Tensor:
    """Per-sample decoupled regulariser [B] (DM(CE) without MCE and eta)."""
    y_a, _, lam_a, lam_b, two_class, y_major = _pieces(logits, target)
    l = decoupled_terms(logits, target)
    w_a, w_b = _term_weights(lam_a, lam_b, xi, t, terms)
    mixed = w_a * l[:, 0] + w_b * l[:, 1]
    if same_class == "drop":
        single = torch.zeros_like(mixed)
    else:
        single = torch.where(y_major == y_a, l[:, 0], l[:, 1])  # CE of the present class
    return torch.where(two_class, mixed, single)


# ---------------------------------------------------------------- losses

def dm_ce(logits: torch.Tensor, target: MixTarget, eta: float = 0.1, xi: float | None = None,
          t: float | None = None, *, terms: str = "both", same_class: str = "ce") -> torch.Tensor:
    """DM(CE) = MCE + eta * mean over the batch of the decoupled part (module docstring)."""
    p = dm_ce_params(eta, xi, t, terms, same_class)
    reg = decoupled_part(logits, target, p["xi"], p["t"], p["terms"], p["same_class"])
    return soft_ce(logits, target) + p["eta"] * reg.mean()


def dm_bce_targets(logits: torch.Tensor, target: MixTarget, t: float = 1.0, xi: float = 0.8) -> torch.Tensor:
    """[B, C] targets min(1, sum of min(1, (lam_i / t)^xi) over the sources of each class)."""
    y_a, y_b, lam_a, lam_b = two_sources(at_least_float32(logits), target)
    r = torch.stack([lam_rescale(lam_a, t, xi), lam_rescale(lam_b, t, xi)], 1)
    out = torch.zeros(logits.shape, dtype=r.dtype, device=r.device)
    return out.scatter_add_(1, torch.stack([y_a, y_b], 1), r).clamp(max=1)


def dm_bce(logits: torch.Tensor, target: MixTarget, t: float = 1.0, xi: float = 0.8, *,
           reduction: str = "sum_classes") -> torch.Tensor:
    """DM(BCE): BCE with logits on :func:`dm_bce_targets` (defaults: cutting-based preset)."""
    p = dm_bce_params(t, xi, reduction)
    return bce_on_targets(logits, dm_bce_targets(logits, target, p["t"], p["xi"]), p["reduction"])


# ---------------------------------------------------------------- gradients (Proposition 2)

def decoupled_logit_gradient(logits: torch.Tensor, target: MixTarget, xi: float | None = None,
                             t: float | None = None, terms: str = "both", same_class: str = "ce") -> torch.Tensor:
    """Per-sample gradient [B, C] of :func:`decoupled_part` with respect to the logits.

    For a two-class row, d l_a / d z = q^{-b} - e_a, where q^{-b} is the softmax over
    the classes other than b (0 at b); so the gradient is
    w_a (q^{-b} - e_a) + w_b (q^{-a} - e_b). With w = 1 it does not depend on lam:
    the decoupled part "escapes the lambda constraint" of MCE (Proposition 2).
    Same-class rows: softmax(z) - e_y ("ce") or 0 ("drop").
    """
    logits = at_least_float32(logits)
    y_a, y_b, lam_a, lam_b, two_class, y_major = _pieces(logits, target)
    e_a, e_b = class_mask(logits, y_a).to(logits.dtype), class_mask(logits, y_b).to(logits.dtype)
    q_wo_b = torch.softmax(_leave_out(logits, y_b, two_class), dim=1)
    q_wo_a = torch.softmax(_leave_out(logits, y_a, two_class), dim=1)
    w_a, w_b = _term_weights(lam_a, lam_b, xi, t, terms)
    mixed = w_a[:, None] * (q_wo_b - e_a) + w_b[:, None] * (q_wo_a - e_b)
    if same_class == "drop":
        single = torch.zeros_like(mixed)
    else:
        single = torch.softmax(logits, dim=1) - class_mask(logits, y_major).to(logits.dtype)
    return torch.where(two_class[:, None], mixed, single)


def dm_ce_logit_gradient(logits: torch.Tensor, target: MixTarget, eta: float = 0.1, xi: float | None = None,
                         t: float | None = None, *, terms: str = "both", same_class: str = "ce") -> torch.Tensor:
    """Per-sample gradient [B, C] of DM(CE): Proposition 1's MCE gradient + eta * the decoupled one.

    The batch-mean :func:`dm_ce`'s autograd gradient equals this divided by B.
    """
    p = dm_ce_params(eta, xi, t, terms, same_class)
    dec = decoupled_logit_gradient(logits, target, p["xi"], p["t"], p["terms"], p["same_class"])
    return mce_logit_gradient(logits, target) + p["eta"] * dec

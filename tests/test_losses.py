"""Losses: MCE, mixup BCE, DM(CE), DM(BCE) against their definitions and independent computations."""
import math

import pytest
import torch
import torch.nn.functional as F

from mixrepro.errors import InvalidParameterError, UnknownNameError
from mixrepro.losses import (LOSSES, build_loss, decoupled_log_odds_form, decoupled_logit_gradient, decoupled_part,
                             decoupled_terms, dm_bce, dm_bce_targets, dm_ce, dm_ce_logit_gradient,
                             mce_logit_gradient, mixup_bce, soft_ce)
from mixrepro.methods import METHODS
from mixrepro.mixers.base import MixTarget

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
C = 7


def pair_target(y_a, y_b, lam, dtype=torch.float64):
    """Two-source target with per-row weights lam (list or float)."""
    y_a, y_b = torch.as_tensor(y_a), torch.as_tensor(y_b)
    lam = torch.as_tensor(lam, dtype=dtype).expand(len(y_a))
    return MixTarget(torch.stack([y_a, y_b], 1), torch.stack([lam, 1 - lam], 1))


@pytest.fixture
def batch():
    """Random float64 logits; rows 2 and 5 mix a class with itself; per-row lambdas."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, C, generator=g, dtype=torch.float64) * 2
    y_a = [0, 3, 4, 6, 1, 2, 5, 0]
    y_b = [5, 1, 4, 2, 6, 2, 0, 3]
    lam = torch.rand(8, generator=g, dtype=torch.float64).tolist()
    return logits, pair_target(y_a, y_b, lam)


# ------------------------------------------------------------------ hand-written reference formulas

def log_softmax_list(z):
    m = max(z)
    s = math.log(sum(math.exp(v - m) for v in z)) + m
    return [v - s for v in z]


def hand_mce(logits, target):
    total = 0.0
    for z, ys, ws in zip(logits.tolist(), target.labels.tolist(), target.weights.tolist()):
        ls = log_softmax_list(z)
        total += sum(-w * ls[y] for y, w in zip(ys, ws))
    return total / len(logits)


def hand_decoupled_term(z, i, other):
    """-log(e^{z_i} / (e^{z_i} + sum_{c not in {i, other}} e^{z_c}))."""
    denom = math.exp(z[i]) + sum(math.exp(v) for c, v in enumerate(z) if c not in (i, other))
    return -math.log(math.exp(z[i]) / denom)


def hand_dm_ce(logits, target, eta, weight=lambda lam: 1.0, same_class="ce"):
    reg = 0.0
    for z, (a, b), (la, lb) in zip(logits.tolist(), target.labels.tolist(), target.weights.tolist()):
        if a != b:
            reg += weight(la) * hand_decoupled_term(z, a, b) + weight(lb) * hand_decoupled_term(z, b, a)
        elif same_class == "ce":
            reg += -log_softmax_list(z)[a]
    return hand_mce(logits, target) + eta * reg / len(logits)


# ------------------------------------------------------------------ MCE

def test_soft_ce_equals_hand_formula_and_probability_target_cross_entropy(batch):
    logits, target = batch
    assert soft_ce(logits, target).item() == pytest.approx(hand_mce(logits, target), rel=1e-12)
    probs = target.soft(C)
    assert torch.allclose(soft_ce(logits, target), F.cross_entropy(logits, probs), rtol=0, atol=1e-12)


def test_soft_ce_on_clean_and_three_source_targets():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, C, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 6, 2, 2, 3])
    assert torch.allclose(soft_ce(logits, MixTarget.clean(y)), F.cross_entropy(logits, y), atol=1e-7)
    w = torch.softmax(torch.randn(5, 3, generator=g, dtype=torch.float64), 1)
    three = MixTarget(torch.randint(0, C, (5, 3), generator=g), w)
    assert soft_ce(logits, three).item() == pytest.approx(hand_mce(logits, three), rel=1e-12)


def test_proposition_1_mce_gradient_is_softmax_minus_soft_label(batch):
    logits, target = batch
    z = logits.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(soft_ce(z, target) * len(z), z)
    analytic = mce_logit_gradient(logits, target)
    assert torch.allclose(auto, analytic, rtol=0, atol=1e-12)
    # the "lambda regression" reading of Prop. 1 on row 0 (classes 0 and 5, weights lam, 1 - lam)
    p = torch.softmax(logits[0], 0)
    lam = target.weights[0, 0]
    assert analytic[0, 0].item() == pytest.approx((p[0] - lam).item(), abs=1e-15)
    assert analytic[0, 5].item() == pytest.approx((p[5] - (1 - lam)).item(), abs=1e-15)
    assert torch.allclose(analytic[0, [1, 2, 3, 4, 6]], p[[1, 2, 3, 4, 6]], atol=1e-15)


# ------------------------------------------------------------------ DM(CE)

@pytest.mark.parametrize("eta", [0.1, 1.0])
def test_dm_ce_equals_formula_including_same_class_rows(batch, eta):
    logits, target = batch
    assert dm_ce(logits, target, eta=eta).item() == pytest.approx(hand_dm_ce(logits, target, eta), rel=1e-12)
    dropped = dm_ce(logits, target, eta=eta, same_class="drop").item()
    assert dropped == pytest.approx(hand_dm_ce(logits, target, eta, same_class="drop"), rel=1e-12)
    assert dropped < dm_ce(logits, target, eta=eta).item()  # rows 2 and 5 lose their CE term


def test_dm_ce_lambda_weighting_follows_each_source(batch):
    logits, target = batch
    t, xi = 0.5, 0.7
    expected = hand_dm_ce(logits, target, 1.0, weight=lambda lam: min(1.0, (lam / t) ** xi))
    assert dm_ce(logits, target, eta=1.0, xi=xi, t=t).item() == pytest.approx(expected, rel=1e-12)


def test_dm_ce_weights_are_not_swapped_by_label_order():
    """The reference applies weights built in (y_a, y_b) order in class-index order of sample 0.

    Sample 0 has y_a = 5 > y_b = 1, so the reference would give class 1 (source b) the
    weight of source a for the whole batch. Ours follows the sources.
    """
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, C, generator=g, dtype=torch.float64) * 3
    lam = 0.2  # one lambda per batch, as the static mixers draw it
    target = pair_target([5, 2, 6, 0], [1, 4, 3, 2], lam)
    w_a, w_b = lam ** 1.0, (1 - lam) ** 1.0  # xi = 1, t = 1: weights lam and 1 - lam

    def with_weights(weight_of_a, weight_of_b):
        reg = sum(weight_of_a * hand_decoupled_term(z, a, b) + weight_of_b * hand_decoupled_term(z, b, a)
                  for z, (a, b) in zip(logits.tolist(), target.labels.tolist()))
        return hand_mce(logits, target) + reg / len(logits)

    ours = dm_ce(logits, target, eta=1.0, xi=1.0, t=1.0).item()
    assert ours == pytest.approx(with_weights(w_a, w_b), rel=1e-12)
    assert abs(ours - with_weights(w_b, w_a)) > 1e-3  # the reference's swapped assignment is different


def test_dm_ce_is_invariant_to_source_order_and_class_relabelling(batch):
    logits, target = batch
    kw = dict(eta=1.0, xi=0.8, t=1.0, terms="minor")
    base = dm_ce(logits, target, **kw)
    swapped = MixTarget(target.labels.flip(1), target.weights.flip(1))
    # ties go to b for "minor"; the random lambdas here have no ties
    assert torch.allclose(dm_ce(logits, swapped, **kw), base, atol=1e-12)
    relabel = torch.randperm(C, generator=torch.Generator().manual_seed(4))
    moved = torch.empty_like(logits)
    moved[:, relabel] = logits  # class c becomes class relabel[c]
    relabelled = MixTarget(relabel[target.labels], target.weights)
    assert torch.allclose(dm_ce(moved, relabelled, **kw), base, atol=1e-12)


@pytest.mark.parametrize("terms", ["minor", "major"])
def test_dm_ce_single_term_modes(batch, terms):
    logits, target = batch
    pick_minor = terms == "minor"
    reg = 0.0
    for z, (a, b), (la, lb) in zip(logits.tolist(), target.labels.tolist(), target.weights.tolist()):
        if a == b:
            reg += -log_softmax_list(z)[a]
            continue
        a_chosen = (la < lb) if pick_minor else (la >= lb)
        reg += hand_decoupled_term(z, a, b) if a_chosen else hand_decoupled_term(z, b, a)
    expected = hand_mce(logits, target) + 0.5 * reg / len(logits)
    assert dm_ce(logits, target, eta=0.5, terms=terms).item() == pytest.approx(expected, rel=1e-12)


def test_dm_ce_row_with_an_absent_source_is_plain_cross_entropy():
    logits = torch.randn(3, C, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    target = pair_target([1, 2, 3], [4, 5, 6], 1.0)  # partner weight exactly 0 (e.g. an empty CutMix box)
    ce = F.cross_entropy(logits, torch.tensor([1, 2, 3]))
    assert torch.allclose(dm_ce(logits, target, eta=0.3), 1.3 * ce, atol=1e-12)


def test_proposition_2_decoupled_term_equals_log_odds_form(batch):
    logits, target = batch
    two_class = target.labels[:, 0] != target.labels[:, 1]
    ours, prop2 = decoupled_terms(logits, target), decoupled_log_odds_form(logits, target)
    assert torch.allclose(ours[two_class], prop2[two_class], rtol=0, atol=1e-12)
    # same-class rows: plain CE, not the degenerate log-odds of the matrix formula
    same = ~two_class
    ce = F.cross_entropy(logits[same], target.labels[same, 0], reduction="none")
    assert torch.allclose(ours[same, 0], ce, atol=1e-12) and torch.allclose(ours[same, 1], ce, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(xi=0.8, t=1.0), dict(xi=1.0, t=0.5, terms="major"),
                                dict(same_class="drop"), dict(terms="minor")])
def test_proposition_2_decoupled_gradient_matches_autograd(batch, kw):
    logits, target = batch
    z = logits.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(decoupled_part(z, target, **kw).sum(), z)
    assert torch.allclose(auto, decoupled_logit_gradient(logits, target, **kw), rtol=0, atol=1e-12)
    (auto_dm,) = torch.autograd.grad(dm_ce(z, target, eta=0.7, **kw) * len(z), z)
    assert torch.allclose(auto_dm, dm_ce_logit_gradient(logits, target, eta=0.7, **kw), rtol=0, atol=1e-12)


def test_proposition_2_decoupled_gradient_does_not_depend_on_lambda(batch):
    logits, target = batch
    other = MixTarget(target.labels, torch.stack([1 - target.weights[:, 0], target.weights[:, 0]], 1))
    g1, g2 = decoupled_logit_gradient(logits, target), decoupled_logit_gradient(logits, other)
    assert torch.allclose(g1, g2, atol=1e-15)
    assert not torch.allclose(mce_logit_gradient(logits, target), mce_logit_gradient(logits, other))


def test_dm_losses_require_two_sources():
    logits = torch.randn(2, C)
    three = MixTarget(torch.zeros(2, 3, dtype=torch.long), torch.full((2, 3), 1 / 3))
    for loss in (dm_ce, dm_bce):
        with pytest.raises(InvalidParameterError, match="exactly 2"):
            loss(logits, three)
        with pytest.raises(InvalidParameterError, match="exactly 2"):
            loss(logits, MixTarget.clean(torch.tensor([0, 1])))


# ------------------------------------------------------------------ BCE losses

@pytest.mark.parametrize("preset,t,xi", [("cutting", 1.0, 0.8), ("interpolation", 0.5, 1.0)])
def test_dm_bce_targets_and_value_against_independent_computation(batch, preset, t, xi):
    logits, target = batch
    expected = torch.zeros(len(logits), C, dtype=torch.float64)
    for row, ((a, b), (la, lb)) in enumerate(zip(target.labels.tolist(), target.weights.tolist())):
        r_a, r_b = min(1.0, (la / t) ** xi), min(1.0, (lb / t) ** xi)
        if a == b:
            expected[row, a] = min(1.0, r_a + r_b)
        else:
            expected[row, a], expected[row, b] = r_a, r_b
    assert torch.allclose(dm_bce_targets(logits, target, t, xi), expected, atol=1e-15)
    assert torch.all(expected[[2, 5], [4, 2]] == 1)  # same-class rows get target 1 under both presets
    loss = build_loss("dm_bce", preset=preset)
    ref_sum = F.binary_cross_entropy_with_logits(logits, expected, reduction="sum") / len(logits)
    assert loss(logits, target).item() == pytest.approx(ref_sum.item(), rel=1e-12)
    ref_mean = F.binary_cross_entropy_with_logits(logits, expected)
    assert dm_bce(logits, target, t, xi, reduction="mean").item() == pytest.approx(ref_mean.item(), rel=1e-12)


def test_mixup_bce_target_conventions(batch):
    logits, target = batch
    soft = target.soft(C)
    n = len(logits)
    one = F.binary_cross_entropy_with_logits(logits, soft, reduction="sum") / n
    two = F.binary_cross_entropy_with_logits(logits, (soft > 0).double(), reduction="sum") / n
    thr = F.binary_cross_entropy_with_logits(logits, (soft > 0.3).double())
    assert mixup_bce(logits, target).item() == pytest.approx(one.item(), rel=1e-12)
    assert mixup_bce(logits, target, targets="two").item() == pytest.approx(two.item(), rel=1e-12)
    got = mixup_bce(logits, target, threshold=0.3, reduction="mean").item()
    assert got == pytest.approx(thr.item(), rel=1e-12)
    # DM(BCE) lies between: its targets are >= the soft label with t = 1, xi < 1
    assert torch.all(dm_bce_targets(logits, target, 1.0, 0.8) >= soft - 1e-15)


# ------------------------------------------------------------------ registry, params, devices

def test_registry_presets_and_mixer_groups():
    assert LOSSES.names() == ["bce", "dm_bce", "dm_ce", "mce"]
    assert build_loss("dm_ce").params["eta"] == 0.1
    assert build_loss("dm_ce", preset="dynamic").params["eta"] == 1.0
    assert build_loss("dm_ce", preset="dynamic", eta=0.5).params["eta"] == 0.5  # explicit wins
    assert build_loss("dm_bce", preset="interpolation").params == {"t": 0.5, "xi": 1.0, "reduction": "sum_classes"}
    # the DM paper's appendix B.3 groups, as each method declares them
    assert [METHODS.get(m).dm_ce_preset for m in ("mixup", "cutmix", "puzzlemix")] == ["static", "static", "dynamic"]
    assert [METHODS.get(m).dm_bce_preset for m in ("mixup", "manifoldmix", "cutmix", "fmix")] == \
        ["interpolation", "interpolation", "cutting", "cutting"]
    assert METHODS.get("vanilla").dm_ce_preset is None
    with pytest.raises(UnknownNameError, match="known loss functions: bce, dm_bce, dm_ce, mce"):
        build_loss("focal")
    with pytest.raises(UnknownNameError, match="static"):
        build_loss("dm_ce", preset="fast")


@pytest.mark.parametrize("name,params", [
    ("dm_ce", dict(eta=-1)), ("dm_ce", dict(eta=float("nan"))), ("dm_ce", dict(xi=0)), ("dm_ce", dict(xi=1, t=0)),
    ("dm_ce", dict(xi=1, t=1.5)), ("dm_ce", dict(t=0.5)), ("dm_ce", dict(terms="all")),
    ("dm_ce", dict(same_class="skip")), ("dm_ce", dict(gamma=1)), ("dm_bce", dict(xi=-0.8)),
    ("dm_bce", dict(t=True)), ("dm_bce", dict(reduction="sum")), ("bce", dict(targets="three")),
    ("bce", dict(threshold=1.0)), ("mce", dict(eta=1)), ("mce", dict(preset="static")),
])
def test_invalid_parameters_raise(name, params):
    with pytest.raises(InvalidParameterError):
        build_loss(name, **params)


def test_direct_calls_validate_too():
    logits, target = torch.randn(2, C), pair_target([0, 1], [2, 3], 0.4, torch.float32)
    with pytest.raises(InvalidParameterError, match="eta"):
        dm_ce(logits, target, eta=-0.1)
    with pytest.raises(InvalidParameterError, match="target"):
        soft_ce(torch.randn(3, C), target)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", ["mce", "bce", "dm_ce", "dm_bce"])
def test_losses_run_on_device_with_gradients(name, device, dtype):
    """Targets built on the CPU are moved by the loss; half-precision logits are upcast to float32."""
    g = torch.Generator().manual_seed(6)
    y = torch.randint(0, 10, (16,), generator=g)
    perm = torch.randperm(16, generator=g)
    target = MixTarget.pair(y, perm, 0.35)
    logits = torch.randn(16, 10, generator=g).to(device, dtype).requires_grad_(True)
    loss = build_loss(name)(logits, target)
    loss.backward()
    assert loss.device.type == device and loss.dtype == torch.float32
    assert logits.grad.dtype == dtype and torch.isfinite(logits.grad).all()
    ref = build_loss(name)(logits.detach().cpu().double(), MixTarget(target.labels, target.weights.double()))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)

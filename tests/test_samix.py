"""SAMix (class-level AMix): Mix Block+, adaptive lambda encoding, mask loss, pBCE, lambda adjusting, options."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from learned_helpers import (
    NUM_CLASSES,
    assert_backbone_part_leaves_mix_block_alone,
    assert_deterministic,
    assert_ema_gets_no_gradient,
    assert_trains_finite,
    batch,
    ctx_at,
    make_method,
    permute_space,
    scale_weights_,
    tiny_model,
)
from mixrepro.errors import InvalidParameterError
from mixrepro.losses import soft_ce
from mixrepro.methods.automix import AutoMix, PairDraws
from mixrepro.methods.registry import METHODS
from mixrepro.methods.samix import SAMix, MixBlockPlus, dropout, mask_variance, pbce, scurve
from mixrepro.mixers.base import MixTarget


def block(encoding="learnable", p=0.0, channels=16):
    return MixBlockPlus(channels, encoding, 1.25, p, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("encoding", ["learnable", "scurve"])
def test_mix_block_plus_masks_in_unit_interval(encoding):
    mb = block(encoding)
    with torch.no_grad():
        for name, p in mb.named_parameters():
            if "content" in name or "query" in name or "key" in name:
                p.normal_(0, 2, generator=torch.Generator().manual_seed(1))
    z = torch.randn(5, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    mask = mb(z, torch.randperm(5), 0.35, (32, 32), torch.Generator().manual_seed(3))
    assert mask.shape == (5, 1, 32, 32)
    assert mask.min() >= 0 and mask.max() <= 1 and mask.std() > 0.01


def test_mix_block_plus_structure_follows_the_width():
    method = SAMix(tiny_model(0.25), NUM_CLASSES)
    c = method.model.stage_channels[3]
    mb = method.mix_block
    assert mb.query.in_channels == mb.key.in_channels == 2 * c  # concat(z_i', z_j')
    assert mb.query is not mb.key and mb.query.out_channels == c // 2
    assert mb.content_in.in_channels == c and mb.content_out.out_channels == 1
    assert float(mb.gamma.detach()) == 0.0


def test_scurve_endpoints_midpoint_and_monotone():
    assert scurve(0.0, 1.25) == 0.0
    assert scurve(1.0, 1.25) == pytest.approx(1.0)
    assert scurve(0.5, 1.25) == pytest.approx(0.5)
    values = [scurve(t / 20, 1.25) for t in range(21)]
    assert all(a < b for a, b in zip(values, values[1:]))
    # k = 1.25 (reference CIFAR): above y = x on (0, 0.5), below on (0.5, 1), and g(lam) + g(1 - lam) = 1
    assert scurve(0.2, 1.25) > 0.2 and scurve(0.8, 1.25) < 0.8
    assert all(scurve(t / 10, 1.25) + scurve(1 - t / 10, 1.25) == pytest.approx(1.0) for t in range(11))


def test_learnable_gamma_starts_inert_gets_gradient_and_is_clamped_straight_through():
    mb = block("learnable")
    z = torch.randn(4, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    perm = torch.tensor([1, 2, 3, 0])
    mask_a = mb(z, perm, 0.2, (16, 16))
    mask_b = mb(z, perm, 0.9, (16, 16))
    assert torch.allclose(mask_a, mask_b)  # gamma = 0: lambda has no effect yet
    mask_a.pow(2).sum().backward()
    assert mb.gamma.grad is not None and mb.gamma.grad.abs() > 0
    with torch.no_grad():
        mb.gamma.fill_(-0.5)
    assert torch.allclose(mb(z, perm, 0.2, (16, 16)), mask_a)  # clamped to 0 in the forward
    mb.gamma.grad = None
    mb(z, perm, 0.2, (16, 16)).pow(2).sum().backward()
    assert mb.gamma.grad.abs() > 0  # ... yet it can still move back


def test_dropout_draws_from_the_generator():
    h = torch.ones(2, 8, 4, 4)
    a = dropout(h, 0.1, torch.Generator().manual_seed(0), True)
    b = dropout(h, 0.1, torch.Generator().manual_seed(0), True)
    assert torch.equal(a, b) and (a == 0).any() and torch.allclose(a[a > 0], torch.tensor(1 / 0.9))
    assert torch.equal(dropout(h, 0.1, None, False), h) and torch.equal(dropout(h, 0.0, None, True), h)


def test_pbce_matches_the_two_class_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, NUM_CLASSES, generator=g)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    perm = torch.tensor([1, 0, 2, 5, 3, 4])  # row 2 mixes a class with itself
    lam = 0.3
    expected = 0.0
    for i in range(6):
        a, b = int(y[i]), int(y[perm[i]])
        if a != b:
            pa = math.exp(logits[i, a]) / (math.exp(logits[i, a]) + math.exp(logits[i, b]))
            expected += -(lam * math.log(pa) + (1 - lam) * math.log(1 - pa))
    assert float(pbce(logits, MixTarget.pair(y, perm, lam))) == pytest.approx(expected / 6, rel=1e-5)


def test_mask_loss_is_l1_margin_minus_variance():
    method = make_method(SAMix)
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(4, 1, 8, 8, generator=g)
    loss, parts = method.mask_loss(mask, 0.8)
    l1 = float(np.maximum(np.abs(0.8 - mask.mean(dim=(1, 2, 3)).numpy()) - 0.1, 0).mean())  # per sample (default)
    var = sum(((m - m.mean()) ** 2).mean().item() for m in mask) / 4
    assert float(parts["loss_lambda"]) == pytest.approx(l1, abs=1e-6)
    assert float(parts["mask_variance"]) == pytest.approx(var, abs=1e-6)
    assert float(loss) == pytest.approx(l1 - var, abs=1e-6)
    # a sharper mask with the same mean has a lower loss: the variance term rewards sparsity
    sharp = (mask > 0.5).float()
    sharp = sharp * (mask.mean() / sharp.mean())
    assert float(method.mask_loss(sharp, 0.8)[0]) < float(loss)
    # reference variant: variance about the batch mean
    assert float(mask_variance(mask, "batch")) == pytest.approx(((mask - mask.mean()) ** 2).mean().item(), abs=1e-6)


def test_lambda_adjusting_raises_backbone_masks_below_lambda_and_leaves_the_others():
    """SAMix paper rule (default): the paper init's masks have means ~0.5, so lam 0.7 raises them, 0.35 not."""
    method = make_method(SAMix)
    x, _ = batch()
    z = method.encoder_features(x)

    def backbone_mask(m, lam):
        draws = PairDraws(0.6, torch.randperm(len(x)), lam, torch.randperm(len(x)))
        return m.classifier_mask(z, x, draws, torch.Generator().manual_seed(0))

    raised, kept = backbone_mask(method, 0.7), backbone_mask(method, 0.35)
    assert torch.allclose(raised.mean(dim=(1, 2, 3)), torch.full((len(x),), 0.7), atol=1e-5)
    assert torch.allclose(kept.mean(dim=(1, 2, 3)), torch.full((len(x),), 0.5), atol=0.01)
    assert raised.min() >= 0 and raised.max() <= 1
    two_sided = make_method(SAMix, mask_adjust_rule="two-sided")
    lowered = backbone_mask(two_sided, 0.35)  # AutoMix's rule moves every mean to lambda
    assert torch.allclose(lowered.mean(dim=(1, 2, 3)), torch.full((len(x),), 0.35), atol=1e-5)


@pytest.mark.parametrize("kind", ["ce+pbce", "ce", "pbce", "bce"])
def test_generation_loss_options(kind):
    method = make_method(SAMix, generation_loss=kind)
    logits = torch.randn(4, NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    target = MixTarget.pair(torch.tensor([0, 1, 2, 3]), torch.tensor([1, 0, 3, 2]), 0.6)
    value = method.generation_loss(logits, target)
    assert math.isfinite(float(value)) and float(value) > 0
    if kind == "ce":
        assert torch.equal(value, soft_ce(logits, target))
    if kind == "ce+pbce":
        assert float(value) == pytest.approx(float(soft_ce(logits, target) + pbce(logits, target)))


def test_no_gradient_reaches_the_ema_network_and_gamma_learns():
    method = make_method(SAMix)
    assert_ema_gets_no_gradient(method, method.mix_block)
    assert method.mix_block.gamma.grad is not None


def test_backbone_part_carries_no_gradient_to_the_mix_block():
    assert_backbone_part_leaves_mix_block_alone(make_method(SAMix))


def test_cpu_runs_are_bitwise_deterministic_with_dropout():
    assert_deterministic(SAMix)


@pytest.mark.parametrize("params", [{}, SAMix.reference_params, {"mask_adjust": 0.25, "lam_encoding": "scurve"}])
def test_trains_a_few_steps_without_nan(params):
    outs = assert_trains_finite(make_method(SAMix, **params))
    assert {"mask_variance", "loss_lambda", "mask_std_gen", "mask_mean_cls"} <= set(outs[-1].logs)


def test_registry_and_validation():
    assert METHODS.get("samix") is SAMix and issubclass(SAMix, AutoMix)
    assert SAMix.default_min_lr == 0.05 and SAMix.default_params["dropout"] == 0.1
    d = SAMix.default_params
    assert (d["mask_adjust_rule"], d["mask_loss_mean"], d["content_activation"], d["dropout_on"],
            d["sigmoid_after_upsample"]) == ("one-sided", "sample", "relu", "hidden", False)
    r = SAMix.reference_params
    assert (r["mask_loss_mean"], r["content_activation"], r["dropout_on"], r["sigmoid_after_upsample"]) == \
        ("batch", "elu", "output", True)
    for bad in ({"content_activation": "gelu"}, {"dropout_on": "input"}, {"sigmoid_after_upsample": "yes"},
                {"mask_adjust_rule": "down"}):
        with pytest.raises(InvalidParameterError):
            SAMix(tiny_model(), NUM_CLASSES, **bad)
    for bad in ({"lam_encoding": "concat"}, {"generation_loss": "nce"}, {"scurve_k": 0.5}, {"lam_embed": True}):
        with pytest.raises(InvalidParameterError):
            SAMix(tiny_model(), NUM_CLASSES, **bad)


def test_display_masks_sum_to_one():
    method = make_method(SAMix)
    x, y = batch(n=3)
    shown = method.mix_for_display(x, y, torch.Generator().manual_seed(0))
    assert torch.allclose(shown.masks.sum(1), torch.ones(3, 32, 32)) and method.training
    assert ctx_at(0, torch.Generator()).progress == 0


# ------------------------------------------------------------------------------------------------
# Mix Block+ against an independent formulation; structure; options
# ------------------------------------------------------------------------------------------------


def einsum_mix_block_plus(mb, z, perm, lam, generator_seed):
    """Eq. 5 of the SAMix paper written out: global attention on concat(z_i', z_j'), non-linear content."""
    b, c, h, w = z.shape
    zi = z * (1 + scurve(lam, 1.25))
    zj = z[perm] * (1 + scurve(1 - lam, 1.25))
    zcat = torch.cat([zi, zj], 1).flatten(2)  # [b, 2c, n]
    q = torch.einsum("dc,bcn->bdn", mb.query.weight[:, :, 0, 0], zcat) + mb.query.bias[None, :, None]
    k = torch.einsum("dc,bcm->bdm", mb.key.weight[:, :, 0, 0], zcat) + mb.key.bias[None, :, None]
    hid = torch.einsum("ec,bcm->bem", mb.content_in.weight[:, :, 0, 0], zj.flatten(2))  # no bias
    mean, var = hid.mean(dim=(0, 2), keepdim=True), hid.var(dim=(0, 2), unbiased=False, keepdim=True)
    hid = (hid - mean) / torch.sqrt(var + mb.content_bn.eps) * mb.content_bn.weight[None, :, None] \
        + mb.content_bn.bias[None, :, None]  # BatchNorm in train mode: batch statistics
    hid = F.elu(hid) if mb.activation == "elu" else torch.clamp(hid, min=0)
    g = torch.Generator().manual_seed(generator_seed)
    if mb.dropout_on == "hidden":
        hid = hid * (torch.rand(hid.shape[0], hid.shape[1], h, w, generator=g) >= mb.dropout_p).flatten(2) \
            / (1 - mb.dropout_p)
    content = torch.einsum("e,bem->bm", mb.content_out.weight[0, :, 0, 0], hid) + mb.content_out.bias
    if mb.dropout_on == "output":
        content = content * (torch.rand(b, 1, h, w, generator=g) >= mb.dropout_p).flatten(1) / (1 - mb.dropout_p)
    attn = torch.softmax(torch.einsum("bdn,bdm->bnm", q, k) / math.sqrt(q.shape[1]), dim=-1)
    return 1 - torch.sigmoid(torch.einsum("bnm,bm->bn", attn, content)).view(b, 1, h, w)


@pytest.mark.parametrize("activation,dropout_on", [("relu", "hidden"), ("elu", "output")])
def test_mix_block_plus_matches_an_einsum_version(activation, dropout_on):
    mb = MixBlockPlus(8, "scurve", 1.25, 0.3, torch.Generator().manual_seed(0), activation, dropout_on)
    scale_weights_(mb, 0.5)
    z = torch.randn(4, 8, 4, 4, generator=torch.Generator().manual_seed(2))
    perm, lam = torch.tensor([3, 2, 0, 1]), 0.3
    out = mb(z, perm, lam, (4, 4), torch.Generator().manual_seed(9))  # at feature size: no upsampling
    expected = einsum_mix_block_plus(mb, z, perm, lam, 9)
    assert torch.allclose(out, expected, atol=1e-5)
    assert out.std() > 0.05


def test_mask_follows_a_spatial_permutation_and_depends_on_the_partner():
    mb = scale_weights_(block("scurve", channels=16), 0.5)
    z = torch.randn(5, 16, 4, 4, generator=torch.Generator().manual_seed(3))
    perm, order = torch.tensor([1, 2, 3, 4, 0]), torch.randperm(16, generator=torch.Generator().manual_seed(4))
    mask = mb(z, perm, 0.4, (4, 4))
    assert torch.allclose(mb(permute_space(z, order), perm, 0.4, (4, 4)), permute_space(mask, order), atol=1e-5)
    other = mb(z, torch.tensor([2, 3, 4, 0, 1]), 0.4, (4, 4))
    assert (other - mask).abs().flatten(1).max(1).values.min() > 1e-3


def test_sigmoid_and_upsampling_order_option():
    paper = scale_weights_(block("scurve", channels=16), 2.0)
    reference = MixBlockPlus(16, "scurve", 1.25, 0.0, torch.Generator().manual_seed(0), sigmoid_after_upsample=True)
    reference.load_state_dict(paper.state_dict())
    z = torch.randn(4, 16, 4, 4, generator=torch.Generator().manual_seed(5))
    perm = torch.tensor([1, 0, 3, 2])
    assert torch.allclose(paper(z, perm, 0.4, (4, 4)), reference(z, perm, 0.4, (4, 4)), atol=1e-6)  # same size
    with torch.no_grad():
        a, b = paper(z, perm, 0.4, (16, 16)), reference(z, perm, 0.4, (16, 16))
        coarse = paper(z, perm, 0.4, (4, 4))
    assert torch.allclose(a, 1 - F.interpolate(1 - coarse, size=(16, 16), mode="bilinear", align_corners=False),
                          atol=1e-6)  # paper: upsample the probabilities
    assert 1e-3 < float((a - b).abs().max()) < 0.7  # the orders differ where the logits change fast
    assert b.min() >= 0 and b.max() <= 1

"""AutoMix: Mix Block, momentum pipeline, losses, schedules, determinism; plus the shared figure.

The helpers at the top (tiny model, one step, gradient checks) are imported by
test_samix.py and test_adautomix.py.
"""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixrepro.errors import InvalidParameterError
from mixrepro.losses import soft_ce
from mixrepro.methods.automix import (
    AutoMix,
    MixBlock,
    PairDraws,
    adjust_mask_mean,
    draw_pairs,
    mask_mean_loss,
    mix_pair,
    scheduled_weight,
)
from mixrepro.methods.base import StepContext, automix_momentum
from mixrepro.methods.registry import METHODS, build_method
from mixrepro.methods.adautomix import AdAutoMix
from mixrepro.methods.samix import SAMix
from mixrepro.mixers.base import MixTarget
from mixrepro.models import build_model
from mixrepro.visualize import mixed_samples_figure

NUM_CLASSES = 10


def tiny_model(width: float = 0.125, seed: int = 0):
    return build_model("resnet18", NUM_CLASSES, width=width, generator=torch.Generator().manual_seed(seed))


def make_method(cls, seed: int = 0, **params):
    torch.manual_seed(seed)  # as the trainer does: the mask modules' init draws its seed from it
    method = cls(tiny_model(seed=seed), NUM_CLASSES, **params)
    return method.train()


def batch(n: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, NUM_CLASSES, (n,), generator=g)


def ctx_at(step: int, generator: torch.Generator, total: int = 100) -> StepContext:
    return StepContext(step=step, total_steps=total, epoch=0, generator=generator)


def train_steps(method, steps: int, seed: int = 1, lr: float = 0.05):
    """A miniature trainer: one SGD optimiser over every trainable parameter, one backward per step."""
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    outs = []
    for step in range(steps):
        x, y = batch(n=8, seed=step)
        ctx = ctx_at(step, g, total=steps)
        out = method.training_step(x, y, ctx)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        method.after_step(ctx)
        outs.append(out)
    return outs


def assert_ema_gets_no_gradient(method, mix_module):
    x, y = batch()
    out = method.training_step(x, y, ctx_at(0, torch.Generator().manual_seed(3)))
    out.loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in method.ema.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in mix_module.parameters())
    assert all(p.grad is not None for p in method.model.parameters())


def assert_backbone_part_leaves_mix_block_alone(method):
    """CE(clean) + MCE(mixed with the backbone mask), alone, must not reach the Mix Block."""
    x, y = batch()
    g = torch.Generator().manual_seed(5)
    draws = draw_pairs(len(x), 2.0, g, x.device)
    draws.lam_cls = 0.4  # inside the margin: the Mix Block's own mask is used
    mask = method.classifier_mask(method.encoder_features(x), x, draws, g)
    assert not mask.requires_grad
    loss = F.cross_entropy(method.model(x), y) + soft_ce(
        method.model(mix_pair(x, draws.perm_cls, mask)), MixTarget.pair(y, draws.perm_cls, draws.lam_cls))
    loss.backward()
    assert all(p.grad is None for p in method.mix_block.parameters())
    assert all(p.grad is not None for p in method.model.parameters())


def assert_deterministic(cls, **params):
    a, b = make_method(cls, **params), make_method(cls, **params)
    outs_a, outs_b = train_steps(a, 2), train_steps(b, 2)
    for oa, ob in zip(outs_a, outs_b):
        assert torch.equal(oa.loss, ob.loss) and oa.logs == ob.logs
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


def assert_trains_finite(method, steps: int = 3):
    before = [p.clone() for p in method.ema.parameters()]
    outs = train_steps(method, steps)
    assert all(math.isfinite(float(o.loss.detach())) for o in outs)
    assert all(math.isfinite(v) for o in outs for v in o.logs.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, method.ema.parameters()))
    return outs


# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lam_embed", [True, False])
def test_mix_block_mask_in_unit_interval_and_shaped_like_the_image(lam_embed):
    block = MixBlock(32, lam_embed, torch.Generator().manual_seed(0))
    with torch.no_grad():  # large weights so the sigmoid saturates somewhere
        for p in block.parameters():
            p.normal_(0, 3, generator=torch.Generator().manual_seed(1))
    z = torch.randn(6, 32, 8, 8, generator=torch.Generator().manual_seed(2))
    mask = block(z, torch.randperm(6), 0.3, (32, 32))
    assert mask.shape == (6, 1, 32, 32)
    assert mask.min() >= 0 and mask.max() <= 1 and mask.std() > 0.05


def test_mix_block_follows_the_width_and_the_paper_init():
    for width in (0.125, 0.25):
        method = AutoMix(tiny_model(width), NUM_CLASSES)
        c = method.model.stage_channels[3]
        assert method.mix_block.qk.in_channels == c + 1 and method.mix_block.qk.out_channels == c // 2
        assert method.mix_block.value.out_channels == 1
    w = torch.cat([p.detach().flatten() for n, p in method.mix_block.named_parameters() if n.endswith("weight")])
    assert abs(float(w.std()) - 0.01) < 0.002
    assert all(float(p.detach().abs().sum()) == 0 for n, p in method.mix_block.named_parameters() if n.endswith("bias"))


def test_mix_block_is_a_submodule_so_the_trainer_optimises_it():
    method = make_method(AutoMix)
    ids = {id(p) for p in method.parameters() if p.requires_grad}
    assert all(id(p) in ids for p in method.mix_block.parameters())
    assert not any(id(p) in ids for p in method.ema.parameters())


def test_no_gradient_reaches_the_ema_network():
    method = make_method(AutoMix)
    assert_ema_gets_no_gradient(method, method.mix_block)


def test_backbone_part_carries_no_gradient_to_the_mix_block():
    assert_backbone_part_leaves_mix_block_alone(make_method(AutoMix))


def test_lambda_loss_matches_its_formula():
    g = torch.Generator().manual_seed(0)
    mask_i = torch.rand(5, 1, 16, 16, generator=g)
    for lam in (0.1, 0.45, 0.5, 0.9):
        mask_j = (1 - mask_i).numpy()
        expected = max(abs(1 - mask_j.mean() - lam) - 0.1, 0.0)  # REFERENCE.md: batch-wide mean of mask_j
        assert float(mask_mean_loss(mask_i, lam, 0.1)) == pytest.approx(expected, abs=1e-6)


def test_logged_lambda_loss_is_that_of_the_mix_block_pair():
    method = make_method(AutoMix)
    x, y = batch()
    g = torch.Generator().manual_seed(7)
    state = g.get_state()
    out = method.training_step(x, y, ctx_at(0, g))
    g.set_state(state)
    draws = draw_pairs(len(x), 2.0, g, x.device)
    with torch.no_grad():
        mask = method.mix_block(method.encoder_features(x), draws.perm_gen, draws.lam_gen, (32, 32))
    expected = max(abs(1 - (1 - mask).mean().item() - draws.lam_gen) - 0.1, 0.0)
    assert out.logs["loss_lambda"] == pytest.approx(expected, abs=1e-5)
    assert out.logs["lam_gen"] == draws.lam_gen and out.logs["lam_cls"] == draws.lam_cls
    for key in ("mask_mean_gen", "mask_std_gen", "mask_mean_cls", "mask_std_cls", "loss_clean", "loss_mix", "loss_gen"):
        assert key in out.logs


def test_lambda_loss_weight_schedules():
    assert scheduled_weight(0.1, "linear", 0.0) == pytest.approx(0.1)
    assert scheduled_weight(0.1, "linear", 0.5) == pytest.approx(0.05)
    assert scheduled_weight(0.1, "linear", 1.0) == pytest.approx(0.0)
    assert scheduled_weight(0.1, "constant", 0.9) == pytest.approx(0.1)
    assert scheduled_weight(0.1, "cosine", 0.5) == pytest.approx(0.05)
    assert scheduled_weight(0.1, "cosine", 1.0) == pytest.approx(0.0, abs=1e-12)
    assert AutoMix.default_params["mask_loss_schedule"] == "linear"  # the paper's


def test_momentum_schedule_start_ten_percent_and_end():
    assert automix_momentum(0.0) == 0.999
    assert automix_momentum(0.1) == 0.999
    assert automix_momentum(0.55) == pytest.approx((0.999 + 0.999999) / 2)
    assert automix_momentum(1.0) == pytest.approx(0.999999)
    assert automix_momentum(0.3) < automix_momentum(0.6) < automix_momentum(0.9)


def test_after_step_moves_ema_parameters_with_the_schedule_but_not_its_buffers():
    method = make_method(AutoMix)
    with torch.no_grad():
        for p in method.model.parameters():
            p.add_(1.0)
    p_ema = [p.clone() for p in method.ema.parameters()]
    p_q = [p.clone() for p in method.model.parameters()]
    buffers = [b.clone() for b in method.ema.buffers()]
    ctx = ctx_at(90, torch.Generator(), total=100)
    method.after_step(ctx)
    m = automix_momentum(0.9)
    for new, old, q in zip(method.ema.parameters(), p_ema, p_q):
        assert torch.allclose(new, m * old + (1 - m) * q)
    assert all(torch.equal(a, b) for a, b in zip(buffers, method.ema.buffers()))


def test_backbone_mask_falls_back_to_constant_lambda_near_0_and_1():
    method = make_method(AutoMix)
    x, _ = batch()
    z = method.encoder_features(x)
    for lam in (0.05, 0.08, 0.92, 0.97):
        draws = PairDraws(0.5, torch.randperm(len(x)), lam, torch.randperm(len(x)))
        mask = method.classifier_mask(z, x, draws, torch.Generator())
        assert torch.all(mask == lam)
    draws = PairDraws(0.5, torch.randperm(len(x)), 0.3, torch.randperm(len(x)))
    assert method.classifier_mask(z, x, draws, torch.Generator()).std() > 0


def test_adjust_mask_mean_hits_lambda_in_range():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(6, 1, 8, 8, generator=g) ** torch.linspace(0.2, 4, 6).view(6, 1, 1, 1)
    for lam in (0.1, 0.5, 0.8):
        out = adjust_mask_mean(mask, lam)
        assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.full((6,), lam), atol=1e-5)
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("which,expected_attr", [("backbone", "lam_cls"), ("mixblock", "lam_gen")])
def test_mask_adjust_uses_the_named_lambda(which, expected_attr):
    method = make_method(AutoMix, mask_adjust=1.0, mask_adjust_lambda=which)
    x, _ = batch()
    draws = PairDraws(0.7, torch.randperm(len(x)), 0.3, torch.randperm(len(x)))
    mask = method.classifier_mask(method.encoder_features(x), x, draws, torch.Generator())
    means = mask.mean(dim=(1, 2, 3))
    assert torch.allclose(means, torch.full_like(means, getattr(draws, expected_attr)), atol=1e-5)


def test_cpu_runs_are_bitwise_deterministic():
    assert_deterministic(AutoMix)


def test_trains_a_few_steps_without_nan_on_a_tiny_model():
    outs = assert_trains_finite(make_method(AutoMix))
    assert outs[-1].logs["mask_loss_weight"] < outs[0].logs["mask_loss_weight"]  # linear decay


def test_registry_defaults_and_validation():
    assert METHODS.get("automix") is AutoMix
    method = build_method("automix", tiny_model(), NUM_CLASSES, lam_embed=False)
    assert method.mix_block.qk.in_channels == method.model.stage_channels[3]
    assert AutoMix.default_min_lr == 0.05 and AutoMix.ema_copies_buffers is False
    assert AutoMix.default_params["alpha"] == 2.0
    for bad in ({"mask_loss_schedule": "step"}, {"alpha": 0}, {"mask_adjust": 1.5},
                {"mask_adjust_lambda": "q"}, {"nonsense": 1}):
        with pytest.raises(InvalidParameterError):
            AutoMix(tiny_model(), NUM_CLASSES, **bad)


def test_reference_params_reproduce_the_reference_cifar_behaviour():
    method = make_method(AutoMix, **AutoMix.reference_params)
    assert method.mix_block.qk.in_channels == method.model.stage_channels[3]  # no lambda channel
    outs = assert_trains_finite(method, steps=2)
    assert outs[0].logs["mask_loss_weight"] == outs[1].logs["mask_loss_weight"] == 0.1  # constant weight


def test_display_leaves_state_alone_and_figure_has_sources_masks_mixed():
    method = make_method(AutoMix)
    state = copy.deepcopy(method.state_dict())
    x, y = batch(n=4)
    shown = method.mix_for_display(x, y, torch.Generator().manual_seed(0))
    assert torch.allclose(shown.masks.sum(1), torch.ones(4, 32, 32))
    lam = float(shown.weights[0, 0])
    assert torch.allclose(shown.mixed, shown.masks[:, :1] * x + shown.masks[:, 1:] * shown.sources[1])
    assert 0 < lam < 1 and method.training
    assert all(torch.equal(v, state[k]) for k, v in method.state_dict().items())
    fig = mixed_samples_figure(method, x, y, torch.Generator().manual_seed(0), n=3)
    assert len(fig.axes) == 3 * 5
    assert np.isfinite(fig.axes[2].images[0].get_array()).all()


@pytest.mark.parametrize("cls", [AutoMix, SAMix, AdAutoMix])
def test_mask_module_init_follows_the_run_seed_unless_pinned(cls):
    def mask_params(seed, **params):
        method = make_method(cls, seed=seed, **params)
        return torch.cat([p.flatten() for n, p in method.named_parameters() if not n.startswith(("model.", "ema."))])

    assert torch.equal(mask_params(0), mask_params(0))
    assert not torch.equal(mask_params(0), mask_params(1))
    assert torch.equal(mask_params(0, init_seed=7), mask_params(1, init_seed=7))

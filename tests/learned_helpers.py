"""Helpers shared by the tests of the learned-mask methods (test_automix, test_samix, test_adautomix).

Tiny models and batches, a miniature trainer, gradient checks, the spatial-equivariance check
of a mask module, and the frozen-classifier experiment that trains a Mix Block alone.
"""
import math

import torch
import torch.nn.functional as F

from mixrepro.losses import soft_ce
from mixrepro.methods.automix import draw_pairs, mix_pair
from mixrepro.methods.base import StepContext
from mixrepro.methods.mixblock import lambda_response, lambda_response_logs
from mixrepro.mixers.base import MixTarget
from mixrepro.models import build_model

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
        assert torch.equal(oa.loss, ob.loss) and oa.logs.keys() == ob.logs.keys()
        assert all(float(oa.logs[k]) == float(ob.logs[k]) for k in oa.logs)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


def assert_trains_finite(method, steps: int = 3):
    before = [p.clone() for p in method.ema.parameters()]
    outs = train_steps(method, steps)
    assert all(math.isfinite(float(o.loss.detach())) for o in outs)
    assert all(math.isfinite(float(v)) for o in outs for v in o.logs.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, method.ema.parameters()))
    return outs


def assert_logs_are_detached_scalars(logs: dict):
    """Per-step logs: numbers or detached 0-d tensors (the loop averages them on the device)."""
    for key, value in logs.items():
        if torch.is_tensor(value):
            assert value.dim() == 0 and not value.requires_grad, key
        else:
            assert isinstance(value, (int, float)), key


def scale_weights_(module, std: float, seed: int = 1):
    """Redraw every parameter N(0, std): masks with real spatial structure (the paper init is ~flat)."""
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for p in module.parameters():
            p.normal_(0, std, generator=g)
    return module


def permute_space(t: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Reorder the H*W positions of [B, C, H, W] by ``order`` (a permutation of H*W)."""
    b, c, h, w = t.shape
    return t.flatten(2)[:, :, order].view(b, c, h, w)


# ------------------------------------------------------------------------------------------------
# A Mix Block trained alone through a frozen, informative classifier
# ------------------------------------------------------------------------------------------------


def small_synthetic(size: int = 16):
    """The synthetic dataset's images pooled to ``size`` px, as float [N, 3, size, size] in [0, 1]."""
    from mixrepro.data import load_dataset

    ds = load_dataset("synthetic")

    def prep(a):
        return F.adaptive_avg_pool2d(a.permute(0, 3, 1, 2).float() / 255, size)

    return prep(ds.train_x), ds.train_y, prep(ds.test_x), ds.test_y


def informative_classifier(x, y, steps: int = 150, seed: int = 0):
    """A width-1/8 ResNet-18 trained ``steps`` SGD steps (batch 64, lr 0.1) on (x, y); returns its state."""
    model = tiny_model(seed=seed).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def train_mix_block_alone(method, x, y, steps: int, lr: float, batch_size: int = 32, seed: int = 1):
    """SGD (momentum 0.9) on the Mix Block only, with the generation half of the AutoMix step."""
    opt = torch.optim.SGD(method.mix_block.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        xb, yb = x[idx], y[idx]
        draws = draw_pairs(batch_size, method.params["alpha"], g, xb.device)
        loss_gen, mask_term, _, _ = method.generation_terms(xb, yb, method.encoder_features(xb), draws, g, 0.0)
        opt.zero_grad()
        (loss_gen + mask_term).backward()
        opt.step()
    return method


@torch.no_grad()
def measured_lambda_response(method, x, batches: int = 20, batch_size: int = 32, seed: int = 123) -> dict:
    """Correlation, slope and |gap| of the Mix Block's mask means against lambda on fresh draws."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(batches):
        xb = x[torch.randint(0, len(x), (batch_size,), generator=g)]
        draws = draw_pairs(batch_size, method.params["alpha"], g, xb.device)
        mask = method.mix_block(method.encoder_features(xb), draws.perm_gen, draws.lam_gen, xb.shape[-2:])
        rows.append({k: float(v) for k, v in lambda_response_logs(mask, [draws.lam_gen]).items()})
    return lambda_response({k: sum(r[k] for r in rows) / batches for k in rows[0]})

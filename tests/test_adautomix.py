"""AdAutoMix: N-image generator, lambda sampling, gradient reversal, adversarial step, options."""
import math

import pytest
import torch
import torch.nn.functional as F

from mixrepro.errors import InvalidParameterError
from mixrepro.methods.adautomix import (
    AdAutoMix,
    AdAutoMixGenerator,
    reverse_gradient,
    sample_mix_weights,
)
from mixrepro.methods.registry import METHODS
from mixrepro.visualize import mixed_samples_figure
from test_automix import (
    NUM_CLASSES,
    assert_deterministic,
    assert_trains_finite,
    batch,
    ctx_at,
    make_method,
    tiny_model,
)


def gen(channels=16, lam_embed=False, upsample="bilinear"):
    return AdAutoMixGenerator(channels, lam_embed, upsample, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_generator_masks_are_in_unit_interval_and_sum_to_one_per_pixel(n):
    g = gen(lam_embed=True)
    with torch.no_grad():
        for p in g.parameters():
            p.normal_(0, 1, generator=torch.Generator().manual_seed(1))
    feats = [torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(n)]
    masks = g(feats, [1 / n] * n, (32, 32))
    assert masks.shape == (3, n, 32, 32)
    assert masks.min() >= 0 and masks.max() <= 1
    assert torch.allclose(masks.sum(1), torch.ones(3, 32, 32), atol=1e-6)
    assert masks.std() > 0.01


def test_generator_matches_a_loop_implementation_of_eq_5_and_6():
    g = gen(upsample="nearest")
    with torch.no_grad():
        for p in g.parameters():
            p.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    n, b, h = 3, 2, 4
    feats = [torch.randn(b, 16, h, h, generator=torch.Generator().manual_seed(10 + i)) for i in range(n)]
    out = g(feats, [0.2, 0.3, 0.5], (8, 8))
    expected = torch.zeros(b, n, 8, 8)
    for s in range(b):
        q = [F.relu(g.query(f[s : s + 1]))[0].flatten(1) for f in feats]  # [d, hw]
        k = [F.relu(g.key(f[s : s + 1]))[0].flatten(1) for f in feats]
        v = [g.value(f[s : s + 1])[0].flatten(1) for f in feats]  # [1, hw]
        maps = []
        for i in range(n):
            logits = sum(q[i].T @ k[j] for j in range(n) if j != i) / math.sqrt(q[i].shape[0])
            maps.append((torch.softmax(logits, -1) @ v[i].T).view(h, h))
        up = F.interpolate(torch.stack(maps)[None], size=(8, 8), mode="nearest")[0]
        expected[s] = torch.softmax(up, 0)
    assert torch.allclose(out, expected, atol=1e-5)


def test_generator_channels_follow_the_width_and_relu_on_q_k():
    for width in (0.125, 0.25):
        method = AdAutoMix(tiny_model(width), NUM_CLASSES)
        c = method.model.stage_channels[3]
        assert method.generator_net.query.in_channels == c + 1 and method.generator_net.query.out_channels == c // 2
        assert method.generator_net.value.out_channels == 1


@pytest.mark.parametrize("sampler", ["normalized_beta", "dirichlet"])
def test_mix_weights_sum_to_one_and_have_the_right_mean(sampler):
    g = torch.Generator().manual_seed(0)
    draws = torch.tensor([sample_mix_weights(3, 1.0, sampler, g) for _ in range(3000)])
    assert torch.allclose(draws.sum(1), torch.ones(3000, dtype=draws.dtype))
    assert (draws > 0).all()
    assert torch.allclose(draws.mean(0), torch.full((3,), 1 / 3, dtype=draws.dtype), atol=0.02)
    if sampler == "dirichlet":  # Dirichlet(1,1,1): Var = a(A - a) / (A^2 (A + 1)) = 2 / 36
        assert float(draws[:, 0].var()) == pytest.approx(2 / 36, rel=0.1)
    a = sample_mix_weights(4, 1.0, sampler, torch.Generator().manual_seed(5))
    assert a == sample_mix_weights(4, 1.0, sampler, torch.Generator().manual_seed(5))


def test_gradient_reversal_is_identity_forward_and_negates_backward():
    x = torch.randn(5, requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.arange(5.0)).sum().backward()
    assert torch.allclose(x.grad, -0.5 * torch.arange(5.0))


def test_no_gradient_reaches_the_ema_teacher():
    method = make_method(AdAutoMix)
    x, y = batch()
    method.training_step(x, y, ctx_at(0, torch.Generator().manual_seed(3))).loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in method.ema.parameters())
    assert all(p.grad is not None for p in method.generator_net.parameters())
    assert any(p.grad.abs().sum() > 0 for p in method.generator_net.parameters())
    assert all(p.grad is not None for p in method.model.parameters())


def _step_logs(method, x, y, seed=11, step=0):
    return method.training_step(x, y, ctx_at(step, torch.Generator().manual_seed(seed)))


def _generator_only_sgd_step(method, x, y, lr):
    out = _step_logs(method, x, y)
    method.zero_grad()
    out.loss.backward()
    with torch.no_grad():
        for p in method.generator_net.parameters():
            p -= lr * p.grad  # descent on the combined loss == ascent for the generator
    return out.logs


def _sharpen(method):
    """Give the generator non-trivial masks (paper init makes them nearly uniform)."""
    with torch.no_grad():
        for p in method.generator_net.parameters():
            p.mul_(30)


def test_a_generator_step_raises_the_targets_mixed_loss():
    method = make_method(AdAutoMix, teacher_weight=0.0, cosine_weight=0.0)
    _sharpen(method)
    x, y = batch(n=16)
    before = _generator_only_sgd_step(method, x, y, lr=0.5)
    after = _step_logs(method, x, y).logs
    assert after["loss_amce"] > before["loss_amce"]
    assert after["loss_mce"] == pytest.approx(before["loss_mce"]) and after["loss_ace"] == pytest.approx(before["loss_ace"])


def test_a_generator_step_raises_the_paper_objective_eq_15():
    method = make_method(AdAutoMix)
    _sharpen(method)
    x, y = batch(n=16)

    def objective(logs):  # L_amce(W) - beta L_amce(teacher) + (1 - beta) L_cos
        return logs["loss_amce"] - 0.3 * logs["loss_teacher"] + 0.7 * logs["cosine"]

    before = _generator_only_sgd_step(method, x, y, lr=0.2)
    assert objective(_step_logs(method, x, y).logs) > objective(before)


def test_a_target_step_lowers_the_target_loss():
    method = make_method(AdAutoMix)
    x, y = batch(n=16)

    def target_loss(logs):
        return logs["loss_amce"] + 0.5 * logs["loss_mce"] + 0.5 * logs["loss_ace"]

    out = _step_logs(method, x, y)
    out.loss.backward()
    with torch.no_grad():
        for p in method.model.parameters():
            p -= 0.02 * p.grad
    assert target_loss(_step_logs(method, x, y).logs) < target_loss(out.logs)


@pytest.mark.parametrize("sign,factor", [("paper", -1.0), ("reference", 1.0)])
def test_cosine_sign_option(sign, factor):
    method = make_method(AdAutoMix, cosine_sign=sign)
    x, y = batch()
    logs = _step_logs(method, x, y).logs
    assert logs["loss_generator"] == pytest.approx(0.3 * logs["loss_teacher"] + factor * 0.7 * logs["cosine"], rel=1e-5)


def test_reference_schedule_alternates_adversarial_and_cooperative():
    method = make_method(AdAutoMix, schedule="reference", cosine_sign="reference")
    x, y = batch()
    even = _step_logs(method, x, y, step=0).logs
    odd = _step_logs(method, x, y, step=1).logs
    assert even["adversarial"] == 1.0 and odd["adversarial"] == 0.0
    assert even["loss_generator"] == pytest.approx(-0.3 * even["loss_teacher"] + 0.7 * even["cosine"], rel=1e-5)
    assert odd["loss_generator"] == pytest.approx(odd["loss_teacher"], rel=1e-6)


def test_reference_schedule_gives_the_generator_no_gradient_from_the_target():
    """On a cooperative (odd) step the generator's whole gradient is that of the teacher's CE."""
    method = make_method(AdAutoMix, schedule="reference")
    x, y = batch()
    params = list(method.generator_net.parameters())
    total = torch.autograd.grad(_step_logs(method, x, y, seed=4, step=1).loss, params)
    g = torch.Generator().manual_seed(4)  # replay the step's draws: lambdas, then permutations
    lams = sample_mix_weights(3, 1.0, "normalized_beta", g)
    perms = method.draw_perms(len(x), g, x.device)
    z, clean_logits = method.teacher_pass(x)
    _, x_mix = method.generate(x, z, perms, lams)
    loss_k, _ = method.teacher_terms(x_mix, method.target_for(y, perms, lams), clean_logits, perms, lams)
    alone = torch.autograd.grad(loss_k, params)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(total, alone))


def test_cpu_runs_are_bitwise_deterministic():
    assert_deterministic(AdAutoMix)


REFERENCE_LIKE = {**AdAutoMix.reference_params, "lambda_sampler": "dirichlet", "upsample": "nearest"}


@pytest.mark.parametrize("params", [{}, {"num_sources": 2}, REFERENCE_LIKE])
def test_trains_a_few_steps_without_nan(params):
    outs = assert_trains_finite(make_method(AdAutoMix, **params))
    assert {"mask_std", "mask_mean_gap", "loss_amce", "cosine", "loss_teacher"} <= set(outs[-1].logs)


def test_registry_defaults_and_validation():
    assert METHODS.get("adautomix") is AdAutoMix
    d = AdAutoMix.default_params
    assert (d["alpha"], d["num_sources"], d["mce_weight"], d["teacher_weight"]) == (1.0, 3, 0.5, 0.3)
    assert AdAutoMix.default_min_lr == 0.05 and AdAutoMix.ema_copies_buffers is False
    for bad in ({"num_sources": 6}, {"num_sources": 1}, {"schedule": "alternate"}, {"cosine_sign": "+"},
                {"mce_weight": 1.5}, {"lambda_sampler": "uniform"}):
        with pytest.raises(InvalidParameterError):
            AdAutoMix(tiny_model(), NUM_CLASSES, **bad)


def test_display_and_figure_for_three_sources():
    method = make_method(AdAutoMix)
    x, y = batch(n=4)
    shown = method.mix_for_display(x, y, torch.Generator().manual_seed(0))
    assert len(shown.sources) == 3 and torch.allclose(shown.masks.sum(1), torch.ones(4, 32, 32))
    assert torch.allclose(shown.weights.sum(1), torch.ones(4))
    fig = mixed_samples_figure(method, x, y, torch.Generator().manual_seed(0), n=2)
    assert len(fig.axes) == 2 * 7

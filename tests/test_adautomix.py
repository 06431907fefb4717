"""AdAutoMix: N-image generator, lambda sampling, gradient reversal, adversarial step, options."""
import math

import pytest
import torch
import torch.nn.functional as F

from learned_helpers import (
    NUM_CLASSES,
    assert_deterministic,
    assert_trains_finite,
    batch,
    ctx_at,
    make_method,
    permute_space,
    scale_weights_,
    tiny_model,
)
from mixrepro.errors import InvalidParameterError
from mixrepro.methods.adautomix import (
    AdAutoMix,
    AdAutoMixGenerator,
    reverse_gradient,
    sample_mix_weights,
)
from mixrepro.methods.registry import METHODS
from mixrepro.visualize import mixed_samples_figure


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


def _floats(logs: dict) -> dict:
    return {k: float(v) for k, v in logs.items()}


def _generator_only_sgd_step(method, x, y, lr):
    out = _step_logs(method, x, y)
    method.zero_grad()
    out.loss.backward()
    with torch.no_grad():
        for p in method.generator_net.parameters():
            p -= lr * p.grad  # descent on the combined loss == ascent for the generator
    return _floats(out.logs)


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
    after = _floats(_step_logs(method, x, y).logs)
    assert after["loss_amce"] > before["loss_amce"]
    assert after["loss_mce"] == pytest.approx(before["loss_mce"])
    assert after["loss_ace"] == pytest.approx(before["loss_ace"])


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
    """The generator's minimised loss, recomputed from the teacher's outputs: 0.3 L_amce(k) -/+ 0.7 L_cos.

    The paper (Eq. 15-16) keeps the mix similar to its sources: the generator *maximises*
    (1 - beta) L_cos, so in the minimised loss it enters with a minus sign; the official code adds it.
    """
    method = make_method(AdAutoMix, cosine_sign=sign)
    x, y = batch()
    logs = _step_logs(method, x, y, seed=11).logs
    g = torch.Generator().manual_seed(11)  # replay the step's draws: lambdas, then permutations
    lams = sample_mix_weights(3, 1.0, "normalized_beta", g)
    perms = method.draw_perms(len(x), g, x.device)
    with torch.no_grad():
        z = method.ema.forward_features(x, 3)
        masks = method.generator_net([z[q] for q in perms], lams, x.shape[-2:])
        x_mix = sum(masks[:, n : n + 1] * x[q] for n, q in enumerate(perms))
        logits_mix, logits_clean = method.ema(x_mix), method.ema(x)
    p_mix, p_clean = torch.softmax(logits_mix, 1), torch.softmax(logits_clean, 1)
    log_p = torch.log_softmax(logits_mix, 1)
    teacher_ce = -sum(lam * log_p[torch.arange(len(x)), y[q]] for lam, q in zip(lams, perms)).mean()
    cos = sum(lam * (p_mix * p_clean[q]).sum(1) / (p_mix.norm(dim=1) * p_clean[q].norm(dim=1))
              for lam, q in zip(lams, perms)).mean()
    assert float(cos) > 0.5  # the term is large enough for its sign to show
    assert float(logs["loss_teacher"]) == pytest.approx(float(teacher_ce), abs=1e-5)
    assert float(logs["loss_generator"]) == pytest.approx(0.3 * float(teacher_ce) + factor * 0.7 * float(cos), abs=1e-5)


def test_reference_schedule_alternates_adversarial_and_cooperative():
    method = make_method(AdAutoMix, schedule="reference", cosine_sign="reference")
    x, y = batch()
    even = _floats(_step_logs(method, x, y, step=0).logs)
    odd = _floats(_step_logs(method, x, y, step=1).logs)
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
    assert (d["lam_margin"], d["mixblock_lr_mult"]) == (0.0, 1.0) and AdAutoMix.reference_params["lam_margin"] == 0.03
    assert AdAutoMix.default_min_lr == 0.05 and AdAutoMix.ema_copies_buffers is False
    for bad in ({"num_sources": 6}, {"num_sources": 1}, {"schedule": "alternate"}, {"cosine_sign": "+"},
                {"mce_weight": 1.5}, {"lambda_sampler": "uniform"}, {"lam_margin": 0.6}, {"mixblock_lr_mult": -1}):
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


def test_generator_masks_follow_a_spatial_permutation_and_depend_on_the_partners():
    g = scale_weights_(gen(lam_embed=True), 0.5)
    feats = [torch.randn(3, 16, 4, 4, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    order = torch.randperm(16, generator=torch.Generator().manual_seed(7))
    masks = g(feats, [0.2, 0.3, 0.5], (4, 4))
    moved = g([permute_space(f, order) for f in feats], [0.2, 0.3, 0.5], (4, 4))
    assert torch.allclose(moved, permute_space(masks, order), atol=1e-6)
    other = g([feats[0], feats[2], feats[1]], [0.2, 0.3, 0.5], (4, 4))  # other partners for source 1
    assert (other[:, 0] - masks[:, 0]).abs().flatten(1).max(1).values.min() > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("margin,fallback", [(0.0, False), (0.5, True)])
def test_lam_margin_gives_the_target_the_plain_linear_mix(margin, fallback):
    """Margin 0.5 catches every lambda_1 (<= 0.5 or >= 0.5): the target's mixed term is the linear N-mix."""
    method = make_method(AdAutoMix, lam_margin=margin)
    _sharpen(method)
    x, y = batch()
    out = _step_logs(method, x, y)
    assert out.logs["lam_margin_fallback"] == float(fallback)
    same = float(out.logs["loss_amce"]) == pytest.approx(float(out.logs["loss_mce"]), abs=1e-6)
    assert same is fallback
    assert (float(out.logs["mask_std_cls"]) < 1e-6) is fallback  # constant masks lambda_n
    # in the paper schedule the fallback step gives the generator no ascent: only the teacher terms reach it
    params = list(method.generator_net.parameters())
    total = torch.autograd.grad(_step_logs(method, x, y).loss, params)
    teacher_only = torch.autograd.grad(_teacher_loss(method, x, y), params)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(total, teacher_only)) is fallback


def _teacher_loss(method, x, y, seed=11):
    """The generator's teacher terms of the step with ``seed``, recomputed with gradient."""
    g = torch.Generator().manual_seed(seed)
    lams = sample_mix_weights(3, 1.0, "normalized_beta", g)
    perms = method.draw_perms(len(x), g, x.device)
    z, clean_logits = method.teacher_pass(x)
    _, x_mix = method.generate(x, z, perms, lams)
    loss_k, cos = method.teacher_terms(x_mix, method.target_for(y, perms, lams), clean_logits, perms, lams)
    return 0.3 * loss_k - 0.7 * cos


def test_param_groups_split_off_the_generator():
    method = make_method(AdAutoMix, mixblock_lr_mult=2.0)
    rest, generator = method.param_groups()
    assert {id(p) for p in generator["params"]} == {id(p) for p in method.generator_net.parameters()}
    assert generator["lr_mult"] == 2.0 and "lr_mult" not in rest
    assert len(make_method(AdAutoMix).param_groups()) == 1


def test_ace_weight_sets_the_clean_term_apart_from_the_linear_mix_term():
    """Tables 5 and 8 add L_ace and L_mce one at a time: ace_weight defaults to 1 - mce_weight."""
    x, y = batch()
    outs = {}
    for name, params in {"default": {}, "explicit": {"ace_weight": 0.5}, "no_ace": {"ace_weight": 0.0}}.items():
        method = make_method(AdAutoMix, **params)
        outs[name] = method.training_step(x, y, ctx_at(0, torch.Generator().manual_seed(4)))
    loss = {k: float(o.loss.detach()) for k, o in outs.items()}
    assert loss["default"] == loss["explicit"]
    assert loss["no_ace"] == pytest.approx(loss["default"] - 0.5 * float(outs["default"].logs["loss_ace"]), rel=1e-5)
    with pytest.raises(InvalidParameterError, match="ace_weight"):
        make_method(AdAutoMix, ace_weight=2.0)

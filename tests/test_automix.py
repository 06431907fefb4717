"""AutoMix: Mix Block, momentum pipeline, losses, schedules, logs, options, determinism; the shared figure.

Shared helpers (tiny model, one step, gradient checks, the frozen-classifier experiment) live
in learned_helpers.py.
"""
import copy
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from learned_helpers import (
    NUM_CLASSES,
    assert_backbone_part_leaves_mix_block_alone,
    assert_deterministic,
    assert_ema_gets_no_gradient,
    assert_logs_are_detached_scalars,
    assert_trains_finite,
    batch,
    ctx_at,
    informative_classifier,
    make_method,
    measured_lambda_response,
    permute_space,
    scale_weights_,
    small_synthetic,
    tiny_model,
    train_mix_block_alone,
    train_steps,
)
from mixrepro.errors import InvalidParameterError
from mixrepro.methods.adautomix import AdAutoMix
from mixrepro.methods.automix import AutoMix, MixBlock, PairDraws, draw_pairs, scheduled_weight
from mixrepro.methods.base import automix_momentum
from mixrepro.methods.mixblock import (
    LAMBDA_RESPONSE_KEYS,
    adjust_mask_mean,
    ignore_lambda_floor,
    lambda_response,
    lambda_response_logs,
    mask_mean_loss,
    mask_saturation,
)
from mixrepro.methods.registry import METHODS, build_method
from mixrepro.methods.samix import SAMix
from mixrepro.visualize import mixed_samples_figure


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


def test_lambda_loss_matches_its_formula_per_sample_and_on_the_batch_mean():
    g = torch.Generator().manual_seed(0)
    # per-sample means scattered around 0.5: the two forms disagree
    mask_i = torch.rand(5, 1, 16, 16, generator=g) ** torch.linspace(0.3, 3, 5).view(5, 1, 1, 1)
    means = (1 - (1 - mask_i)).numpy().mean(axis=(1, 2, 3))
    for lam in (0.1, 0.45, 0.5, 0.9):
        per_sample = np.maximum(np.abs(lam - means) - 0.1, 0.0).mean()  # Eq. 7 for each s_i, averaged
        batch_mean = max(abs(1 - (1 - mask_i).numpy().mean() - lam) - 0.1, 0.0)  # the reference form
        assert float(mask_mean_loss(mask_i, lam, 0.1, "sample")) == pytest.approx(per_sample, abs=1e-6)
        assert float(mask_mean_loss(mask_i, lam, 0.1, "batch")) == pytest.approx(batch_mean, abs=1e-6)
    assert float(mask_mean_loss(mask_i, 0.5, 0.1, "sample")) > 0.05 > float(mask_mean_loss(mask_i, 0.5, 0.1, "batch"))
    with pytest.raises(InvalidParameterError):
        mask_mean_loss(mask_i, 0.5, 0.1, "pixel")


@pytest.mark.parametrize("mean", ["sample", "batch"])
def test_logged_lambda_loss_is_that_of_the_mix_block_pair(mean):
    method = make_method(AutoMix, mask_loss_mean=mean)
    x, y = batch()
    g = torch.Generator().manual_seed(7)
    state = g.get_state()
    out = method.training_step(x, y, ctx_at(0, g))
    g.set_state(state)
    draws = draw_pairs(len(x), 2.0, g, x.device)
    with torch.no_grad():
        mask = method.mix_block(method.encoder_features(x), draws.perm_gen, draws.lam_gen, (32, 32))
    means = mask.mean(dim=(1, 2, 3)).numpy()
    if mean == "sample":
        expected = np.maximum(np.abs(draws.lam_gen - means) - 0.1, 0.0).mean()
    else:
        expected = max(abs(means.mean() - draws.lam_gen) - 0.1, 0.0)
    assert float(out.logs["loss_lambda"]) == pytest.approx(expected, abs=1e-5)
    assert out.logs["lam_gen"] == draws.lam_gen and out.logs["lam_cls"] == draws.lam_cls
    for key in ("mask_mean_gen", "mask_std_gen", "mask_mean_cls", "mask_std_cls", "loss_clean", "loss_mix", "loss_gen"):
        assert key in out.logs
    # the lambda-response moments are those of this mask and lambda
    assert float(out.logs["lamresp_m"]) == pytest.approx(float(means.mean()), abs=1e-6)
    assert float(out.logs["lamresp_m2"]) == pytest.approx(float((means**2).mean()), abs=1e-6)
    assert float(out.logs["lamresp_m_lam"]) == pytest.approx(float(means.mean()) * draws.lam_gen, abs=1e-6)
    assert out.logs["lamresp_lam"] == pytest.approx(draws.lam_gen)
    assert float(out.logs["lamresp_abs_gap"]) == pytest.approx(float(np.abs(means - draws.lam_gen).mean()), abs=1e-6)
    assert_logs_are_detached_scalars(out.logs)


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


def test_one_sided_adjusting_raises_only_means_below_lambda():
    """The SAMix paper's rule: s_i -> lam / mu_i * s_i when mu_i < lam; other masks untouched."""
    base = torch.full((4, 1, 4, 4), 1.0)
    mask = base * torch.tensor([0.2, 0.3, 0.6, 0.8]).view(4, 1, 1, 1)
    mask[:, :, 0, 0] *= 0.5  # not constant: the rescaling must be multiplicative
    out = adjust_mask_mean(mask, 0.5, "one-sided")
    means = mask.mean(dim=(1, 2, 3))
    assert torch.allclose(out[:2], mask[:2] * (0.5 / means[:2]).view(2, 1, 1, 1))
    assert torch.allclose(out[:2].mean(dim=(1, 2, 3)), torch.full((2,), 0.5))
    assert torch.equal(out[2:], mask[2:])
    clipped = adjust_mask_mean(torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 2, 2), 0.6, "one-sided")
    assert float(clipped.max()) == 1.0 and float(clipped.mean()) == pytest.approx(0.25)  # clipped at 1


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
    assert set(LAMBDA_RESPONSE_KEYS) <= set(outs[-1].logs)


def test_registry_defaults_and_validation():
    assert METHODS.get("automix") is AutoMix
    method = build_method("automix", tiny_model(), NUM_CLASSES, lam_embed=False)
    assert method.mix_block.qk.in_channels == method.model.stage_channels[3]
    assert AutoMix.default_min_lr == 0.05 and AutoMix.ema_copies_buffers is False
    assert AutoMix.default_params["alpha"] == 2.0
    d = AutoMix.default_params
    assert (d["mask_loss_mean"], d["mask_adjust_rule"], d["mixblock_lr_mult"], d["separate_heads"]) == \
        ("sample", "two-sided", 1.0, False)
    for bad in ({"mask_loss_schedule": "step"}, {"alpha": 0}, {"mask_adjust": 1.5},
                {"mask_adjust_lambda": "q"}, {"nonsense": 1}, {"mask_loss_mean": "pixel"},
                {"mask_adjust_rule": "up"}, {"mixblock_lr_mult": -1.0}, {"separate_heads": 1}):
        with pytest.raises(InvalidParameterError):
            AutoMix(tiny_model(), NUM_CLASSES, **bad)


def test_reference_params_reproduce_the_reference_cifar_behaviour():
    assert AutoMix.reference_params["mask_loss_mean"] == "batch"
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


# ------------------------------------------------------------------------------------------------
# The Mix Block's computation, checked against independent formulations
# ------------------------------------------------------------------------------------------------


def test_mix_block_attention_matches_an_einsum_version():
    """Eq. 4-6 written out with einsum: q = k = W_P z (+ lambda channel), v from the partner."""
    c, b, h = 16, 4, 4
    block = scale_weights_(MixBlock(c, True, torch.Generator().manual_seed(0)), 0.5)
    z = torch.randn(b, c, h, h, generator=torch.Generator().manual_seed(2))
    perm, lam = torch.tensor([2, 0, 3, 1]), 0.3
    out = block(z, perm, lam, (8, 8))

    w_qk, b_qk = block.qk.weight[:, :, 0, 0], block.qk.bias  # [d, c + 1]
    w_v, b_v = block.value.weight[0, :, 0, 0], block.value.bias  # [c + 1]
    zi = torch.cat([z, torch.full((b, 1, h, h), lam)], 1).flatten(2)  # [b, c + 1, hw]
    zj = torch.cat([z[perm], torch.full((b, 1, h, h), 1 - lam)], 1).flatten(2)
    q = torch.einsum("dc,bcn->bdn", w_qk, zi) + b_qk[None, :, None]
    k = torch.einsum("dc,bcm->bdm", w_qk, zj) + b_qk[None, :, None]
    v = torch.einsum("c,bcm->bm", w_v, zj) + b_v
    attn = torch.softmax(torch.einsum("bdn,bdm->bnm", q, k) / math.sqrt(w_qk.shape[0]), dim=-1)
    logits = torch.einsum("bnm,bm->bn", attn, v).view(b, 1, h, h)
    expected = 1 - torch.sigmoid(logits.repeat_interleave(2, -1).repeat_interleave(2, -2))  # nearest x2
    assert torch.allclose(out, expected, atol=1e-6)
    assert out.std() > 0.05  # a structured mask, so the comparison means something


@pytest.mark.parametrize("lam_embed", [True, False])
def test_mask_follows_a_spatial_permutation_and_depends_on_the_partner(lam_embed):
    block = scale_weights_(MixBlock(16, lam_embed, torch.Generator().manual_seed(0)), 0.5)
    z = torch.randn(5, 16, 4, 4, generator=torch.Generator().manual_seed(3))
    perm, order = torch.tensor([1, 2, 3, 4, 0]), torch.randperm(16, generator=torch.Generator().manual_seed(4))
    mask = block(z, perm, 0.4, (4, 4))  # at feature resolution: no upsampling in the way
    assert torch.allclose(block(permute_space(z, order), perm, 0.4, (4, 4)), permute_space(mask, order), atol=1e-6)
    other = block(z, torch.tensor([2, 3, 4, 0, 1]), 0.4, (4, 4))  # every sample gets another partner
    assert (other - mask).abs().flatten(1).max(1).values.min() > 1e-3


# ------------------------------------------------------------------------------------------------
# Lambda response, saturation and the lambda-blind floor
# ------------------------------------------------------------------------------------------------


def test_ignore_lambda_floor_numbers():
    assert ignore_lambda_floor(2.0, 2, "beta") == pytest.approx(3 / 16, abs=1e-5)  # E|lam - 1/2|, Beta(2, 2)
    # Dirichlet(1, 1, 1): lam_1 ~ Beta(1, 2), median m = 1 - 1/sqrt(2), E|lam_1 - m| = m^2 - m^3/3 + (1 - m)^3/3
    m = 1 - 1 / math.sqrt(2)
    assert ignore_lambda_floor(1.0, 3, "dirichlet") == pytest.approx(m**2 - m**3 / 3 + (1 - m) ** 3 / 3, abs=1e-5)
    # AdAutoMix's three normalised Beta(1, 1) draws: against a seeded Monte-Carlo estimate
    b = torch.distributions.Beta(1.0, 1.0)
    torch.manual_seed(0)
    draws = b.sample((400_000, 3)).double()
    lam = draws[:, 0] / draws.sum(1)
    mc = float((lam - lam.median()).abs().mean())
    assert ignore_lambda_floor(1.0, 3, "normalized_beta") == pytest.approx(mc, abs=1.5e-3)
    assert ignore_lambda_floor(1.0, 3, "normalized_beta") == pytest.approx(0.144, abs=2e-3)
    assert make_method(AutoMix).lambda_floor() == pytest.approx(0.1875, abs=1e-5)
    assert make_method(AdAutoMix).lambda_floor() == pytest.approx(0.144, abs=2e-3)
    for bad in ((2.0, 3, "beta"), (1.0, 1, "dirichlet"), (1.0, 3, "uniform")):
        with pytest.raises(InvalidParameterError):
            ignore_lambda_floor(*bad)


def test_ignore_lambda_floor_is_the_same_bits_at_any_thread_count():
    """The pages print this floor (and values derived from it): nbval must pass on a machine of any size.
    Fresh processes: torch keeps its first thread pool's split of a reduction within one process."""
    code = ("from mixrepro.methods.mixblock import ignore_lambda_floor as f; "
            "print(repr(f(2.0, 2, 'beta')), repr(f(1.0, 3, 'normalized_beta')))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(n)}).stdout for n in (1, 2, 3)}
    assert len(outputs) == 1, outputs


def test_lambda_response_recovers_correlation_and_slope_from_averaged_step_logs():
    """Masks with mean a + b * lam + noise, one lambda per step: the epoch's averages give back b."""
    g = torch.Generator().manual_seed(0)
    rows, pooled_m, pooled_lam = [], [], []
    for _ in range(200):
        lam = float(torch.distributions.Beta(2.0, 2.0).sample())
        means = (0.2 + 0.6 * lam + 0.05 * torch.randn(16, generator=g)).clamp(0, 1)
        masks = means.view(16, 1, 1, 1).expand(16, 1, 4, 4)
        rows.append(lambda_response_logs(masks, [lam]))
        pooled_m.append(means)
        pooled_lam.append(torch.full((16,), lam))
    epoch = {k: sum(float(r[k]) for r in rows) / len(rows) for k in rows[0]}  # what the loop's epoch row holds
    m, lam = torch.cat(pooled_m).double(), torch.cat(pooled_lam).double()
    got = lambda_response(epoch, floor=0.1875)
    assert got["correlation"] == pytest.approx(float(torch.corrcoef(torch.stack([m, lam]))[0, 1]), abs=1e-4)
    assert got["slope"] == pytest.approx(float(((m - m.mean()) * (lam - lam.mean())).mean() / lam.var(unbiased=False)),
                                         abs=1e-4)
    assert got["slope"] == pytest.approx(0.6, abs=0.05) and got["floor"] == 0.1875
    assert got["abs_gap"] == pytest.approx(float((m - lam).abs().mean()), abs=1e-5)
    # a lambda-blind mask: no correlation, and a gap at the floor or above
    blind = [lambda_response_logs(torch.full((8, 1, 2, 2), 0.5), [float(t)]) for t in torch.rand(300, generator=g)]
    blind_row = {k: sum(float(r[k]) for r in blind) / len(blind) for k in blind[0]}
    assert math.isnan(lambda_response(blind_row)["correlation"])  # constant mask: no variance at all
    assert lambda_response(blind_row)["slope"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(InvalidParameterError):
        lambda_response({"lamresp_m": 0.5})


def test_mask_saturation_counts_values_near_0_and_1():
    mask = torch.tensor([0.0, 0.005, 0.5, 0.995, 1.0, 0.02, 0.98, 0.3]).view(1, 1, 2, 4)
    assert float(mask_saturation(mask)) == pytest.approx(4 / 8)


@pytest.mark.parametrize("cls", [AutoMix, SAMix, AdAutoMix])
def test_every_learned_method_logs_the_shared_keys_as_detached_tensors(cls):
    method = make_method(cls)
    x, y = batch()
    logs = method.training_step(x, y, ctx_at(0, torch.Generator().manual_seed(1))).logs
    assert set(LAMBDA_RESPONSE_KEYS) <= set(logs)
    assert_logs_are_detached_scalars(logs)
    assert torch.is_tensor(logs["lamresp_m"]) and torch.is_tensor(logs["mask_saturated"])
    assert 0.0 <= float(logs["mask_saturated"]) <= 1.0


@pytest.mark.slow
def test_mix_block_alone_through_a_frozen_informative_classifier_learns_to_follow_lambda():
    """The lambda pathway, isolated: a Mix Block trained alone through a frozen classifier.

    Setup (about 15 s on one CPU thread): the synthetic dataset at 16 px; a width-1/8 ResNet-18
    trained 150 steps (81 % test accuracy) becomes k; the Mix Block alone trains 500 SGD steps
    (momentum 0.9, as the trainer's optimiser; lr 0.003, batch 32) on the generation half of the
    step (MCE through k + l_lambda). Measured on 20 fresh batches (20 lambdas), over 8 seeds:
    correlation 0.87-0.91, slope 0.40-0.43, gap 0.116-0.145. lr 0.01 with momentum 0.9 is unstable
    here (2 of 4 seeds saturate to a near-constant mask within 500 steps), lr 0.1 saturates within
    25 steps. Thresholds: a lambda-blind mask has correlation ~0 (sd about 1 / sqrt(19) = 0.23
    with 20 lambdas) and a gap of at least the floor (0.1875 under Beta(2, 2)); the same run
    through the untrained classifier reaches correlation <= 0.43, slope <= 0.02, gap >= 0.186.
    So correlation > 0.7, slope > 0.25 and a gap below the floor pass only if the mask follows lambda.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a shared 2-core machine are many times slower
    try:
        x, y, _, _ = small_synthetic(16)
        classifier = informative_classifier(x, y, steps=150)
        method = make_method(AutoMix)
        method.ema.load_state_dict(classifier.state_dict())
        before = measured_lambda_response(method, x)
        train_mix_block_alone(method, x, y, steps=500, lr=0.003)
        after = measured_lambda_response(method, x)
    finally:
        torch.set_num_threads(threads)
    assert abs(before["correlation"]) < 0.5 and before["slope"] < 0.05, before  # the paper init ignores lambda
    assert after["correlation"] > 0.7 and after["slope"] > 0.25, (before, after)
    assert after["abs_gap"] < method.lambda_floor(), (before, after)


# ------------------------------------------------------------------------------------------------
# Options: the Mix Block's lr multiplier, separate heads
# ------------------------------------------------------------------------------------------------


def test_param_groups_default_to_one_group_and_split_off_the_mix_block():
    method = make_method(AutoMix)
    trainable = [p for p in method.parameters() if p.requires_grad]
    (group,) = method.param_groups()
    assert [id(p) for p in group["params"]] == [id(p) for p in trainable] and "lr_mult" not in group
    method = make_method(AutoMix, mixblock_lr_mult=0.5)
    rest, mix = method.param_groups()
    assert {id(p) for p in mix["params"]} == {id(p) for p in method.mix_block.parameters()}
    assert mix["lr_mult"] == 0.5 and "lr_mult" not in rest
    assert len(rest["params"]) + len(mix["params"]) == len(trainable)
    assert not {id(p) for p in rest["params"]} & {id(p) for p in mix["params"]}
    opt = torch.optim.SGD(method.param_groups(), lr=0.1)  # a torch optimiser takes them as they are
    assert [g.get("lr_mult", 1.0) for g in opt.param_groups] == [1.0, 0.5]


def test_the_trainer_builds_its_optimiser_from_param_groups_and_applies_lr_mult():
    from mixrepro.config import RunConfig
    from mixrepro.training.schedule import build_optimizer, set_lr

    method = make_method(AutoMix, mixblock_lr_mult=0.5)
    opt = build_optimizer(RunConfig(method="automix"), method.param_groups())
    set_lr(opt, 0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.05]


@pytest.mark.slow
def test_separate_heads_route_clean_and_mixed_images_and_follow_with_ema():
    plain, split = make_method(AutoMix), make_method(AutoMix, separate_heads=True)
    assert not hasattr(plain, "mix_head") and set(plain.eval_networks()) == {"online", "ema"}
    assert all(torch.equal(a, b) for a, b in zip(plain.mix_block.parameters(), split.mix_block.parameters()))
    assert not any(torch.equal(a, b) for a, b in zip(split.mix_head.parameters(), split.model.head.parameters()))
    assert all(not p.requires_grad for p in split.mix_head_ema.parameters())
    x, y = batch()
    out = split.training_step(x, y, ctx_at(0, torch.Generator().manual_seed(2)))
    # the clean CE reaches the model's own head only; the mixed terms reach the mixed head only
    split.zero_grad()
    split.classify(split.model, x, mixed=False).sum().backward()
    assert split.model.head[-1].weight.grad is not None and split.mix_head[-1].weight.grad is None
    split.zero_grad()
    split.classify(split.model, x, mixed=True).sum().backward()
    assert split.model.head[-1].weight.grad is None and split.mix_head[-1].weight.grad is not None
    # the Mix Block learns through k's mixed head: its loss reaches the Mix Block, not k's heads
    split.zero_grad()
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in split.mix_block.parameters())
    assert all(p.grad is None for p in split.mix_head_ema.parameters())
    # EMA follows the mixed head too; eval networks score both heads
    before = [p.clone() for p in split.mix_head_ema.parameters()]
    train_steps(split, 2)
    assert any(not torch.equal(b, p) for b, p in zip(before, split.mix_head_ema.parameters()))
    nets = split.eval_networks()
    assert set(nets) == {"online", "ema", "online_mixhead", "ema_mixhead"}
    with torch.no_grad():
        split.eval()
        feats = split.ema.forward_features(x, split.ema.num_stages)
        assert torch.allclose(nets["ema_mixhead"](x), split.mix_head_ema(feats))
        assert torch.allclose(nets["ema"](x), split.ema.head(feats))


def test_without_the_lambda_channel_the_mask_cannot_depend_on_lambda():
    """``lam_embed=False`` (the reference CIFAR setting): lambda reaches the Mix Block nowhere, so its
    mask is lambda-blind by construction and |mask mean - lambda| cannot beat ``lambda_floor()``."""
    z = torch.randn(4, 16, 4, 4, generator=torch.Generator().manual_seed(0))
    perm = torch.tensor([1, 2, 3, 0])
    blind = scale_weights_(MixBlock(16, False, torch.Generator().manual_seed(0)), 0.5)
    assert torch.equal(blind(z, perm, 0.1, (8, 8)), blind(z, perm, 0.9, (8, 8)))
    seeing = scale_weights_(MixBlock(16, True, torch.Generator().manual_seed(0)), 0.5)
    assert not torch.allclose(seeing(z, perm, 0.1, (8, 8)), seeing(z, perm, 0.9, (8, 8)))



def test_dm_ce_replaces_only_the_classifiers_mixed_loss():
    from mixrepro.errors import UnknownNameError
    from mixrepro.losses import build_loss

    method = build_method("automix", tiny_model(), NUM_CLASSES, loss="dm_ce")
    assert method.mix_loss.name == "dm_ce" and method.mix_loss.params == build_loss("dm_ce", "dynamic").params
    assert method.mix_loss.params["eta"] == 1.0  # the DM paper's preset for dynamic mixers
    assert build_method("samix", tiny_model(), NUM_CLASSES, loss="dm_ce").mix_loss.params["eta"] == 1.0
    with pytest.raises(UnknownNameError):
        build_method("automix", tiny_model(), NUM_CLASSES, loss="nope")
    with pytest.raises(InvalidParameterError):
        build_method("automix", tiny_model(), NUM_CLASSES, loss="dm_ce", loss_params={"eta": -1})
    x, y = batch()
    logs = {}
    for loss in ("mce", "dm_ce"):
        torch.manual_seed(0)
        step_method = build_method("automix", tiny_model(), NUM_CLASSES, loss=loss)
        logs[loss] = step_method.training_step(x, y, ctx_at(50, torch.Generator().manual_seed(2))).logs
    assert float(logs["mce"]["loss_gen"]) == float(logs["dm_ce"]["loss_gen"])  # the Mix Block's loss is MCE
    assert float(logs["mce"]["loss_mix"]) != float(logs["dm_ce"]["loss_mix"])


# ----------------------------------------------------------------------------- ablation options (Tables 9-10, Fig. 6)


def _step(params, seed=2, step=50):
    method = make_method(AutoMix, **params)
    x, y = batch()
    return method, method.training_step(x, y, ctx_at(step, torch.Generator().manual_seed(seed)))


def test_without_clean_ce_the_loss_drops_exactly_the_clean_term():
    _, full = _step({})
    method, no_ce = _step({"clean_ce": False})
    assert float(no_ce.logs["loss_clean"]) == 0.0 and float(full.logs["loss_clean"]) > 0
    assert float(no_ce.logs["loss_mix"]) == float(full.logs["loss_mix"])  # same draws, same masks
    assert float(no_ce.loss.detach()) == pytest.approx(float(full.loss.detach()) - float(full.logs["loss_clean"]),
                                                       rel=1e-6)


def test_constant_ema_momentum_zero_makes_k_a_copy_of_q():
    method = make_method(AutoMix, ema_momentum=0.0)
    train_steps(method, steps=2)
    for p_k, p_q in zip(method.ema.parameters(), method.model.parameters()):
        assert torch.equal(p_k, p_q)
    scheduled = make_method(AutoMix)
    train_steps(scheduled, steps=2)
    assert not all(torch.equal(a, b) for a, b in zip(scheduled.ema.parameters(), scheduled.model.parameters()))
    assert make_method(AutoMix, ema_momentum=0.5).ema_momentum(ctx_at(0, None)) == 0.5


def test_without_the_momentum_pipeline_the_mix_block_learns_from_q_and_k_plays_no_part():
    method, out = _step({"momentum_pipeline": False})
    assert "loss_gen" not in out.logs and float(out.logs["mask_std_gen"]) >= 0
    out.loss.backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in method.mix_block.parameters())
    assert all(p.grad is None for p in method.ema.parameters())
    x, y = batch()
    before = method.training_step(x, y, ctx_at(50, torch.Generator().manual_seed(2))).loss.detach()
    with torch.no_grad():
        for p in method.ema.parameters():
            p.add_(1.0)  # k changed: the joint step must not notice
    after = method.training_step(x, y, ctx_at(50, torch.Generator().manual_seed(2))).loss.detach()
    assert float(before) == float(after)


def test_random_grid_masks_are_binary_feature_cells_with_mean_lambda_and_nothing_learns():
    from mixrepro.methods.automix import random_grid_mask

    mask = random_grid_mask((400, 256, 8, 8), 0.3, (32, 32), torch.Generator().manual_seed(0))
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and mask.shape == (400, 1, 32, 32)
    assert torch.equal(mask, mask[..., ::4, ::4].repeat_interleave(4, -2).repeat_interleave(4, -1))  # 4x4 cells
    assert float(mask.mean()) == pytest.approx(0.3, abs=0.01)
    method, out = _step({"mask_source": "random_grid"})
    lam = float(out.logs["lam_cls"])
    assert "loss_gen" not in out.logs and 0.08 < lam < 0.92  # these draws use the grid, not the fallback
    assert float(out.logs["mask_std_cls"]) > 0.2  # a binary grid, not a constant mask
    out.loss.backward()
    assert all(p.grad is None for p in method.mix_block.parameters())


@pytest.mark.parametrize("params, name", [({"mask_source": "grids"}, "mask_source"),
                                          ({"ema_momentum": 1.5}, "ema_momentum"),
                                          ({"clean_ce": "no"}, "clean_ce"),
                                          ({"momentum_pipeline": False, "mask_source": "random_grid"}, "mask_source")])
def test_ablation_options_are_validated(params, name):
    with pytest.raises(InvalidParameterError, match=name):
        make_method(AutoMix, **params)

"""PuzzleMix: masks, targets, graph cut vs brute force, transport, prior, determinism, training step."""
from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from mixrepro.errors import InvalidParameterError, UnknownNameError
from mixrepro.methods.base import StepContext
from mixrepro.methods.registry import METHODS
from mixrepro.mixers.base import sample_beta
from mixrepro.methods.puzzlemix import PuzzleMix
from mixrepro.mixers.puzzlemix import (
    block_saliency, boundary_discrepancy, frozen_bn_saliency, label_prior, mix_sources,
    puzzle_energy, puzzlemix, upsample_blocks,
)
from mixrepro.mixers.puzzlemix_graphcut import alpha_beta_swap, exact_convex_cut, grid_energy, label_distance
from mixrepro.mixers.puzzlemix_transport import iterative_plans, position_cost, to_blocks, transport, transport_cost
from mixrepro.models import build_model

HP = dict(beta=1.2, gamma=0.5, eta=0.2, neigh_size=4, n_labels=3)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small tensors: one intra-op thread is faster, and far faster on a loaded 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def random_pair(b=6, size=32, seed=0):
    """Two image batches and concentrated (heavy-tailed) saliency maps."""
    g = gen(seed)
    x_a, x_b = torch.rand(b, 3, size, size, generator=g), torch.rand(b, 3, size, size, generator=g)
    s_a, s_b = torch.rand(b, size, size, generator=g) ** 4, torch.rand(b, size, size, generator=g) ** 4
    return x_a, x_b, s_a, s_b


def block_multiset(x, grid):
    """Counter of each image's blocks (exact bytes), one per image."""
    blocks = to_blocks(x, grid)
    return [Counter(bl.numpy().tobytes() for bl in img) for img in blocks]


def brute_force_min(unary, w_down, w_right):
    """Minimum energy of one sample over every labelling."""
    g, n_labels = unary.shape[1], unary.shape[-1]
    every = np.array(list(itertools.product(range(n_labels), repeat=g * g))).reshape(-1, g, g)
    n = len(every)
    return grid_energy(every, np.repeat(unary, n, 0), np.repeat(w_down, n, 0), np.repeat(w_right, n, 0)).min()


def realistic_energy(seed, grid=2, lam=None, n_labels=3):
    x_a, x_b, s_a, s_b = random_pair(1, 4 * grid, seed)
    lam = float(torch.rand(1, generator=gen(seed))) if lam is None else lam
    return puzzle_energy(x_a, x_b, block_saliency(s_a, grid), block_saliency(s_b, grid), lam, grid,
                         **{**HP, "neigh_size": 1, "n_labels": n_labels})


# ---------------------------------------------------------------- masks and targets


@pytest.mark.parametrize("block_num", [2, 4, 8, 16])
def test_mask_is_blockwise_constant_in_three_levels(block_num):
    x_a, x_b, s_a, s_b = random_pair()
    zeros, ones = torch.zeros_like(x_a), torch.ones_like(x_b)
    # a = 0, b = 1 everywhere: the mixed image IS the pixel mask, whatever the transport does.
    out = mix_sources(zeros, ones, s_a, s_b, 0.5, block_num, **HP)
    pixel_mask = out.mixed[:, 0]
    assert set(pixel_mask.unique().tolist()) <= {0.0, 0.5, 1.0}
    assert set(out.mask.unique().tolist()) <= {0.0, 0.5, 1.0}
    assert out.mask.shape == (len(x_a), block_num, block_num)
    blocks = to_blocks(pixel_mask[:, None], block_num)  # [B, G*G, 1, h, w]
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))  # constant within each block
    assert torch.equal(pixel_mask, upsample_blocks(out.mask, 32))
    assert torch.equal(out.mixed, out.mixed[:, :1].expand_as(out.mixed))


def test_mixed_image_is_the_mask_weighted_sum_of_transported_sources():
    x_a, x_b, s_a, s_b = random_pair()
    out = mix_sources(x_a, x_b, s_a, s_b, 0.4, 4, **HP)
    m = upsample_blocks(out.mask, 32)[:, None]
    torch.testing.assert_close(out.mixed, (1 - m) * out.source_a + m * out.source_b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("solver", ["swap", "exact"])
def test_each_source_keeps_its_salient_region(solver):
    x_a, x_b, _, _ = random_pair(b=2)
    s_a, s_b = torch.zeros(2, 32, 32), torch.zeros(2, 32, 32)
    s_a[:, :16, :16] = 1  # a is salient top-left, b bottom-right
    s_b[:, 16:, 16:] = 1
    out = mix_sources(x_a, x_b, s_a, s_b, 0.5, 2, **HP, transport=False, solver=solver)
    assert torch.all(out.mask[:, 0, 0] == 0) and torch.all(out.mask[:, 1, 1] == 1)


def test_targets_are_mask_means():
    x, _, s, _ = random_pair(b=8)
    y = torch.arange(8)
    perm = torch.randperm(8, generator=gen(3))
    _, target = puzzlemix(x, y, 0.35, perm, s, 4, **HP)
    out = mix_sources(x, x[perm], s, s[perm], 0.35, 4, **HP)
    pixel_mean = upsample_blocks(out.mask, 32).mean((1, 2))
    torch.testing.assert_close(target.weights[:, 0], 1 - pixel_mean)
    torch.testing.assert_close(target.weights.sum(1), torch.ones(8))
    assert torch.equal(target.labels, torch.stack([y, y[perm]], 1))


# ---------------------------------------------------------------- the energy


def direct_binary_energy(labels, lam, s_a, s_b, x_a, x_b, grid):
    """Independent loop version of PuzzleMix's energy for a {0, 1} labelling (1 = show b), one sample.

    Saliency lost + prior + per edge beta' [labels differ] + beta' gamma * boundary discrepancy of the
    sources actually shown; equals our unary/pairwise decomposition up to a labelling-free constant.
    """
    beta_n = HP["beta"] / (grid * 16)
    prior = HP["eta"] * label_prior(lam, 2) / grid**2
    imgs = [x_a[0], x_b[0]]
    bs = x_a.shape[-1] // grid
    e = 0.0
    for r in range(grid):
        for c in range(grid):
            k = labels[r, c]
            e += (s_a[0, r, c] if k else s_b[0, r, c]).item() + prior[k]
            for dr, dc in ((1, 0), (0, 1)):
                r2, c2 = r + dr, c + dc
                if r2 >= grid or c2 >= grid:
                    continue
                k2 = labels[r2, c2]
                e += beta_n * (k != k2)
                along = slice(c * bs, (c + 1) * bs) if dr else slice(r * bs, (r + 1) * bs)
                last = (r + 1) * bs - 1 if dr else (c + 1) * bs - 1  # last pixel row/column of the first block
                if dr:
                    diff = imgs[k][:, last, along] - imgs[k2][:, last + 1, along]
                else:
                    diff = imgs[k][:, along, last] - imgs[k2][:, along, last + 1]
                e += beta_n * HP["gamma"] * diff.abs().mean().item()
    return e


def test_energy_matches_direct_definition_on_binary_labellings():
    grid = 3
    x_a, x_b, s_a, s_b = random_pair(1, 12, seed=5)
    sal_a, sal_b = block_saliency(s_a, grid), block_saliency(s_b, grid)
    unary, w_down, w_right = puzzle_energy(x_a, x_b, sal_a, sal_b, 0.3, grid, **{**HP, "neigh_size": 1, "n_labels": 2})
    rng = np.random.default_rng(0)
    offsets = []
    for _ in range(6):
        labels = rng.integers(0, 2, (grid, grid))
        ours = grid_energy(labels[None], unary, w_down, w_right)[0]
        offsets.append(ours - direct_binary_energy(labels, 0.3, sal_a, sal_b, x_a, x_b, grid))
    np.testing.assert_allclose(offsets, offsets[0], rtol=0, atol=1e-6)  # float32 terms


def test_boundary_discrepancy_matches_loop():
    x1, x2 = torch.rand(1, 3, 16, 16, generator=gen(1)), torch.rand(1, 3, 16, 16, generator=gen(2))
    down, right = boundary_discrepancy(x1, x2, 4, 2)
    p1, p2 = torch.nn.functional.avg_pool2d(x1, 2)[0], torch.nn.functional.avg_pool2d(x2, 2)[0]
    for r in range(3):
        for c in range(4):
            want = (p1[:, 2 * r + 1, 2 * c:2 * c + 2] - p2[:, 2 * r + 2, 2 * c:2 * c + 2]).abs().mean()
            torch.testing.assert_close(down[0, r, c], want)
            want = (p1[:, 2 * c:2 * c + 2, 2 * r + 1] - p2[:, 2 * c:2 * c + 2, 2 * r + 2]).abs().mean()
            torch.testing.assert_close(right[0, c, r], want)


# ---------------------------------------------------------------- graph cut vs brute force


def test_swap_is_exact_for_two_labels():
    rng = np.random.default_rng(1)
    u, wd, wr = rng.random((60, 2, 2, 2)), rng.random((60, 1, 2)) * 2, rng.random((60, 2, 1)) * 2
    e = grid_energy(alpha_beta_swap(u, wd, wr), u, wd, wr)
    for n in range(60):
        assert e[n] == pytest.approx(brute_force_min(u[n:n + 1], wd[n:n + 1], wr[n:n + 1]), abs=1e-9)


@pytest.mark.parametrize("n_labels", [2, 3, 4])
def test_exact_solver_matches_brute_force(n_labels):
    rng = np.random.default_rng(n_labels)
    u, wd, wr = rng.random((40, 2, 2, n_labels)), rng.random((40, 1, 2)) * 2, rng.random((40, 2, 1)) * 2
    e = grid_energy(exact_convex_cut(u, wd, wr), u, wd, wr)
    for n in range(40):
        assert e[n] == pytest.approx(brute_force_min(u[n:n + 1], wd[n:n + 1], wr[n:n + 1]), abs=1e-9)


def test_swap_on_puzzlemix_energies_is_swap_optimal_and_almost_always_global():
    hits, trials = 0, 60
    for seed in range(trials):
        u, wd, wr = realistic_energy(seed)
        labels = alpha_beta_swap(u, wd, wr)
        e = grid_energy(labels, u, wd, wr)[0]
        best = brute_force_min(u, wd, wr)
        assert e >= best - 1e-12
        hits += e <= best + 1e-12
        # no single alpha-beta swap move (any relabelling of the alpha/beta nodes within {alpha, beta}) improves
        for a, b in itertools.combinations(range(3), 2):
            active = np.flatnonzero((labels == a) | (labels == b))
            for choice in itertools.product((a, b), repeat=len(active)):
                moved = labels.copy().reshape(-1)
                moved[active] = choice
                assert grid_energy(moved.reshape(labels.shape), u, wd, wr)[0] >= e - 1e-12
    assert hits >= 0.9 * trials  # measured: 296/300 with these energies


def test_label_distance_and_exact_on_larger_grid_not_worse_than_swap():
    assert np.allclose(label_distance(3), [[0, 0.25, 1], [0.25, 0, 0.25], [1, 0.25, 0]])
    u, wd, wr = realistic_energy(7, grid=8)
    exact, swap = exact_convex_cut(u, wd, wr), alpha_beta_swap(u, wd, wr)
    assert grid_energy(exact, u, wd, wr)[0] <= grid_energy(swap, u, wd, wr)[0] + 1e-12


# ---------------------------------------------------------------- prior


@pytest.mark.parametrize("lam", [0.1, 0.3, 0.5, 0.8])
def test_prior_alone_picks_the_binomial_mode(lam):
    """Uniform saliency and no smoothness: every block takes the most likely label of Binomial(2, 1 - lam)."""
    x_a, x_b, _, _ = random_pair(2)
    flat = torch.ones(2, 32, 32)
    out = mix_sources(x_a, x_b, flat, flat, lam, 4, **{**HP, "beta": 0.0, "gamma": 0.0}, transport=False)
    mode = np.argmax([(lam) ** 2, 2 * lam * (1 - lam), (1 - lam) ** 2]) / 2
    assert torch.all(out.mask == mode)


def test_prior_moves_mask_mean_towards_lam():
    x_a, x_b, s_a, s_b = random_pair(b=64, seed=11)
    means = {}
    for eta in (0.0, 0.2):
        for lam in (0.2, 0.5, 0.8):
            out = mix_sources(x_a, x_b, s_a, s_b, lam, 4, **{**HP, "eta": eta}, transport=False)
            means[eta, lam] = float(out.lam.mean())
    assert means[0.2, 0.2] < means[0.0, 0.2] and means[0.2, 0.8] > means[0.0, 0.8]
    assert means[0.2, 0.2] < means[0.2, 0.5] < means[0.2, 0.8]
    # without the prior lam plays no role at all
    assert means[0.0, 0.2] == means[0.0, 0.5] == means[0.0, 0.8]


# ---------------------------------------------------------------- transport


def test_transport_is_a_block_permutation():
    x, _, s, _ = random_pair(b=5, seed=2)
    grid = 8
    sal = block_saliency(s, grid)
    visible = torch.rand(5, grid, grid, generator=gen(4)) > 0.5
    for eps in (0.8, 0.05):  # the default, and a cheap move cost under which blocks surely move
        moved = transport(x, sal, visible, eps=eps)
        assert block_multiset(moved, grid) == block_multiset(x, grid)
    assert not torch.equal(moved, x)


def test_transport_assignment_is_optimal_on_tiny_grid():
    g = gen(6)
    for _ in range(10):
        sal = block_saliency(torch.rand(1, 2, 2, generator=g) ** 4, 2)
        visible = torch.rand(1, 2, 2, generator=g) > 0.5
        cost = transport_cost(sal, visible, 0.8)[0].numpy()
        x = torch.arange(4.0).reshape(1, 1, 2, 2)  # block i holds the value i
        source = transport(x, sal, visible, 0.8).reshape(-1).long()  # position j holds block source[j]
        ours = cost[source, np.arange(4)].sum()
        best = min(cost[list(p), np.arange(4)].sum() for p in itertools.permutations(range(4)))
        assert ours == pytest.approx(best, abs=1e-12)


def test_transport_moves_occluded_salient_block_into_view():
    # 4x4 grid; all saliency in block 0 (top-left), which the mask hides; position 1 is visible.
    sal = torch.zeros(1, 4, 4)
    sal[0, 0, 0] = 1.0
    visible = torch.zeros(1, 4, 4, dtype=torch.bool)
    visible[0, 0, 1] = True
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    moved = transport(x, sal, visible, eps=0.8)
    assert moved[0, 0, 0, 1] == 0  # block 0 now sits at the visible position
    assert position_cost(4)[0, 1] == pytest.approx(1 / 9)


def test_iterative_transport_is_a_partial_permutation():
    """The reference's approximate solver: each block lands at most once, other positions are zero."""
    x, _, s, _ = random_pair(b=5, seed=2)
    x = x + 1  # no all-zero block in the input
    grid = 8
    sal = block_saliency(s, grid)
    visible = torch.rand(5, grid, grid, generator=gen(4)) > 0.5
    moved = to_blocks(transport(x, sal, visible, 0.05, solver="iterative"), grid)
    for img_in, img_out, vis in zip(block_multiset(x, grid), moved, visible.reshape(5, -1)):
        used = Counter(bl.numpy().tobytes() for bl in img_out if bl.abs().sum() > 0)
        assert all(img_in[key] >= count for key, count in used.items())
        filled = img_out.flatten(1).abs().sum(1) > 0
        assert filled[vis].all()  # visible positions always get a block here (negative costs win)


def dense_iterative_plans(cost):
    """Straightforward dense version of the reference's rounds, to check our sparse one against."""
    cost = cost.clone()
    n = cost.shape[-1]
    for _ in range(int(round(n**0.5))):
        claims = torch.nn.functional.one_hot(cost.argmin(-1), n).to(cost.dtype)  # [B, block, position]
        winner = (claims * cost).argmin(1)
        won = claims.gather(1, winner[:, None, :])[:, 0]
        kept = torch.zeros_like(claims).scatter_(1, winner[:, None, :], won[:, None, :])
        cost += claims - kept
    return torch.where(won.bool(), winner, torch.full_like(winner, -1))


def test_iterative_plans_match_dense_rounds():
    g = gen(12)
    for grid in (2, 3, 4, 8):
        for _ in range(8):
            sal = block_saliency(torch.rand(16, grid, grid, generator=g) ** 4, grid)
            visible = torch.rand(16, grid, grid, generator=g) > torch.rand(1, generator=g)
            visible[0], visible[1] = False, True  # ties at cost 0 everywhere / nowhere
            cost = transport_cost(sal, visible, float(torch.rand(1, generator=g)))
            assert torch.equal(iterative_plans(cost), dense_iterative_plans(cost))


def test_iterative_transport_special_cases():
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    flat = torch.full((1, 4, 4), 1 / 16)
    everywhere = torch.ones(1, 4, 4, dtype=torch.bool)
    assert torch.equal(transport(x, flat, everywhere, 0.8, solver="iterative"), x)  # nothing to gain
    sal = torch.zeros(1, 4, 4)
    sal[0, 0, 0] = 1.0
    visible = torch.zeros(1, 4, 4, dtype=torch.bool)
    visible[0, 0, 1] = True
    moved = transport(x, sal, visible, 0.8, solver="iterative")
    assert moved[0, 0, 0, 1] == 1  # the salient block 0 (value 1) moved into view, as the exact solver does


def test_sources_are_block_permutations_at_the_transport_grid():
    x_a, x_b, s_a, s_b = random_pair(b=4, seed=8)
    for block_num, grid in ((2, 8), (4, 8), (8, 8), (16, 16)):  # t_size = 4 px rule
        out = mix_sources(x_a, x_b, s_a, s_b, 0.5, block_num, **HP)
        assert block_multiset(out.source_a, grid) == block_multiset(x_a, grid)
        assert block_multiset(out.source_b, grid) == block_multiset(x_b, grid)


# ---------------------------------------------------------------- method


def tiny_method(**params):
    torch.manual_seed(0)
    model = build_model("resnet18", 10, width=0.125)
    return PuzzleMix(model, 10, **params)


def batch(n=8, seed=0):
    g = gen(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(10, (n,), generator=g)


@pytest.mark.parametrize("clean_lam", [1.0, 0.0])
def test_training_step_gives_finite_loss_and_gradients(clean_lam):
    method = tiny_method(clean_lam=clean_lam)
    x, y = batch()
    out = method.training_step(x, y, StepContext(0, 10, 0, gen(1)))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in method.model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert ("loss_clean" in out.logs) == (clean_lam > 0)
    assert out.logs["block_num"] in (2, 4, 8, 16)
    tensor_logs = ["loss_mix", "lam_mask"] + (["loss_clean"] if clean_lam > 0 else [])
    # Tensors, never float(): a float() per step waits for the GPU. float64 sums exactly as Python floats.
    assert all(torch.is_tensor(out.logs[k]) and out.logs[k].dtype == torch.float64 for k in tensor_logs)


def test_training_step_loss_is_soft_ce_plus_clean_ce():
    """Recompute one step by hand: same draws (lam, perm, block count), our own soft CE formula."""
    x, y = batch()
    out = tiny_method().training_step(x, y, StepContext(0, 10, 0, gen(5)))
    model = tiny_method().model.train()
    x_in = x.clone().requires_grad_(True)
    clean = torch.nn.functional.cross_entropy(model(x_in), y)
    saliency = torch.autograd.grad(clean, x_in)[0].pow(2).mean(1).sqrt()
    g = gen(5)
    lam = sample_beta(1.0, g)
    perm = torch.randperm(8, generator=g)
    block_num = (2, 4, 8, 16)[int(torch.randint(4, (1,), generator=g))]
    x_mix, target = puzzlemix(x, y, lam, perm, saliency, block_num, **HP)
    logp = model(x_mix).log_softmax(1)
    soft = torch.zeros(8, 10).scatter_add_(1, target.labels, target.weights)
    want = -(soft * logp).sum(1).mean() + clean
    assert out.logs["block_num"] == block_num and out.logs["lam"] == lam
    torch.testing.assert_close(out.loss.detach(), want.detach(), rtol=1e-5, atol=1e-6)


def test_decoupled_loss_option_runs():
    method = tiny_method(loss="dm_ce")
    assert method.loss_fn.name == "dm_ce"
    x, y = batch()
    assert torch.isfinite(method.training_step(x, y, StepContext(0, 10, 0, gen(2))).loss)


def test_training_step_is_deterministic_on_cpu():
    x, y = batch()
    results = []
    for _ in range(2):
        method = tiny_method()
        out = method.training_step(x, y, StepContext(0, 10, 0, gen(42)))
        results.append((out.loss.detach(), out.logs))
    assert torch.equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_puzzlemix_function_is_deterministic():
    x, _, s, _ = random_pair(b=6, seed=9)
    perm = torch.randperm(6, generator=gen(0))
    a, ta = puzzlemix(x, torch.arange(6), 0.6, perm, s, 8, **HP)
    b, tb = puzzlemix(x, torch.arange(6), 0.6, perm, s, 8, **HP)
    assert torch.equal(a, b) and torch.equal(ta.weights, tb.weights)


def test_frozen_bn_saliency_leaves_model_untouched():
    method = tiny_method()
    model = method.model.train()
    x, y = batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sal = frozen_bn_saliency(model, x, y)
    assert sal.shape == (8, 32, 32) and (sal >= 0).all() and sal.sum() > 0
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_registered_with_paper_defaults():
    assert METHODS.get("puzzlemix") is PuzzleMix
    d = PuzzleMix.default_params
    assert d["alpha"] == 1.0 and d["block_nums"] == (2, 4, 8, 16) and d["n_labels"] == 3
    assert (d["beta"], d["gamma"], d["eta"], d["t_eps"], d["neigh_size"]) == (1.2, 0.5, 0.2, 0.8, 4)
    assert PuzzleMix.default_min_lr == 0.0


@pytest.mark.parametrize("bad", [dict(solver="greedy"), dict(transport_solver="greedy"), dict(n_labels=1),
                                 dict(t_size=0), dict(alpha=0), dict(block_nums=(1,)), dict(clean_lam=-1),
                                 dict(gamma=-0.1), dict(nope=1)])
def test_invalid_parameters_are_rejected(bad):
    with pytest.raises(InvalidParameterError):
        tiny_method(**bad)


def test_unknown_method_name():
    with pytest.raises(UnknownNameError):
        METHODS.get("puzzlemixx")


def test_geometry_is_checked():
    x_a, x_b, s_a, s_b = random_pair(b=2, size=24)
    with pytest.raises(InvalidParameterError):
        mix_sources(x_a, x_b, s_a, s_b, 0.5, 16, **HP)  # 24 px is not divisible into 16 blocks
    x_a, x_b, s_a, s_b = random_pair(b=2, size=32)
    with pytest.raises(InvalidParameterError):
        mix_sources(x_a, x_b, s_a, s_b, 0.5, 2, **HP, t_size=3)  # 3 px transport blocks do not tile 16 px blocks


# ---------------------------------------------------------------- fast paths vs the straightforward ones (bit-exact)


def reference_data_smoothness(x_a, x_b, grid, weight, neigh_size):
    """The straightforward data term: every pair's discrepancy from :func:`boundary_discrepancy` (pools again)."""
    imgs = {"a": x_a, "b": x_b}
    pairs = {(s, t): boundary_discrepancy(imgs[s], imgs[t], grid, neigh_size) for s in "ab" for t in "ab"}
    show = {s: torch.zeros(len(x_a), grid, grid) for s in "ab"}
    extra = []
    for axis, (first, second) in enumerate([(np.s_[:, :-1, :], np.s_[:, 1:, :]), (np.s_[:, :, :-1], np.s_[:, :, 1:])]):
        P = {st: weight * pairs[st][axis] for st in pairs}
        for s in "ab":
            show[s][first] += (P[s, "a"] + P[s, "b"]) / 2
            show[s][second] += (P["a", s] + P["b", s]) / 2
        extra.append((P["a", "b"] + P["b", "a"] - P["a", "a"] - P["b", "b"]) / 2)
    return show["a"], show["b"], extra[0], extra[1]


@pytest.fixture
def reference_mixing(monkeypatch):
    """Switch the mixers to the straightforward paths: dense transport costs, per-pair pooling."""
    import functools

    import mixrepro.mixers.puzzlemix as pm

    def use():
        monkeypatch.setattr(pm, "data_smoothness", reference_data_smoothness)
        monkeypatch.setattr(pm, "transport_blocks", functools.partial(transport, fast=False))

    return use


def outputs(out):
    return out.mixed, out.mask, out.source_a, out.source_b


def assert_same_bits(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape and torch.equal(g, w)


def test_exact_plans_match_dense_assignment():
    from mixrepro.mixers.puzzlemix_transport import assignment_plans, exact_plans

    g = gen(21)
    for grid in (2, 4, 8, 16):
        sal = block_saliency(torch.rand(12, grid, grid, generator=g) ** 4, grid)
        visible = torch.rand(12, grid, grid, generator=g) > torch.rand(12, 1, 1, generator=g)
        visible[0], visible[1] = True, False  # the samples that skip the solver
        for eps in (0.8, 0.05, 0.0):
            assert torch.equal(exact_plans(sal, visible, eps), assignment_plans(transport_cost(sal, visible, eps)))


def mixing_cases():
    for block_num in (2, 4, 8, 16):
        for lam in (0.13, 0.5, 0.9):
            for kw in ({}, {"solver": "exact"}, {"transport_solver": "iterative"}, {"t_size": -1}, {"t_eps": 0.05}):
                yield block_num, lam, kw


def test_mix_sources_matches_reference_path(reference_mixing):
    from mixrepro.mixers.puzzlemix import data_smoothness

    x, _, s, _ = random_pair(b=12, seed=13)
    perm = torch.randperm(12, generator=gen(14))
    for grid, neigh in ((2, 4), (4, 4), (8, 4), (16, 2), (8, 1)):
        assert_same_bits(data_smoothness(x, x[perm], grid, 0.03, neigh),
                         reference_data_smoothness(x, x[perm], grid, 0.03, neigh))
    cases = list(mixing_cases())
    fast = [outputs(mix_sources(x, x[perm], s, s[perm], lam, bn, **kw)) for bn, lam, kw in cases]
    reference_mixing()
    for (bn, lam, kw), got in zip(cases, fast):
        assert_same_bits(got, outputs(mix_sources(x, x[perm], s, s[perm], lam, bn, **kw)))


def real_batch(n=48):
    """n CIFAR-10 training images in [0, 1] and their labels (skips where the copy is absent)."""
    import os
    from pathlib import Path

    from mixrepro.data import load_dataset
    from mixrepro.data.cifar_jpeg import ARCHIVE

    for root in (os.environ.get("MIXREPRO_DATA"), "/work/shared/data"):
        if root and (Path(root) / ARCHIVE).is_file():
            ds = load_dataset("cifar10-jpeg", root=root)
            return ds.train_x[:n].permute(0, 3, 1, 2).float().div(255), ds.train_y[:n]
    pytest.skip(f"{ARCHIVE} is in neither $MIXREPRO_DATA nor /work/shared/data")


@pytest.mark.data
def test_mix_sources_and_puzzlemix_match_reference_path_on_real_images(reference_mixing):
    x, y = real_batch()
    saliency = frozen_bn_saliency(tiny_method().model, x, y)
    perm = torch.randperm(len(x), generator=gen(15))
    cases = list(mixing_cases())
    fast = [outputs(mix_sources(x, x[perm], saliency, saliency[perm], lam, bn, **kw)) for bn, lam, kw in cases]
    fast_pm = puzzlemix(x, y, 0.4, perm, saliency, 16, **HP)
    reference_mixing()
    for (bn, lam, kw), got in zip(cases, fast):
        assert_same_bits(got, outputs(mix_sources(x, x[perm], saliency, saliency[perm], lam, bn, **kw)))
    ref_pm = puzzlemix(x, y, 0.4, perm, saliency, 16, **HP)
    assert_same_bits((fast_pm[0], fast_pm[1].weights, fast_pm[1].labels),
                     (ref_pm[0], ref_pm[1].weights, ref_pm[1].labels))


def record_training(x, y, steps=3, clean_lam=1.0, reference=False, autocast=False, monkeypatch=None):
    """Losses, logs, mixed batches, parameter gradients and final weights of ``steps`` SGD steps."""
    import mixrepro.methods.puzzlemix as method_module

    method = tiny_method(clean_lam=clean_lam)
    method.merged_clean_backward = not reference
    opt = torch.optim.SGD(method.model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    mixes = []
    original = method_module.puzzlemix

    def recording(*a, **k):
        x_mix, target = original(*a, **k)
        mixes.append((x_mix, target.weights, target.labels))
        return x_mix, target

    monkeypatch.setattr(method_module, "puzzlemix", recording)
    g = gen(7)
    rec = []
    for step in range(steps):
        xs, ys = x[step::steps], y[step::steps]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = method.training_step(xs, ys, StepContext(step, steps, 0, g))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        rec.append((out.loss.detach(), out.logs, [p.grad.clone() for p in method.model.parameters()]))
        opt.step()
    monkeypatch.setattr(method_module, "puzzlemix", original)
    return rec, mixes, [p.detach().clone() for p in method.model.parameters()], dict(method.model.named_buffers())


def assert_same_training(got, want):
    (rec_g, mix_g, par_g, buf_g), (rec_w, mix_w, par_w, buf_w) = got, want
    for (loss_g, logs_g, grads_g), (loss_w, logs_w, grads_w) in zip(rec_g, rec_w, strict=True):
        assert torch.equal(loss_g, loss_w) and logs_g == logs_w
        assert_same_bits(grads_g, grads_w)
    for g, w in zip(mix_g, mix_w, strict=True):
        assert_same_bits(g, w)
    assert_same_bits(par_g, par_w)
    assert buf_g.keys() == buf_w.keys()
    assert_same_bits(list(buf_g.values()), list(buf_w.values()))


@pytest.mark.parametrize("clean_lam, autocast", [(1.0, False), (1.0, True), (0.5, False), (0.0, False)])
def test_training_steps_match_reference_path(monkeypatch, reference_mixing, clean_lam, autocast):
    """One merged clean backward (the default for clean_lam = 1 without autocast) and the fast mixers
    give the bits of the straightforward step: clean graph backpropagated twice, reference mixers."""
    x, y = batch(24, seed=3)
    fast = record_training(x, y, clean_lam=clean_lam, autocast=autocast, monkeypatch=monkeypatch)
    reference_mixing()
    want = record_training(x, y, clean_lam=clean_lam, autocast=autocast, reference=True, monkeypatch=monkeypatch)
    assert_same_training(fast, want)


@pytest.mark.data
@pytest.mark.parametrize("clean_lam", [1.0, 0.0])
def test_training_steps_match_reference_path_on_real_images(monkeypatch, reference_mixing, clean_lam):
    x, y = real_batch(96)
    fast = record_training(x, y, clean_lam=clean_lam, monkeypatch=monkeypatch)
    reference_mixing()
    assert_same_training(fast, record_training(x, y, clean_lam=clean_lam, reference=True, monkeypatch=monkeypatch))

"""Corruption (regenerated CIFAR-C subset, official-array path) and occlusion evaluations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import mixrepro.data
from mixrepro.errors import DatasetMissingError, InvalidParameterError, UnknownNameError
from mixrepro.evaluate.accuracy import evaluate_topk
from mixrepro.evaluate.corruption import (
    EXTRA, REGENERATED_LABEL, SEVERITY_PARAMS, STANDARD, corrupt, corruption_accuracy, defocus_blur,
    disk_kernel, gaussian_blur, hsv_to_rgb, official_corruption_accuracy, plasma_fractal,
    regenerated_corruption_accuracy,
    rgb_to_hsv,
)
from mixrepro.evaluate.occlusion import cell_orders, occlusion_accuracy, occlusion_masks
from test_evaluate import batches_of, tiny_data, tiny_model


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _smooth_images(n=8, size=32, seed=0):
    """Natural-ish images (smooth colour gradients plus mild noise), so blurs and JPEG act like on photos."""
    g = _gen(seed)
    t = torch.linspace(0, 1, size)
    base = torch.rand(n, 3, 1, 1, generator=g) * 0.6 + 0.2
    ramp = (t[None, None, :, None] * torch.rand(n, 3, 1, 1, generator=g) + t[None, None, None, :] * 0.3)
    x = (base + 0.3 * ramp + 0.05 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


# ---------------------------------------------------------------- building blocks vs independent code


def test_hsv_round_trip_and_matplotlib():
    from matplotlib.colors import hsv_to_rgb as mpl_hsv_to_rgb
    from matplotlib.colors import rgb_to_hsv as mpl_rgb_to_hsv

    x = torch.rand(4, 3, 8, 8, generator=_gen(), dtype=torch.float64)
    x[0, :, 0, 0] = 0.5  # grey: zero saturation, hue 0
    x[0, :, 0, 1] = 0.0  # black
    hsv = rgb_to_hsv(x)
    expected = mpl_rgb_to_hsv(x.permute(0, 2, 3, 1).numpy())
    np.testing.assert_allclose(hsv.permute(0, 2, 3, 1).numpy(), expected, atol=1e-12)
    torch.testing.assert_close(hsv_to_rgb(hsv), x, atol=1e-12, rtol=0)
    np.testing.assert_allclose(
        hsv_to_rgb(hsv).permute(0, 2, 3, 1).numpy(), mpl_hsv_to_rgb(expected), atol=1e-12
    )


@pytest.mark.parametrize("sigma", SEVERITY_PARAMS["gaussian_blur"])
def test_gaussian_blur_matches_scipy(sigma):
    from scipy.ndimage import gaussian_filter

    x = torch.rand(2, 3, 32, 32, generator=_gen(), dtype=torch.float64)
    expected = gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="nearest", truncate=4.0)
    np.testing.assert_allclose(gaussian_blur(x, sigma, None).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("params", SEVERITY_PARAMS["defocus_blur"])
def test_defocus_blur_matches_opencv(params):
    import cv2

    radius, alias = params
    t = np.arange(-8, 9)
    xx, yy = np.meshgrid(t, t)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    kernel = cv2.GaussianBlur(disk, ksize=(3, 3), sigmaX=alias)
    np.testing.assert_allclose(disk_kernel(radius, alias).numpy(), kernel, atol=1e-12)

    x = torch.rand(1, 3, 32, 32, generator=_gen(), dtype=torch.float64)
    expected = np.stack([cv2.filter2D(x[0, c].numpy(), -1, kernel) for c in range(3)])
    np.testing.assert_allclose(defocus_blur(x, params, None)[0].numpy(), expected, atol=1e-12)


def test_plasma_fractal_range_and_smoothness():
    maps = plasma_fractal(6, 32, 3, _gen())
    assert maps.shape == (6, 32, 32)
    assert (maps.amin((1, 2)) == 0).all() and (maps.amax((1, 2)) == 1).all()
    assert torch.equal(maps, plasma_fractal(6, 32, 3, _gen()))
    # a fractal is smoother than noise: neighbours differ far less than random pairs
    neighbour = (maps[:, :, 1:] - maps[:, :, :-1]).abs().mean()
    shuffled = maps.flatten(1)[:, torch.randperm(32 * 32, generator=_gen())].view(6, 32, 32)
    assert neighbour < 0.5 * (shuffled[:, :, 1:] - shuffled[:, :, :-1]).abs().mean()
    with pytest.raises(InvalidParameterError):
        plasma_fractal(1, 24, 3, _gen())


# ---------------------------------------------------------------- the corruptions


@pytest.mark.parametrize("name", STANDARD + EXTRA)
def test_each_corruption_is_seeded_uint8_and_changes_the_image(name):
    x = _smooth_images()
    a = corrupt(x, name, 5, _gen(1))
    assert a.dtype == torch.uint8 and a.shape == x.shape
    assert torch.equal(a, corrupt(x, name, 5, _gen(1)))
    assert (a.int() - x.int()).abs().float().mean() > 0.5


@pytest.mark.parametrize(
    "name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "gaussian_blur", "defocus_blur",
             "fog", "contrast", "pixelate", "jpeg_compression"],
)
def test_damage_grows_with_severity(name):
    x = _smooth_images(n=16)
    damage = [(corrupt(x, name, s, _gen(s)).int() - x.int()).abs().float().mean().item() for s in (1, 3, 5)]
    assert damage[0] < damage[1] < damage[2], damage


def test_noise_statistics_follow_the_parameters():
    grey = torch.full((64, 32, 32, 3), 128, dtype=torch.uint8)
    for severity, c in enumerate(SEVERITY_PARAMS["gaussian_noise"], 1):
        diff = corrupt(grey, "gaussian_noise", severity, _gen()).double() - 128
        assert diff.std().item() == pytest.approx(255 * c, rel=0.03)
        assert diff.mean().item() == pytest.approx(-0.5, abs=0.2)  # truncation to uint8 lowers by 0.5 on average
    for severity, c in enumerate(SEVERITY_PARAMS["impulse_noise"], 1):
        out = corrupt(grey, "impulse_noise", severity, _gen())
        hit = (out == 0) | (out == 255)
        assert hit.double().mean().item() == pytest.approx(c, rel=0.1)
        assert (out[hit] == 255).double().mean().item() == pytest.approx(0.5, abs=0.05)
    c = SEVERITY_PARAMS["shot_noise"][4]
    out = corrupt(grey, "shot_noise", 5, _gen()).double() / 255
    assert out.std().item() == pytest.approx((128 / 255 / c) ** 0.5, rel=0.05)  # Poisson: var = mean / c


def test_contrast_and_brightness_move_as_defined():
    x = _smooth_images()
    low = corrupt(x, "contrast", 5, _gen()).double()
    std_before = x.double().std((1, 2)).mean().item()
    assert low.std((1, 2)).mean().item() == pytest.approx(0.15 * std_before, rel=0.1)
    assert low.mean((1, 2)).sub(x.double().mean((1, 2))).abs().max() < 1.0  # channel means kept (up to truncation)
    brighter = [corrupt(x, "brightness", s, _gen()).double().mean().item() for s in (1, 3, 5)]
    assert brighter[0] < brighter[1] < brighter[2]
    grey_sat = corrupt(torch.full((1, 4, 4, 3), 100, dtype=torch.uint8), "saturate", 5, _gen())
    assert grey_sat.amax(-1).ne(grey_sat.amin(-1)).all()  # saturation 0 -> 0.2 adds colour to grey


def test_different_seeds_give_different_noise():
    x = _smooth_images()
    assert not torch.equal(corrupt(x, "gaussian_noise", 3, _gen(0)), corrupt(x, "gaussian_noise", 3, _gen(1)))


def test_corrupt_rejects_bad_input():
    x = _smooth_images(n=2)
    with pytest.raises(InvalidParameterError):
        corrupt(x, "contrast", 6, _gen())
    with pytest.raises(UnknownNameError):
        corrupt(x, "motion_blur", 1, _gen())
    with pytest.raises(InvalidParameterError):
        corrupt(x.float(), "contrast", 1, _gen())


# ---------------------------------------------------------------- accuracy tables


def test_regenerated_accuracy_table_is_labelled_and_reproducible():
    model, (x, y) = tiny_model(), tiny_data(n=24)
    kw = dict(corruptions=["gaussian_noise", "jpeg_compression"], severities=[1, 5], seed=3, batch_size=10)
    r = regenerated_corruption_accuracy(model, x, y, **kw)
    assert r == regenerated_corruption_accuracy(model, x, y, **{**kw, "batch_size": 7})
    assert r["source"] == REGENERATED_LABEL
    assert set(r["top1"]) == {"gaussian_noise", "jpeg_compression"}
    assert set(r["top1"]["gaussian_noise"]) == {"1", "5"}
    values = [v for row in r["top1"].values() for v in row.values()]
    assert r["mean"] == pytest.approx(sum(values) / 4)
    assert r["mean_per_severity"]["5"] == pytest.approx(
        (r["top1"]["gaussian_noise"]["5"] + r["top1"]["jpeg_compression"]["5"]) / 2
    )
    with pytest.raises(InvalidParameterError):
        regenerated_corruption_accuracy(model, x, y, corruptions=["frost"])


class FakeCorruptionSet:
    """Duck-typed CorruptionSet: clean images repeated for every severity, labels.npy-style (5N labels)."""

    def __init__(self, x, y):
        self.x, self.corruptions = x, ["fog", "snow"]
        self.labels = y.repeat(5).numpy().astype(np.uint8)

    def images(self, corruption, severity):
        return self.x.numpy()


def test_official_path_reads_the_arrays():
    model, (x, y) = tiny_model(), tiny_data(n=20)
    clean = evaluate_topk(model, batches_of(x, y), ks=(1,))["top1"]
    r = official_corruption_accuracy(model, FakeCorruptionSet(x, y), severities=[1, 4], batch_size=8,
                                     source_name="CIFAR-10-C")
    assert r["source"] == "official CIFAR-10-C files"
    assert r["top1"] == {"fog": {"1": clean, "4": clean}, "snow": {"1": clean, "4": clean}}


def test_auto_falls_back_to_regenerated_only_when_files_are_missing(monkeypatch):
    model, (x, y) = tiny_model(), tiny_data(n=12)

    def missing(name, root=None):
        raise DatasetMissingError(name, ["/nowhere"], "download CIFAR-10-C")

    monkeypatch.setattr(mixrepro.data, "load_cifar_c", missing, raising=False)
    kw = dict(dataset="cifar10-c", corruptions=["contrast"], severities=[2])
    r = corruption_accuracy(model, x, y, **kw)
    assert r["source"] == REGENERATED_LABEL and "official files absent" in r["notes"][-1]
    with pytest.raises(DatasetMissingError):
        corruption_accuracy(model, x, y, source="official", **kw)
    monkeypatch.setattr(mixrepro.data, "load_cifar_c", lambda name, root=None: FakeCorruptionSet(x, y))
    assert corruption_accuracy(model, x, y, dataset="cifar10-c", severities=[2])["source"].startswith("official")
    with pytest.raises(InvalidParameterError):
        corruption_accuracy(model, x, y, source="official")  # no dataset named


# ---------------------------------------------------------------- occlusion


@pytest.mark.parametrize("grid", [8, 16])
def test_occlusion_masks_count_alignment_and_nesting(grid):
    orders = cell_orders(5, grid, _gen())
    cell = 32 // grid
    previous = torch.zeros(5, 1, 32, 32, dtype=torch.bool)
    for r in (0.0, 0.1, 0.3, 0.5, 0.9, 1.0):
        m = occlusion_masks(orders, r, grid, 32)
        assert (m.sum((1, 2, 3)) == round(r * grid * grid) * cell * cell).all()
        blocks = m.view(5, grid, cell, grid, cell)
        assert (blocks.all((2, 4)) == blocks.any((2, 4))).all()  # whole cells only
        assert (m | ~previous).all()  # a cell occluded at a lower ratio stays occluded
        previous = m


def test_occlusion_accuracy_endpoints_and_seeding():
    model, (x, y) = tiny_model(), tiny_data(n=30, num_classes=10)
    clean = evaluate_topk(model, batches_of(x, y), ks=(1,))["top1"]
    r = occlusion_accuracy(model, x, y, ratios=(0.0, 0.5, 1.0), grid=8, seed=1, batch_size=7)
    assert r[0.0] == pytest.approx(clean)
    with torch.no_grad():  # fully occluded: every image is black, so one class is predicted for all
        black_class = model.eval()(torch.zeros(1, 3, 32, 32)).argmax().item()
    assert r[1.0] == pytest.approx(100 * (y == black_class).float().mean().item())
    assert r == occlusion_accuracy(model, x, y, ratios=(0.0, 0.5, 1.0), grid=8, seed=1, batch_size=30)


class MostlyBlackLeft(torch.nn.Module):
    """Predicts class 0 when more than half of the left half of the image is black, else class 1."""

    def forward(self, x):
        black_left = (x[..., :16] == 0).float().mean((1, 2, 3))
        return torch.stack([black_left, torch.full_like(black_left, 0.5)], 1)


def test_occlusion_seed_picks_the_patches():
    x = torch.full((200, 32, 32, 3), 200, dtype=torch.uint8)
    y = torch.zeros(200, dtype=torch.long)
    scores = {s: occlusion_accuracy(MostlyBlackLeft(), x, y, ratios=(0.5,), seed=s)[0.5] for s in range(3)}
    assert all(20 < v < 80 for v in scores.values())  # about half the images get > 50% of their left half
    assert len(set(scores.values())) > 1
    assert scores[0] == occlusion_accuracy(MostlyBlackLeft(), x, y, ratios=(0.5,), seed=0)[0.5]


def test_occlusion_rejects_bad_parameters():
    model, (x, y) = tiny_model(), tiny_data(n=4)
    with pytest.raises(InvalidParameterError):
        occlusion_accuracy(model, x, y, grid=14)  # 14 does not divide 32
    with pytest.raises(InvalidParameterError):
        occlusion_accuracy(model, x, y, ratios=(1.5,))
    with pytest.raises(InvalidParameterError):
        occlusion_accuracy(model, x[:, :, :16], y)

"""Static mixers: definitions, independent implementations (torchvision v2, OpenCV), determinism, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixrepro.errors import InvalidParameterError, UnknownNameError
from mixrepro.mixers import MIXERS, build_mixer, mixer_defaults
from mixrepro.mixers.cutmix import Box, box_around, cutmix, random_box
from mixrepro.mixers.fmix import FMix, binarise, fmix, fmix_mask, low_frequency_image
from mixrepro.mixers.manifoldmix import ManifoldMix, manifold_mix_forward
from mixrepro.mixers.mixup import mixup
from mixrepro.mixers.resizemix import ResizeMix, resizemix, sample_tau
from mixrepro.mixers.saliencymix import (
    SaliencyMix, fine_grained_saliency, first_peak, reference_float_saliency, saliency_peak, saliencymix,
)
from mixrepro.models.base import StagedClassifier

B, C, H, W, K = 6, 3, 32, 32, 10


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(seed: int = 0, b: int = B, h: int = H, w: int = W):
    """Random images (every pixel differs from its partner's with probability 1) and labels."""
    g = gen(seed)
    return torch.rand(b, C, h, w, generator=g), torch.randint(0, K, (b,), generator=g)


class TinyStaged(StagedClassifier):
    """A 3-stage conv net: a test double with the StagedClassifier interface."""

    stage_channels = [3, 4, 8, 8]

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stages = nn.ModuleList(
            nn.Conv2d(cin, cout, 3, stride=2 if i else 1, padding=1)
            for i, (cin, cout) in enumerate(zip(self.stage_channels, self.stage_channels[1:])))
        self.head = nn.Linear(8, K)

    def forward_features(self, x, stage):
        for layer in self.stages[:stage]:
            x = torch.relu(layer(x))
        return x

    def forward_from(self, h, stage):
        for layer in self.stages[stage:]:
            h = torch.relu(layer(h))
        return self.head(h.mean((2, 3)))


def pasted_region(x_mix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[B, H, W] bool: pixels (any channel) where the mix differs from x."""
    return (x_mix != x).any(dim=1)


def bounding_box(region: torch.Tensor) -> Box:
    rows, cols = region.any(1).nonzero()[:, 0], region.any(0).nonzero()[:, 0]
    return Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


# ------------------------------------------------------------------------------------------ Mixup


def test_mixup_is_linear_in_lambda_and_weights_are_lam():
    x, y = batch()
    perm = torch.randperm(B, generator=gen(1))
    lams = (0.0, 0.3, 0.8, 1.0)
    outs = {lam: mixup(x, y, lam, perm) for lam in lams}
    for lam, (x_mix, target) in outs.items():
        torch.testing.assert_close(x_mix, x[perm] + lam * (x - x[perm]), atol=1e-6, rtol=0)
        assert torch.equal(target.labels, torch.stack([y, y[perm]], 1))
        torch.testing.assert_close(target.weights, torch.tensor([[lam, 1 - lam]]).expand(B, 2))
    # f(a l1 + (1 - a) l2) = a f(l1) + (1 - a) f(l2)
    a = 0.25
    combo = a * outs[0.3][0] + (1 - a) * outs[0.8][0]
    torch.testing.assert_close(mixup(x, y, a * 0.3 + (1 - a) * 0.8, perm)[0], combo, atol=1e-6, rtol=0)
    assert torch.equal(outs[1.0][0], x) and torch.equal(outs[0.0][0], x[perm])


@pytest.fixture
def fixed_beta(monkeypatch):
    """torchvision's MixUp/CutMix draw lam with ``torch.distributions.Beta(...).sample()``.

    Patching that public method fixes lam exactly, whatever torchvision draws around it
    (its box centre still comes from the global RNG; we read its box from its output).
    """

    def fix(lam: float):
        monkeypatch.setattr(torch.distributions.Beta, "sample",
                            lambda self, sample_shape=torch.Size(): torch.tensor([lam]))

    return fix


def roll_perm(b: int) -> torch.Tensor:
    """torchvision v2 MixUp/CutMix pair sample i with i - 1: ``batch.roll(1, 0)`` = batch[roll_perm]."""
    return torch.arange(b).roll(1)


def torchvision_v2():
    import importlib

    from mixrepro._torchvision import import_torchvision

    import_torchvision()
    return importlib.import_module("torchvision.transforms.v2")


def test_mixup_matches_torchvision_v2(fixed_beta):
    v2 = torchvision_v2()
    x, y = batch()
    for lam in (0.1, 0.5, 0.93):
        fixed_beta(lam)
        tv_x, tv_y = v2.MixUp(alpha=1.0, num_classes=K)(x, y)
        ours_x, target = mixup(x, y, lam, roll_perm(B))
        torch.testing.assert_close(ours_x, tv_x, atol=1e-6, rtol=0)
        torch.testing.assert_close(target.soft(K), tv_y, atol=1e-6, rtol=0)


def test_cutmix_matches_torchvision_v2(fixed_beta):
    v2 = torchvision_v2()
    x, y = batch()
    unclipped_seen = 0
    for lam in (0.2, 0.6, 0.9):
        fixed_beta(lam)
        for seed in range(8):
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                tv_x, tv_y = v2.CutMix(alpha=1.0, num_classes=K)(x, y)
            region = pasted_region(tv_x, x)
            box = bounding_box(region[0])
            assert region.sum() == B * box.area  # one rectangle, the same for every sample
            ours_x, target = cutmix(x, y, lam, roll_perm(B), box=box)
            assert torch.equal(ours_x, tv_x)
            torch.testing.assert_close(target.soft(K), tv_y, atol=1e-6, rtol=0)
            if box.top > 0 and box.left > 0 and box.bottom < H and box.right < W:  # same box-size rule
                cy, cx = (box.top + box.bottom) // 2, (box.left + box.right) // 2
                assert box_around(cy, cx, math.sqrt(1 - lam), H, W) == box
                unclipped_seen += 1
    assert unclipped_seen > 0


# ------------------------------------------------------------------------------------------ CutMix


def test_cutmix_label_equals_pasted_area_after_clipping():
    x, y = batch()
    g = gen(3)
    for trial in range(20):
        lam = float(torch.rand(1, generator=g))
        perm = torch.arange(B).roll(int(torch.randint(1, B, (1,), generator=g)))  # no sample is its own partner
        x_mix, target = cutmix(x, y, lam, perm, generator=g)
        region = pasted_region(x_mix, x)
        from_partner = (x_mix == x[perm]).all(1) & region
        assert torch.equal(region, from_partner)  # every changed pixel is the partner's, same place
        area = int(region[0].sum())
        assert torch.equal(region, region[:1].expand_as(region))  # one box for the batch
        torch.testing.assert_close(target.weights[:, 0], torch.full((B,), 1 - area / (H * W)))
    corner = box_around(0, 0, math.sqrt(1 - 0.5), H, W)  # centre at a corner: clipped to a quarter
    assert corner == Box(0, 0, 11, 11)
    x_mix, target = cutmix(x, y, 0.5, torch.arange(B).roll(1), box=corner)
    assert float(target.weights[0, 0]) == pytest.approx(1 - 121 / 1024)


def test_cutmix_box_size_follows_lambda():
    for lam in (0.0, 0.19, 0.5, 0.75, 1.0):
        box = box_around(16, 16, math.sqrt(1 - lam), H, W)
        half = int(0.5 * math.sqrt(1 - lam) * 32)
        assert box == Box(16 - half, 16 - half, 16 + half, 16 + half)
    with pytest.raises(InvalidParameterError, match="generator"):
        random_box(0.5, H, W, None)


# ---------------------------------------------------------------------------------------- ResizeMix


def test_resizemix_label_equals_pasted_area_and_patch_is_the_resized_partner():
    x, y = batch()
    for seed in range(12):
        g = gen(seed)
        x_mix, target = ResizeMix()(x, y, g)
        g = gen(seed)  # replay the draws: tau, permutation, box centre
        tau = sample_tau((0.1, 0.8), g)
        perm = torch.randperm(B, generator=g)
        box = random_box(tau, H, W, g)
        region = pasted_region(x_mix, x)
        assert bounding_box(region[0]) == box and int(region[0].sum()) == box.area
        patch = F.interpolate(x[perm], size=(box.bottom - box.top, box.right - box.left), mode="nearest")
        assert torch.equal(x_mix[..., box.top:box.bottom, box.left:box.right], patch)
        assert float(target.weights[0, 0]) == pytest.approx(1 - box.area / (H * W))
        assert torch.equal(target.labels[:, 1], y[perm])


def test_resizemix_tau_distributions():
    g = gen(0)
    uniform = torch.tensor([sample_tau((0.1, 0.8), g) for _ in range(2000)])
    assert uniform.min() >= 0.1 and uniform.max() <= 0.8
    assert abs(float(uniform.mean()) - 0.45) < 0.02
    beta = torch.tensor([sample_tau((0.1, 0.8), g, "beta", alpha=50.0) for _ in range(2000)])
    assert beta.min() >= 0.1 and beta.max() <= 0.8
    assert float((beta - 0.5).abs().mean()) < 0.1 < float((uniform - 0.5).abs().mean())
    x, y = batch()
    x_mix, target = resizemix(x, y, 0.5, torch.arange(B), box=Box(3, 3, 3, 9))  # empty box: no change
    assert torch.equal(x_mix, x) and float(target.weights[0, 0]) == 1.0


# ------------------------------------------------------------------------------------------- FMix


@pytest.mark.parametrize("size", [(32, 32), (28, 28), (31, 17)])
def test_fmix_mask_holds_exactly_the_requested_fraction(size):
    g = gen(0)
    for lam in (0.0, 0.013, 0.37, 0.5, 0.9, 1.0):
        mask = fmix_mask(lam, *size, g)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert int(mask.sum()) == round(lam * size[0] * size[1])


def _low_frequency_energy(mask: torch.Tensor, radius: float = 0.1) -> float:
    """Share of the (mean-removed) mask's spectral energy at frequencies below ``radius`` cycles/px."""
    spectrum = torch.fft.fft2(mask - mask.mean()).abs() ** 2
    fy = torch.fft.fftfreq(mask.shape[0])[:, None]
    fx = torch.fft.fftfreq(mask.shape[1])[None, :]
    low = (fx ** 2 + fy ** 2).sqrt() < radius
    return float(spectrum[low].sum() / spectrum.sum())


def test_fmix_masks_are_low_frequency():
    g = gen(0)
    fmix_shares, random_shares = [], []
    for _ in range(10):
        mask = fmix_mask(0.5, H, W, g)
        random_mask = binarise(torch.rand(H, W, generator=g), 0.5)
        fmix_shares.append(_low_frequency_energy(mask))
        random_shares.append(_low_frequency_energy(random_mask))
    assert min(fmix_shares) > 0.6  # measured about 0.8
    assert max(random_shares) < 0.1  # white noise: about the low-frequency area share, 3%
    assert low_frequency_image(H, W, 3.0, gen(1)).shape == (H, W)


def test_fmix_mixes_by_the_mask_and_labels_with_sampled_or_mask_lambda():
    x, y = batch()
    g = gen(2)
    lam, perm = 0.3, torch.randperm(B, generator=g)
    mask = fmix_mask(lam, H, W, g)
    x_mix, target = fmix(x, y, lam, perm, mask)
    assert torch.equal(x_mix, torch.where(mask.bool(), x, x[perm]))
    assert float(target.weights[0, 0]) == pytest.approx(lam)
    _, exact = fmix(x, y, lam, perm, mask, label_lam="mask")
    assert float(exact.weights[0, 0]) == pytest.approx(round(lam * H * W) / (H * W))
    x_mix2, _ = FMix(label_lam="mask")(x, y, gen(5))
    assert not torch.equal(x_mix2, x)


# ------------------------------------------------------------------------------------- SaliencyMix


def spot_image(row: int, col: int, size: int = 32) -> torch.Tensor:
    """A flat image with one moderately bright pixel.

    The on and off contrast maps are each scaled to 255 by their own maximum, so a very bright
    spot also creates a faint "off" halo (its surround is darker than a mean that includes the
    spot) that scales up to 255 and ties with the spot; a moderate spot leaves the off map empty.
    """
    image = torch.full((3, size, size), 0.2)
    image[:, row, col] = 0.5
    return image


def test_saliency_peaks_on_a_bright_spot():
    for row, col in ((10, 20), (5, 5), (25, 14), (16, 28)):  # interior: the border reflection shifts edge peaks
        assert saliency_peak(spot_image(row, col)) == (row, col)


def test_saliencymix_box_centres_on_the_partners_saliency_peak():
    x, y = batch()
    x = x * 0.05 + 0.2  # dim, low-contrast noise
    perm = torch.tensor([3, 2, 0, 5, 1, 4])
    x[0] = spot_image(6, 8)  # sample 0's own spot must NOT decide the box
    x[perm[0]] = spot_image(20, 12)  # its partner's spot does
    lam = 0.6
    x_mix, target = saliencymix(x, y, lam, perm)
    box = box_around(20, 12, math.sqrt(1 - lam), H, W)
    region = pasted_region(x_mix, x)
    assert bounding_box(region[1]) == box  # sample 1's partner (x[2]) differs from x[1] everywhere
    assert torch.equal(x_mix[..., box.top:box.bottom, box.left:box.right],
                       x[perm][..., box.top:box.bottom, box.left:box.right])
    assert float(target.weights[0, 0]) == pytest.approx(1 - box.area / (H * W))


def test_fine_grained_saliency_is_batched():
    x, _ = batch(b=4)
    together = fine_grained_saliency(x)
    assert together.dtype == torch.uint8 and together.shape == (4, H, W)
    for i in range(4):
        assert torch.equal(fine_grained_saliency(x[i:i + 1])[0], together[i])
    assert int(fine_grained_saliency(torch.full((1, 3, 8, 8), 0.5)).max()) == 0  # flat image: no saliency


def _smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    """Natural-ish images: smooth random fields at several scales."""
    g = gen(seed)
    out = torch.zeros(n, 3, size, size)
    for cells in (2, 4, 8, 16):
        field = torch.rand(n, 3, cells, cells, generator=g)
        out += F.interpolate(field, size=(size, size), mode="bicubic", align_corners=False)
    low, high = out.amin((1, 2, 3), keepdim=True), out.amax((1, 2, 3), keepdim=True)
    return (out - low) / (high - low)


def test_fine_grained_saliency_equals_opencv():
    """Bit-exact against cv2.saliency (pip install opencv-contrib-python-headless); skipped without it."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "saliency"):
        pytest.skip("cv2.saliency needs opencv-contrib-python(-headless)")
    detector = cv2.saliency.StaticSaliencyFineGrained_create()
    cases = [torch.rand(4, 3, 32, 32, generator=gen(0)), _smooth_images(4, 32, 1), _smooth_images(2, 64, 2),
             torch.rand(2, 3, 9, 7, generator=gen(3)), _smooth_images(1, 224, 4),
             torch.rand(2, 1, 32, 32, generator=gen(5))]
    for images in cases:
        ours = fine_grained_saliency(images)
        pixels = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for i, image in enumerate(pixels):
            bgr = image[..., ::-1].copy() if image.shape[-1] == 3 else image[..., 0].copy()
            ok, saliency = detector.computeSaliency(bgr)
            assert ok
            if saliency.dtype != np.uint8:  # newer OpenCV returns the 8-bit map divided by 255, as float32
                saliency = (saliency * 255).round().astype(np.uint8)
            expected = torch.from_numpy(saliency)
            assert torch.equal(ours[i], expected)


def test_reference_float_saliency_equals_opencv_on_the_normalised_tensor():
    """The reference's call (normalised float32 HWC handed to OpenCV), bit for bit; skipped without cv2."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "saliency"):
        pytest.skip("cv2.saliency needs opencv-contrib-python(-headless)")
    detector = cv2.saliency.StaticSaliencyFineGrained_create()
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    images = torch.cat([torch.rand(6, 3, 32, 32, generator=gen(7)), _smooth_images(6, 32, 8)])
    normalised = (images - mean) / std
    ours = reference_float_saliency(normalised)
    for i, image in enumerate(normalised.permute(0, 2, 3, 1).numpy()):
        ok, saliency = detector.computeSaliency(np.ascontiguousarray(image))  # RGB order, as the reference
        if saliency.dtype != np.uint8:
            saliency = (saliency * 255).round().astype(np.uint8)
        assert torch.equal(ours[i], torch.from_numpy(saliency)), i


def test_reference_float_saliency_ignores_the_image():
    """Its peak is no closer to the image's saliency peak than chance (why the option is an audit arm)."""
    images = _smooth_images(64, 32, 9)
    normalised = (images - 0.45) / 0.25
    reference = reference_float_saliency(normalised).flatten(1).long().argmax(1)
    honest = fine_grained_saliency(images).flatten(1).long().argmax(1)
    assert int((reference == honest).sum()) <= 2
    assert not bool(((reference % 32) % 4 == 3).any())  # never byte 3 of a float: its sign/exponent byte


def test_saliencymix_reference_option_needs_the_normalisation_and_uses_it():
    x, y = batch()
    perm = torch.tensor([3, 2, 0, 5, 1, 4])
    mixer = SaliencyMix(saliency_input="reference-float")
    with pytest.raises(InvalidParameterError, match="reference-float"):
        mixer.mix(x, y, 0.6, perm, None)
    mixer.normalize = lambda t: (t - 0.45) / 0.25
    expected = first_peak(reference_float_saliency((x[perm[0]][None] - 0.45) / 0.25)[0])
    assert mixer.peak(x[perm[0]]) == expected
    x_mix, _ = mixer.mix(x, y, 0.6, perm, None)
    assert torch.equal(x_mix, saliencymix(x, y, 0.6, perm, peak=expected)[0])
    with pytest.raises(InvalidParameterError, match="saliency_input"):
        SaliencyMix(saliency_input="float")


# ------------------------------------------------------------------------------------- ManifoldMix


def test_manifoldmix_mixes_at_the_chosen_stage():
    model = TinyStaged().eval()
    calls = []
    real_features, real_from = model.forward_features, model.forward_from
    model.forward_features = lambda x, stage: calls.append(("features", stage)) or real_features(x, stage)
    model.forward_from = lambda h, stage: calls.append(("from", stage)) or real_from(h, stage)
    x, y = batch()
    perm = torch.randperm(B, generator=gen(1))
    for stage in (0, 1, 2, 3):
        calls.clear()
        logits, target = manifold_mix_forward(model, x, y, 0.3, perm, stage)
        assert calls == [("features", stage), ("from", stage)]
        h = real_features(x, stage)
        torch.testing.assert_close(logits, real_from(0.3 * h + 0.7 * h[perm], stage))
        torch.testing.assert_close(target.weights[:, 0], torch.full((B,), 0.3))
    stages_seen = set()
    mixer = ManifoldMix(stages=(0, 1, 2))
    g = gen(0)
    for _ in range(30):
        calls.clear()
        mixer(model, x, y, g)
        stages_seen.add(calls[0][1])
    assert stages_seen == {0, 1, 2}
    with pytest.raises(InvalidParameterError, match="stage"):
        manifold_mix_forward(model, x, y, 0.5, perm, 4)


# ----------------------------------------------------------------------------- every mixer: seeds, errors


def run_mixer(name: str, seed: int):
    x, y = batch()
    mixer = build_mixer(name)
    if name == "manifoldmix":
        return mixer(TinyStaged().eval(), x, y, gen(seed))
    return mixer(x, y, gen(seed))


@pytest.mark.parametrize("name", MIXERS.names())
def test_every_mixer_is_deterministic_given_the_seed(name):
    out_a, target_a = run_mixer(name, 7)
    out_b, target_b = run_mixer(name, 7)
    assert torch.equal(out_a, out_b)
    assert torch.equal(target_a.labels, target_b.labels) and torch.equal(target_a.weights, target_b.weights)
    assert torch.allclose(target_a.weights.sum(1), torch.ones(B))
    changed = [not torch.equal(run_mixer(name, s)[0], out_a) for s in (8, 9, 10)]
    assert any(changed)


@pytest.mark.parametrize("name", MIXERS.names())
@pytest.mark.parametrize("alpha", [0, -1.0, "1", None, float("nan")])
def test_invalid_alpha_raises(name, alpha):
    with pytest.raises(InvalidParameterError, match="alpha"):
        build_mixer(name, alpha=alpha)


def test_unknown_names_and_parameters_raise_clear_errors():
    with pytest.raises(UnknownNameError, match="known mixers: cutmix, fmix"):
        build_mixer("mixupp")
    with pytest.raises(InvalidParameterError, match="cutmix parameter"):
        build_mixer("cutmix", decay_power=3)
    with pytest.raises(InvalidParameterError, match="scope"):
        build_mixer("resizemix", scope=(0.8, 0.1))
    with pytest.raises(InvalidParameterError, match="tau_dist"):
        build_mixer("resizemix", tau_dist="gamma")
    with pytest.raises(InvalidParameterError, match="label_lam"):
        build_mixer("fmix", label_lam="exact")
    with pytest.raises(InvalidParameterError, match="stages"):
        build_mixer("manifoldmix", stages=())


def test_defaults_are_the_papers_cifar_values():
    alphas = {name: mixer_defaults(name)["alpha"] for name in MIXERS}
    assert alphas == {"mixup": 1.0, "cutmix": 0.2, "manifoldmix": 2.0, "saliencymix": 0.2, "fmix": 0.2,
                      "resizemix": 1.0}
    assert mixer_defaults("fmix")["decay_power"] == 3.0
    assert mixer_defaults("resizemix")["scope"] == (0.1, 0.8)
    assert mixer_defaults("manifoldmix")["stages"] == (0, 1, 2)

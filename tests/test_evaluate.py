"""Evaluations: accuracy, ECE, FGSM, mixed-sample accuracy and the registry.

Corruption and occlusion are in test_evaluate_robustness.py; both use the
small StagedClassifier double defined here.
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixrepro.errors import InvalidParameterError, UnknownNameError
from mixrepro.evaluate import EVALUATIONS, run_evaluations
from mixrepro.evaluate.accuracy import (
    array_batches, eval_mode, evaluate_topk, predict_logits, score_last_epochs, topk_accuracy,
)
from mixrepro.evaluate.calibration import (
    binned_statistics, calibration_report, ece, ece_reference_sorted, reliability_diagram_data,
)
from mixrepro.evaluate.fgsm import fgsm_accuracy, fgsm_examples
from mixrepro.evaluate.mixed_accuracy import mixed_correct, mixed_sample_accuracy
from mixrepro.mixers.base import MixTarget
from mixrepro.models.base import StagedClassifier

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


class TinyNet(StagedClassifier):
    """Normalise -> conv/BN/ReLU (stage 1) -> conv/BN/ReLU stride 2 (stage 2) -> pool -> linear."""

    stage_channels = [3, 8, 16]

    def __init__(self, num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
            nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU()),
        ])
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(16, num_classes))

    def forward_features(self, x, stage):
        h = (x - self.mean) / self.std if stage > 0 else x
        for block in self.stages[:stage]:
            h = block(h)
        return h

    def forward_from(self, h, stage):
        if stage == 0:
            h = (h - self.mean) / self.std
        for block in self.stages[stage:]:
            h = block(h)
        return self.head(h.mean((2, 3)))


def tiny_model(seed: int = 0, num_classes: int = 10, **kw) -> TinyNet:
    torch.manual_seed(seed)
    model = TinyNet(num_classes, **kw)
    with torch.no_grad():  # non-trivial BN statistics, so eval and train mode differ
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def tiny_data(n: int = 48, seed: int = 0, num_classes: int = 10, size: int = 32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, size, size, 3), generator=g, dtype=torch.uint8)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return x, y


def batches_of(x_uint8, y, batch_size=16):
    """The test's own batcher (the package's TensorBatcher is written elsewhere)."""
    for i in range(0, len(x_uint8), batch_size):
        yield x_uint8[i : i + batch_size].permute(0, 3, 1, 2).float() / 255, y[i : i + batch_size]


# ---------------------------------------------------------------- accuracy


def test_predict_logits_uses_eval_mode_and_restores_every_flag():
    model = tiny_model(dropout=0.5).train()
    model.stages[0][1].eval()  # a deliberately frozen BN must stay frozen afterwards
    flags = [m.training for m in model.modules()]
    stats = model.stages[1][1].running_mean.clone()
    x, y = tiny_data()
    logits, labels = predict_logits(model, batches_of(x, y))
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(model.stages[1][1].running_mean, stats)  # no BN update
    with torch.no_grad():
        expected = model.eval()(x.permute(0, 3, 1, 2).float() / 255)
    torch.testing.assert_close(logits, expected)
    assert torch.equal(labels, y)


def test_topk_accuracy_counts_by_hand():
    logits = torch.tensor([[5.0, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5], [1, 0.5, 0, 0, 0, 9]])
    labels = torch.tensor([0, 1, 5])
    acc = topk_accuracy(logits, labels, ks=(1, 5))
    assert acc["top1"] == pytest.approx(200 / 3)  # rows 0 and 2
    assert acc["top5"] == pytest.approx(100.0)  # row 1: class 1 is 5th of 6
    assert topk_accuracy(logits, torch.tensor([5, 0, 1]), ks=(5,))["top5"] == pytest.approx(100 / 3)
    with pytest.raises(InvalidParameterError):
        topk_accuracy(logits, labels, ks=(7,))


def test_evaluate_topk_matches_manual_count():
    model, (x, y) = tiny_model(), tiny_data()
    acc = evaluate_topk(model, batches_of(x, y), ks=(1, 5))
    with torch.no_grad():
        top = model.eval()(x.permute(0, 3, 1, 2).float() / 255).topk(5, 1).indices
    assert acc["top1"] == pytest.approx(100 * (top[:, 0] == y).float().mean().item())
    assert acc["top5"] == pytest.approx(100 * (top == y[:, None]).any(1).float().mean().item())


def test_array_batches_convert_uint8_nhwc_in_order():
    x, y = tiny_data(n=10)
    got = list(array_batches(x, y, 4))
    assert [len(b[1]) for b in got] == [4, 4, 2]
    xs = torch.cat([b[0] for b in got])
    assert xs.shape == (10, 3, 32, 32) and xs.dtype == torch.float32
    assert torch.equal(xs * 255, x.permute(0, 3, 1, 2).float())
    with pytest.raises(InvalidParameterError):
        list(array_batches(x, y[:5], 4))


def test_score_last_epochs_paper_and_reference_windows():
    values = list(range(1, 21))  # epochs 1..20
    s = score_last_epochs(values)
    assert s["median_last10"] == 15.5  # epochs 11..20
    assert s["median_ref_window11"] == 15  # epochs >= 20 - 10: 10..20
    assert s["final"] == 20 and s["best"] == 20
    s = score_last_epochs([50, 90, 60, 61, 62])
    assert s["median_last10"] == 61 and s["best"] == 90 and s["final"] == 62
    with pytest.raises(InvalidParameterError):
        score_last_epochs([])
    with pytest.raises(InvalidParameterError):
        score_last_epochs([1.0], window=0)


# ---------------------------------------------------------------- calibration


def _torchmetrics_ece(logits, labels, n_bins):
    from mixrepro._torchvision import import_torchvision

    import_torchvision()  # torchmetrics imports torchvision; declare its op schemas first
    from torchmetrics.classification import MulticlassCalibrationError

    metric = MulticlassCalibrationError(num_classes=logits.shape[1], n_bins=n_bins, norm="l1")
    return float(metric(logits.softmax(1), labels))


@pytest.mark.parametrize("n_bins", [10, 15])
@pytest.mark.parametrize("seed", [0, 1])
def test_ece_matches_torchmetrics(n_bins, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2000, 10, generator=g) * 3
    noise = torch.randint(0, 10, (2000,), generator=g)
    labels = torch.where(torch.rand(2000, generator=g) < 0.6, logits.argmax(1), noise)
    ours = ece(logits, labels, n_bins)
    assert ours > 0.01
    assert ours == pytest.approx(_torchmetrics_ece(logits, labels, n_bins), abs=1e-6)
    # probabilities are detected as such (float32 softmax, hence the tolerance)
    assert ece(logits.softmax(1), labels, n_bins) == pytest.approx(ours, abs=1e-6)


def test_ece_hand_example_and_bin_edges():
    def row(conf, k=10):
        r = torch.full((k,), (1 - conf) / (k - 1), dtype=torch.float64)
        r[0] = conf
        return r

    # confidences on bin edges: 0.2 belongs to (0.1, 0.2], 0.5 to (0.4, 0.5]
    probs = torch.stack([row(0.2), row(0.5), row(0.9), row(0.9)])
    labels = torch.tensor([0, 1, 0, 1])
    s = binned_statistics(probs, labels, 10)
    assert s["count"][1] == 1 and s["count"][4] == 1 and s["count"][8] == 2 and s["count"].sum() == 4
    # bins: {0.2: correct}, {0.5: wrong}, {0.9, 0.9: one correct}
    expected = (abs(1 - 0.2) + abs(0 - 0.5) + 2 * abs(0.5 - 0.9)) / 4
    assert ece(probs, labels, 10) == pytest.approx(expected)


def test_reliability_data_is_consistent_and_json_able():
    g = torch.Generator().manual_seed(3)
    logits, labels = torch.randn(500, 10, generator=g) * 2, torch.randint(0, 10, (500,), generator=g)
    data = reliability_diagram_data(logits, labels, 15)
    json.dumps(data, allow_nan=False)
    assert sum(data["count"]) == 500 and len(data["count"]) == 15
    gap = sum(c * abs(a - f) for c, a, f in zip(data["count"], data["accuracy"], data["confidence"]) if c)
    assert gap / 500 == pytest.approx(ece(logits, labels, 15))
    assert all(a is None for c, a in zip(data["count"], data["accuracy"]) if c == 0)


def test_reference_sorted_variant_differs_when_accuracy_falls_with_confidence():
    # half the samples at confidence 0.15 all correct, half at 0.95 all wrong
    low = torch.full((10,), 0.85 / 9)
    low[0] = 0.15
    high = torch.full((10,), 0.05 / 9)
    high[0] = 0.95
    probs = torch.stack([low] * 50 + [high] * 50)
    labels = torch.tensor([0] * 50 + [1] * 50)
    assert ece(probs, labels) == pytest.approx(0.5 * 0.85 + 0.5 * 0.95)
    assert ece_reference_sorted(probs, labels) == pytest.approx(0.5 * 0.15 + 0.5 * 0.05)
    report = calibration_report(probs, labels)
    assert report["ece_percent_10bins"] == pytest.approx(90.0)
    assert report["ece_percent_15bins_reference_sorted_WRONG"] < report["ece_percent_15bins"]


def test_reference_sorted_variant_equals_ece_when_orders_agree():
    # accuracy rising with confidence: both arrays are already in the same order
    probs, labels = [], []
    for conf, n_correct in [(0.3, 2), (0.55, 5), (0.85, 9)]:
        row = torch.full((10,), (1 - conf) / 9)
        row[0] = conf
        probs += [row] * 10
        labels += [0] * n_correct + [1] * (10 - n_correct)
    probs, labels = torch.stack(probs), torch.tensor(labels)
    assert ece_reference_sorted(probs, labels) == pytest.approx(ece(probs, labels))


# ---------------------------------------------------------------- FGSM


def _fgsm_independent(model, x, y, eps):
    """FGSM written differently: torch.func.grad of a summed loss through a functional call."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss_of_input(inp):
        out = torch.func.functional_call(model, (params, buffers), (inp,))
        return F.cross_entropy(out, y, reduction="sum")

    was = model.training
    model.eval()
    grad = torch.func.grad(loss_of_input)(x)
    model.train(was)
    return torch.clamp(x + eps * torch.sign(grad), min=0.0, max=1.0)


def test_fgsm_matches_independent_implementation_and_stays_in_the_ball():
    model, (x8, y) = tiny_model().train(), tiny_data(n=16)
    x = x8.permute(0, 3, 1, 2).float() / 255
    eps = 8 / 255
    x_adv = fgsm_examples(model, x, y, eps)
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())  # no parameter gradients left behind
    assert torch.equal(x_adv, _fgsm_independent(model, x, y, eps))
    assert (x_adv - x).abs().max() <= eps + 1e-7
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        model.eval()
        assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y)


def test_fgsm_accuracy_eps_zero_is_clean_accuracy():
    model, (x, y) = tiny_model(), tiny_data()
    clean = evaluate_topk(model, batches_of(x, y), ks=(1,))["top1"]
    r0 = fgsm_accuracy(model, batches_of(x, y), eps=0.0)
    assert r0["fgsm_top1"] == pytest.approx(clean) and r0["clean_top1"] == pytest.approx(clean)
    r = fgsm_accuracy(model, batches_of(x, y))
    assert r["fgsm_error"] == pytest.approx(100 - r["fgsm_top1"])
    assert r["fgsm_top1"] <= r["clean_top1"]
    with pytest.raises(InvalidParameterError):
        fgsm_accuracy(model, batches_of(x, y), eps=-0.1)


def test_fgsm_works_under_no_grad():
    model, (x8, y) = tiny_model(), tiny_data(n=8)
    x = x8.permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        x_adv = fgsm_examples(model, x, y, 0.1)
    assert not torch.equal(x_adv, x)


# ---------------------------------------------------------------- mixed-sample accuracy


def test_mixed_correct_definitions():
    logits = torch.tensor([
        [9.0, 8, 0, 0],  # top two {0, 1}
        [9.0, 0, 8, 0],  # top {0}, second 2
        [0.0, 9, 8, 0],  # top {1}, second 2
        [0.0, 0, 9, 8],  # neither
        [9.0, 8, 0, 0],  # same-label pair (0, 0)
    ])
    target = MixTarget(torch.tensor([[1, 0], [0, 1], [0, 1], [0, 1], [0, 0]]), torch.full((5, 2), 0.5))
    top1, top2, same = mixed_correct(logits, target)
    assert top1.tolist() == [True, True, True, False, True]
    assert top2.tolist() == [True, False, False, False, False]
    assert same.tolist() == [False, False, False, False, True]
    with pytest.raises(InvalidParameterError):
        mixed_correct(logits, MixTarget.clean(torch.zeros(5, dtype=torch.long)))


def _half_mixup(x, y, generator):
    perm = torch.randperm(len(y), generator=generator)
    return 0.5 * x + 0.5 * x[perm], MixTarget.pair(y, perm, 0.5)


def test_mixed_sample_accuracy_counts_and_same_label_rules():
    model, (x, y) = tiny_model(), tiny_data(n=64, num_classes=3)
    r = mixed_sample_accuracy(model, batches_of(x, y), _half_mixup, torch.Generator().manual_seed(0))
    r2 = mixed_sample_accuracy(model, batches_of(x, y), _half_mixup, torch.Generator().manual_seed(0))
    assert r == r2
    assert r["n"] + r["n_same_label"] == 64 and r["n_same_label"] > 0
    assert 0 <= r["top2"] <= r["top1"] <= 100
    c = mixed_sample_accuracy(model, batches_of(x, y), _half_mixup, torch.Generator().manual_seed(0), "as_clean")
    assert c["n"] == 64
    with pytest.raises(InvalidParameterError):
        mixed_sample_accuracy(model, batches_of(x, y), _half_mixup, torch.Generator(), "drop")


def test_mixed_sample_accuracy_all_same_label_raises():
    model, (x, _) = tiny_model(), tiny_data(n=8)
    with pytest.raises(InvalidParameterError):
        mixed_sample_accuracy(model, batches_of(x, torch.zeros(8, dtype=torch.long)), _half_mixup, torch.Generator())


# ---------------------------------------------------------------- registry


def test_run_evaluations_json_able_reproducible_and_generator_untouched():
    model, (x, y) = tiny_model(), tiny_data(n=40)
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    names = ["accuracy", "ece", "fgsm", "occlusion", "corruption"]
    options = {"occlusion": {"ratios": (0.0, 0.5), "grid": 8},
               "corruption": {"corruptions": ["gaussian_noise", "contrast"], "severities": [1, 5]}}
    r = run_evaluations(model, x, y, names, generator=g, batch_size=16, options=options)
    assert torch.equal(g.get_state(), state)
    json.dumps(r, allow_nan=False)
    assert set(r) == set(names)
    assert r["occlusion"]["top1"]["0"] == pytest.approx(r["accuracy"]["top1"])
    assert r["ece"]["top1"] == pytest.approx(r["accuracy"]["top1"])
    assert r["fgsm"]["clean_top1"] == pytest.approx(r["accuracy"]["top1"])
    assert r["corruption"]["source"] == "regenerated, not the official CIFAR-C files"
    # each evaluation starts from the same generator state: running one alone gives the same numbers
    alone = run_evaluations(model, x, y, ["occlusion"], generator=g, batch_size=16, options=options)
    assert alone["occlusion"] == r["occlusion"]
    positional = run_evaluations(model, x, y, ["occlusion"], "cpu", g, batch_size=16, options=options)
    assert positional["occlusion"] == r["occlusion"]  # device and generator may be given positionally


def test_the_forward_batch_size_changes_no_number():
    # Evaluations run in batches of 100 for speed (EVALUATION_BATCH_SIZE); the study's runs evaluated
    # before used 500: every result must be the same whatever the batch (mixed-sample pairs come from
    # their own fixed batches).
    from mixrepro.evaluate import EVALUATION_BATCH_SIZE

    model, (x, y) = tiny_model(), tiny_data(n=60)
    names = ["accuracy", "ece", "confidence", "fgsm", "occlusion", "corruption", "mixed_accuracy"]
    options = {"occlusion": {"ratios": (0.0, 0.3, 0.5), "grid": 8},
               "corruption": {"corruptions": ["gaussian_noise", "defocus_blur", "jpeg_compression"], "severities": [2]},
               "mixed_accuracy": {"mixer": "mixup", "mixer_params": {"alpha": 1.0}}}
    results = [run_evaluations(model, x, y, names, generator=torch.Generator().manual_seed(4), batch_size=size,
                               options=options) for size in (7, 60, EVALUATION_BATCH_SIZE)]
    assert results[0] == results[1] == results[2]


def test_run_evaluations_rejects_unknown_names_before_running():
    model, (x, y) = tiny_model(), tiny_data(n=4)
    with pytest.raises(UnknownNameError):
        run_evaluations(model, x, y, ["accuracy", "nope"])
    with pytest.raises(InvalidParameterError):
        run_evaluations(model, x, y, ["mixed_accuracy"])  # needs a mixer
    r = run_evaluations(model, x, y, ["mixed_accuracy"], options={"mixed_accuracy": {"mixer": _half_mixup}})
    assert set(r["mixed_accuracy"]) >= {"top1", "top2", "n"}
    assert set(EVALUATIONS.names()) == {"accuracy", "ece", "fgsm", "corruption", "occlusion", "mixed_accuracy",
                                        "confidence"}


def test_eval_mode_restores_after_an_exception():
    model = tiny_model().train()
    with pytest.raises(RuntimeError):
        with eval_mode(model):
            raise RuntimeError("boom")
    assert all(m.training for m in model.modules())


def test_corruption_image_subset_is_class_balanced_fixed_and_a_prefix():
    from mixrepro.evaluate import image_subset

    x, y = tiny_data(n=40)
    y = torch.arange(40) % 4
    small_x, small_y, n = image_subset(x, y, 8)
    assert n == 8 and torch.bincount(small_y, minlength=4).tolist() == [2, 2, 2, 2]
    large_x, _, _ = image_subset(x, y, 20)
    assert torch.equal(large_x[:8], small_x)  # growing the subset only adds images
    assert image_subset(x, y, None)[0] is x
    for bad in (0, 41, 2.5, True):
        with pytest.raises(InvalidParameterError, match="images"):
            image_subset(x, y, bad)


def test_corruption_on_an_image_subset_equals_corruption_of_those_images():
    model, (x, y) = tiny_model(), tiny_data(n=40)
    g = torch.Generator().manual_seed(3)
    options = {"corruptions": ["contrast"], "severities": [5]}
    subset = run_evaluations(model, x, y, ["corruption"], generator=g, batch_size=16,
                             options={"corruption": {**options, "images": 10}})["corruption"]
    from mixrepro.evaluate import image_subset

    sx, sy, _ = image_subset(x, y, 10)
    direct = run_evaluations(model, sx, sy, ["corruption"], generator=g, batch_size=16,
                             options={"corruption": options})["corruption"]
    assert subset["images"] == 10 and direct["images"] == 10
    assert subset["top1"] == direct["top1"] and subset["clean_top1"] == direct["clean_top1"]


def test_mixed_accuracy_takes_a_mixer_name_and_records_it():
    from mixrepro.mixers import build_mixer

    model, (x, y) = tiny_model(), tiny_data(n=40)
    g = torch.Generator().manual_seed(1)
    by_name = run_evaluations(model, x, y, ["mixed_accuracy"], generator=g, batch_size=16,
                              options={"mixed_accuracy": {"mixer": "cutmix", "mixer_params": {"alpha": 1.0}}})
    by_object = run_evaluations(model, x, y, ["mixed_accuracy"], generator=g, batch_size=16,
                                options={"mixed_accuracy": {"mixer": build_mixer("cutmix", alpha=1.0)}})
    assert by_name["mixed_accuracy"]["mixer"] == "cutmix" and by_object["mixed_accuracy"]["mixer"] == "CutMix"
    assert by_name["mixed_accuracy"]["top1"] == by_object["mixed_accuracy"]["top1"]
    with pytest.raises(UnknownNameError):
        run_evaluations(model, x, y, ["mixed_accuracy"], options={"mixed_accuracy": {"mixer": "nope"}})


def test_mixed_accuracy_pairs_across_classes_on_a_test_set_stored_class_by_class():
    model, (x, _) = tiny_model(), tiny_data(n=40)
    y = torch.arange(40) // 20  # two classes, each in one contiguous block of 20
    r = run_evaluations(model, x, y, ["mixed_accuracy"], generator=torch.Generator().manual_seed(0), batch_size=20,
                        options={"mixed_accuracy": {"mixer": "mixup"}})["mixed_accuracy"]
    assert r["n"] > 0  # without shuffling, every batch holds one class and no pair is a two-class mix


def test_occlusion_on_an_image_subset_records_its_size():
    model, (x, y) = tiny_model(), tiny_data(n=40)
    g = torch.Generator().manual_seed(3)
    r = run_evaluations(model, x, y, ["occlusion"], generator=g, batch_size=16,
                        options={"occlusion": {"ratios": (0.0, 0.5), "grid": 8, "images": 12}})["occlusion"]
    full = run_evaluations(model, x, y, ["occlusion"], generator=g, batch_size=16,
                           options={"occlusion": {"ratios": (0.0, 0.5), "grid": 8}})["occlusion"]
    assert r["images"] == 12 and full["images"] == 40


def test_confidence_evaluation_stores_the_inputs_of_ece():
    from mixrepro.evaluate.predictions import decode_confidence
    from mixrepro.study.paired import BinnedCalibration

    model, (x, y) = tiny_model(), tiny_data(n=45)
    r = run_evaluations(model, x, y, ["ece", "confidence"], batch_size=16)
    json.dumps(r, allow_nan=False)
    confidence, correct = decode_confidence(r["confidence"])
    assert confidence.shape == correct.shape == (45,) and r["confidence"]["images"] == 45  # 45 bits: a partial byte
    assert 100 * correct.mean() == pytest.approx(r["ece"]["top1"])
    for bins in (10, 15):
        recomputed = BinnedCalibration.from_images(confidence, correct, bins).value()
        assert recomputed == pytest.approx(r["ece"][f"ece_percent_{bins}bins"], abs=1e-4)


def test_decode_confidence_rejects_other_encodings_and_lengths():
    from mixrepro.evaluate.predictions import decode_confidence, encode_confidence

    stored = encode_confidence(torch.rand(10), torch.rand(10) > 0.5)
    with pytest.raises(InvalidParameterError, match="encoding"):
        decode_confidence({**stored, "encoding": "base64-uint16le"})
    with pytest.raises(InvalidParameterError, match="12 confidences"):
        decode_confidence({**stored, "images": 12})

"""Models: standard parameter counts, stage splitting, shapes, width, init, determinism, errors."""
import os
import urllib.error

import pytest
import torch
from torch import nn

from mixrepro._torchvision import import_torchvision
from mixrepro.errors import InvalidParameterError, UnknownNameError
from mixrepro.models import CIFAR_MEAN, CIFAR_STD, MODELS, StagedClassifier, build_model
from mixrepro.errors import PretrainedWeightsMissingError
from mixrepro.models.wide_resnet import wide_resnet

CIFAR_MODELS = ["resnet18", "resnet34", "resnet50", "resnext50", "wrn28_8"]
IMAGENET_MODELS = ["imagenet_resnet18", "imagenet_resnet50", "imagenet_resnext50"]
tv = import_torchvision()  # once, at collection: its first import takes seconds
TORCHVISION_NAME = {"resnet18": "resnet18", "resnet34": "resnet34", "resnet50": "resnet50",
                    "resnext50": "resnext50_32x4d"}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def param_shapes(model: nn.Module) -> list:
    return sorted(tuple(p.shape) for p in model.parameters())


def torchvision_with_cifar_stem(tv_name: str, num_classes: int) -> nn.Module:
    """torchvision's ImageNet model with the CIFAR stem (3x3 stride-1 conv, no max-pool)."""
    net = getattr(tv.models, tv_name)(weights=None, num_classes=num_classes)
    net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def wrn_param_count(depth: int, k: int, num_classes: int, in_channels: int = 3) -> int:
    """Parameters of a pre-activation WRN-depth-k counted from its definition."""
    n = (depth - 4) // 6
    total, cin = 9 * in_channels * 16, 16  # stem conv, no bias
    for width in (16 * k, 32 * k, 64 * k):
        for i in range(n):
            c_in = cin if i == 0 else width
            total += 2 * c_in + 9 * c_in * width + 2 * width + 9 * width * width  # BN, conv, BN, conv
            total += c_in * width if c_in != width else 0  # 1x1 projection shortcut
        cin = width
    return total + 2 * cin + cin * num_classes + num_classes  # final BN, linear


def test_cifar_resnet18_has_the_standard_parameter_count():
    assert n_params(build_model("resnet18", 10)) == 11_173_962


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnext50"])
def test_cifar_resnets_match_torchvision_with_swapped_stem(name):
    ours = build_model(name, 100)
    reference = torchvision_with_cifar_stem(TORCHVISION_NAME[name], 100)
    assert n_params(ours) == n_params(reference)
    assert param_shapes(ours) == param_shapes(reference)


def test_wrn28_8_matches_count_from_definition():
    model = build_model("wrn28_8", 100)
    assert n_params(model) == wrn_param_count(28, 8, 100) == 23_401_012
    # the counting function reproduces the widely quoted 36,479,194 of WRN-28-10 on CIFAR-10
    assert wrn_param_count(28, 10, 10) == 36_479_194
    assert n_params(wide_resnet(28, 10, 10, mean=CIFAR_MEAN, std=CIFAR_STD)) == 36_479_194
    assert model.stage_channels == [3, 128, 256, 512] and model.num_stages == 3


@pytest.mark.parametrize("name", IMAGENET_MODELS)
def test_imagenet_models_keep_torchvision_parameters(name):
    tv_name = {"imagenet_resnet18": "resnet18", "imagenet_resnet50": "resnet50",
               "imagenet_resnext50": "resnext50_32x4d"}[name]
    reference = getattr(tv.models, tv_name)(weights=None, num_classes=200)
    ours = build_model(name, 200)
    assert n_params(ours) == n_params(reference) and param_shapes(ours) == param_shapes(reference)


@pytest.mark.parametrize("name", CIFAR_MODELS + IMAGENET_MODELS)
def test_split_forward_equals_forward_at_every_stage(name):
    imagenet = name.startswith("imagenet")
    model = build_model(name, 10, **({} if imagenet else {"width": 0.25})).eval()
    x = torch.rand(2, 3, 64 if imagenet else 32, 64 if imagenet else 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(x)
        assert full.shape == (2, 10)
        for stage in range(model.num_stages + 1):
            h = model.forward_features(x, stage)
            assert h.shape[1] == model.stage_channels[stage]
            assert torch.equal(model.forward_from(h, stage), full), stage
    assert torch.equal(model.forward_features(x, 0), x)  # stage 0 is the raw input


@pytest.mark.parametrize("name,sizes", [("resnet18", [32, 16, 8, 4]), ("resnext50", [32, 16, 8, 4]),
                                        ("wrn28_8", [32, 16, 8]), ("imagenet_resnet18", [16, 8, 4, 2])])
def test_feature_map_sizes(name, sizes):
    kw = {} if name.startswith("imagenet") else {"width": 0.25}
    model = build_model(name, 10, **kw).eval()
    side = 64 if name.startswith("imagenet") else 32
    x = torch.rand(1, 3, side, side)
    got = [model.forward_features(x, s).shape[-1] for s in range(1, model.num_stages + 1)]
    assert got == sizes


def test_width_scales_channels_and_keeps_resnext_groups_valid():
    narrow = build_model("resnet18", 10, width=0.25)
    assert narrow.stage_channels == [3, 16, 32, 64, 128]
    # every conv and BN scales by width^2 or width; the head by width: about 1/16 of the parameters
    assert 0.05 < n_params(narrow) / 11_173_962 < 0.07
    assert build_model("resnet50", 10, width=0.5).stage_channels == [3, 128, 256, 512, 1024]
    for width in (0.25, 0.1):
        model = build_model("resnext50", 10, width=width).eval()
        grouped = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
        assert grouped and all(m.groups == 32 and m.in_channels % 32 == 0 for m in grouped)
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    assert build_model("wrn28_8", 10, width=0.5).stage_channels == [3, 64, 128, 256]


def test_initialisation_is_kaiming_normal_and_unit_batchnorm():
    model = build_model("resnet18", 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    big = max(convs, key=lambda m: m.weight.numel())  # 512 x 512 x 3 x 3
    fan_out = big.out_channels * big.kernel_size[0] * big.kernel_size[1]
    assert big.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.02)
    assert abs(big.weight.mean().item()) < 1e-3
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


@pytest.mark.parametrize("name", ["resnet18", "wrn28_8", "imagenet_resnet18"])
def test_same_seed_same_bits(name):
    kw = {} if name.startswith("imagenet") else {"width": 0.25}

    def build(seed):
        return build_model(name, 10, generator=torch.Generator().manual_seed(seed), **kw).state_dict()

    a, b, c = build(7), build(7), build(8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].dtype.is_floating_point and a[k].numel() > 1)


def test_normalisation_is_the_first_operation():
    model = build_model("resnet18", 10, width=0.25).eval()
    x = torch.rand(2, 3, 32, 32)
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    identity = build_model("resnet18", 10, width=0.25, mean=(0, 0, 0), std=(1, 1, 1)).eval()
    identity.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("normalize")},
                             strict=False)
    with torch.no_grad():
        assert torch.allclose(model(x), identity((x - mean) / std), atol=1e-5)
    assert {"normalize.mean", "normalize.std"} <= set(model.state_dict())  # buffers: follow .to(device)
    assert model.double()(x.double()).dtype == torch.float64


def test_single_channel_input():
    model = build_model("resnet18", 10, width=0.25, in_channels=1, mean=(0.5,), std=(0.25,))
    assert model.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_unknown_name_and_invalid_values():
    with pytest.raises(UnknownNameError, match="known models: imagenet_resnet18.*resnet18.*wrn28_8"):
        build_model("vgg16", 10)
    bad = [dict(num_classes=0), dict(width=0), dict(width=-1.0), dict(in_channels=0),
           dict(mean=(0.5, 0.5)), dict(std=(0.2, 0.2, 0.0)), dict(pretrained=True)]
    for kwargs in bad:
        args = {"num_classes": 10, **kwargs}
        with pytest.raises(InvalidParameterError):
            build_model("resnet18", args.pop("num_classes"), **args)
    with pytest.raises(InvalidParameterError, match="width"):
        build_model("imagenet_resnet18", 10, width=0.5)
    model = build_model("resnet18", 10, width=0.25)
    for stage in (-1, 5, 1.5):
        with pytest.raises(InvalidParameterError, match="stage"):
            model.forward_features(torch.rand(1, 3, 32, 32), stage)


def test_registry_lists_all_models_as_staged_classifiers():
    assert MODELS.names() == sorted(CIFAR_MODELS + IMAGENET_MODELS)
    assert isinstance(build_model("resnet18", 10, width=0.25), StagedClassifier)


def _tv_resnet18_checkpoint_name():
    return os.path.basename(tv.models.ResNet18_Weights.IMAGENET1K_V1.url)


def test_pretrained_weights_missing_offline_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    expected_path = os.path.join(str(tmp_path), "hub", "checkpoints", _tv_resnet18_checkpoint_name())
    with pytest.raises(PretrainedWeightsMissingError) as info:
        build_model("imagenet_resnet18", 10, pretrained=True)
    message = str(info.value)
    assert "ResNet18_Weights.IMAGENET1K_V1" in message and expected_path in message and "TORCH_HOME" in message


def test_pretrained_weights_load_from_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = tv.models.resnet18(weights=None)
    path = tmp_path / "hub" / "checkpoints" / _tv_resnet18_checkpoint_name()
    path.parent.mkdir(parents=True)
    torch.save(source.state_dict(), path)
    full = build_model("imagenet_resnet18", 1000, pretrained=True)
    assert torch.equal(full.head[-1].weight, source.fc.weight)
    assert torch.equal(full.stem[0].weight, source.conv1.weight)
    assert torch.equal(full.stages[3][1].bn2.running_var, source.layer4[1].bn2.running_var)
    finetune = build_model("imagenet_resnet18", 200, pretrained=True)  # new head, pretrained body
    assert finetune.head[-1].weight.shape == (200, 512)
    assert torch.equal(finetune.stages[0][0].conv1.weight, source.layer1[0].conv1.weight)


def test_learned_methods_reject_a_feature_stage_the_model_lacks():
    from mixrepro.methods import build_method

    wrn = build_model("wrn28_8", 10, width=0.125, generator=torch.Generator().manual_seed(0))
    for method in ("automix", "adautomix"):
        with pytest.raises(InvalidParameterError, match="stage"):
            build_method(method, wrn, 10, feature_stage=4)

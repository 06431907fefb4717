"""ImageNet-style ResNet-18/50 and ResNeXt-50 (32x4d), wrapping torchvision.

Used for the fine-grained and ImageNet tables of the DM paper (000, B.2), which
start from the official PyTorch ImageNet-1k weights. The torchvision network is
cut into a stem (7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max-pool, i.e. stage 1
starts at 1/4 resolution), its layer1..layer4 as stages 1..4, and a head (global
average pool, linear). Without pretrained weights the layers are initialised by
:func:`mixrepro.models.base.init_weights` (torchvision's scheme, drawn from our
generator).
"""
from __future__ import annotations

import os

import torch
from torch import nn

from .._torchvision import import_torchvision
from ..errors import InvalidParameterError, PretrainedWeightsMissingError
from .base import Normalize, StagedNet, init_linear, init_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# our name -> (torchvision builder, torchvision weights enum; we load its IMAGENET1K_V1 entry)
_TORCHVISION = {
    "imagenet_resnet18": ("resnet18", "ResNet18_Weights"),
    "imagenet_resnet50": ("resnet50", "ResNet50_Weights"),
    "imagenet_resnext50": ("resnext50_32x4d", "ResNeXt50_32X4D_Weights"),
}


def _hub_checkpoint_path(url: str) -> str:
    """Where torch.hub (and so torchvision) caches a downloaded checkpoint."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def load_pretrained_state(weights_enum) -> dict:
    """ImageNet-1k V1 weights from the torch.hub cache, downloading them if needed."""
    weights = weights_enum.IMAGENET1K_V1
    path = _hub_checkpoint_path(weights.url)
    if os.path.isfile(path):
        return torch.load(path, map_location="cpu", weights_only=True)
    try:
        return torch.hub.load_state_dict_from_url(weights.url, map_location="cpu", progress=False)
    except Exception as err:  # noqa: BLE001  (offline: URLError, socket errors, HTTP errors...)
        raise PretrainedWeightsMissingError(
            f"pretrained weights {weights_enum.__name__}.IMAGENET1K_V1 are missing: torchvision looks for "
            f"{path} (the torch.hub cache, set by $TORCH_HOME, default ~/.cache/torch) and could not "
            f"download {weights.url} ({type(err).__name__}: {err}). Download that file on a machine "
            f"with network access and copy it to {path}, or build with pretrained=False."
        ) from err


def imagenet_model(name: str, num_classes: int, *, width: float = 1.0, mean=None, std=None,
                   in_channels: int = 3, pretrained: bool = False,
                   generator: torch.Generator | None = None) -> StagedNet:
    if width != 1.0:
        raise InvalidParameterError("width", width, "1.0 for the torchvision ImageNet models")
    if pretrained and in_channels != 3:
        raise InvalidParameterError("in_channels", in_channels, "3 when pretrained=True")
    tv = import_torchvision()
    builder, weights_name = _TORCHVISION[name]
    net = getattr(tv.models, builder)(weights=None, num_classes=1000)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
    init_weights(net, generator)
    if pretrained:
        net.load_state_dict(load_pretrained_state(getattr(tv.models, weights_name)))
    if num_classes != net.fc.out_features:
        net.fc = nn.Linear(net.fc.in_features, num_classes)
        init_linear(net.fc, generator)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    channels = [in_channels] + [_out_channels(stage) for stage in stages]
    head = nn.Sequential(net.avgpool, nn.Flatten(1), net.fc)
    return StagedNet(Normalize(mean, std), stem, stages, head, channels)


def _out_channels(stage: nn.Sequential) -> int:
    last = stage[-1]
    return (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features


def imagenet_resnet18(num_classes: int, **kw) -> StagedNet:
    return imagenet_model("imagenet_resnet18", num_classes, **kw)


def imagenet_resnet50(num_classes: int, **kw) -> StagedNet:
    return imagenet_model("imagenet_resnet50", num_classes, **kw)


def imagenet_resnext50(num_classes: int, **kw) -> StagedNet:
    return imagenet_model("imagenet_resnext50", num_classes, **kw)

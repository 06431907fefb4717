"""CIFAR ResNets and ResNeXt (AutoMix, ECCV 2022, section 4.1; book/protocol_notes.md, "Backbones").

Differences from the ImageNet architectures: a 3x3 stride-1 stem conv (+BN+ReLU)
and no max-pool, so a 32 px input keeps 32 px through stage 1 and stage outputs are
32/16/8/4 px. Stages of 64/128/256/512 (times ``width``) planes, strides 1, 2, 2, 2,
global average pool, linear head. Blocks follow He et al. 2016 (post-activation,
projection shortcut = 1x1 conv + BN when shape changes, stride on the 3x3 conv of
a bottleneck as in torchvision's "ResNet v1.5"). Initialisation:
:func:`mixrepro.models.base.init_weights` (Kaiming normal fan_out convs, BatchNorm
weight 1 / bias 0, PyTorch-default linear).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import Normalize, StagedNet, classifier_head, conv1x1, conv3x3, init_weights, scaled


def projection(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity when shapes match, else 1x1 conv + BN."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, **_):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, planes, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.shortcut = projection(cin, planes, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (grouped for ResNeXt) -> 1x1 expand (x4).

    Inner width = floor(planes * base_width / 64) * groups (torchvision's rule), at
    least one channel per group so narrow ResNeXts stay valid.
    """

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, groups: int = 1, base_width: int = 64):
        super().__init__()
        inner = max(1, int(planes * base_width / 64)) * groups
        cout = planes * self.expansion
        self.conv1, self.bn1 = conv1x1(cin, inner), nn.BatchNorm2d(inner)
        self.conv2, self.bn2 = conv3x3(inner, inner, stride, groups), nn.BatchNorm2d(inner)
        self.conv3, self.bn3 = conv1x1(inner, cout), nn.BatchNorm2d(cout)
        self.shortcut = projection(cin, cout, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def residual_stage(block, cin: int, planes: int, depth: int, stride: int, **block_args) -> tuple[nn.Sequential, int]:
    """``depth`` blocks, the first one with ``stride``; returns the stage and its output channels."""
    layers = []
    for i in range(depth):
        layers.append(block(cin, planes, stride if i == 0 else 1, **block_args))
        cin = planes * block.expansion
    return nn.Sequential(*layers), cin


STAGE_CHANNELS = (64, 128, 256, 512)  # the four stages' channels at width 1


def cifar_resnet(block, depths, num_classes: int, *, width: float = 1.0, mean=None, std=None,
                 in_channels: int = 3, generator: torch.Generator | None = None, **block_args) -> StagedNet:
    """A CIFAR ResNet of ``block`` with ``depths`` blocks per stage (stages 64/128/256/512 x width)."""
    planes = [scaled(c, width) for c in STAGE_CHANNELS]
    stem = nn.Sequential(conv3x3(in_channels, planes[0]), nn.BatchNorm2d(planes[0]), nn.ReLU(inplace=True))
    stages, channels, cin = [], [in_channels], planes[0]
    for p, depth, stride in zip(planes, depths, (1, 2, 2, 2)):
        stage, cin = residual_stage(block, cin, p, depth, stride, **block_args)
        stages.append(stage)
        channels.append(cin)
    model = StagedNet(Normalize(mean, std), stem, stages, classifier_head(cin, num_classes), channels)
    return init_weights(model, generator)


def resnet18(num_classes: int, **kw) -> StagedNet:
    return cifar_resnet(BasicBlock, (2, 2, 2, 2), num_classes, **kw)


def resnet34(num_classes: int, **kw) -> StagedNet:
    return cifar_resnet(BasicBlock, (3, 4, 6, 3), num_classes, **kw)


def resnet50(num_classes: int, **kw) -> StagedNet:
    return cifar_resnet(Bottleneck, (3, 4, 6, 3), num_classes, **kw)


def resnext50(num_classes: int, **kw) -> StagedNet:
    """ResNeXt-50 32x4d: 32 groups of width 4 in the first stage's 3x3 convs (doubling per stage)."""
    return cifar_resnet(Bottleneck, (3, 4, 6, 3), num_classes, groups=32, base_width=4, **kw)

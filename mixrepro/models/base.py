"""The interface every classifier in mixrepro implements, and the pieces they share.

Stage indices: 0 is the input as given (pixel space, [0, 1]); 1..num_stages are
the outputs of the residual stages (for CIFAR ResNets at 32 px: 32, 16, 8, 4 px).
Normalisation by the dataset mean/std is the first operation inside the model, so
attacks (FGSM) and mixers work in pixel space.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from typing import Sequence

import torch
from torch import nn

from ..errors import InvalidParameterError


class StagedClassifier(nn.Module):
    """A classifier whose forward pass can be split after any stage.

    Subclasses set ``stage_channels`` (channels after each stage, index 0 = input
    channels) and implement ``forward_features`` and ``forward_from``.
    """

    stage_channels: list[int]

    @property
    def num_stages(self) -> int:
        return len(self.stage_channels) - 1

    @abstractmethod
    def forward_features(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        """Run the input up to the output of ``stage`` (0 returns x unchanged)."""

    @abstractmethod
    def forward_from(self, h: torch.Tensor, stage: int) -> torch.Tensor:
        """Continue from the output of ``stage`` to the logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(x, 0)

    def check_stage(self, stage: int) -> int:
        if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage <= self.num_stages:
            raise InvalidParameterError("stage", stage, f"an integer in 0..{self.num_stages}")
        return stage


class Normalize(nn.Module):
    """(x - mean) / std per channel, with mean and std as buffers (they follow .to(device))."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if len(mean) != len(std):
            raise InvalidParameterError("std", tuple(std), f"as many values as mean ({len(mean)})")
        if any(s <= 0 for s in std):
            raise InvalidParameterError("std", tuple(std), "positive values")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class StagedNet(StagedClassifier):
    """normalise -> stem -> stages[0..n-1] -> head, split after any stage.

    The stem belongs to stage 1, so ``forward_features(x, 1)`` is the first
    residual stage's output and stage 0 stays raw pixels (what input mixers see).
    """

    def __init__(self, normalize: nn.Module, stem: nn.Module, stages: Sequence[nn.Module], head: nn.Module,
                 stage_channels: list[int]):
        super().__init__()
        if len(stage_channels) != len(stages) + 1:
            raise ValueError("stage_channels needs the input channels plus one entry per stage")
        self.normalize, self.stem, self.head = normalize, stem, head
        self.stages = nn.ModuleList(stages)
        self.stage_channels = list(stage_channels)

    def forward_features(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        stage = self.check_stage(stage)
        if stage == 0:
            return x
        h = self.stem(self.normalize(x))
        for block in self.stages[:stage]:
            h = block(h)
        return h

    def forward_from(self, h: torch.Tensor, stage: int) -> torch.Tensor:
        stage = self.check_stage(stage)
        if stage == 0:
            h = self.stem(self.normalize(h))
        for block in self.stages[stage:]:
            h = block(h)
        return self.head(h)


def classifier_head(in_features: int, num_classes: int, pre: nn.Module | None = None) -> nn.Sequential:
    """[pre ->] global average pool -> flatten -> linear."""
    layers = [pre] if pre is not None else []
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(in_features, num_classes))


def init_weights(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """The initialisation of every model built from scratch here.

    - convolutions: Kaiming normal, fan_out, ReLU gain (He et al. 2015; torchvision's ResNet choice); no bias
      in our convs except where a block declares one, which is set to 0;
    - BatchNorm: weight 1, bias 0;
    - linear: PyTorch's default (Kaiming uniform with a = sqrt(5), bias U(+-1/sqrt(fan_in))), redrawn here
      so that every draw comes from ``generator`` (same generator state => same bits).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            init_linear(m, generator)
    return model


def init_linear(m: nn.Linear, generator: torch.Generator | None = None) -> None:
    """PyTorch's default nn.Linear initialisation, drawn from ``generator``."""
    nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
    if m.bias is not None:
        bound = 1 / math.sqrt(m.in_features)
        nn.init.uniform_(m.bias, -bound, bound, generator=generator)


def conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


def scaled(channels: int, width: float) -> int:
    """Channel count times the width multiplier, at least 1."""
    return max(1, int(round(channels * width)))

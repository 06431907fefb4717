"""Wide ResNet WRN-28-8 for CIFAR (Zagoruyko & Komodakis 2016).

3x3 stem conv to 16 channels, then 3 groups of (28 - 4) / 6 = 4 pre-activation
blocks (BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3) of 16k/32k/64k channels (k=8),
strides 1, 2, 2; a final BN-ReLU, global average pool and a linear head. When a
block changes shape its shortcut is a 1x1 conv (no BN) applied to the
pre-activated input. Stage outputs at 32 px: 32, 16, 8 px; the final BN-ReLU is
part of the head so stage 3 is the raw residual sum, like the other models.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidParameterError
from .base import Normalize, StagedNet, classifier_head, conv1x1, conv3x3, init_weights, scaled


def bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, drop_rate: float = 0.0):
        super().__init__()
        self.pre = bn_relu(cin)
        self.conv1 = conv3x3(cin, cout, stride)
        self.mid = bn_relu(cout)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.conv2 = conv3x3(cout, cout)
        self.shortcut = None if (stride == 1 and cin == cout) else conv1x1(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pre(x)
        out = self.conv2(self.drop(self.mid(self.conv1(a))))
        # the projection sees the activated input (as in the original WRN code); identity sees x
        return out + (x if self.shortcut is None else self.shortcut(a))


def wide_resnet(depth: int, k: int, num_classes: int, *, width: float = 1.0, mean=None, std=None,
                in_channels: int = 3, drop_rate: float = 0.0, generator: torch.Generator | None = None) -> StagedNet:
    if (depth - 4) % 6 != 0 or depth < 10:
        raise InvalidParameterError("depth", depth, "6n + 4 with n >= 1 (e.g. 28)")
    if not 0 <= drop_rate < 1:
        raise InvalidParameterError("drop_rate", drop_rate, "a number in [0, 1)")
    n = (depth - 4) // 6
    stem_ch = scaled(16, width)
    stem = conv3x3(in_channels, stem_ch)
    stages, channels, cin = [], [in_channels], stem_ch
    for base, stride in ((16, 1), (32, 2), (64, 2)):
        cout = scaled(base * k, width)
        blocks = [PreActBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1, drop_rate) for i in range(n)]
        stages.append(nn.Sequential(*blocks))
        channels.append(cout)
        cin = cout
    head = classifier_head(cin, num_classes, pre=bn_relu(cin))
    model = StagedNet(Normalize(mean, std), stem, stages, head, channels)
    return init_weights(model, generator)


def wrn28_8(num_classes: int, **kw) -> StagedNet:
    return wide_resnet(28, 8, num_classes, **kw)

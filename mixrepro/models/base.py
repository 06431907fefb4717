"""The interface every classifier in mixrepro implements.

Stage indices: 0 is the input as given (pixel space, [0, 1]); 1..num_stages are
the outputs of the residual stages (for CIFAR ResNets at 32 px: 32, 16, 8, 4 px).
Normalisation by the dataset mean/std is the first operation inside the model, so
attacks (FGSM) and mixers work in pixel space.
"""
from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn


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

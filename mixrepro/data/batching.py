"""Batched augmentation of a split kept on the device as uint8.

The CIFAR protocol's augmentation (random 32 px crop of the image reflect-padded
by 4 px, horizontal flip with p = 0.5) done for a whole batch with one gather,
instead of per image in DataLoader workers: with the data resident on the GPU
this keeps a fast GPU busy. Every random draw of an epoch is made up front from
the caller's CPU generator, so CPU and CUDA runs see identical draws.
Images come out float32 [B, C, H, W] in [0, 1]; the model normalises.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

from ..errors import InvalidParameterError


@dataclass(frozen=True)
class EpochPlan:
    """Every random choice of one epoch, one entry per sample taken, in batch order.

    order: sample indices; dy, dx: crop corner in the padded image (0..2*padding);
    flip: whether the crop is mirrored left-right.
    """

    order: torch.Tensor
    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor

    def to(self, device) -> "EpochPlan":
        return EpochPlan(*(t.to(device, non_blocking=True) for t in (self.order, self.dy, self.dx, self.flip)))


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map padded coordinates to source ones as reflect padding does (edge not repeated)."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


class TensorBatcher:
    """Yields (x, y) batches of one split, augmented in train mode.

    images_uint8_nhwc: uint8 [N, H, W, C]; labels: int [N]. Stored once on
    ``device`` as uint8 [N, C, H, W]. ``train=True``: shuffled, random crop with
    ``padding`` px reflect padding, flip with p = 0.5 (if ``flip``), and
    ``drop_last`` defaults to True. ``train=False``: in order, unchanged, every sample.
    """

    def __init__(self, images_uint8_nhwc, labels, batch_size: int, *, train: bool, device="cpu",
                 padding: int = 4, flip: bool = True, drop_last: bool | None = None):  # fmt: skip
        images = torch.as_tensor(images_uint8_nhwc)
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise InvalidParameterError("images", f"{images.dtype} {tuple(images.shape)}", "uint8 [N, H, W, C]")
        if len(labels) != len(images):
            raise InvalidParameterError("labels", f"{len(labels)} labels", f"{len(images)}, one per image")
        if not (isinstance(batch_size, int) and batch_size > 0):
            raise InvalidParameterError("batch_size", batch_size, "a positive integer")
        height, width = images.shape[1:3]
        if not (isinstance(padding, int) and 0 <= padding < min(height, width)):
            raise InvalidParameterError("padding", padding, f"an integer in 0..{min(height, width) - 1}")
        self.device = torch.device(device)
        self.x = images.to(self.device).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW, on the device once
        self.y = torch.as_tensor(labels).to(self.device, torch.int64)
        self.batch_size, self.train, self.padding, self.flip = batch_size, train, padding, flip
        self.drop_last = train if drop_last is None else drop_last
        if len(self) == 0:
            raise InvalidParameterError("batch_size", batch_size, f"at most {len(images)} with drop_last")

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def plan_epoch(self, generator: torch.Generator | None = None) -> EpochPlan:
        """Draw the epoch's order, crop offsets and flips (train mode) from ``generator`` (CPU)."""
        n = len(self.y)
        if not self.train:
            zeros = torch.zeros(n, dtype=torch.int64)
            return EpochPlan(torch.arange(n), zeros + self.padding, zeros + self.padding, zeros.bool())
        if generator is None:
            raise InvalidParameterError("generator", None, "a CPU torch.Generator (train mode draws from it)")
        order = torch.randperm(n, generator=generator)
        dy, dx = torch.randint(0, 2 * self.padding + 1, (2, n), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5
        if not self.flip:
            flip = torch.zeros_like(flip)
        return EpochPlan(order, dy, dx, flip)

    def iterate(self, plan: EpochPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``plan``: x float32 [B, C, H, W] in [0, 1], y int64 [B], on the device."""
        plan = plan.to(self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = plan.order[start : start + self.batch_size]
            if self.train:
                x = self._crop_flip(idx, *(t[start : start + self.batch_size] for t in (plan.dy, plan.dx, plan.flip)))
            else:
                x = self.x[idx]
            yield x.float().div_(255), self.y[idx]

    def epoch(self, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the split; ``generator`` is required in train mode."""
        return self.iterate(self.plan_epoch(generator))

    def _crop_flip(self, idx, dy, dx, flip) -> torch.Tensor:
        """uint8 [B, C, H, W]: each crop gathered straight from the unpadded images."""
        _, channels, height, width = self.x.shape
        p, dev = self.padding, self.device
        rows = _reflect(dy[:, None] - p + torch.arange(height, device=dev), height)  # [B, H]
        cols = _reflect(dx[:, None] - p + torch.arange(width, device=dev), width)  # [B, W]
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        chans = torch.arange(channels, device=dev)
        return self.x[
            idx[:, None, None, None], chans[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
        ]

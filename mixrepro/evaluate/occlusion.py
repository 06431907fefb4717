"""Accuracy under random patch occlusion (AdAutoMix Sec. 4.4 / Table 7, DM Fig. 6; protocol notes).

The papers drop random 16x16 patches of a 224 px image, i.e. cells of a 14x14
grid, at occlusion ratios 0%, 10%, ..., 90% of the cells. 14 does not divide
32, so for 32 px inputs the default grid is 16x16 cells of 2x2 px: a cell is
1/16 of the side (1/14 in the paper), the closest integral match. ``grid=8``
(4x4 px cells, 1/8 of the side) is the coarser alternative. The number of
occluded cells is round(ratio * grid^2).

Occluded pixels are set to ``fill`` in [0, 1] pixel space before the model's
normalisation; the default 0 is black. Each image draws one random order of
its cells (seeded); ratio r occludes the first round(r * grid^2) cells of that
order, so a cell occluded at one ratio stays occluded at every higher ratio and
the curve measures occlusion alone, not a new draw per ratio.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import InvalidParameterError
from .accuracy import array_batches, check_batch_size, eval_mode, model_device

PAPER_RATIOS = tuple(round(0.1 * i, 1) for i in range(10))  # 0.0 .. 0.9
DEFAULT_GRID = 16


def _check(ratios, grid, size: int, fill) -> None:
    if not (isinstance(grid, int) and grid > 0 and size % grid == 0):
        raise InvalidParameterError("grid", grid, f"a positive integer dividing the image side {size}")
    for r in ratios:
        if not (isinstance(r, (int, float)) and 0 <= r <= 1):
            raise InvalidParameterError("ratio", r, "a fraction of cells in [0, 1]")
    if not (isinstance(fill, (int, float)) and 0 <= fill <= 1):
        raise InvalidParameterError("fill", fill, "a pixel value in [0, 1]")


def cell_orders(n: int, grid: int, generator: torch.Generator) -> torch.Tensor:
    """One random permutation of the grid's cells per image: int64 [n, grid*grid]."""
    return torch.rand(n, grid * grid, generator=generator).argsort(1)


def occlusion_masks(orders: torch.Tensor, ratio: float, grid: int, size: int) -> torch.Tensor:
    """Boolean [n, 1, size, size]: True where a pixel is occluded at ``ratio``."""
    n_cells = round(ratio * grid * grid)
    cells = torch.zeros(orders.shape, dtype=torch.bool, device=orders.device)
    cells.scatter_(1, orders[:, :n_cells], True)
    cell = size // grid
    cells = cells.view(-1, 1, grid, grid)
    return cells.repeat_interleave(cell, 2).repeat_interleave(cell, 3)


def occlude(x: torch.Tensor, orders: torch.Tensor, ratio: float, grid: int, fill: float = 0.0) -> torch.Tensor:
    """x float [n, C, H, W] with the cells of ``orders`` occluded at ``ratio``."""
    mask = occlusion_masks(orders.to(x.device), ratio, grid, x.shape[-1])
    return x.masked_fill(mask, fill)


@torch.no_grad()
def occlusion_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, ratios: Sequence[float] = PAPER_RATIOS,
    grid: int = DEFAULT_GRID, seed: int = 0, *, fill: float = 0.0, batch_size: int = 500, device=None,
) -> dict[float, float]:
    """{ratio: top-1 %} on square images given as the dataset stores them (uint8 [N, H, W, C])."""
    h, w = images.shape[1:3]
    if h != w:
        raise InvalidParameterError("images", f"{h}x{w} px", "square images")
    _check(ratios, grid, w, fill)
    check_batch_size(batch_size)
    device = model_device(model) if device is None else device
    orders = cell_orders(len(images), grid, torch.Generator().manual_seed(seed))
    correct = {r: 0 for r in ratios}
    with eval_mode(model):
        start = 0
        for x, y in array_batches(images, labels, batch_size, device):
            batch_orders = orders[start : start + len(y)]
            start += len(y)
            for r in ratios:
                pred = model(occlude(x, batch_orders, r, grid, fill)).argmax(1)
                correct[r] += (pred == y).sum().item()
    return {r: 100.0 * c / len(images) for r, c in correct.items()}

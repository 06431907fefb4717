"""PuzzleMix's transport step: move each source's salient blocks to where they stay visible.

For one source image split into a T x T grid of blocks, with block saliency
``s_i`` (normalised to sum 1) and a visibility map ``z_j`` (1 where the mixing
mask shows this source at all), PuzzleMix chooses a transport plan ``Pi``
(``Pi[i, j] = 1``: block ``i`` moves to position ``j``) minimising::

    <Pi, eps * C - s z^T>,   C[i, j] = |p_i - p_j|**2 / (T - 1)**2

(squared distance between block positions, normalised by the grid's extent):
saliency kept visible minus the distance moved. We solve it exactly as a
linear assignment (``scipy.optimize.linear_sum_assignment`` per sample), so the
plan is always a permutation of blocks (``solver="exact"``, the default).

``solver="iterative"`` is the reference code's approximate GPU solver, our own
implementation of it: T rounds in which every block claims its cheapest
position, each claimed position keeps the claimant of lowest cost (positions
nobody claims count as cost 0 in that comparison, so a claimant of cost >= 0
can lose to no one) and every losing claim costs 1 more in later rounds; the
last round's winners form the plan. Blocks that never win are dropped and
positions without a winner are left at zero.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment


def position_cost(grid: int) -> torch.Tensor:
    """[T*T, T*T] squared distance between block positions (row-major), divided by (T - 1)**2."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    pos = torch.stack([rows.flatten(), cols.flatten()], 1).double()
    return torch.cdist(pos, pos) ** 2 / (grid - 1) ** 2


def transport_cost(saliency: torch.Tensor, visible: torch.Tensor, eps: float) -> torch.Tensor:
    """Cost [B, n, n] of moving block i (row) to position j (column); saliency and visible are [B, T, T]."""
    grid = saliency.shape[-1]
    s = saliency.reshape(len(saliency), -1, 1).double().cpu()
    z = visible.reshape(len(visible), 1, -1).double().cpu()
    return eps * position_cost(grid) - s * z


def assignment_plans(cost: torch.Tensor) -> torch.Tensor:
    """Optimal permutation per sample: [B, n] long, entry j = index of the block placed at position j."""
    sources = []
    for c in cost.numpy():
        rows, cols = linear_sum_assignment(c)
        source = np.empty(len(rows), dtype=np.int64)
        source[cols] = rows
        sources.append(source)
    return torch.from_numpy(np.stack(sources))


def iterative_plans(cost: torch.Tensor) -> torch.Tensor:
    """The reference's approximate plan: [B, n] long, block index per position, -1 where none lands."""
    cost = cost.clone()
    n = cost.shape[-1]
    for _ in range(int(round(n**0.5))):  # T rounds on a T x T grid
        claims = F.one_hot(cost.argmin(-1), n).to(cost.dtype)  # [B, block, position]
        winner = (claims * cost).argmin(1)  # [B, position]; argmin takes the first of equal values
        won = claims.gather(1, winner[:, None, :])[:, 0]  # 1 where the winner really claimed the position
        kept = torch.zeros_like(claims).scatter_(1, winner[:, None, :], won[:, None, :])
        cost += claims - kept
    return torch.where(won.bool(), winner, torch.full_like(winner, -1))


TRANSPORT_SOLVERS = {"exact": assignment_plans, "iterative": iterative_plans}


def to_blocks(x: torch.Tensor, grid: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, T*T, C, H/T, W/T] blocks in row-major order."""
    b, c, h, w = x.shape
    blocks = x.reshape(b, c, grid, h // grid, grid, w // grid).permute(0, 2, 4, 1, 3, 5)
    return blocks.reshape(b, grid * grid, c, h // grid, w // grid)


def from_blocks(blocks: torch.Tensor, grid: int) -> torch.Tensor:
    """Inverse of :func:`to_blocks`."""
    b, _, c, bh, bw = blocks.shape
    x = blocks.reshape(b, grid, grid, c, bh, bw).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, grid * bh, grid * bw)


def permute_blocks(x: torch.Tensor, source: torch.Tensor, grid: int) -> torch.Tensor:
    """Place block ``source[b, j]`` of image b at position j (an exact copy of pixels; zeros where -1)."""
    blocks = to_blocks(x, grid)
    source = source.to(x.device)[:, :, None, None, None]
    moved = blocks.gather(1, source.clamp_min(0).expand_as(blocks))
    return from_blocks(moved * (source >= 0), grid)


def transport(x: torch.Tensor, saliency: torch.Tensor, visible: torch.Tensor, eps: float,
              solver: str = "exact") -> torch.Tensor:
    """Move each image's blocks (grid from ``saliency`` [B, T, T]) to keep salient ones visible."""
    grid = saliency.shape[-1]
    source = TRANSPORT_SOLVERS[solver](transport_cost(saliency, visible, eps))
    return permute_blocks(x, source, grid)

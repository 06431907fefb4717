"""PuzzleMix's transport step: move each source's salient blocks to where they stay visible.

For one source image split into a T x T grid of blocks, with block saliency
``s_i`` (normalised to sum 1) and a visibility map ``z_j`` (1 where the mixing
mask shows this source at all), PuzzleMix chooses a transport plan ``Pi``
(``Pi[i, j] = 1``: block ``i`` moves to position ``j``) minimising::

    <Pi, eps * C - s z^T>,   C[i, j] = |p_i - p_j|**2 / (T - 1)**2

(squared distance between block positions, normalised by the grid's extent):
saliency kept visible minus the distance moved. We solve it exactly as a
linear assignment (``scipy.optimize.linear_sum_assignment`` per sample), so the
plan is always a permutation of blocks (``solver="exact"``, the default). The
default path (:func:`exact_plans`) builds each sample's cost matrix in one reused
buffer and skips samples visible everywhere or nowhere (their plan is the
identity); ``transport(..., fast=False)`` keeps the dense [B, n, n] reference
(:func:`transport_cost`, :func:`assignment_plans`), with the same result bit for bit.

``solver="iterative"`` is the reference code's approximate GPU solver, our own
implementation of it: T rounds in which every block claims its cheapest
position and each position keeps the block of lowest cost, where blocks not
claiming it count as cost 0 and the first index wins ties (so a claimant of
cost >= 0 can lose to a non-claimant, leaving the position empty); every
losing claim costs 1 more in later rounds, and the last round's winners form
the plan. Blocks that never win are dropped, positions without one stay zero.
The empty positions arise where the source is hidden (cost >= 0), so on the
inputs we tried no hole was visible in the mixed image.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def position_cost(grid: int) -> torch.Tensor:
    """[T*T, T*T] squared distance between block positions (row-major), divided by (T - 1)**2."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    pos = torch.stack([rows.flatten(), cols.flatten()], 1).double()
    return torch.cdist(pos, pos) ** 2 / (grid - 1) ** 2


def transport_cost(saliency: torch.Tensor, visible: torch.Tensor, eps: float) -> torch.Tensor:
    """Cost [B, n, n] of moving block i (row) to position j (column); saliency and visible are [B, T, T]."""
    grid = saliency.shape[-1]
    s = saliency.reshape(len(saliency), -1, 1).double()
    z = visible.reshape(len(visible), 1, -1).double()
    return eps * position_cost(grid).to(s.device) - s * z


def assignment_plans(cost: torch.Tensor) -> torch.Tensor:
    """Optimal permutation per sample: [B, n] long, entry j = index of the block placed at position j."""
    sources = []
    for c in cost.cpu().numpy():
        rows, cols = linear_sum_assignment(c)
        source = np.empty(len(rows), dtype=np.int64)
        source[cols] = rows
        sources.append(source)
    return torch.from_numpy(np.stack(sources))


@lru_cache(maxsize=16)
def _position_cost_numpy(grid: int) -> np.ndarray:
    """:func:`position_cost` as a read-only float64 array (the same bits), computed once per grid."""
    cost = position_cost(grid).numpy()
    cost.flags.writeable = False
    return cost


def exact_plans(saliency: torch.Tensor, visible: torch.Tensor, eps: float) -> torch.Tensor:
    """:func:`assignment_plans` of :func:`transport_cost`, the same result, without the [B, n, n] tensor.

    Each sample's cost matrix is built in one reused float64 buffer with the same floating-point
    operations (``eps * C`` once, minus the outer product ``s z^T``), so scipy sees the same bits.
    A sample whose source is visible everywhere or nowhere skips the solver: its cost is ``eps * C``
    minus a row constant (``s_i``) or nothing, and any permutation but the identity moves a block a
    squared distance of at least 1 / (T - 1)**2 (the diagonal of C is exactly 0), so the identity is
    the unique optimum by a margin far above rounding (for ``eps >= 1e-3``), and the solver would return
    it too.
    """
    grid = saliency.shape[-1]
    n = grid * grid
    s = saliency.detach().reshape(len(saliency), n).double().cpu().numpy()
    z = visible.detach().reshape(len(visible), n).double().cpu().numpy()
    eps_cost = eps * _position_cost_numpy(grid)
    trivial = (z.min(1) == z.max(1)) & (eps >= 1e-3)  # margin >= 2e-3 / (T - 1)**2 >> rounding
    sources = np.tile(np.arange(n, dtype=np.int64), (len(s), 1))
    cost = np.empty((n, n))
    for b in np.flatnonzero(~trivial):
        np.multiply.outer(s[b], z[b], out=cost)
        np.subtract(eps_cost, cost, out=cost)
        rows, cols = linear_sum_assignment(cost)
        sources[b, cols] = rows
    return torch.from_numpy(sources)


def _round_winners(choice: torch.Tensor, claimed: torch.Tensor, n: int):
    """One conflict round: per position, the winning block and whether it really claimed the position.

    Equivalent to argmin over all blocks of (claimed cost if the block claims the position, else 0),
    first index on ties, without the dense [B, n, n] matrix.
    """
    rows = torch.arange(n, device=choice.device).expand_as(choice)
    low = torch.full(choice.shape, float("inf"), dtype=claimed.dtype, device=choice.device)
    low = low.scatter_reduce(1, choice, claimed, "amin")  # lowest claimed cost per position
    at_low = claimed == low.gather(1, choice)
    first_low = torch.full_like(choice, n).scatter_reduce(1, choice, torch.where(at_low, rows, n), "amin")
    count = torch.zeros_like(choice).scatter_add_(1, choice, torch.ones_like(choice))
    # the first block NOT claiming position j: block 0, unless block 0 claims j
    differs = choice != choice[:, :1]
    first_other = torch.where(differs.any(1), differs.int().argmax(1), n)[:, None]
    first_non_claimant = torch.where(rows == choice[:, :1], first_other, 0)
    won = (count > 0) & ((low < 0) | ((low == 0) & (first_low < first_non_claimant)) | ((low > 0) & (count == n)))
    return first_low, won


def iterative_plans(cost: torch.Tensor) -> torch.Tensor:
    """The reference's approximate plan: [B, n] long, block index per position, -1 where none lands."""
    cost = cost.clone()
    n = cost.shape[-1]
    for _ in range(int(round(n**0.5))):  # T rounds on a T x T grid
        choice = cost.argmin(-1)  # [B, block]: cheapest position, first on ties
        claimed = cost.gather(2, choice[..., None])[..., 0]
        winner, won = _round_winners(choice, claimed, n)
        kept = won.gather(1, choice) & (winner.gather(1, choice) == torch.arange(n, device=cost.device))
        lost = (~kept).to(cost.dtype)[..., None]
        cost.scatter_add_(2, choice[..., None], lost)  # a lost claim costs 1 more from now on
    return torch.where(won, winner, torch.full_like(winner, -1))


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
              solver: str = "exact", fast: bool = True) -> torch.Tensor:
    """Move each image's blocks (grid from ``saliency`` [B, T, T]) to keep salient ones visible.

    ``fast=False``: the exact solver through the dense :func:`transport_cost` and
    :func:`assignment_plans` (the reference path; same result as the default :func:`exact_plans`).
    """
    grid = saliency.shape[-1]
    if solver == "exact" and fast:
        source = exact_plans(saliency, visible, eps)
    else:
        source = TRANSPORT_SOLVERS[solver](transport_cost(saliency, visible, eps))
    return permute_blocks(x, source, grid)

"""PuzzleMix's discrete labelling: a grid MRF minimised by alpha-beta swap.

Energy of a labelling ``k`` (label indices 0..L-1 on a G x G block grid; label
``k`` means mixing weight ``v_k = k / (L - 1)`` of source b) of one sample::

    E(k) = sum_i unary[i, k_i] + sum_{(i, j) 4-neighbours} w_ij * (v_{k_i} - v_{k_j})**2

with non-negative edge weights ``w_ij`` (vertical edges ``w_down[r, c]`` join
(r, c)-(r+1, c); horizontal edges ``w_right[r, c]`` join (r, c)-(r, c+1)).
The squared label distance is a semimetric, so every swap move is a submodular
binary problem solved exactly by one min-cut (Boykov, Veksler, Zabih 2001).

Solver: our own batched alpha-beta swap. Each swap move builds ONE PyMaxflow
graph holding every sample of the batch as a disconnected grid (samples are
independent, so the min cut of the union is the union of the per-sample min
cuts), which replaces the reference's per-sample ``gco`` calls (optionally in a
process pool). A move is kept for a sample only if it lowers that sample's
energy (evaluated in float64), so the energy never rises; cycles over all label
pairs repeat until no sample changes. Like every swap solver this reaches a
local minimum with respect to swap moves, exact for two labels.

Because the pairwise term is convex in the label index, the global minimum is
also reachable with one min-cut (Ishikawa 2003): :func:`exact_convex_cut`, an
option the reference does not have (``solver="exact"`` in ``puzzlemix``).
"""
from __future__ import annotations

from itertools import combinations

import maxflow
import numpy as np

# Edge-direction structures for a [B, G, G] node array: only offsets inside the
# last two axes, so no edge ever joins two samples.
_DOWN = np.zeros((3, 3, 3))
_DOWN[1, 2, 1] = 1
_RIGHT = np.zeros((3, 3, 3))
_RIGHT[1, 1, 2] = 1


def label_distance(n_labels: int) -> np.ndarray:
    """[L, L] matrix (v_k - v_l)**2 with v_k = k / (L - 1)."""
    values = np.arange(n_labels) / (n_labels - 1)
    return (values[:, None] - values[None, :]) ** 2


def grid_energy(labels: np.ndarray, unary: np.ndarray, w_down: np.ndarray, w_right: np.ndarray) -> np.ndarray:
    """Energy of each sample's labelling. labels [B, G, G] int; unary [B, G, G, L]; returns [B] float64."""
    dist = label_distance(unary.shape[-1])
    data = np.take_along_axis(unary, labels[..., None], -1)[..., 0].sum((1, 2))
    vertical = (w_down * dist[labels[:, :-1, :], labels[:, 1:, :]]).sum((1, 2))
    horizontal = (w_right * dist[labels[:, :, :-1], labels[:, :, 1:]]).sum((1, 2))
    return data + vertical + horizontal


def _cost_to_fixed_neighbours(label: int, labels, fixed, w_down, w_right, dist) -> np.ndarray:
    """Per node: sum over neighbours j with fixed[j] of w_ij * dist(label, labels_j)."""
    to_label = dist[label][labels] * fixed  # what a neighbour at each node charges
    cost = np.zeros(labels.shape)
    cost[:, :-1, :] += w_down * to_label[:, 1:, :]
    cost[:, 1:, :] += w_down * to_label[:, :-1, :]
    cost[:, :, :-1] += w_right * to_label[:, :, 1:]
    cost[:, :, 1:] += w_right * to_label[:, :, :-1]
    return cost


def swap_move(labels, unary, w_down, w_right, alpha: int, beta: int) -> np.ndarray:
    """Optimal alpha-beta swap move for every sample at once (one min-cut)."""
    dist = label_distance(unary.shape[-1])
    active = (labels == alpha) | (labels == beta)
    fixed = ~active
    cost_alpha = unary[..., alpha] + _cost_to_fixed_neighbours(alpha, labels, fixed, w_down, w_right, dist)
    cost_beta = unary[..., beta] + _cost_to_fixed_neighbours(beta, labels, fixed, w_down, w_right, dist)
    # Shift each node's pair of costs to be non-negative; only differences matter.
    base = np.minimum(cost_alpha, cost_beta)
    graph = maxflow.Graph[float]()
    ids = graph.add_grid_nodes(labels.shape)
    # A node on the sink side pays its source capacity: sink side means "beta".
    graph.add_grid_tedges(ids, (cost_beta - base) * active, (cost_alpha - base) * active)
    both_down = np.zeros(labels.shape)
    both_down[:, :-1, :] = w_down * active[:, :-1, :] * active[:, 1:, :]
    both_right = np.zeros(labels.shape)
    both_right[:, :, :-1] = w_right * active[:, :, :-1] * active[:, :, 1:]
    d_ab = dist[alpha, beta]
    graph.add_grid_edges(ids, weights=both_down * d_ab, structure=_DOWN, symmetric=True)
    graph.add_grid_edges(ids, weights=both_right * d_ab, structure=_RIGHT, symmetric=True)
    graph.maxflow()
    to_beta = graph.get_grid_segments(ids)
    return np.where(active, np.where(to_beta, beta, alpha), labels)


def alpha_beta_swap(unary: np.ndarray, w_down: np.ndarray, w_right: np.ndarray, max_cycles: int = 10) -> np.ndarray:
    """Minimise :func:`grid_energy` per sample; returns label indices [B, G, G] (int64).

    Starts from the per-node unary minimiser; cycles over all label pairs until
    no sample improves (or ``max_cycles``).
    """
    unary = np.asarray(unary, dtype=np.float64)
    w_down = np.asarray(w_down, dtype=np.float64)
    w_right = np.asarray(w_right, dtype=np.float64)
    labels = unary.argmin(-1)
    energy = grid_energy(labels, unary, w_down, w_right)
    # Accept a move only if it lowers the energy by more than float32 noise of the min-cut.
    tol = 1e-9 * (np.abs(unary).sum((1, 2, 3)) + w_down.sum((1, 2)) + w_right.sum((1, 2)))
    for _ in range(max_cycles):
        changed = False
        for alpha, beta in combinations(range(unary.shape[-1]), 2):
            proposal = swap_move(labels, unary, w_down, w_right, alpha, beta)
            new_energy = grid_energy(proposal, unary, w_down, w_right)
            better = new_energy < energy - tol
            if better.any():
                labels = np.where(better[:, None, None], proposal, labels)
                energy = np.where(better, new_energy, energy)
                changed = True
        if not changed:
            break
    return labels


def exact_convex_cut(unary: np.ndarray, w_down: np.ndarray, w_right: np.ndarray) -> np.ndarray:
    """Global minimiser of :func:`grid_energy` by one min-cut (Ishikawa's layered graph).

    Label k_i is encoded by L-1 binary layers x_i^t = [k_i >= t]. The unary is
    linear in the layers; w (v_i - v_j)**2 expands into per-layer linear terms
    plus -2w/(L-1)**2 * x_i^t x_j^s for every layer pair, and each such product is
    rewritten as w/(L-1)**2 * [x_i^t != x_j^s] minus linear terms (submodular
    since w >= 0). Infinite edges forbid x^(t+1) = 1 with x^t = 0.
    """
    unary = np.asarray(unary, dtype=np.float64)
    w_down = np.asarray(w_down, dtype=np.float64)
    w_right = np.asarray(w_right, dtype=np.float64)
    n_layers = unary.shape[-1] - 1
    scale = 1.0 / n_layers**2
    weight_at_node = np.zeros(unary.shape[:-1])  # sum of incident edge weights
    weight_at_node[:, :-1, :] += w_down
    weight_at_node[:, 1:, :] += w_down
    weight_at_node[:, :, :-1] += w_right
    weight_at_node[:, :, 1:] += w_right
    t = np.arange(1, n_layers + 1)
    theta = np.diff(unary, axis=-1) + weight_at_node[..., None] * scale * (2 * t - 1 - n_layers)
    graph = maxflow.Graph[float]()
    ids = graph.add_grid_nodes(theta.shape)
    # x = 1 is the sink side, where a node pays its source capacity.
    graph.add_grid_tedges(ids, np.maximum(theta, 0), np.maximum(-theta, 0))
    for first, second, w in ((ids[:, :-1, :], ids[:, 1:, :], w_down), (ids[:, :, :-1], ids[:, :, 1:], w_right)):
        cap = (w * scale).ravel()
        for a in range(n_layers):
            for b in range(n_layers):
                graph.add_edges(first[..., a].ravel(), second[..., b].ravel(), cap, cap)
    infinite = 1.0 + 2 * (np.abs(theta).sum() + n_layers**2 * scale * (w_down.sum() + w_right.sum()))
    lower, upper = ids[..., :-1].ravel(), ids[..., 1:].ravel()
    graph.add_edges(lower, upper, np.full(len(lower), infinite), np.zeros(len(lower)))
    graph.maxflow()
    return graph.get_grid_segments(ids).sum(-1).astype(np.int64)

"""PuzzleMix (Kim, Choo, Song, ICML 2020): saliency-guided block masks with transport.

Per batch: one lam ~ Beta(alpha, alpha) (weight of source a = x), one partner
permutation (source b = x[perm]) and one block count G per side drawn uniformly
from ``block_nums`` (2, 4, 8, 16 = 2^U{1..4} at 32 px). Per sample:

1. Saliency: ``sqrt(mean_c (d loss / d x)**2)`` of the classifier's CE on the
   clean batch (RMS over channels, as the reference; the L2 norm differs by the
   constant sqrt(C), which the normalisation below removes), average-pooled to
   the G x G grid and normalised to sum 1 per image. Our models normalise
   internally, so the gradient is taken in [0, 1] pixel space; the reference's is
   in normalised space, i.e. ours divided per channel by the CIFAR std (0.2023,
   0.1994, 0.2010): equal up to a factor and a <1.5% channel reweighting.
2. Labelling: each block gets a mixing weight of source b in {0, 1/(L-1), ..., 1}
   ({0, 1/2, 1} for L = n_labels = 3) minimising
   saliency lost  +  label smoothness  +  data smoothness  +  prior:
   - saliency lost at block i for weight v: v * s_a[i] + (1 - v) * s_b[i];
   - label smoothness beta' * (v_i - v_j)**2 on 4-neighbours, beta' = beta / (16 G)
     (the reference's normalisation of beta);
   - data smoothness: for each edge, the 2 x 2 cost P[s, t] = beta' * gamma *
     mean |x_s - x_t| across the block boundary (images average-pooled by
     ``neigh_size`` px; s, t the sources shown on either side). As in the
     reference, each endpoint takes, per source it shows, the average of P over
     the other endpoint's source (a unary term, linear in v), and the remainder
     (P_ab + P_ba - P_aa - P_bb) / 2 adds to the edge's weight on (v_i - v_j)**2.
     This is exact for binary labels and the reference's choice for v = 1/2;
   - prior: eta / G**2 * -log Binomial(k; L - 1, 1 - lam) for label k, so the
     expected mask mean is 1 - lam; the label count follows the lam prior.
   Minimised by alpha-beta swap (``solver="swap"``, as the paper and reference;
   ``puzzlemix_graphcut``: our batched solver on PyMaxflow min-cuts, float costs
   where the reference rounds to int32 for gco), or exactly (``solver="exact"``,
   one min-cut: the pairwise term is convex in the label; not in the reference).
3. Transport (``puzzlemix_transport``): each source's blocks are permuted so that
   salient blocks land where the mask shows that source, at the grid of
   ``t_size`` px blocks (``t_size=-1``: the label grid; a t_size not below the
   label block size also uses the label grid), solved exactly per sample
   (``transport_solver="exact"``) or by the reference's approximate rounds
   (``"iterative"``, which can drop blocks and leave zero blocks behind).
4. Mix: ``(1 - m) * x_a' + m * x_b'`` with m the block mask upsampled to pixels;
   the target weighs y by lam_i = 1 - mean(m_i), per sample.

Defaults, CIFAR (where they come from):
alpha = 1 (AutoMix, ECCV 2022, appendix A.1, "PuzzleMix adopts alpha = 1";
book/protocol_notes.md, "Mixing alpha per method");
beta = 1.2, gamma = 0.5, eta = 0.2, neigh_size = 4, n_labels = 3, t_eps = 0.8,
transport on: the official PuzzleMix CIFAR command line and OpenMixup's CIFAR
configs agree. t_size = 4 px: both set it for CIFAR (OpenMixup's function default
is -1, used for large images). block_nums (2, 4, 8, 16): both draw
2**randint(1, 5). clean_lam = 1: the official CIFAR command (a clean-input CE
term, weight clean_lam, whose pass also yields the saliency); OpenMixup, whose
numbers the AutoMix paper reports, has no clean term: ``clean_lam=0``. Unsure:
the exact weighting of the official clean term (it used a BCE-on-softmax loss
we do not copy); we use clean_lam * CE. Left out: the official code's optional
adversarial-noise step (adv_p, off in OpenMixup) and its multiprocessing (mp),
replaced by the batched solver.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import binom

from ..errors import InvalidParameterError
from .base import MixTarget
from .puzzlemix_graphcut import alpha_beta_swap, exact_convex_cut
from .puzzlemix_transport import TRANSPORT_SOLVERS
from .puzzlemix_transport import transport as transport_blocks

PUZZLEMIX_DEFAULTS = dict(
    block_nums=(2, 4, 8, 16), beta=1.2, gamma=0.5, eta=0.2, neigh_size=4, n_labels=3,
    transport=True, t_eps=0.8, t_size=4, solver="swap", transport_solver="exact",
)


SOLVERS = {"swap": alpha_beta_swap, "exact": exact_convex_cut}


def check_puzzlemix_params(p: dict) -> dict:
    """Validate the PuzzleMix hyperparameters (keys of PUZZLEMIX_DEFAULTS)."""
    nums = tuple(p["block_nums"])
    if not nums or any(not isinstance(n, int) or n < 2 for n in nums):
        raise InvalidParameterError("block_nums", p["block_nums"], "a non-empty sequence of ints >= 2")
    for name in ("beta", "gamma", "eta", "t_eps"):
        if not (isinstance(p[name], (int, float)) and p[name] >= 0):
            raise InvalidParameterError(name, p[name], "a number >= 0")
    if not (isinstance(p["neigh_size"], int) and p["neigh_size"] >= 1):
        raise InvalidParameterError("neigh_size", p["neigh_size"], "an int >= 1")
    if not (isinstance(p["n_labels"], int) and p["n_labels"] >= 2):
        raise InvalidParameterError("n_labels", p["n_labels"], "an int >= 2")
    if not (p["t_size"] == -1 or (isinstance(p["t_size"], int) and p["t_size"] >= 1)):
        raise InvalidParameterError("t_size", p["t_size"], "-1 (the label grid) or a block size in px >= 1")
    if p["solver"] not in SOLVERS:
        raise InvalidParameterError("solver", p["solver"], f"one of {sorted(SOLVERS)}")
    if p["transport_solver"] not in TRANSPORT_SOLVERS:
        raise InvalidParameterError("transport_solver", p["transport_solver"], f"one of {sorted(TRANSPORT_SOLVERS)}")
    return {**p, "block_nums": nums}


def saliency_from_gradient(grad: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] input gradient -> [B, H, W] RMS over channels."""
    return grad.detach().float().pow(2).mean(1).sqrt()


def frozen_bn_saliency(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Input-gradient saliency with every module in eval mode.

    BatchNorm then normalises with its running statistics and does not update
    them (dropout is off too); only the input receives a gradient
    (``torch.autograd.grad``), so no parameter gradient is accumulated. Each
    module's previous train/eval flag is restored afterwards.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(x_in), y), x_in)
    finally:
        for module, flag in flags:
            module.train(flag)
    return saliency_from_gradient(grad)


def block_saliency(saliency: torch.Tensor, grid: int) -> torch.Tensor:
    """[B, H, W] -> [B, grid, grid] block means, normalised to sum 1 (uniform if all zero)."""
    pooled = F.adaptive_avg_pool2d(saliency[:, None].float(), grid)[:, 0]
    total = pooled.sum((1, 2), keepdim=True)
    return torch.where(total > 0, pooled / total.clamp_min(1e-30), torch.full_like(pooled, 1 / grid**2))


def boundary_discrepancy(first: torch.Tensor, second: torch.Tensor, grid: int, neigh_size: int):
    """Mean |first - second| across each block boundary, first on the upper/left side.

    Images are average-pooled by ``neigh_size`` px; the last pooled row (column)
    of a block in ``first`` is compared with the first pooled row (column) of the
    next block in ``second``, averaged over channels and along the boundary.
    Returns (down [B, G-1, G], right [B, G, G-1]).
    """
    return pooled_boundary_discrepancy(F.avg_pool2d(first, neigh_size), F.avg_pool2d(second, neigh_size), grid)


def pooled_boundary_discrepancy(p1: torch.Tensor, p2: torch.Tensor, grid: int):
    """:func:`boundary_discrepancy` of images already average-pooled by ``neigh_size``."""
    k = p1.shape[-1] // grid  # pooled pixels per block
    b = len(p1)
    down = (p1[:, :, k - 1:(grid - 1) * k:k, :] - p2[:, :, k::k, :]).abs().mean(1)
    right = (p1[:, :, :, k - 1:(grid - 1) * k:k] - p2[:, :, :, k::k]).abs().mean(1)
    return down.reshape(b, grid - 1, grid, k).mean(-1), right.reshape(b, grid, k, grid - 1).mean(2)


def label_prior(lam: float, n_labels: int) -> np.ndarray:
    """-log P(label k), k = 0..L-1, Binomial(L - 1, 1 - lam): E[weight of b] = 1 - lam."""
    return -np.log(binom.pmf(np.arange(n_labels), n_labels - 1, 1 - lam) + 1e-8)


def data_smoothness(x_a, x_b, grid, weight, neigh_size):
    """Per node cost of showing a / b ([B, G, G] each) and per edge extra weight, from boundary discrepancies."""
    pooled = {"a": F.avg_pool2d(x_a, neigh_size), "b": F.avg_pool2d(x_b, neigh_size)}  # each image once
    pairs = {(s, t): pooled_boundary_discrepancy(pooled[s], pooled[t], grid) for s in "ab" for t in "ab"}
    show = {s: torch.zeros(len(x_a), grid, grid, device=x_a.device) for s in "ab"}
    extra = []
    # axis 0: vertical edges (upper node, lower node); axis 1: horizontal edges (left node, right node)
    for axis, (first, second) in enumerate([(np.s_[:, :-1, :], np.s_[:, 1:, :]), (np.s_[:, :, :-1], np.s_[:, :, 1:])]):
        P = {st: weight * pairs[st][axis] for st in pairs}
        for s in "ab":
            show[s][first] += (P[s, "a"] + P[s, "b"]) / 2
            show[s][second] += (P["a", s] + P["b", s]) / 2
        extra.append((P["a", "b"] + P["b", "a"] - P["a", "a"] - P["b", "b"]) / 2)
    return show["a"], show["b"], extra[0], extra[1]


def puzzle_energy(x_a, x_b, sal_a, sal_b, lam, grid, *, beta, gamma, eta, neigh_size, n_labels):
    """Unary [B, G, G, L] and edge weights (down [B, G-1, G], right [B, G, G-1]) as float64 numpy.

    sal_a, sal_b: block saliency [B, G, G] (sum 1); see the module docstring for the terms.
    """
    beta_n = beta / (grid * 16)
    show_a, show_b, extra_down, extra_right = data_smoothness(x_a, x_b, grid, beta_n * gamma, neigh_size)
    values = torch.linspace(0, 1, n_labels, device=x_a.device, dtype=torch.float64)
    cost_a = (sal_b + show_a).double()[..., None]  # showing a loses b's saliency
    cost_b = (sal_a + show_b).double()[..., None]
    prior = torch.as_tensor(eta * label_prior(lam, n_labels) / grid**2, device=x_a.device)
    unary = (1 - values) * cost_a + values * cost_b + prior
    # Weights stay >= 0 (a semimetric for the swap) for gamma <= 1 and pixels in [0, 1]; clip otherwise.
    w_down, w_right = ((beta_n + e).clamp_min(0).double() for e in (extra_down, extra_right))
    return unary.cpu().numpy(), w_down.cpu().numpy(), w_right.cpu().numpy()


@dataclass
class PuzzleMixResult:
    """mixed [B, C, H, W]; mask [B, G, G] weight of source b per block; transported sources."""

    mixed: torch.Tensor
    mask: torch.Tensor
    source_a: torch.Tensor
    source_b: torch.Tensor

    @property
    def lam(self) -> torch.Tensor:
        """Per-sample weight of source a, 1 - mean(mask)."""
        return 1 - self.mask.mean((1, 2))


def upsample_blocks(mask: torch.Tensor, size: int) -> torch.Tensor:
    """[B, G, G] -> [B, size, size] by repeating each block (exact, size divisible by G)."""
    f = size // mask.shape[-1]
    return mask.repeat_interleave(f, 1).repeat_interleave(f, 2)


def puzzlemix_mask(x_a, x_b, saliency_a, saliency_b, lam, block_num, *, beta, gamma, eta, neigh_size, n_labels,
                   solver="swap"):
    """The optimal block labelling [B, G, G] (weight of source b in {0, 1/(L-1), ..., 1})."""
    block_size = x_a.shape[-1] // block_num
    sal_a, sal_b = block_saliency(saliency_a, block_num), block_saliency(saliency_b, block_num)
    unary, w_down, w_right = puzzle_energy(
        x_a, x_b, sal_a, sal_b, lam, block_num, beta=beta, gamma=gamma, eta=eta,
        neigh_size=min(neigh_size, block_size), n_labels=n_labels)
    labels = torch.from_numpy(SOLVERS[solver](unary, w_down, w_right))
    return (labels.float() / (n_labels - 1)).to(x_a.device)


def transport_grid(width: int, block_num: int, t_size: int) -> int:
    """Blocks per side of the transport step (the reference's rule)."""
    block_size = width // block_num
    if t_size == -1 or t_size >= block_size:
        return block_num
    return width // t_size


def check_geometry(x: torch.Tensor, block_num: int, neigh_size: int, t_size: int, transport: bool) -> None:
    """Blocks must tile the (square) image, neighbourhoods the blocks, transport blocks the label blocks."""
    h, w = x.shape[-2:]
    block_size = w // block_num
    if h != w or w % block_num or block_size % min(neigh_size, block_size):
        raise InvalidParameterError(
            "block_num", block_num, f"square images whose side ({h}x{w}) it divides, in blocks divisible by neigh_size")
    grid = transport_grid(w, block_num, t_size)
    if transport and (w % grid or grid % block_num):
        raise InvalidParameterError("t_size", t_size, f"-1 or a size dividing the {block_size} px blocks")


def mix_sources(x_a, x_b, saliency_a, saliency_b, lam, block_num, *, beta=1.2, gamma=0.5, eta=0.2,
                neigh_size=4, n_labels=3, transport=True, t_eps=0.8, t_size=4, solver="swap",
                transport_solver="exact") -> PuzzleMixResult:
    """PuzzleMix of explicit source pairs (a, b) with pixel saliency maps [B, H, W]."""
    check_geometry(x_a, block_num, neigh_size, t_size, transport)
    mask = puzzlemix_mask(x_a, x_b, saliency_a, saliency_b, lam, block_num, beta=beta, gamma=gamma,
                          eta=eta, neigh_size=neigh_size, n_labels=n_labels, solver=solver)
    width = x_a.shape[-1]
    if transport:
        grid = transport_grid(width, block_num, t_size)
        mask_t = upsample_blocks(mask, grid)
        x_a = transport_blocks(x_a, block_saliency(saliency_a, grid), mask_t < 1, t_eps, transport_solver)
        x_b = transport_blocks(x_b, block_saliency(saliency_b, grid), mask_t > 0, t_eps, transport_solver)
    m = upsample_blocks(mask, width)[:, None].to(x_a.dtype)
    return PuzzleMixResult((1 - m) * x_a + m * x_b, mask, x_a, x_b)


def puzzlemix(x, y, lam: float, perm, saliency, block_num: int, **params):
    """Mix a batch with its permutation; returns (x_mix, MixTarget with per-sample lam_i = 1 - mean(m_i)).

    saliency: [B, H, W] (e.g. :func:`frozen_bn_saliency`); params: PUZZLEMIX_DEFAULTS keys but block_nums.
    """
    out = mix_sources(x, x[perm], saliency, saliency[perm], lam, block_num, **params)
    return out.mixed, MixTarget.pair(y, perm, out.lam.to(x.device))

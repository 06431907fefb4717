"""ResizeMix (Qin et al., 2020): paste the whole partner image, shrunk into a box.

Per batch: tau ~ U(0.1, 0.8) (the paper's scope), one permutation, and one box of sides
tau * (H, W) around a uniformly drawn centre, clipped to the image as in CutMix (the
placement of the reference code; the paper only says "a random region"). The partner
is resized into the clipped box, so it is always whole; lam = 1 - box area / image area.
Resizing is nearest-neighbour, the reference default (``interpolation`` changes it).

``tau_dist="beta"`` is the CIFAR configs' option (the reference's ``use_alpha``):
tau ~ Beta(alpha, alpha), redrawn uniformly from the scope when it falls outside it.
With alpha = 1, the CIFAR value, tau is uniform on the scope either way.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..errors import InvalidParameterError
from .base import MixTarget, check_alpha, sample_beta, sample_perm
from .cutmix import Box, box_lam, paste, random_box

TAU_DISTS = ("uniform", "beta")
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


def sample_tau(scope: Sequence[float], generator: torch.Generator, tau_dist: str = "uniform",
               alpha: float = 1.0) -> float:
    """The box scale tau: uniform on ``scope``, or Beta(alpha, alpha) kept only when inside ``scope``."""
    low, high = scope
    if tau_dist == "beta":
        tau = sample_beta(alpha, generator)
        if low <= tau <= high:
            return tau
    return low + (high - low) * float(torch.rand(1, generator=generator, dtype=torch.float64))


def resizemix(x: torch.Tensor, y: torch.Tensor, tau: float, perm: torch.Tensor, box: Box | None = None,
              generator: torch.Generator | None = None,
              interpolation: str = "nearest") -> tuple[torch.Tensor, MixTarget]:
    """Resize ``x[perm]`` into ``box`` of ``x`` (a box of scale ``tau`` is drawn when None); lam from the box."""
    height, width = x.shape[-2:]
    if box is None:
        box = random_box(tau, height, width, generator)
    if box.area == 0:
        return x.clone(), MixTarget.pair(y, perm, 1.0)
    patch = F.interpolate(x[perm], size=(box.bottom - box.top, box.right - box.left), mode=interpolation)
    return paste(x, patch, box), MixTarget.pair(y, perm, box_lam(box, height, width))


def _check_scope(scope) -> tuple[float, float]:
    ok = (isinstance(scope, (list, tuple)) and len(scope) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scope)
          and 0 < scope[0] <= scope[1] <= 1)
    if not ok:
        raise InvalidParameterError("scope", scope, "two numbers (low, high) with 0 < low <= high <= 1")
    return float(scope[0]), float(scope[1])


class ResizeMix:
    """ResizeMix with tau ~ U(scope); alpha (CIFAR value 1) matters only with ``tau_dist="beta"``.

    ``__call__(x, y, generator)`` draws tau, the permutation, then the box centre.
    """

    def __init__(self, alpha: float = 1.0, scope: Sequence[float] = (0.1, 0.8), tau_dist: str = "uniform",
                 interpolation: str = "nearest"):
        self.alpha = check_alpha(alpha)
        self.scope = _check_scope(scope)
        if tau_dist not in TAU_DISTS:
            raise InvalidParameterError("tau_dist", tau_dist, " or ".join(TAU_DISTS))
        if interpolation not in INTERPOLATIONS:
            raise InvalidParameterError("interpolation", interpolation, ", ".join(INTERPOLATIONS))
        self.tau_dist, self.interpolation = tau_dist, interpolation

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        tau = sample_tau(self.scope, generator, self.tau_dist, self.alpha)
        perm = sample_perm(len(x), generator, x.device)
        return resizemix(x, y, tau, perm, generator=generator, interpolation=self.interpolation)

    def __repr__(self) -> str:
        return (f"ResizeMix(alpha={self.alpha}, scope={list(self.scope)}, tau_dist={self.tau_dist!r}, "
                f"interpolation={self.interpolation!r})")

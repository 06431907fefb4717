"""What every mixer returns, and the random draws they share.

Conventions (all mixers, static and learned):

- images are float tensors in [0, 1] pixel space, shape [B, C, H, W]; the model
  normalises internally, so mixing in pixel space equals mixing normalised
  inputs for every linear mixer;
- ``lam`` is the weight of the batch as given (source a = x), ``1 - lam`` the
  weight of its permuted partner (source b = x[perm]);
- randomness comes from an explicit ``torch.Generator`` (CPU) so runs are
  seeded, resumable and identical on CPU and CUDA.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from scipy.special import betaincinv

from ..errors import InvalidParameterError


@dataclass
class MixTarget:
    """Targets of a mixed batch: K sources per sample.

    labels  [B, K] int64   class of each source
    weights [B, K] float   weight of each source; each row sums to 1
    """

    labels: torch.Tensor
    weights: torch.Tensor

    @classmethod
    def clean(cls, y: torch.Tensor) -> "MixTarget":
        return cls(y[:, None], torch.ones(len(y), 1, device=y.device))

    @classmethod
    def pair(cls, y: torch.Tensor, perm: torch.Tensor, lam) -> "MixTarget":
        """Two-source target: weight ``lam`` on y, ``1 - lam`` on y[perm]; lam is a float or a [B] tensor."""
        lam = torch.as_tensor(lam, dtype=torch.float32, device=y.device).expand(len(y))
        return cls(torch.stack([y, y[perm]], 1), torch.stack([lam, 1 - lam], 1))

    @property
    def num_sources(self) -> int:
        return self.labels.shape[1]

    def soft(self, num_classes: int) -> torch.Tensor:
        """Soft label matrix [B, num_classes]; equal labels of two sources add up."""
        out = torch.zeros(len(self.labels), num_classes, device=self.weights.device, dtype=self.weights.dtype)
        return out.scatter_add_(1, self.labels, self.weights)

    def to(self, device) -> "MixTarget":
        return MixTarget(self.labels.to(device), self.weights.to(device))


def check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not (isinstance(alpha, (int, float)) and alpha > 0):
        raise InvalidParameterError("alpha", alpha, "a positive number (Beta(alpha, alpha) concentration)")
    return float(alpha)


def sample_beta(alpha: float, generator: torch.Generator | None = None, size: int | None = None):
    """Draw lam ~ Beta(alpha, alpha) by inverse CDF of a uniform from ``generator``.

    Returns a Python float when ``size`` is None, else a float32 CPU tensor of that size.
    Inverse-CDF sampling lets one seeded ``torch.Generator`` drive every draw.
    """
    alpha = check_alpha(alpha)
    u = torch.rand(1 if size is None else size, generator=generator, dtype=torch.float64)
    lam = torch.from_numpy(betaincinv(alpha, alpha, u.numpy()))
    return float(lam[0]) if size is None else lam.float()


def sample_perm(batch_size: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """A random permutation drawn on the CPU generator, moved to ``device``."""
    return torch.randperm(batch_size, generator=generator).to(device)


class PairMixer(ABC):
    """A static mixer of one Beta(alpha, alpha) lam and one permutation per batch.

    Subclasses set ``alpha`` in ``__init__`` and implement ``mix(x, y, lam, perm, generator)``;
    ``__call__(x, y, generator)`` draws lam, then the permutation, then whatever ``mix`` draws.
    """

    alpha: float

    @abstractmethod
    def mix(self, x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor, generator):
        """The mixed batch and its MixTarget for these draws."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None):
        lam = sample_beta(self.alpha, generator)
        perm = sample_perm(len(x), generator, x.device)
        return self.mix(x, y, lam, perm, generator)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"

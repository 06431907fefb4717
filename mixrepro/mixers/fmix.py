"""FMix (Harris et al., 2020): a binary mask cut from a random low-frequency Fourier image.

Per batch (book/protocol_notes.md, "Static mixers"): lam ~ Beta(alpha, alpha), one permutation and one
mask. The grey image is the inverse FFT of complex Gaussian noise whose amplitude
at frequency f is 1 / max(f, 1 / max(H, W)) ** decay_power (decay power 3); the mask
is 1 on exactly round(lam * H * W) of its largest pixels (ties broken by pixel index)
and 0 elsewhere; ``x_mix = mask * x + (1 - mask) * x[perm]``.

Label: the FMix code weighs y by the sampled lam (``label_lam="sampled"``, default);
``label_lam="mask"`` uses the mask's mean instead, round(lam * H * W) / (H * W),
which differs from lam by at most 1 / (2 H W).
"""
from __future__ import annotations

import torch

from ..errors import InvalidParameterError
from .base import MixTarget, check_alpha, sample_beta, sample_perm

LABEL_LAMS = ("sampled", "mask")


def low_frequency_image(height: int, width: int, decay_power: float, generator: torch.Generator) -> torch.Tensor:
    """[H, W] float64 real image with a 1 / f^decay_power amplitude spectrum (random phases), on the CPU."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    freq = (fx ** 2 + fy ** 2).sqrt()
    amplitude = 1.0 / freq.clamp(min=1.0 / max(height, width)) ** decay_power
    noise = torch.randn(2, *freq.shape, generator=generator, dtype=torch.float64)
    return torch.fft.irfft2(torch.complex(noise[0], noise[1]) * amplitude, s=(height, width))


def binarise(image: torch.Tensor, lam: float) -> torch.Tensor:
    """1 on the round(lam * N) largest pixels of ``image`` (ties: lower index first), 0 elsewhere."""
    flat = image.flatten()
    keep = round(lam * flat.numel())
    order = torch.sort(flat, descending=True, stable=True).indices
    mask = torch.zeros_like(flat)
    mask[order[:keep]] = 1.0
    return mask.view_as(image)


def fmix_mask(lam: float, height: int, width: int, generator: torch.Generator,
              decay_power: float = 3.0) -> torch.Tensor:
    """An [H, W] float32 binary mask with mean round(lam * H * W) / (H * W), drawn on the CPU."""
    return binarise(low_frequency_image(height, width, decay_power, generator), lam).float()


def fmix(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor, mask: torch.Tensor | None = None,
         generator: torch.Generator | None = None, decay_power: float = 3.0,
         label_lam: str = "sampled") -> tuple[torch.Tensor, MixTarget]:
    """Keep ``x`` where ``mask`` is 1 and take ``x[perm]`` elsewhere; a mask for ``lam`` is drawn when None."""
    if label_lam not in LABEL_LAMS:
        raise InvalidParameterError("label_lam", label_lam, " or ".join(LABEL_LAMS))
    if mask is None:
        if generator is None:
            raise InvalidParameterError("generator", None, "a torch.Generator (or pass mask=)")
        mask = fmix_mask(lam, *x.shape[-2:], generator, decay_power)
    mask = mask.to(device=x.device, dtype=x.dtype)
    x_mix = mask * x + (1 - mask) * x[perm]
    weight = lam if label_lam == "sampled" else float(mask.sum()) / mask.numel()
    return x_mix, MixTarget.pair(y, perm, weight)


class FMix:
    """FMix with lam ~ Beta(alpha, alpha); the paper's CIFAR alpha is 0.2, decay power 3.

    ``__call__(x, y, generator)`` draws lam, the permutation, then the mask's noise.
    """

    def __init__(self, alpha: float = 0.2, decay_power: float = 3.0, label_lam: str = "sampled"):
        self.alpha = check_alpha(alpha)
        if not (isinstance(decay_power, (int, float)) and not isinstance(decay_power, bool) and decay_power > 0):
            raise InvalidParameterError("decay_power", decay_power, "a positive number")
        if label_lam not in LABEL_LAMS:
            raise InvalidParameterError("label_lam", label_lam, " or ".join(LABEL_LAMS))
        self.decay_power = float(decay_power)
        self.label_lam = label_lam

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        lam = sample_beta(self.alpha, generator)
        perm = sample_perm(len(x), generator, x.device)
        mask = fmix_mask(lam, *x.shape[-2:], generator, self.decay_power)
        return fmix(x, y, lam, perm, mask, label_lam=self.label_lam)

    def __repr__(self) -> str:
        return f"FMix(alpha={self.alpha}, decay_power={self.decay_power}, label_lam={self.label_lam!r})"

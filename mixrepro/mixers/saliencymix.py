"""SaliencyMix (Uddin et al., ICLR 2021): a CutMix box centred on the partner's saliency peak.

Per batch: lam ~ Beta(alpha, alpha) and one permutation; the fine-grained static
saliency map (Montabone & Soto, 2010) of ONE image, ``x[perm[0]]`` (the partner of
sample 0, the image whose patch sample 0 receives, as in the SaliencyMix code), gives
the box centre at its maximum (first maximum in row-major order, as ``np.argmax``);
the box has CutMix's size for lam and is the same for the whole batch; the label
weight is recomputed from the clipped box (book/protocol_notes.md, "SaliencyMix").

``fine_grained_saliency`` is our batched torch implementation of OpenCV's
``cv2.saliency.StaticSaliencyFineGrained`` on 8-bit images, step by step:

1. 8-bit grey level: OpenCV's fixed-point luma, (9798 R + 19235 G + 3735 B + 2^14) >> 15;
2. two 3x3 Gaussian blurs (kernel [1, 2, 1] / 4 each way, reflect-101 border, rounded half up);
3. for each of six neighbourhoods n in (12, 24, 48, 28, 56, 112): the mean of the rows
   y-n+1 .. y+n and columns x-n+1 .. x+n (clipped) without the centre pixel (float32),
   "on" = trunc(grey - mean) where positive, "off" = trunc(mean - grey) where positive;
4. on and off summed over the scales, each scaled to 0..255 by its maximum (truncating);
5. saliency = trunc(255 * (on + off) / max(max on, max off)) in 8 bits; a value above 255
   would wrap modulo 256, as OpenCV's unchecked ``(uchar)`` cast does on x86-64 (we found
   no image where it happens among ~700 random and structured images of 7 to 224 px).

Because the on and off maps are scaled to 255 separately, the peak of the "off" map (a pixel
darker than its surround, however faintly) ties with the peak of the "on" map; ties go to the
first pixel in row-major order, as ``np.argmax`` in the reference.

Bit-exact against ``cv2.saliency.StaticSaliencyFineGrained`` (opencv-contrib 5.0) on every
image we tried (tests/test_mixers.py runs the comparison when ``cv2.saliency`` is importable).

Our images are RGB, so step 1 weighs R by 0.299; OpenCV's ``COLOR_BGR2GRAY`` expects BGR.

Reference-code note: the SaliencyMix/OpenMixup code hands OpenCV the *normalised float32*
tensor (HWC). OpenCV's algorithm reads its grey image as 8-bit values, so on float input
it reads the bytes of the floats, and the "saliency" is unrelated to the image. Measured
on 1,000 CIFAR-10 test images (JPEG copy, opencv-contrib 5.0): the reference call's peak
equalled the 8-bit image's peak in 0 of 1,000 images, lay 15.3 px from it on average (a
uniformly random pixel: 15.9 px), the two maps correlate at 0.00, and the reference peak
never falls in columns 3, 7, 11, ... (the byte layout of float32). We compute the saliency
of the 8-bit image (pixels in [0, 1] times 255, rounded), which is what the method intends.
"""
from __future__ import annotations

import math

import torch

from ..errors import InvalidParameterError
from .base import MixTarget, PairMixer, check_alpha
from .cutmix import box_around, cutmix

NEIGHBOURHOODS = (12, 24, 48, 28, 56, 112)  # OpenCV: 3*4, 3*4*2, 3*4*2*2, 7*4, 7*4*2, 7*4*2*2


def gray_levels(images: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] images in [0, 1] (C = 3 RGB or 1) -> int64 [B, H, W] 8-bit grey levels."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise InvalidParameterError("images", tuple(images.shape), "a [B, 3, H, W] (RGB) or [B, 1, H, W] batch")
    levels = (images.detach().clamp(0, 1) * 255).round().long()
    if images.shape[1] == 1:
        return levels[:, 0]
    r, g, b = levels.unbind(1)
    return (9798 * r + 19235 * g + 3735 * b + (1 << 14)) >> 15


def _smooth_121(gray: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum with weights (1, 2, 1) along ``dim``, borders reflected without repeating the edge."""
    n = gray.shape[dim]
    index = torch.tensor([min(1, n - 1), *range(n), max(n - 2, 0)], device=gray.device)
    padded = gray.index_select(dim, index)
    return padded.narrow(dim, 0, n) + 2 * padded.narrow(dim, 1, n) + padded.narrow(dim, 2, n)


def gaussian_blur_3x3(gray: torch.Tensor) -> torch.Tensor:
    """OpenCV's 8-bit ``GaussianBlur(ksize=3, sigma=0)``: exact integer arithmetic, rounded half up."""
    return (_smooth_121(_smooth_121(gray, -2), -1) + 8) // 16


def _clipped_corners(size: int, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.arange(size, device=device)
    return (i - n + 1).clamp(0, size), (i + n + 1).clamp(0, size)


def centre_surround(gray: torch.Tensor, integral: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """On/off contrast of each pixel against its neighbourhood ``n`` (centre left out), truncated to integers."""
    height, width = gray.shape[-2:]
    y1, y2 = _clipped_corners(height, n, gray.device)
    x1, x2 = _clipped_corners(width, n, gray.device)
    rows2, rows1 = integral[:, y2], integral[:, y1]
    box_sum = rows2[:, :, x2] + rows1[:, :, x1] - rows2[:, :, x1] - rows1[:, :, x2]
    others = (y2 - y1)[:, None] * (x2 - x1)[None, :] - 1
    mean = (box_sum - gray).float() / others.float()  # float32, as OpenCV computes it
    contrast = gray.float() - mean
    on = torch.where(contrast > 0, contrast.trunc(), 0).long()
    off = torch.where(-contrast > 0, (-contrast).trunc(), 0).long()
    return on, off


def _scale_to_255(total: torch.Tensor) -> torch.Tensor:
    """trunc(255 * (total / max)) per image, the ratio in float32 as OpenCV; 0 where the max is 0."""
    peak = total.amax(dim=(-2, -1), keepdim=True)
    ratio = total.float() / peak.float().clamp(min=1)
    return (255.0 * ratio.double()).trunc().long()


def fine_grained_saliency(images: torch.Tensor) -> torch.Tensor:
    """Fine-grained static saliency of each image: uint8 [B, H, W] (see the module docstring)."""
    gray = gaussian_blur_3x3(gaussian_blur_3x3(gray_levels(images)))
    integral = torch.nn.functional.pad(gray.cumsum(-2).cumsum(-1), (1, 0, 1, 0))
    on_total, off_total = torch.zeros_like(gray), torch.zeros_like(gray)
    for n in NEIGHBOURHOODS:
        on, off = centre_surround(gray, integral, n)
        on_total += on
        off_total += off
    on, off = _scale_to_255(on_total), _scale_to_255(off_total)
    peak = torch.maximum(on.amax(dim=(-2, -1), keepdim=True), off.amax(dim=(-2, -1), keepdim=True))
    saliency = (255.0 * (on + off).double() / peak.double().clamp(min=1)).trunc().long()
    return (saliency % 256).to(torch.uint8)


def saliency_peak(image: torch.Tensor) -> tuple[int, int]:
    """(row, column) of the first maximum, in row-major order, of one [C, H, W] image's saliency."""
    saliency = fine_grained_saliency(image[None])[0]
    row, col = divmod(int(saliency.flatten().long().argmax()), saliency.shape[1])
    return row, col


def saliencymix(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor) -> tuple[torch.Tensor, MixTarget]:
    """CutMix with the box for ``lam`` centred on the saliency peak of ``x[perm[0]]``, for the whole batch."""
    cy, cx = saliency_peak(x[perm[0]])
    height, width = x.shape[-2:]
    return cutmix(x, y, lam, perm, box=box_around(cy, cx, math.sqrt(1.0 - lam), height, width))


class SaliencyMix(PairMixer):
    """SaliencyMix with lam ~ Beta(alpha, alpha); the paper's CIFAR alpha is 0.2.

    ``__call__(x, y, generator)`` draws lam, then the permutation.
    """

    def __init__(self, alpha: float = 0.2):
        self.alpha = check_alpha(alpha)

    def mix(self, x, y, lam, perm, generator):
        return saliencymix(x, y, lam, perm)

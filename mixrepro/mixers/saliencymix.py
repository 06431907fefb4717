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
never falls in columns 3, 7, 11, ... (the byte layout of float32). By default we compute the
saliency of the 8-bit image (pixels in [0, 1] times 255, rounded), which is what the method
intends; ``saliency_input="reference-float"`` reproduces the reference call instead
(``reference_float_saliency``) so the protocol audit can measure what the bug costs.

What OpenCV does with a float32 image (found by reading its algorithm and confirmed bit for bit
against ``cv2.saliency`` on 200 random images and in tests/test_mixers.py): the grey conversion,
both blurs and the integral image run in float32 on the real values, but each pixel's own grey
level is read as ``uchar`` at column x of its row, i.e. byte x of the row's float32 buffer. The
box means therefore come from the image (values near 0 after normalisation) while the centre
value is a byte of the floats' bit pattern (0..255), so the contrast is almost only that byte; a
contrast above 255 wraps modulo 256 (the unchecked cast). The grey conversion of this OpenCV build
uses fused multiply-adds (green first), which we reproduce in float64 before rounding to float32.
"""
from __future__ import annotations

import math

import torch

from ..errors import InvalidParameterError
from ..validation import check_choice
from .base import MixTarget, PairMixer, check_alpha
from .cutmix import box_around, cutmix

NEIGHBOURHOODS = (12, 24, 48, 28, 56, 112)  # OpenCV: 3*4, 3*4*2, 3*4*2*2, 7*4, 7*4*2, 7*4*2*2
SALIENCY_INPUTS = {
    "image": "the 8-bit image, what the method intends (default)",
    "reference-float": "the normalised float32 tensor, as the reference code passes it to OpenCV",
}


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


def centre_surround(centre: torch.Tensor, integral: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """On/off contrast of each centre value against its neighbourhood ``n`` (centre left out).

    ``integral`` is exact (int64) for 8-bit images and float32 for the reference's float input;
    the box sum is taken in OpenCV's order, the mean in float32, the contrast truncated to an
    integer and wrapped modulo 256 (OpenCV's unchecked ``(uchar)`` cast; 8-bit input never wraps).
    """
    height, width = centre.shape[-2:]
    y1, y2 = _clipped_corners(height, n, centre.device)
    x1, x2 = _clipped_corners(width, n, centre.device)
    rows2, rows1 = integral[:, y2], integral[:, y1]
    box_sum = ((rows2[:, :, x2] + rows1[:, :, x1]) - rows2[:, :, x1]) - rows1[:, :, x2]
    others = (y2 - y1)[:, None] * (x2 - x1)[None, :] - 1
    mean = (box_sum.float() - centre.float()) / others.float()  # float32, as OpenCV computes it
    contrast = centre.float() - mean
    on = torch.where(contrast > 0, contrast.trunc(), 0).long() % 256
    off = torch.where(-contrast > 0, (-contrast).trunc(), 0).long() % 256
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
    return saliency_from_contrasts(gray, integral)


def saliency_from_contrasts(centre: torch.Tensor, integral: torch.Tensor) -> torch.Tensor:
    """Steps 3-5: centre-surround contrasts over the six neighbourhoods, scaled and combined."""
    on_total, off_total = torch.zeros_like(centre), torch.zeros_like(centre)
    for n in NEIGHBOURHOODS:
        on, off = centre_surround(centre, integral, n)
        on_total += on
        off_total += off
    on, off = _scale_to_255(on_total), _scale_to_255(off_total)
    peak = torch.maximum(on.amax(dim=(-2, -1), keepdim=True), off.amax(dim=(-2, -1), keepdim=True))
    saliency = (255.0 * (on + off).double() / peak.double().clamp(min=1)).trunc().long()
    return (saliency % 256).to(torch.uint8)


def _fused_multiply_add(a: torch.Tensor, weight: float, acc: torch.Tensor) -> torch.Tensor:
    """float32 ``fma(a, weight, acc)``: the product is exact in float64, one rounding at the end."""
    return (a.double() * weight + acc.double()).float()


def float_gray(images: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``COLOR_BGR2GRAY`` of float32 [B, 3, H, W]; channel 0 is read as blue, as the
    reference's RGB tensor is. float32 weights, fused multiply-adds in the order of OpenCV's SIMD path."""
    weights = torch.tensor([0.114, 0.587, 0.299], dtype=torch.float32).tolist()  # their float32 values
    first, second, third = images.float().unbind(1)
    acc = second * torch.tensor(weights[1], dtype=torch.float32)
    return _fused_multiply_add(third, weights[2], _fused_multiply_add(first, weights[0], acc))


def _float_smooth(values: torch.Tensor, dim: int) -> torch.Tensor:
    """0.5 * centre + 0.25 * (left + right) in float32 along ``dim``, reflect-101 border."""
    n = values.shape[dim]
    index = torch.tensor([min(1, n - 1), *range(n), max(n - 2, 0)], device=values.device)
    padded = values.index_select(dim, index)
    return padded.narrow(dim, 1, n) * 0.5 + (padded.narrow(dim, 0, n) + padded.narrow(dim, 2, n)) * 0.25


def float_integral(values: torch.Tensor) -> torch.Tensor:
    """OpenCV's float32 integral image [B, H+1, W+1]: each row's running sum, then rows added, in float32.

    Accumulated step by step because torch's cumsum adds float32 in float64, which rounds differently.
    """
    batch, height, width = values.shape
    row_sums = torch.zeros_like(values)
    running = torch.zeros(batch, height, dtype=values.dtype, device=values.device)
    for x in range(width):
        running = running + values[:, :, x]
        row_sums[:, :, x] = running
    integral = values.new_zeros(batch, height + 1, width + 1)
    for y in range(height):
        integral[:, y + 1, 1:] = integral[:, y, 1:] + row_sums[:, y]
    return integral


def reference_float_saliency(normalised: torch.Tensor) -> torch.Tensor:
    """What ``StaticSaliencyFineGrained`` returns for normalised float32 images [B, 3, H, W] (uint8 [B, H, W]).

    The reference code's call (module docstring): real float grey values for the box means, a byte
    of each row's float32 buffer as the centre value.
    """
    if normalised.dim() != 4 or normalised.shape[1] != 3:
        raise InvalidParameterError("images", tuple(normalised.shape), "a [B, 3, H, W] batch")
    gray = _float_smooth(_float_smooth(float_gray(normalised), -1), -2)
    gray = _float_smooth(_float_smooth(gray, -1), -2)
    batch, height, width = gray.shape
    row_bytes = gray.contiguous().view(torch.uint8).reshape(batch, height, 4 * width)  # little-endian float32
    return saliency_from_contrasts(row_bytes[..., :width].long(), float_integral(gray))


def first_peak(saliency: torch.Tensor) -> tuple[int, int]:
    """(row, column) of the first maximum of an [H, W] map in row-major order, as ``np.argmax``."""
    row, col = divmod(int(saliency.flatten().long().argmax()), saliency.shape[1])
    return row, col


def saliency_peak(image: torch.Tensor) -> tuple[int, int]:
    """(row, column) of the first maximum, in row-major order, of one [C, H, W] image's saliency."""
    return first_peak(fine_grained_saliency(image[None])[0])


def saliencymix(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor,
                peak: tuple[int, int] | None = None) -> tuple[torch.Tensor, MixTarget]:
    """CutMix with the box for ``lam`` centred on ``peak``, for the whole batch; by default the
    saliency peak of ``x[perm[0]]``."""
    cy, cx = peak if peak is not None else saliency_peak(x[perm[0]])
    height, width = x.shape[-2:]
    return cutmix(x, y, lam, perm, box=box_around(cy, cx, math.sqrt(1.0 - lam), height, width))


class SaliencyMix(PairMixer):
    """SaliencyMix with lam ~ Beta(alpha, alpha); the paper's CIFAR alpha is 0.2.

    ``saliency_input``: a key of ``SALIENCY_INPUTS``. "reference-float" needs the model's input
    normalisation (``normalize``, set by the SaliencyMix method), since the reference hands OpenCV
    the normalised tensor. ``__call__(x, y, generator)`` draws lam, then the permutation.
    """

    def __init__(self, alpha: float = 0.2, saliency_input: str = "image"):
        self.alpha = check_alpha(alpha)
        check_choice("saliency_input", saliency_input, SALIENCY_INPUTS)
        self.saliency_input = saliency_input
        self.normalize = None  # callable [B, C, H, W] -> normalised; needed by "reference-float"

    def peak(self, partner: torch.Tensor) -> tuple[int, int]:
        """The box centre for one partner image [C, H, W]."""
        if self.saliency_input == "image":
            return saliency_peak(partner)
        if self.normalize is None:
            raise InvalidParameterError("saliency_input", self.saliency_input,
                                        "'image', or 'reference-float' with the model's normalisation set "
                                        "(SaliencyMix.normalize; the saliencymix method sets it)")
        with torch.no_grad():
            return first_peak(reference_float_saliency(self.normalize(partner[None]))[0])

    def mix(self, x, y, lam, perm, generator):
        return saliencymix(x, y, lam, perm, peak=self.peak(x[perm[0]]))

"""Accuracy under common corruptions (CIFAR-10-C / CIFAR-100-C; book/protocol_notes.md, "Data").

Two sources, always named in the result:

- the official arrays (Hendrycks & Dietterich, ICLR 2019), read through
  ``mixrepro.data.load_cifar_c`` when they are on disk;
- otherwise corruptions regenerated here, in torch (plus Pillow for JPEG and
  pixelate), labelled "regenerated, not the official CIFAR-C files".

The regenerated subset is the corruptions whose recipe needs no external assets
or ImageMagick: gaussian_noise, shot_noise, impulse_noise, defocus_blur,
fog, brightness, contrast, pixelate, jpeg_compression (9 of the 15 standard
ones) and speckle_noise, gaussian_blur, saturate (3 of the 4 extra ones). Left
out: glass, motion and zoom blur, snow, frost, elastic, spatter (motion blur and
snow need ImageMagick's motion blur, frost needs the frost photographs; the others
are feasible but not done yet). The severity
parameters below are those of ``make_cifar_c.py`` in github.com/hendrycks/robustness
(ImageNet-C/create_c/make_cifar_c.py, read for this table); the operations are
written from their definitions. Like that script, values are computed in float64 on
[0, 1], clipped, scaled by 255 and truncated to uint8. Differences that remain: our
random numbers differ (torch, seeded per corruption and severity), and the clean
images here may differ from the official test set (e.g. the CIFAR-10 JPEG q75 copy).
"""
from __future__ import annotations

import io
import statistics
import zlib
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DatasetMissingError, InvalidParameterError
from ..registry import Registry
from .accuracy import array_batches, check_batch_size, evaluate_topk, model_device

REGENERATED_LABEL = "regenerated, not the official CIFAR-C files"
SEVERITIES = (1, 2, 3, 4, 5)
CHUNK = 1000  # images corrupted at once; fixed so results do not depend on the eval batch size

# name -> parameter of severities 1..5 (make_cifar_c.py, CIFAR values)
SEVERITY_PARAMS: dict[str, list] = {
    "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],  # std of additive noise
    "shot_noise": [500, 250, 100, 75, 50],  # photons per unit intensity (Poisson rate scale)
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],  # fraction of values set to 0 or 1
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],  # (disk radius, alias sigma)
    "fog": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],  # (fog strength, plasma wibble decay)
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],  # factor on the deviation from the channel mean
    "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],  # added to HSV value
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],  # box-downscale factor
    "jpeg_compression": [80, 65, 58, 50, 40],  # JPEG quality
    "speckle_noise": [0.06, 0.1, 0.12, 0.16, 0.2],  # std of multiplicative noise
    "gaussian_blur": [0.4, 0.6, 0.7, 0.8, 1.0],  # sigma in pixels
    "saturate": [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],  # HSV saturation * a + b
}
STANDARD = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "fog", "brightness", "contrast",
            "pixelate", "jpeg_compression")
EXTRA = ("speckle_noise", "gaussian_blur", "saturate")

CORRUPTIONS: Registry[Callable] = Registry("corruption")


# ---------------------------------------------------------------- helpers


def _noise(shape, generator, device, kind: str = "normal") -> torch.Tensor:
    """Draw on the CPU generator (same bits on every device), then move."""
    draw = torch.randn if kind == "normal" else torch.rand
    return draw(shape, generator=generator, dtype=torch.float64).to(device)


def _filter(x: torch.Tensor, kernel: torch.Tensor, pad_mode: str) -> torch.Tensor:
    """Correlate each channel of x [N, C, H, W] with a 2-D kernel, padding by ``pad_mode``."""
    # A sum of shifted copies over the non-zero taps: float64 depthwise conv2d is a
    # slow path on CPU, and the defocus disks are mostly zeros.
    kh, kw = kernel.shape
    h, w = x.shape[-2:]
    padded = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode=pad_mode)
    out = torch.zeros_like(x)
    for i, j in kernel.nonzero().tolist():
        out += kernel[i, j].item() * padded[..., i : i + h, j : j + w]
    return out


def gaussian_kernel_1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage's Gaussian: radius int(truncate * sigma + 0.5), normalised to sum 1."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def disk_kernel(radius: float, alias_sigma: float) -> torch.Tensor:
    """Normalised aliased disk on a 17x17 grid (radius <= 8), antialiased by a 3-tap Gaussian."""
    t = torch.arange(-8, 9, dtype=torch.float64)
    disk = ((t[:, None] ** 2 + t[None, :] ** 2) <= radius**2).double()
    disk /= disk.sum()
    g = torch.exp(-(torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64) ** 2) / (2 * alias_sigma**2))
    g /= g.sum()
    # the disk is zero near its border for radius <= 8, so the border rule is irrelevant here
    return _filter(disk[None, None], g[:, None] * g[None, :], "reflect")[0, 0]


def plasma_fractal(n: int, size: int, wibble_decay: float, generator: torch.Generator) -> torch.Tensor:
    """Diamond-square height maps in [0, 1], float64 [n, size, size] (size a power of two).

    As in make_cifar_c.py: corner 0, displacement ``wibble * U(-wibble, wibble)`` with
    wibble starting at 100 and divided by ``wibble_decay`` per level, wrap-around
    neighbours, then each map rescaled to [0, 1].
    """
    if size & (size - 1):
        raise InvalidParameterError("size", size, "a power of two")
    maps = torch.zeros(n, size, size, dtype=torch.float64)
    step, wibble = size, 100.0

    def wibbled_mean(total):
        u = torch.rand(total.shape, generator=generator, dtype=torch.float64) * 2 - 1
        return total / 4 + wibble * wibble * u

    while step >= 2:
        half = step // 2
        corners = maps[:, ::step, ::step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        maps[:, half::step, half::step] = wibbled_mean(squares)
        centres, corners = maps[:, half::step, half::step], maps[:, ::step, ::step]
        left = centres + centres.roll(1, 1) + corners + corners.roll(-1, 2)
        maps[:, ::step, half::step] = wibbled_mean(left)
        top = centres + centres.roll(1, 2) + corners + corners.roll(-1, 1)
        maps[:, half::step, ::step] = wibbled_mean(top)
        step, wibble = half, wibble / wibble_decay
    maps -= maps.amin((1, 2), keepdim=True)
    return maps / maps.amax((1, 2), keepdim=True)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] RGB in [0, 1] -> HSV with hue in [0, 1) (the skimage / matplotlib convention)."""
    r, g, b = x.unbind(1)
    v, _ = x.max(1)
    delta = v - x.min(1).values
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = torch.where(v > 0, delta / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    h = torch.where(r == v, (g - b) / safe, torch.where(g == v, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = torch.where(delta > 0, (h / 6) % 1, torch.zeros_like(h))
    return torch.stack([h, s, v], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    sector = torch.floor(h * 6)
    f = h * 6 - sector
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    sector = sector.long() % 6
    table = torch.stack([  # rows: sector 0..5; columns: r, g, b
        torch.stack([v, t, p]), torch.stack([q, v, p]), torch.stack([p, v, t]),
        torch.stack([p, q, v]), torch.stack([t, p, v]), torch.stack([v, p, q]),
    ])  # [6, 3, N, H, W]
    index = sector[None, None].expand(1, 3, *sector.shape)
    return table.gather(0, index)[0].permute(1, 0, 2, 3)


# ---------------------------------------------------------------- corruptions
# Float corruptions take x float64 [N, 3, H, W] in [0, 1] and return values that
# are clipped and quantised by `corrupt`; Pillow ones take and return uint8 NHWC.


@CORRUPTIONS.register("gaussian_noise")
def gaussian_noise(x, c, generator):
    return x + c * _noise(x.shape, generator, x.device)


@CORRUPTIONS.register("shot_noise")
def shot_noise(x, c, generator):
    return torch.poisson(x.cpu() * c, generator=generator).to(x.device) / c


@CORRUPTIONS.register("impulse_noise")
def impulse_noise(x, c, generator):
    flipped = _noise(x.shape, generator, x.device, "uniform") <= c
    salt = _noise(x.shape, generator, x.device, "uniform") <= 0.5  # salt vs pepper 1:1
    return torch.where(flipped, salt.double(), x)


@CORRUPTIONS.register("speckle_noise")
def speckle_noise(x, c, generator):
    return x + x * c * _noise(x.shape, generator, x.device)


@CORRUPTIONS.register("gaussian_blur")
def gaussian_blur(x, sigma, generator):
    k = gaussian_kernel_1d(sigma)
    return _filter(_filter(x, k[None, :], "replicate"), k[:, None], "replicate")  # skimage mode='nearest'


@CORRUPTIONS.register("defocus_blur")
def defocus_blur(x, c, generator):
    return _filter(x, disk_kernel(*c), "reflect")  # OpenCV filter2D's default border is reflect-101


@CORRUPTIONS.register("fog")
def fog(x, c, generator):
    strength, decay = c
    size = 1 << (max(x.shape[-2:]) - 1).bit_length()  # the 32 px map of the reference, cropped
    fog_map = plasma_fractal(len(x), size, decay, generator)[:, None, : x.shape[-2], : x.shape[-1]].to(x.device)
    max_val = x.amax((1, 2, 3), keepdim=True)
    return (x + strength * fog_map) * max_val / (max_val + strength)


@CORRUPTIONS.register("contrast")
def contrast(x, c, generator):
    means = x.mean((2, 3), keepdim=True)
    return (x - means) * c + means


@CORRUPTIONS.register("brightness")
def brightness(x, c, generator):
    hsv = rgb_to_hsv(x)
    hsv[:, 2] = (hsv[:, 2] + c).clamp(0, 1)
    return hsv_to_rgb(hsv)


@CORRUPTIONS.register("saturate")
def saturate(x, c, generator):
    hsv = rgb_to_hsv(x)
    hsv[:, 1] = (hsv[:, 1] * c[0] + c[1]).clamp(0, 1)
    return hsv_to_rgb(hsv)


def _per_image_pil(images: torch.Tensor, transform) -> torch.Tensor:
    from PIL import Image

    out = [np.asarray(transform(Image.fromarray(img))) for img in images.cpu().numpy()]
    return torch.from_numpy(np.stack(out)).to(images.device)


def _jpeg(image, quality: int):
    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).convert("RGB")


def _pixelate(image, factor: float):
    from PIL import Image

    w, h = image.size
    small = image.resize((int(w * factor), int(h * factor)), Image.BOX)
    return small.resize((w, h), Image.BOX)


@CORRUPTIONS.register("jpeg_compression")
def jpeg_compression(images_uint8, quality, generator):
    return _per_image_pil(images_uint8, lambda im: _jpeg(im, quality))


@CORRUPTIONS.register("pixelate")
def pixelate(images_uint8, factor, generator):
    return _per_image_pil(images_uint8, lambda im: _pixelate(im, factor))


PIL_CORRUPTIONS = {"jpeg_compression", "pixelate"}


# ---------------------------------------------------------------- driver


def _check_severity(severity) -> int:
    if severity not in SEVERITIES:
        raise InvalidParameterError("severity", severity, "an integer 1..5")
    return severity


def corruption_seed(seed: int, name: str, severity: int) -> int:
    """Seed of one (corruption, severity) set: independent of which other sets are computed."""
    return zlib.crc32(f"{seed}/{name}/{severity}".encode())


def corrupt(images: torch.Tensor, name: str, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Corrupt uint8 [N, H, W, 3] images; returns uint8 of the same shape, on the same device."""
    fn = CORRUPTIONS.get(name)
    c = SEVERITY_PARAMS[name][_check_severity(severity) - 1]
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise InvalidParameterError("images", (images.dtype, tuple(images.shape)), "uint8 [N, H, W, 3]")
    if name in PIL_CORRUPTIONS:
        return fn(images, c, generator)
    out = []
    for chunk in images.split(CHUNK):
        x = chunk.permute(0, 3, 1, 2).double() / 255
        y = fn(x, c, generator).clamp(0, 1) * 255
        out.append(y.floor().to(torch.uint8).permute(0, 2, 3, 1))  # truncation, as np.uint8 does
    return torch.cat(out)


def _summarise(table: dict[str, dict[str, float]], source: str, notes: list[str]) -> dict:
    severities = sorted({s for row in table.values() for s in row})
    return {
        "source": source,
        "top1": table,
        "mean_per_corruption": {name: statistics.fmean(row.values()) for name, row in table.items()},
        "mean_per_severity": {s: statistics.fmean(row[s] for row in table.values()) for s in severities},
        "mean": statistics.fmean(v for row in table.values() for v in row.values()),
        "corruptions": list(table),
        "notes": notes,
    }


def _check_names(names, known) -> list[str]:
    names = list(known if names is None else names)
    for name in names:
        if name not in known:
            raise InvalidParameterError("corruption", name, f"one of {sorted(known)}")
    return names


def regenerated_corruption_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES, seed: int = 0, batch_size: int = 500, device=None,
) -> dict:
    """Top-1 (%) per corruption and severity on corruptions regenerated from ``images`` (uint8 NHWC)."""
    names = _check_names(corruptions, STANDARD + EXTRA)
    device = model_device(model) if device is None else device
    check_batch_size(batch_size)
    table: dict[str, dict[str, float]] = {}
    for name in names:
        table[name] = {}
        for severity in severities:
            generator = torch.Generator().manual_seed(corruption_seed(seed, name, severity))
            corrupted = corrupt(images.cpu(), name, severity, generator)
            batches = array_batches(corrupted, labels, batch_size, device)
            table[name][str(severity)] = evaluate_topk(model, batches, ks=(1,))["top1"]
    notes = [f"seed {seed}; {len(images)} clean images as given (not necessarily the official test set)"]
    result = _summarise(table, REGENERATED_LABEL, notes)
    result["clean_top1"] = evaluate_topk(model, array_batches(images, labels, batch_size, device), ks=(1,))["top1"]
    return result


def official_corruption_accuracy(
    model: nn.Module, corruption_set, *, corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES, batch_size: int = 500, device=None, source_name: str = "CIFAR-C",
) -> dict:
    """Top-1 (%) per corruption and severity on the official arrays (a ``CorruptionSet``)."""
    names = _check_names(corruptions, list(corruption_set.corruptions))
    device = model_device(model) if device is None else device
    labels_all = torch.as_tensor(corruption_set.labels).long()
    table: dict[str, dict[str, float]] = {}
    for name in names:
        table[name] = {}
        for severity in severities:
            images = torch.as_tensor(corruption_set.images(name, _check_severity(severity)))
            labels = labels_all
            if len(labels_all) != len(images):  # labels.npy covers all 5 severities back to back
                labels = labels_all[(severity - 1) * len(images) : severity * len(images)]
            batches = array_batches(images, labels, batch_size, device)
            table[name][str(severity)] = evaluate_topk(model, batches, ks=(1,))["top1"]
    return _summarise(table, f"official {source_name} files", [])


def corruption_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, dataset: str | None = None,
    root=None, source: str = "auto", corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES, seed: int = 0, batch_size: int = 500, device=None,
) -> dict:
    """Corruption accuracy from the official files when there are any, else regenerated.

    ``source``: 'official' (the files must exist), 'regenerated', or 'auto' (official
    when ``dataset`` names a CIFAR-C set present under ``root``, else regenerated; the
    result's ``source`` field says which, and ``notes`` why).
    """
    if source not in ("auto", "official", "regenerated"):
        raise InvalidParameterError("source", source, "'auto', 'official' or 'regenerated'")
    notes = []
    if source != "regenerated" and dataset is not None:
        from ..data import load_cifar_c

        try:
            cset = load_cifar_c(dataset, root=root)
        except DatasetMissingError as err:
            if source == "official":
                raise
            notes.append(f"official files absent, regenerated instead: {err}")
        else:
            return official_corruption_accuracy(
                model, cset, corruptions=corruptions, severities=severities,
                batch_size=batch_size, device=device, source_name=dataset,
            )
    elif source == "official":
        raise InvalidParameterError("dataset", dataset, "a CIFAR-C dataset name when source='official'")
    result = regenerated_corruption_accuracy(
        model, images, labels, corruptions=corruptions, severities=severities,
        seed=seed, batch_size=batch_size, device=device,
    )
    result["notes"] += notes
    return result

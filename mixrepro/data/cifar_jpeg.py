"""The JPEG (quality 75) copy of CIFAR-10 available on the project's machines.

Layout: one gzip-compressed tar, ``cifar10-jpeg-q75.tar.gz``, holding
``cifar10/{train,test}/<class>/NNNN.jpg``; NNNN is the image's rank within its
class in the official order, so sorting by (class, NNNN) rebuilds a fixed order.
Labels are exact, pixels are not (lossy re-encoding): results must say
"CIFAR-10 (JPEG q75 copy)".
"""
from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .base import ArrayDataset
from .cache import cached_arrays
from .cifar import CIFAR10
from .images import decode_rgb
from .paths import check_count, verify_file
from .spec import DATASETS, DatasetSpec

ARCHIVE = "cifar10-jpeg-q75.tar.gz"
SHA256 = "34bcaaa6adecef7f40022c22eb381d3dd425e4a8e3f7aac93b4bde9a8bb04053"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NOTES = [
    "Pixels are not the official CIFAR-10 pixels: every image was re-encoded as a quality-75 JPEG "
    "(mean absolute error about 5.8/255, PSNR about 30.5 dB against the originals); labels and the "
    "train/test split are exact. Results on it are labelled 'CIFAR-10 (JPEG q75 copy)'.",
]
HOW_TO_GET = (
    f"this copy exists only on the project's machines ({ARCHIVE}, sha256 {SHA256}); set MIXREPRO_DATA "
    "to the folder holding it (e.g. /work/shared/data), or use the official 'cifar10' dataset instead"
)


@dataclass(frozen=True)
class JpegCheck:
    sha256: str | None = SHA256
    per_class: tuple[int, int] = (5000, 1000)  # train, test


def _read_archive(path: Path) -> dict[str, list[tuple[int, int, np.ndarray]]]:
    """{split: [(label, rank, image)]} for every ``cifar10/<split>/<class>/NNNN.jpg`` member."""
    splits: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:  # streaming: one pass over the gzip, no random access
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or not parts[3].endswith(".jpg"):
                continue
            _, split, cls, fname = parts
            if split not in splits or cls not in CLASSES:
                raise ValueError(f"{path}: unexpected member {member.name!r} (not cifar10/<train|test>/<class>/)")
            image = decode_rgb(tar.extractfile(member).read())
            splits[split].append((CLASSES.index(cls), int(fname[:-4]), image))
    return splits


def _stack(path: Path, split: str, items: list, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    items.sort(key=lambda t: (t[0], t[1]))
    labels = np.array([t[0] for t in items], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(CLASSES))
    for label, count in enumerate(counts):
        check_count(path, f"{split} images of class {CLASSES[label]!r}", per_class, int(count))
    images = np.stack([t[2] for t in items]) if items else np.zeros((0, 32, 32, 3), np.uint8)
    if images.shape[1:] != (32, 32, 3):
        raise ValueError(f"{path}: {split} images have shape {images.shape[1:]}, expected (32, 32, 3)")
    return torch.from_numpy(images), torch.from_numpy(labels)


def load_cifar10_jpeg(source, cache_dir=None, check: JpegCheck = JpegCheck()) -> ArrayDataset:
    """Verify the archive's sha256, then decode it (or read the cached decode)."""
    source = Path(source)
    key = verify_file(source, check.sha256, "sha256")  # before any byte is parsed

    def build() -> dict:
        splits = _read_archive(source)
        train_x, train_y = _stack(source, "train", splits["train"], check.per_class[0])
        test_x, test_y = _stack(source, "test", splits["test"], check.per_class[1])
        return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}

    arrays = cached_arrays("cifar10-jpeg", key, build, cache_dir)
    return ArrayDataset(
        name="cifar10-jpeg",
        label="CIFAR-10 (JPEG q75 copy)",
        classes=list(CLASSES),
        mean=CIFAR10.mean,  # the copy's channel means match the official ones
        std=CIFAR10.std,
        notes=list(NOTES),
        **arrays,
    )


DATASETS.add(
    "cifar10-jpeg",
    DatasetSpec(
        name="cifar10-jpeg",
        label="CIFAR-10 (JPEG q75 copy)",
        kind="array",
        num_classes=10,
        num_train=50000,
        num_test=10000,
        image_size="32x32x3",
        how_to_get=HOW_TO_GET,
        candidates=lambda root: [root / ARCHIVE],
        load=lambda source, cache_dir: load_cifar10_jpeg(source, cache_dir),
    ),
)

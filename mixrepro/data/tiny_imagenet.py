"""Tiny-ImageNet-200 (64x64, 200 classes) from the extracted official zip.

Layout: ``<root>/tiny-imagenet-200/wnids.txt``, ``train/<wnid>/images/<wnid>_<k>.JPEG``
(500 per class), ``val/images/val_<k>.JPEG`` with labels in
``val/val_annotations.txt`` (file, wnid, box; 50 per class). The labelled val
split serves as the test split, as in the papers; ``test/`` has no labels and is
not read. Label = index of the wnid in sorted order. Decoded once, then cached.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ChecksumError
from .base import ArrayDataset
from .cache import cached_arrays
from .images import decode_rgb
from .paths import check_count, tree_fingerprint
from .spec import DATASETS, DatasetSpec, missing_part

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
ZIP_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
HOW_TO_GET = f"download {URL} (md5 {ZIP_MD5}) and unzip it into the data root (it creates {FOLDER}/)"


@dataclass(frozen=True)
class TinyCheck:
    num_classes: int = 200
    per_class: tuple[int, int] = (500, 50)  # train, val


def _required(path: Path) -> Path:
    if not path.exists():
        raise missing_part("tiny-imagenet", path, HOW_TO_GET)
    return path


def _train_items(folder: Path, wnids: list[str]) -> list[tuple[Path, int]]:
    items = []
    for label, wnid in enumerate(wnids):
        files = sorted(_required(folder / "train" / wnid / "images").glob("*.JPEG"))
        items += [(f, label) for f in files]
    return items


def _val_items(folder: Path, wnids: list[str]) -> list[tuple[Path, int]]:
    index = {w: i for i, w in enumerate(wnids)}
    annotations = _required(folder / "val" / "val_annotations.txt")
    rows = [line.split("\t")[:2] for line in annotations.read_text().splitlines() if line.strip()]
    unknown = sorted({wnid for _, wnid in rows} - set(index))
    if unknown:
        raise ChecksumError(annotations, "wnids listed in wnids.txt", ", ".join(unknown[:3]), what="val labels")
    return [(folder / "val" / "images" / fname, index[wnid]) for fname, wnid in rows]


def _decode_split(folder: Path, split: str, items, check: TinyCheck, per_class: int):
    labels = np.array([label for _, label in items], dtype=np.int64)
    counts = np.bincount(labels, minlength=check.num_classes)
    for label, count in enumerate(counts):
        check_count(folder, f"{split} images of class {label}", per_class, int(count))
    images = np.stack([decode_rgb(_required(path)) for path, _ in items])
    if images.shape[1:] != (64, 64, 3):
        raise ValueError(f"{folder}: {split} images have shape {images.shape[1:]}, expected (64, 64, 3)")
    return torch.from_numpy(images), torch.from_numpy(labels)


def load_tiny_imagenet(folder, cache_dir=None, check: TinyCheck = TinyCheck()) -> ArrayDataset:
    folder = Path(folder)
    wnids = sorted(_required(folder / "wnids.txt").read_text().split())
    check_count(folder / "wnids.txt", "class count", check.num_classes, len(wnids))
    parts = [tree_fingerprint(folder / "train"), tree_fingerprint(folder / "val"), ",".join(wnids)]
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()  # test/ is unused, so not in the key

    def build() -> dict:
        train_x, train_y = _decode_split(folder, "train", _train_items(folder, wnids), check, check.per_class[0])
        test_x, test_y = _decode_split(folder, "val", _val_items(folder, wnids), check, check.per_class[1])
        return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}

    arrays = cached_arrays("tiny-imagenet", key, build, cache_dir)
    return ArrayDataset(
        name="tiny-imagenet",
        label="Tiny-ImageNet",
        classes=wnids,
        mean=(0.4802, 0.4481, 0.3975),  # commonly used training-set statistics
        std=(0.2770, 0.2691, 0.2821),
        notes=["The test split is the labelled official val split (10,000 images)."],
        **arrays,
    )


def _download(root: Path) -> None:
    from .._torchvision import import_torchvision

    import_torchvision().datasets.utils.download_and_extract_archive(URL, str(root), md5=ZIP_MD5)


DATASETS.add(
    "tiny-imagenet",
    DatasetSpec(
        name="tiny-imagenet",
        label="Tiny-ImageNet",
        kind="array",
        num_classes=200,
        num_train=100000,
        num_test=10000,
        image_size="64x64x3",
        how_to_get=HOW_TO_GET,
        candidates=lambda root: [root / FOLDER],
        load=lambda source, cache_dir: load_tiny_imagenet(source, cache_dir),
        download=_download,
    ),
)

"""STL-10 (96x96, 10 classes), labelled splits of the official binary archive.

``<root>/stl10_binary/``: ``train_X.bin`` / ``test_X.bin`` (uint8, each image
3 x 96 x 96 stored column-major, i.e. as [C, W, H]), ``train_y.bin`` /
``test_y.bin`` (uint8 labels 1..10), ``class_names.txt``. 5,000 train / 8,000 test.
The unlabelled 100,000 images (used by the papers' self-supervised runs) are not read.
Loaded as an ArrayDataset: 96 px images fit in memory like CIFAR's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .base import ArrayDataset
from .paths import check_count, verify_file
from .spec import DATASETS, DatasetSpec, missing_part

FOLDER = "stl10_binary"
URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
TGZ_MD5 = "91f7769df0f17e558f3565bffb0c7dfb"
MD5 = {
    "train_X.bin": "918c2871b30a85fa023e0c44e0bee87f",
    "train_y.bin": "5a34089d4802c674881badbb80307741",
    "test_X.bin": "7f263ba9f9e0b06b93213547f721ac82",
    "test_y.bin": "36f9794fa4beb8a2c72628de14fa638e",
}
HOW_TO_GET = (
    f"download {URL} (md5 {TGZ_MD5}) and extract it into the data root (it creates {FOLDER}/), "
    "or load_dataset('stl10', download=True) with internet"
)


@dataclass(frozen=True)
class Stl10Check:
    md5: dict = field(default_factory=lambda: dict(MD5))  # empty: skip
    counts: tuple[int, int] = (5000, 8000)
    size: int = 96


def _read(folder: Path, name: str, check: Stl10Check) -> np.ndarray:
    path = folder / name
    if not path.is_file():
        raise missing_part("stl10", path, HOW_TO_GET)
    verify_file(path, check.md5.get(name), "md5")
    return np.fromfile(path, dtype=np.uint8)


def _split(folder: Path, split: str, count: int, check: Stl10Check) -> tuple[torch.Tensor, torch.Tensor]:
    raw = _read(folder, f"{split}_X.bin", check)
    labels = _read(folder, f"{split}_y.bin", check).astype(np.int64) - 1
    s = check.size
    check_count(folder / f"{split}_X.bin", f"{split} bytes ({count} images of 3x{s}x{s})", count * 3 * s * s, raw.size)
    check_count(folder / f"{split}_y.bin", f"{split} label count", count, labels.size)
    images = raw.reshape(count, 3, s, s).transpose(0, 3, 2, 1)  # [N, C, W, H] -> [N, H, W, C]
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


def load_stl10(folder, cache_dir=None, check: Stl10Check = Stl10Check()) -> ArrayDataset:
    folder = Path(folder)
    train_x, train_y = _split(folder, "train", check.counts[0], check)
    test_x, test_y = _split(folder, "test", check.counts[1], check)
    names_path = folder / "class_names.txt"
    if not names_path.is_file():
        raise missing_part("stl10", names_path, HOW_TO_GET)
    return ArrayDataset(
        name="stl10",
        label="STL-10",
        classes=names_path.read_text().split(),
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        mean=(0.4467, 0.4398, 0.4066),  # commonly used training-set statistics
        std=(0.2603, 0.2566, 0.2713),
        notes=["Labelled splits only (5,000 train, 8,000 test); the unlabelled images are not loaded."],
    )


def _download(root: Path) -> None:
    from .._torchvision import import_torchvision

    import_torchvision().datasets.STL10(str(root), split="train", download=True)  # -> root/stl10_binary


DATASETS.add(
    "stl10",
    DatasetSpec(
        name="stl10",
        label="STL-10",
        kind="array",
        num_classes=10,
        num_train=5000,
        num_test=8000,
        image_size="96x96x3",
        how_to_get=HOW_TO_GET,
        candidates=lambda root: [root / FOLDER],
        load=lambda source, cache_dir: load_stl10(source, cache_dir),
        download=_download,
    ),
)

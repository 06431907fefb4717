"""Stanford Cars (196 classes) in the devkit layout that torchvision reads.

``<root>/stanford_cars/``: ``devkit/cars_meta.mat`` (``class_names``),
``devkit/cars_train_annos.mat`` and ``cars_test_annos_withlabels.mat``
(struct array ``annotations`` with ``fname`` and 1-based ``class``),
``cars_train/*.jpg`` and ``cars_test/*.jpg``. 8,144 train / 8,041 test.
The original site is gone; the same files circulate as a Kaggle mirror.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .base import IMAGENET_MEAN, IMAGENET_STD, FileListDataset
from .paths import check_count
from .spec import DATASETS, DatasetSpec, missing_part

FOLDER = "stanford_cars"
HOW_TO_GET = (
    "the official site no longer serves it; get the devkit-layout copy (cars_train/, cars_test/, devkit/, "
    "cars_test_annos_withlabels.mat), e.g. https://www.kaggle.com/datasets/rickyyyyyyy/torchvision-stanford-cars, "
    f"and place it as <data root>/{FOLDER}/"
)


@dataclass(frozen=True)
class CarsCheck:
    num_classes: int = 196
    counts: tuple[int, int] = (8144, 8041)


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    if not path.is_file():
        raise missing_part("stanford-cars", path, HOW_TO_GET)
    return loadmat(str(path), squeeze_me=True)


def _split(folder: Path, annotations: Path, images: str) -> tuple[list[str], torch.Tensor]:
    rows = np.atleast_1d(_loadmat(annotations)["annotations"])  # squeeze_me makes one row a scalar
    files = [str(folder / images / str(row["fname"])) for row in rows]
    return files, torch.tensor([int(row["class"]) - 1 for row in rows], dtype=torch.int64)


def load_stanford_cars(folder, cache_dir=None, check: CarsCheck = CarsCheck()) -> FileListDataset:
    folder = Path(folder)
    classes = [str(c) for c in _loadmat(folder / "devkit" / "cars_meta.mat")["class_names"]]
    check_count(folder / "devkit" / "cars_meta.mat", "class count", check.num_classes, len(classes))
    train_files, train_y = _split(folder, folder / "devkit" / "cars_train_annos.mat", "cars_train")
    test_files, test_y = _split(folder, folder / "cars_test_annos_withlabels.mat", "cars_test")
    check_count(folder, "train image count", check.counts[0], len(train_files))
    check_count(folder, "test image count", check.counts[1], len(test_files))
    return FileListDataset(
        name="stanford-cars",
        label="Stanford Cars",
        classes=classes,
        train_files=train_files,
        train_y=train_y,
        test_files=test_files,
        test_y=test_y,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


DATASETS.add(
    "stanford-cars",
    DatasetSpec(
        name="stanford-cars",
        label="Stanford Cars",
        kind="files",
        num_classes=196,
        num_train=8144,
        num_test=8041,
        image_size="variable (about 700x480)",
        how_to_get=HOW_TO_GET,
        candidates=lambda root: [root / FOLDER],
        load=lambda source, cache_dir: load_stanford_cars(source, cache_dir),
    ),
)

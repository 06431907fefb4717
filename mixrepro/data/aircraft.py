"""FGVC-Aircraft 2013b at the variant level (100 classes), official layout.

``<root>/fgvc-aircraft-2013b/data/``: ``variants.txt`` (one name a line; label =
line index), ``images_variant_trainval.txt`` and ``images_variant_test.txt``
(``<image id> <variant name>``; names may contain spaces), ``images/<id>.jpg``.
Train = the official trainval split (6,667), test = test (3,333).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .base import IMAGENET_MEAN, IMAGENET_STD, FileListDataset
from .paths import check_count
from .spec import DATASETS, DatasetSpec, missing_part

FOLDER = "fgvc-aircraft-2013b"
URL = "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz"
HOW_TO_GET = (
    f"download {URL} and extract it into the data root (it creates {FOLDER}/), or "
    "load_dataset('aircraft', download=True) with internet"
)
NOTES = ["Images keep the 20-pixel copyright banner at the bottom (not cropped), as torchvision does."]


@dataclass(frozen=True)
class AircraftCheck:
    num_classes: int = 100
    counts: tuple[int, int] = (6667, 3333)


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise missing_part("aircraft", path, HOW_TO_GET)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _split(data: Path, split: str, index: dict[str, int]) -> tuple[list[str], torch.Tensor]:
    rows = [line.split(" ", 1) for line in _lines(data / f"images_variant_{split}.txt")]
    files = [str(data / "images" / f"{image_id}.jpg") for image_id, _ in rows]
    return files, torch.tensor([index[name] for _, name in rows], dtype=torch.int64)


def load_aircraft(folder, cache_dir=None, check: AircraftCheck = AircraftCheck()) -> FileListDataset:
    data = Path(folder) / "data"
    classes = _lines(data / "variants.txt")
    check_count(data / "variants.txt", "class count", check.num_classes, len(classes))
    index = {name: i for i, name in enumerate(classes)}
    train_files, train_y = _split(data, "trainval", index)
    test_files, test_y = _split(data, "test", index)
    check_count(data / "images_variant_trainval.txt", "trainval image count", check.counts[0], len(train_files))
    check_count(data / "images_variant_test.txt", "test image count", check.counts[1], len(test_files))
    return FileListDataset(
        name="aircraft",
        label="FGVC-Aircraft",
        classes=classes,
        train_files=train_files,
        train_y=train_y,
        test_files=test_files,
        test_y=test_y,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        notes=list(NOTES),
    )


def _download(root: Path) -> None:
    from .._torchvision import import_torchvision

    import_torchvision().datasets.FGVCAircraft(str(root), download=True)  # -> root/fgvc-aircraft-2013b


DATASETS.add(
    "aircraft",
    DatasetSpec(
        name="aircraft",
        label="FGVC-Aircraft",
        kind="files",
        num_classes=100,
        num_train=6667,
        num_test=3333,
        image_size="variable (about 1000x700)",
        how_to_get=HOW_TO_GET,
        candidates=lambda root: [root / FOLDER],
        load=lambda source, cache_dir: load_aircraft(source, cache_dir),
        download=_download,
    ),
)

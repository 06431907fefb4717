"""CUB-200-2011 (200 bird species) in the official archive's layout.

``<root>/CUB_200_2011/``: ``images.txt`` (id, relative path), ``train_test_split.txt``
(id, 1 = train), ``image_class_labels.txt`` (id, 1-based class), ``classes.txt``
(1-based class, name), ``images/<class>/<file>.jpg``. 5,994 train / 5,794 test.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .base import IMAGENET_MEAN, IMAGENET_STD, FileListDataset
from .paths import check_count
from .spec import DATASETS, DatasetSpec, missing_part

FOLDER = "CUB_200_2011"
URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
TGZ_MD5 = "97eceeb196236b17998738112f37df78"
HOW_TO_GET = f"download {URL} (md5 {TGZ_MD5}) and extract it into the data root (it creates {FOLDER}/)"


@dataclass(frozen=True)
class CubCheck:
    num_classes: int = 200
    counts: tuple[int, int] = (5994, 5794)


def _table(path: Path) -> dict[int, str]:
    """{id: rest of line} of one of CUB's whitespace-separated 'id value' files."""
    if not path.is_file():
        raise missing_part("cub200", path, HOW_TO_GET)
    rows = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {int(k): v.strip() for k, v in rows}


def load_cub200(folder, cache_dir=None, check: CubCheck = CubCheck()) -> FileListDataset:
    folder = Path(folder)
    paths = _table(folder / "images.txt")
    is_train = _table(folder / "train_test_split.txt")
    labels = _table(folder / "image_class_labels.txt")
    class_table = _table(folder / "classes.txt")
    classes = [class_table[k] for k in sorted(class_table)]
    check_count(folder / "classes.txt", "class count", check.num_classes, len(classes))
    splits = {"1": ([], []), "0": ([], [])}
    for image_id in sorted(paths):
        files, ys = splits[is_train[image_id]]
        files.append(str(folder / "images" / paths[image_id]))
        ys.append(int(labels[image_id]) - 1)
    for (name, key), expected in zip((("train", "1"), ("test", "0")), check.counts):
        check_count(folder / "train_test_split.txt", f"{name} image count", expected, len(splits[key][0]))
    return FileListDataset(
        name="cub200",
        label="CUB-200-2011",
        classes=classes,
        train_files=splits["1"][0],
        train_y=torch.tensor(splits["1"][1], dtype=torch.int64),
        test_files=splits["0"][0],
        test_y=torch.tensor(splits["0"][1], dtype=torch.int64),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def _download(root: Path) -> None:
    from .._torchvision import import_torchvision

    import_torchvision().datasets.utils.download_and_extract_archive(URL, str(root), md5=TGZ_MD5)


DATASETS.add(
    "cub200",
    DatasetSpec(
        name="cub200",
        label="CUB-200-2011",
        kind="files",
        num_classes=200,
        num_train=5994,
        num_test=5794,
        image_size="variable (about 500x375)",
        how_to_get=HOW_TO_GET,
        candidates=lambda root: [root / FOLDER],
        load=lambda source, cache_dir: load_cub200(source, cache_dir),
        download=_download,
    ),
)

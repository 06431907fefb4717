"""CIFAR-10 and CIFAR-100 from the official "python version" archives.

Layout (what the official tar.gz holds, and what torchvision extracts):
``<root>/cifar-10-python.tar.gz`` or ``<root>/cifar-10-batches-py/{data_batch_1..5,
test_batch, batches.meta}``; ``<root>/cifar-100-python.tar.gz`` or
``<root>/cifar-100-python/{train, test, meta}``. Each batch is a pickled dict with
``data`` (uint8 [N, 3072], the R, G, B planes of a 32x32 image in turn) and its labels.
The archive (or each extracted file) is md5-verified before anything is un-pickled.
"""
from __future__ import annotations

import hashlib
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .base import ArrayDataset
from .cache import cached_arrays
from .paths import check_count, verify_file
from .spec import DATASETS, DatasetSpec, missing_part


@dataclass(frozen=True)
class CifarFormat:
    name: str
    label: str
    folder: str  # top folder inside the archive
    archive: str
    archive_md5: str | None
    file_md5: dict  # member -> md5, for an extracted copy; empty skips the check
    train_members: tuple[str, ...]
    test_members: tuple[str, ...]
    meta_member: str
    label_key: str
    names_key: str
    counts: tuple[int, int]  # train, test
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    url: str


CIFAR10 = CifarFormat(
    name="cifar10",
    label="CIFAR-10",
    folder="cifar-10-batches-py",
    archive="cifar-10-python.tar.gz",
    archive_md5="c58f30108f718f92721af3b95e74349a",
    file_md5={
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    },
    train_members=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_members=("test_batch",),
    meta_member="batches.meta",
    label_key="labels",
    names_key="label_names",
    counts=(50000, 10000),
    num_classes=10,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2023, 0.1994, 0.2010),
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
)

CIFAR100 = CifarFormat(
    name="cifar100",
    label="CIFAR-100",
    folder="cifar-100-python",
    archive="cifar-100-python.tar.gz",
    archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
    file_md5={
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffe0fd5dd835a0",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    },
    train_members=("train",),
    test_members=("test",),
    meta_member="meta",
    label_key="fine_labels",
    names_key="fine_label_names",
    counts=(50000, 10000),
    num_classes=100,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
)


def _read_members(source: Path, fmt: CifarFormat) -> tuple[dict, str]:
    """{member: bytes} for the batches and meta file, and the checksum keying the cache."""
    wanted = (*fmt.train_members, *fmt.test_members, fmt.meta_member)
    if source.is_file():
        key = verify_file(source, fmt.archive_md5, "md5")
        with tarfile.open(source, "r:gz") as tar:
            names = set(tar.getnames())
            missing = [m for m in wanted if f"{fmt.folder}/{m}" not in names]
            if missing:
                raise missing_part(fmt.name, source / fmt.folder / missing[0], _how_to_get(fmt))
            return {m: tar.extractfile(f"{fmt.folder}/{m}").read() for m in wanted}, key
    digests = []
    for member in wanted:
        if not (source / member).is_file():
            raise missing_part(fmt.name, source / member, _how_to_get(fmt))
        digests.append(verify_file(source / member, fmt.file_md5.get(member), "md5"))
    key = hashlib.sha256("".join(digests).encode()).hexdigest()
    return {m: (source / m).read_bytes() for m in wanted}, key


def _split(members: dict, names: tuple[str, ...], fmt: CifarFormat) -> tuple[torch.Tensor, torch.Tensor]:
    # Safe to un-pickle: the bytes passed the md5 check of the official files (or
    # of files the caller vouched for by passing their checksums).
    batches = [pickle.loads(members[n], encoding="latin1") for n in names]
    data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b[fmt.label_key], dtype=np.int64) for b in batches])
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes -> HWC
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


def load_cifar(source, fmt: CifarFormat = CIFAR10, cache_dir=None) -> ArrayDataset:
    """Read an official CIFAR archive (or its extracted folder), md5-verified, counts checked."""
    source = Path(source)
    members, key = _read_members(source, fmt)

    def build() -> dict:
        train_x, train_y = _split(members, fmt.train_members, fmt)
        test_x, test_y = _split(members, fmt.test_members, fmt)
        classes = list(pickle.loads(members[fmt.meta_member], encoding="latin1")[fmt.names_key])
        return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y, "classes": classes}

    arrays = cached_arrays(fmt.name, key, build, cache_dir)
    check_count(source, "train image count", fmt.counts[0], len(arrays["train_y"]))
    check_count(source, "test image count", fmt.counts[1], len(arrays["test_y"]))
    check_count(source, "class count", fmt.num_classes, len(arrays["classes"]))
    return ArrayDataset(
        name=fmt.name, label=fmt.label, mean=fmt.mean, std=fmt.std, **arrays,
    )


def _how_to_get(fmt: CifarFormat) -> str:
    return (
        f"download {fmt.url} (md5 {fmt.archive_md5}) into the data root, or call "
        f"load_dataset({fmt.name!r}, download=True) on a machine with internet"
    )


def _download(fmt: CifarFormat):
    def download(root: Path) -> None:
        from .._torchvision import import_torchvision

        tv = import_torchvision()
        cls = tv.datasets.CIFAR10 if fmt.num_classes == 10 else tv.datasets.CIFAR100
        cls(str(root), download=True)  # fetches the official archive, md5-checked, into root

    return download


def _register(fmt: CifarFormat) -> None:
    DATASETS.add(
        fmt.name,
        DatasetSpec(
            name=fmt.name,
            label=fmt.label,
            kind="array",
            num_classes=fmt.num_classes,
            num_train=fmt.counts[0],
            num_test=fmt.counts[1],
            image_size="32x32x3",
            how_to_get=_how_to_get(fmt),
            candidates=lambda root, f=fmt: [root / f.archive, root / f.folder],
            load=lambda source, cache_dir, f=fmt: load_cifar(source, f, cache_dir),
            download=_download(fmt),
        ),
    )


for _fmt in (CIFAR10, CIFAR100):
    _register(_fmt)


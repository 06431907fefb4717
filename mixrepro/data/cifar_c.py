"""CIFAR-10-C and CIFAR-100-C (Hendrycks & Dietterich, 2019), official .npy layout.

``<root>/CIFAR-10-C/<corruption>.npy``: uint8 (50000, 32, 32, 3), severities 1..5
in blocks of 10,000 test images; ``labels.npy``: int (50000,), the test labels
repeated five times. Files are memory-mapped, so asking for one corruption at
one severity reads 30 MB, not the 2.8 GB of the whole set.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ChecksumError, InvalidParameterError
from .spec import DATASETS, DatasetSpec, missing_part

STANDARD_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = (1, 2, 3, 4, 5)
PER_SEVERITY = 10000

_SOURCES = {
    "cifar10-c": ("CIFAR-10-C", "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar", 10),
    "cifar100-c": ("CIFAR-100-C", "https://zenodo.org/records/3555552/files/CIFAR-100-C.tar", 100),
}
TAR_MD5 = {  # as published on the Zenodo records
    "cifar10-c": "56bf5dcef84df0e2308c6dcbcbbd8499",
    "cifar100-c": "11f0ed0f1191edbf9fa23466ae6021d3",
}


class CorruptionSet:
    """One corrupted test set: ``images(corruption, severity)`` and ``labels``.

    ``corruptions`` lists the corruptions whose file is present, the 15 standard
    ones first (in the benchmark's order), then the 4 extra ones.
    """

    def __init__(self, name: str, folder, per_severity: int = PER_SEVERITY):
        self.name, self.folder, self.per_severity = name, Path(folder), per_severity
        labels_path = self.folder / "labels.npy"
        if not labels_path.is_file():
            raise missing_part(name, labels_path, _how_to_get(name))
        all_labels = np.load(labels_path)
        self._check_shape(labels_path, all_labels.shape, (len(SEVERITIES) * per_severity,))
        blocks = all_labels.reshape(len(SEVERITIES), per_severity)
        if not (blocks == blocks[0]).all():
            raise ChecksumError(labels_path, "the same labels for every severity", "differing blocks", what="content")
        self.labels = torch.from_numpy(blocks[0].astype(np.int64))
        known = (*STANDARD_CORRUPTIONS, *EXTRA_CORRUPTIONS)
        self.corruptions = [c for c in known if (self.folder / f"{c}.npy").is_file()]

    def _check_shape(self, path, actual, expected) -> None:
        if tuple(actual) != tuple(expected):
            raise ChecksumError(path, str(tuple(expected)), str(tuple(actual)), what="array shape")

    def images(self, corruption: str, severity: int) -> torch.Tensor:
        """uint8 [per_severity, 32, 32, 3] test images with ``corruption`` at ``severity`` (1..5)."""
        if corruption not in self.corruptions:
            raise InvalidParameterError("corruption", corruption, f"one of {self.corruptions}")
        if severity not in SEVERITIES:
            raise InvalidParameterError("severity", severity, "an integer 1..5")
        path = self.folder / f"{corruption}.npy"
        array = np.load(path, mmap_mode="r")
        self._check_shape(path, array.shape, (len(SEVERITIES) * self.per_severity, 32, 32, 3))
        block = array[(severity - 1) * self.per_severity : severity * self.per_severity]
        return torch.from_numpy(np.array(block, dtype=np.uint8))  # reads just this block off the map

    def __repr__(self) -> str:
        return f"CorruptionSet({self.name!r}, {str(self.folder)!r}, {len(self.corruptions)} corruptions)"


def load_cifar_c(name: str, root=None) -> CorruptionSet:
    """Open ``cifar10-c`` or ``cifar100-c`` under the data root (memory-mapped, nothing read yet)."""
    from .paths import data_root

    spec = DATASETS.get(name)
    if spec.kind != "corruption":
        raise InvalidParameterError("name", name, f"one of {sorted(_SOURCES)}")
    return spec.load(spec.locate(data_root(root)), None)


def _how_to_get(name: str) -> str:
    folder, url, _ = _SOURCES[name]
    return f"download {url} (md5 {TAR_MD5[name]}) and extract it into the data root (it creates {folder}/)"


for _name, (_folder, _url, _classes) in _SOURCES.items():
    DATASETS.add(
        _name,
        DatasetSpec(
            name=_name,
            label=_folder,
            kind="corruption",
            num_classes=_classes,
            num_train=0,
            num_test=len(SEVERITIES) * PER_SEVERITY,
            image_size="32x32x3",
            how_to_get=_how_to_get(_name),
            candidates=lambda root, f=_folder: [root / f],
            load=lambda source, cache_dir, n=_name: CorruptionSet(n, source),
        ),
    )

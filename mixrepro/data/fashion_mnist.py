"""Fashion-MNIST from its four IDX files (gzip-compressed or not).

Looked for in ``<root>/fashion-mnist/``, ``<root>/FashionMNIST/raw/`` (where
torchvision downloads it) and ``/usr/share/datasets/fashion-mnist/`` (Debian's
``dataset-fashion-mnist`` package). Checksums are of the decompressed IDX bytes,
so Debian's re-compressed copy and the original .gz files verify alike.
"""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ChecksumError
from .base import ArrayDataset
from .paths import check_count
from .spec import DATASETS, DatasetSpec, missing_part

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
SHA256 = {  # of the decompressed files
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
HOW_TO_GET = (
    "`apt-get install -y dataset-fashion-mnist` (Debian/Ubuntu; installs to /usr/share/datasets/fashion-mnist/), "
    "or download the four .gz files from https://github.com/zalandoresearch/fashion-mnist into "
    "<data root>/fashion-mnist/, or load_dataset('fashion-mnist', download=True) with internet"
)
_IDX_DTYPE = {0x08: np.uint8}


@dataclass(frozen=True)
class IdxCheck:
    sha256: dict = field(default_factory=lambda: dict(SHA256))  # empty: skip
    counts: tuple[int, int] = (60000, 10000)


def _read_bytes(folder: Path, stem: str) -> tuple[Path, bytes]:
    for path in (folder / f"{stem}.gz", folder / stem):
        if path.is_file():
            data = path.read_bytes()
            return path, gzip.decompress(data) if path.suffix == ".gz" else data
    raise missing_part("fashion-mnist", folder / f"{stem}.gz", HOW_TO_GET)


def parse_idx(data: bytes, path="<bytes>") -> np.ndarray:
    """An IDX array: 2 zero bytes, a dtype code, the number of dims, big-endian int32 dims, data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPE:
        raise ChecksumError(path, "an IDX file of uint8", f"header {data[:4].hex()}", what="format")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    body = np.frombuffer(data, _IDX_DTYPE[data[2]], offset=4 + 4 * ndim)
    check_count(path, "IDX element count", int(np.prod(dims)), body.size)
    return body.reshape(dims)


def load_fashion_mnist(folder, cache_dir=None, check: IdxCheck = IdxCheck()) -> ArrayDataset:
    """Read and verify the IDX files in ``folder`` (decoding takes well under a second: no cache)."""
    folder = Path(folder)
    arrays = {}
    for key, stem in FILES.items():
        path, data = _read_bytes(folder, stem)
        expected = check.sha256.get(stem)
        actual = hashlib.sha256(data).hexdigest()
        if expected is not None and actual != expected:
            raise ChecksumError(path, expected, actual, what="sha256 of the decompressed IDX data")
        arrays[key] = parse_idx(data, path)
    for split, count in zip(("train", "test"), check.counts):
        check_count(folder, f"{split} image count", count, len(arrays[f"{split}_x"]))
        check_count(folder, f"{split} label count", count, len(arrays[f"{split}_y"]))
    return ArrayDataset(
        name="fashion-mnist",
        label="Fashion-MNIST",
        classes=list(CLASSES),
        train_x=torch.from_numpy(arrays["train_x"][..., None].copy()),  # [N, 28, 28, 1]
        train_y=torch.from_numpy(arrays["train_y"].astype(np.int64)),
        test_x=torch.from_numpy(arrays["test_x"][..., None].copy()),
        test_y=torch.from_numpy(arrays["test_y"].astype(np.int64)),
        mean=(0.2860,),  # measured on the training images
        std=(0.3530,),
    )


def _candidates(root: Path) -> list[Path]:
    return [root / "fashion-mnist", root / "FashionMNIST" / "raw", DEBIAN_DIR]


def _download(root: Path) -> None:
    from .._torchvision import import_torchvision

    import_torchvision().datasets.FashionMNIST(str(root), download=True)  # -> root/FashionMNIST/raw


DATASETS.add(
    "fashion-mnist",
    DatasetSpec(
        name="fashion-mnist",
        label="Fashion-MNIST",
        kind="array",
        num_classes=10,
        num_train=60000,
        num_test=10000,
        image_size="28x28x1",
        how_to_get=HOW_TO_GET,
        candidates=_candidates,
        load=lambda source, cache_dir: load_fashion_mnist(source, cache_dir),
        download=_download,
    ),
)

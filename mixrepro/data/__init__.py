"""Datasets: a registry of loaders, the decoded-array cache, batching and subsets.

``load_dataset(name)`` returns an :class:`ArrayDataset` for small-image data
(uint8 tensors kept on the device, augmented in batches by
:class:`~mixrepro.data.batching.TensorBatcher`), a :class:`FileListDataset` for
large-image data (read through :mod:`mixrepro.data.loaders`), or a
:class:`~mixrepro.data.cifar_c.CorruptionSet` for CIFAR-10-C / CIFAR-100-C.
``mixrepro datasets`` prints :func:`describe_datasets`.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import DatasetMissingError
from . import (  # noqa: F401  (each module registers its datasets)
    aircraft,
    cifar,
    cifar_c,
    cifar_jpeg,
    cub200,
    fashion_mnist,
    stanford_cars,
    stl10,
    synthetic,
    tiny_imagenet,
)
from .base import ArrayDataset, FileListDataset
from .cifar_c import CorruptionSet, load_cifar_c
from .paths import cache_root, data_root
from .spec import DATASETS, DatasetSpec

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "CorruptionSet",
    "DatasetSpec",
    "FileListDataset",
    "cache_root",
    "data_root",
    "dataset_info",
    "describe_datasets",
    "load_cifar_c",
    "load_dataset",
    "print_datasets",
]


def dataset_info(name: str) -> DatasetSpec:
    """The registry entry of ``name`` (UnknownNameError lists the known names)."""
    return DATASETS.get(name)


def load_dataset(name: str, root=None, *, cache_dir=None, download: bool = False):
    """Load dataset ``name`` from the data root (see :func:`data_root`).

    Raises DatasetMissingError (every path looked in, and how to obtain the data)
    when no copy is found and ``download`` is False or the dataset cannot be
    downloaded; ChecksumError for a corrupt copy or wrong image counts.
    """
    spec = DATASETS.get(name)
    root = data_root(root)
    if download and spec.download is not None and spec.needs_files() and spec.find(root) is None:
        _download(spec, root)
    return spec.load(spec.locate(root), cache_dir)


def _download(spec: DatasetSpec, root: Path) -> None:
    """Fetch ``spec`` into ``root``; a failure (no internet...) becomes DatasetMissingError."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        spec.download(root)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; torchvision wraps some in RuntimeError
        raise DatasetMissingError(
            spec.name, spec.candidates(root), f"the download failed ({err}); {spec.how_to_get}"
        ) from err


def describe_datasets(root=None) -> list[dict]:
    """One dict per dataset: facts, and whether a copy is found under ``root`` (and where we looked)."""
    root = data_root(root)
    rows = []
    for name, spec in DATASETS.items():
        found = spec.find(root) if spec.needs_files() else None
        rows.append(
            {
                "name": name,
                "label": spec.label,
                "kind": spec.kind,
                "num_train": spec.num_train,
                "num_test": spec.num_test,
                "num_classes": spec.num_classes,
                "image_size": spec.image_size,
                "available": found is not None or not spec.needs_files(),
                "found_at": str(found) if found is not None else ("(generated)" if not spec.needs_files() else None),
                "looked_in": [str(p) for p in spec.candidates(root)],
                "how_to_get": spec.how_to_get,
            }
        )
    return rows


def print_datasets(root=None) -> None:
    """Print :func:`describe_datasets` as a table, then where each missing dataset was looked for."""
    rows = describe_datasets(root)
    header = ("name", "label", "train", "test", "classes", "image", "here")
    table = [header] + [
        (
            r["name"],
            r["label"],
            f"{r['num_train']:,}" if r["num_train"] else "-",
            f"{r['num_test']:,}",
            str(r["num_classes"]),
            r["image_size"],
            "yes" if r["available"] else "no",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    numeric = {2, 3, 4}
    for k, row in enumerate(table):
        cells = [c.rjust(w) if i in numeric and k else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\ndata root: {data_root(root)}   cache: {cache_root()}")
    for r in rows:
        where = r["found_at"] if r["available"] else "missing; looked in " + ", ".join(r["looked_in"])
        print(f"  {r['name']}: {where}")
    print("\nMissing data: see data/README.md, or the error message of load_dataset(name).")

"""What the registry knows about each dataset, and where it looks for it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DatasetMissingError
from ..registry import Registry

KINDS = ("array", "files", "corruption")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its facts, where a copy may be, how to get one, how to load it.

    ``candidates(root)`` lists the paths (archive files or top folders in the
    official layout) where a copy may be, in order of preference; ``load(source,
    cache_dir)`` reads the first that exists. A spec with no candidates needs
    no files (the synthetic set).
    """

    name: str
    label: str  # how results must name the data
    kind: str  # "array" (ArrayDataset), "files" (FileListDataset), "corruption" (CorruptionSet)
    num_classes: int
    num_train: int
    num_test: int
    image_size: str  # e.g. "32x32x3"; "variable" for photo collections
    how_to_get: str  # URL or command, shown in DatasetMissingError
    candidates: Callable[[Path], list[Path]]
    load: Callable[[Path | None, Path | None], object]
    download: Callable[[Path], None] | None = None  # needs internet; only on download=True

    def needs_files(self) -> bool:
        return bool(self.candidates(Path(".")))

    def find(self, root: Path) -> Path | None:
        return next((p for p in self.candidates(root) if p.exists()), None)

    def locate(self, root: Path) -> Path | None:
        """The source to read, or DatasetMissingError naming every place looked in."""
        if not self.needs_files():
            return None
        found = self.find(root)
        if found is None:
            raise DatasetMissingError(self.name, self.candidates(root), self.how_to_get)
        return found


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def missing_part(spec_name: str, path: Path, how_to_get: str) -> DatasetMissingError:
    """Error for a copy whose top folder exists but lacks a file the layout requires."""
    return DatasetMissingError(spec_name, [path], f"the copy is incomplete; {how_to_get}")

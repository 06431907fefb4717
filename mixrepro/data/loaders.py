"""DataLoaders for the large-image datasets (CUB-200, FGVC-Aircraft, Stanford Cars).

Standard torchvision transforms: RandomResizedCrop(224) + RandomHorizontalFlip
for training, Resize(256) + CenterCrop(224) for testing; output float32
[B, 3, 224, 224] in [0, 1] (the model normalises). torchvision's random
transforms draw from torch's global generator; to keep every draw tied to the
caller's CPU generator, the sampler draws one seed per sample from it, and each
sample's transform runs under that seed inside ``torch.random.fork_rng``. The
result is the same for any number of workers, and leaves global RNG state alone.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import InvalidParameterError
from .base import FileListDataset
from .images import open_rgb

CROP_SIZE = 224
RESIZE_SIZE = 256


def train_transform(size: int = CROP_SIZE):
    from .._torchvision import import_torchvision

    t = import_torchvision().transforms
    return t.Compose([t.RandomResizedCrop(size), t.RandomHorizontalFlip(), t.ToTensor()])


def test_transform(size: int = CROP_SIZE, resize: int = RESIZE_SIZE):
    from .._torchvision import import_torchvision

    t = import_torchvision().transforms
    return t.Compose([t.Resize(resize), t.CenterCrop(size), t.ToTensor()])


class ImageFiles(Dataset):
    """Image files and labels; items are ``(index, seed)`` pairs, the seed driving the transform."""

    def __init__(self, files: list[str], labels: torch.Tensor, transform):
        if len(files) != len(labels):
            raise InvalidParameterError("labels", f"{len(labels)} labels", f"{len(files)}, one per file")
        self.files, self.labels, self.transform = list(files), torch.as_tensor(labels), transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        image = open_rgb(self.files[index])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            x = self.transform(image)
        return x, self.labels[index]


class SeededSampler(Sampler):
    """Yields ``(index, seed)``: a shuffled (train) or in-order pass, seeds drawn from ``generator``."""

    def __init__(self, n: int, shuffle: bool, generator: torch.Generator | None):
        self.n, self.shuffle, self.generator = n, shuffle, generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if not self.shuffle:
            return iter((i, 0) for i in range(self.n))
        order = torch.randperm(self.n, generator=self.generator)
        seeds = torch.randint(0, 2**62, (self.n,), generator=self.generator)
        return iter(zip(order.tolist(), seeds.tolist()))


def make_loader(dataset: FileListDataset, split: str, batch_size: int, *, generator=None, num_workers: int = 0,
                pin_memory: bool = False, drop_last: bool | None = None) -> DataLoader:  # fmt: skip
    """A DataLoader over ``split`` ("train" or "test") of a FileListDataset.

    ``generator`` (a CPU torch.Generator) is required for "train": each pass over
    the loader draws its order and per-sample transform seeds from it.
    """
    if split not in ("train", "test"):
        raise InvalidParameterError("split", split, "'train' or 'test'")
    train = split == "train"
    if train and generator is None:
        raise InvalidParameterError("generator", None, "a CPU torch.Generator for the training split")
    files, labels = (dataset.train_files, dataset.train_y) if train else (dataset.test_files, dataset.test_y)
    images = ImageFiles(files, labels, train_transform() if train else test_transform())
    return DataLoader(
        images,
        batch_size=batch_size,
        sampler=SeededSampler(len(images), shuffle=train, generator=generator),
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=train if drop_last is None else drop_last,
        persistent_workers=num_workers > 0,
        # The loader draws a worker base seed each pass; workers' own RNGs are never used (each
        # sample re-seeds), so a fixed private generator keeps that draw off the global RNG and ours.
        generator=torch.Generator().manual_seed(0),
    )

"""What a dataset loader returns.

Small-image datasets (32 px and below, and Tiny-ImageNet's 64 px) load as whole
uint8 tensors that the training loop keeps on the device and augments in
batches (``mixrepro.data.batching``). Larger-image datasets return file lists for
a standard DataLoader with torchvision transforms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ArrayDataset:
    """A whole dataset as tensors.

    train_x, test_x: uint8 [N, H, W, C] (channels last, as decoded)
    train_y, test_y: int64 [N]
    """

    name: str
    label: str  # how results must name the data, e.g. "CIFAR-10 (JPEG q75 copy)"
    classes: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]  # per-channel normalisation used inside the model
    std: tuple[float, ...]
    notes: list[str] = field(default_factory=list)  # deviations from the official data

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)"""
        n, h, w, c = self.train_x.shape
        return c, h, w


@dataclass
class FileListDataset:
    """A large-image dataset as lists of image files, read through a DataLoader.

    train_files, test_files: image paths; train_y, test_y: int64 [N].
    ``mixrepro.data.loaders`` turns a split into a DataLoader with the standard
    transforms (RandomResizedCrop 224 + flip for training, Resize 256 +
    CenterCrop 224 for testing).
    """

    name: str
    label: str
    classes: list[str]
    train_files: list[str]
    train_y: torch.Tensor
    test_files: list[str]
    test_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# Normalisation of the large-image (ImageNet-style) datasets, used inside the model.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

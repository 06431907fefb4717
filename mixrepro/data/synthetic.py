"""A synthetic 10-class 32x32 RGB dataset with learnable structure, made in memory.

For tests and smoke runs without any download. Each class has a prototype: a
smooth random colour field (4x4 random colours upsampled to 32x32). An image
is its class prototype plus a weaker distractor (another class's prototype),
each shifted by a random circular offset, plus pixel noise. A small CNN learns
it well above chance within a few epochs; the distractor and noise keep it from
being solved at once (some images are genuinely ambiguous).
Everything is drawn from one fixed-seed CPU generator: same bits on every call.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import ArrayDataset
from .spec import DATASETS, DatasetSpec

SEED = 20240521


@dataclass(frozen=True)
class SyntheticRecipe:
    num_classes: int = 10
    num_train: int = 5000
    num_test: int = 1000
    size: int = 32
    max_shift: int = 4  # pixels, each direction
    distractor: tuple[float, float] = (0.0, 0.6)  # weight range of the other class's prototype
    noise_std: float = 0.15
    seed: int = SEED


def _prototypes(recipe: SyntheticRecipe, gen: torch.Generator) -> torch.Tensor:
    """[K, 3, S, S] smooth colour fields in [0, 1]."""
    coarse = torch.rand(recipe.num_classes, 3, 4, 4, generator=gen)
    return F.interpolate(coarse, size=(recipe.size, recipe.size), mode="bilinear", align_corners=True)


def _shifted(protos: torch.Tensor, labels: torch.Tensor, recipe: SyntheticRecipe, gen: torch.Generator):
    """protos[labels], each circularly shifted by its own random offset: [N, 3, S, S]."""
    n, s = len(labels), recipe.size
    dy, dx = torch.randint(-recipe.max_shift, recipe.max_shift + 1, (2, n, 1), generator=gen)
    rows = (torch.arange(s) - dy) % s  # [N, S]
    cols = (torch.arange(s) - dx) % s
    picked = protos[labels[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # [N, S, S, 3]
    return picked.permute(0, 3, 1, 2)


def _split(n: int, protos: torch.Tensor, recipe: SyntheticRecipe, gen: torch.Generator):
    k = recipe.num_classes
    labels = torch.arange(n) % k
    labels = labels[torch.randperm(n, generator=gen)]
    others = (labels + torch.randint(1, k, (n,), generator=gen)) % k  # never the true class
    low, high = recipe.distractor
    weight = (low + (high - low) * torch.rand(n, 1, 1, 1, generator=gen))
    x = (1 - weight) * _shifted(protos, labels, recipe, gen) + weight * _shifted(protos, others, recipe, gen)
    x = x + recipe.noise_std * torch.randn(x.shape, generator=gen)
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    return images, labels


def make_synthetic(recipe: SyntheticRecipe = SyntheticRecipe()) -> ArrayDataset:
    gen = torch.Generator().manual_seed(recipe.seed)
    protos = _prototypes(recipe, gen)
    train_x, train_y = _split(recipe.num_train, protos, recipe, gen)
    test_x, test_y = _split(recipe.num_test, protos, recipe, gen)
    std, mean = torch.std_mean(train_x.permute(3, 0, 1, 2).reshape(3, -1).float() / 255, dim=1)
    return ArrayDataset(
        name="synthetic",
        label="synthetic (10 colour-field classes)",
        classes=[f"class{k}" for k in range(recipe.num_classes)],
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        mean=tuple(round(v, 4) for v in mean.tolist()),
        std=tuple(round(v, 4) for v in std.tolist()),
        notes=["Synthetic data generated in memory (fixed seed); for tests and smoke runs, not a benchmark."],
    )


@functools.lru_cache(maxsize=2)
def _memoised(recipe: SyntheticRecipe) -> ArrayDataset:
    return make_synthetic(recipe)


def load_synthetic(recipe: SyntheticRecipe = SyntheticRecipe()) -> ArrayDataset:
    """make_synthetic, generated once per process; callers get their own tensors to modify."""
    ds = _memoised(recipe)
    tensors = {f: getattr(ds, f).clone() for f in ("train_x", "train_y", "test_x", "test_y")}
    return dataclasses.replace(ds, notes=list(ds.notes), **tensors)


DATASETS.add(
    "synthetic",
    DatasetSpec(
        name="synthetic",
        label="synthetic (10 colour-field classes)",
        kind="array",
        num_classes=10,
        num_train=5000,
        num_test=1000,
        image_size="32x32x3",
        how_to_get="nothing to get: generated in memory",
        candidates=lambda root: [],
        load=lambda source, cache_dir: load_synthetic(),
    ),
)

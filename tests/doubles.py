"""Small stand-ins for the trainer's tests: a tiny staged classifier, a tiny method, random data.

They plug into the trainer at ``mixrepro.training.components`` so the loop,
checkpoints, resume and the results store are tested in isolation and in
milliseconds; tests that use the real data, models and methods live beside them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mixrepro.config import RunConfig
from mixrepro.methods.base import Method, StepOutput
from mixrepro.mixers.base import sample_beta, sample_perm
from mixrepro.models.base import StagedClassifier
from mixrepro.training import components

NUM_CLASSES = 6


class TinyNet(StagedClassifier):
    """conv(+BN) -> ReLU -> conv -> pool -> linear; two stages."""

    stage_channels = [3, 6, 8]

    def __init__(self, num_classes: int = NUM_CLASSES, batch_norm: bool = True):
        super().__init__()
        norm = nn.BatchNorm2d(6) if batch_norm else nn.Identity()
        self.stage1 = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), norm, nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(8, num_classes)

    def forward_features(self, x, stage):
        for block in (self.stage1, self.stage2)[:stage]:
            x = block(x)
        return x

    def forward_from(self, h, stage):
        for block in (self.stage1, self.stage2)[stage:]:
            h = block(h)
        return self.head(h.mean((2, 3)))


class TinyMixup(Method):
    """Input mixup with one Beta draw and one permutation per batch, all from ctx.generator."""

    name = "tiny"
    default_params = {"alpha": 1.0}
    default_min_lr = 0.01

    def training_step(self, x, y, ctx):
        lam = sample_beta(self.params["alpha"], ctx.generator)
        perm = sample_perm(len(x), ctx.generator, x.device)
        logits = self.model(lam * x + (1 - lam) * x[perm])
        loss = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
        return StepOutput(loss, {"lam": lam})


class TinyNoisyCE(Method):
    """Clean CE on inputs scaled by one random factor per batch: same on every rank, no permutation."""

    name = "tiny_ce"
    default_params = {}

    def training_step(self, x, y, ctx):
        scale = 1 - 0.2 * torch.rand((), generator=ctx.generator).item()
        loss = F.cross_entropy(self.model(x * scale), y)
        return StepOutput(loss, {"scale": scale})


@dataclass
class FakeDataset:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    name: str = "fake"
    label: str = "random pixels (test double)"
    classes: list = field(default_factory=lambda: [f"c{i}" for i in range(NUM_CLASSES)])
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.25, 0.25, 0.25)

    @property
    def num_classes(self):
        return len(self.classes)


def fake_dataset(n_train: int = 64, n_test: int = 32, size: int = 8) -> FakeDataset:
    g = torch.Generator().manual_seed(123)
    labels = lambda n: torch.arange(n) % NUM_CLASSES  # noqa: E731
    images = lambda n: torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g)  # noqa: E731
    train_y, test_y = labels(n_train), labels(n_test)
    train_x, test_x = images(n_train), images(n_test)
    # make the classes learnable: brighten one channel per class
    for x, y in ((train_x, train_y), (test_x, test_y)):
        x[..., 0] = (x[..., 0].int() // 2 + 40 * y[:, None, None]).clamp(0, 255).to(torch.uint8)
    return FakeDataset(train_x, train_y, test_x, test_y)


class FakeBatcher:
    """Shuffles (train) and flips with the generator; yields float NCHW in [0, 1]."""

    def __init__(self, images, labels, batch_size, *, train, device):
        self.images, self.labels, self.batch_size, self.train, self.device = images, labels, batch_size, train, device

    def __len__(self):
        return len(self.images) // self.batch_size if self.train else -(-len(self.images) // self.batch_size)

    def epoch(self, generator):
        n = len(self.images)
        order = torch.randperm(n, generator=generator) if self.train else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.images[idx].permute(0, 3, 1, 2).float().div(255)
            if self.train:
                flip = torch.rand(len(idx), generator=generator) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            yield x.to(self.device), self.labels[idx].to(self.device)


METHOD_DOUBLES = {"tiny": TinyMixup, "tiny_ce": TinyNoisyCE}


def build_double_method(config: RunConfig, dataset, runtime, batch_norm: bool = True):
    torch.manual_seed(components.derived_seed(config.seed, "init"))
    model = TinyNet(dataset.num_classes, batch_norm=batch_norm)
    method = METHOD_DOUBLES[config.method](model, dataset.num_classes, **config.method_params)
    return method.to(runtime.device)


def install_doubles(monkeypatch, dataset: FakeDataset | None = None) -> dict:
    """Route the trainer's data, model and method construction to the doubles; returns call counters."""
    dataset = dataset or fake_dataset()
    calls = {"load": 0}

    def load(config, data_root=None):
        calls["load"] += 1
        return dataset

    monkeypatch.setattr(components, "load_run_data", load)
    monkeypatch.setattr(components, "build_run_method", build_double_method)
    monkeypatch.setattr(components, "train_batcher",
                        lambda config, ds, rt: FakeBatcher(ds.train_x, ds.train_y, config.batch_size, train=True,
                                                           device=rt.device))
    monkeypatch.setattr(components, "test_batcher",
                        lambda ds, rt: FakeBatcher(ds.test_x, ds.test_y, 16, train=False, device=rt.device))
    return calls


def tiny_config(**changes) -> RunConfig:
    base = dict(method="tiny", dataset="fake", model="tiny", epochs=2, batch_size=16, seed=0)
    return RunConfig(**{**base, **changes})


def sweep_args(*argv: str):
    """``mixrepro sweep`` arguments parsed by the command's own parser (every option at its default)."""
    import argparse

    from mixrepro.sweep import add_sweep_arguments

    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    return parser.parse_args(list(argv))

"""Build what a run trains: its data (seeded subsets), its model and method, batchers.

Shared by training and by evaluations of a finished run, so both see the same
test images and the same networks.
"""
from __future__ import annotations

import dataclasses
import hashlib

import torch

from ..config import RunConfig
from ..errors import InvalidParameterError
from .runtime import Runtime

EVAL_BATCH_SIZE = 500  # evaluation only; does not change what is measured
TEST_SUBSET_SEED = 0  # every seed of a study is scored on the same test images


def derived_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed per purpose, so init, steps and subsets never share a stream."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def step_generator(config: RunConfig) -> torch.Generator:
    """The one CPU generator of every random draw during training (batches, augmentation, mixing)."""
    return torch.Generator().manual_seed(derived_seed(config.seed, "steps"))


def check_trainable(dataset: str) -> None:
    """The trainer trains in-memory image arrays; file-list datasets (CUB, Aircraft, Cars) and the
    corruption sets (evaluation only) are refused before any work starts, naming what it can train."""
    from ..data import DATASETS, dataset_info

    if dataset_info(dataset).kind != "array":
        trainable = [name for name in DATASETS.names() if dataset_info(name).kind == "array"]
        raise InvalidParameterError(
            "dataset", dataset, f"a dataset the trainer can train ({', '.join(trainable)}); "
            f"'{dataset}' is a {dataset_info(dataset).kind!r} dataset, which it does not train")


def load_run_data(config: RunConfig, data_root=None):
    """The dataset with the config's subsets applied (train: seeded by the run; test: fixed)."""
    from ..data import load_dataset
    from ..data.subsets import balanced_subset

    check_trainable(config.dataset)
    ds = load_dataset(config.dataset, root=data_root)
    changes = {}
    if config.train_subset is not None:
        idx = balanced_subset(ds.train_y, config.train_subset, config.seed)
        changes.update(train_x=ds.train_x[idx], train_y=ds.train_y[idx])
    if config.test_subset is not None:
        idx = balanced_subset(ds.test_y, config.test_subset, TEST_SUBSET_SEED)
        changes.update(test_x=ds.test_x[idx], test_y=ds.test_y[idx])
    return dataclasses.replace(ds, **changes) if changes else ds


def build_run_method(config: RunConfig, dataset, runtime: Runtime):
    """Model and method with seeded initialisation, on the run's device and memory layout."""
    from ..methods.registry import build_method
    from ..models import build_model

    init_seed = derived_seed(config.seed, "init")
    torch.manual_seed(init_seed)  # for any module a method builds without an explicit generator
    model = build_model(config.model, dataset.num_classes, width=config.width, mean=dataset.mean, std=dataset.std,
                        in_channels=dataset.image_shape[0], generator=torch.Generator().manual_seed(init_seed))
    method = build_method(config.method, model, dataset.num_classes, **config.method_params)
    method.to(runtime.device)
    if runtime.channels_last:
        method.to(memory_format=torch.channels_last)
    if runtime.compile:
        for network in method.eval_networks().values():
            network.compile()  # in place: state_dict keys stay those of the plain module
    return method


def train_batcher(config: RunConfig, dataset, runtime: Runtime):
    from ..data.batching import TensorBatcher

    return TensorBatcher(dataset.train_x, dataset.train_y, config.batch_size, train=True, device=runtime.device)


def test_batcher(dataset, runtime: Runtime):
    from ..data.batching import TensorBatcher

    return TensorBatcher(dataset.test_x, dataset.test_y, EVAL_BATCH_SIZE, train=False, device=runtime.device)

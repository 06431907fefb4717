"""Classifiers: CIFAR ResNets/ResNeXt, WRN-28-8, torchvision ImageNet ResNets; ``build_model``.

Every model is a :class:`StagedClassifier` taking [0, 1] pixels (it normalises
internally) and can be split after any stage (``forward_features`` /
``forward_from``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..errors import InvalidParameterError
from ..registry import Registry
from .base import StagedClassifier
from .imagenet import IMAGENET_MEAN, IMAGENET_STD, imagenet_resnet18, imagenet_resnet50, imagenet_resnext50
from .resnet_cifar import resnet18, resnet34, resnet50, resnext50
from .wide_resnet import wrn28_8

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)

MODELS: Registry[Callable[..., StagedClassifier]] = Registry("model")
for _fn in (resnet18, resnet34, resnet50, resnext50, wrn28_8):
    MODELS.add(_fn.__name__, _fn)
for _fn in (imagenet_resnet18, imagenet_resnet50, imagenet_resnext50):
    MODELS.add(_fn.__name__, _fn)

IMAGENET_MODELS = frozenset({"imagenet_resnet18", "imagenet_resnet50", "imagenet_resnext50"})


def build_model(name: str, num_classes: int, *, width: float = 1.0, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None, in_channels: int = 3, pretrained: bool = False,
                generator: torch.Generator | None = None) -> StagedClassifier:
    """Build model ``name`` (see ``MODELS.names()``).

    mean/std: per-channel input statistics used by the model's first layer; None takes
    the CIFAR values (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010) for the CIFAR
    models and the ImageNet values for the ``imagenet_*`` models (what their pretrained
    weights expect). width: channel multiplier (CIFAR models only). pretrained:
    ImageNet-1k weights (``imagenet_*`` only). generator: every initialisation draw
    comes from it (None: torch's global generator).
    """
    factory = MODELS.get(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidParameterError("num_classes", num_classes, "a positive integer")
    if not (isinstance(width, (int, float)) and width > 0):
        raise InvalidParameterError("width", width, "a positive number")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise InvalidParameterError("in_channels", in_channels, "a positive integer")
    imagenet = name in IMAGENET_MODELS
    if pretrained and not imagenet:
        raise InvalidParameterError("pretrained", pretrained, f"False for {name} (weights exist for "
                                    f"{', '.join(sorted(IMAGENET_MODELS))})")
    mean = tuple(mean) if mean is not None else (IMAGENET_MEAN if imagenet else CIFAR_MEAN)
    std = tuple(std) if std is not None else (IMAGENET_STD if imagenet else CIFAR_STD)
    for stat_name, stat in (("mean", mean), ("std", std)):
        if len(stat) != in_channels:
            raise InvalidParameterError(stat_name, stat, f"{in_channels} values (one per input channel)")
    kwargs = dict(width=width, mean=mean, std=std, in_channels=in_channels, generator=generator)
    if imagenet:
        kwargs["pretrained"] = pretrained
    return factory(num_classes, **kwargs)


__all__ = ["MODELS", "StagedClassifier", "build_model", "CIFAR_MEAN", "CIFAR_STD", "IMAGENET_MEAN", "IMAGENET_STD"]

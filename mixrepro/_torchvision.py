"""Optional torchvision import.

torchvision is not needed by the core package. Some CPU builds of torch lack the
``torchvision::nms`` operator schema that torchvision registers kernels for, and
``import torchvision`` then fails with "operator torchvision::nms does not exist".
Declaring the schemas in a FRAGMENT library first lets the import succeed; the
ops themselves are never used by mixrepro.
"""
from __future__ import annotations

import importlib

import torch

_fragment = None  # keep the Library object alive for the life of the process


def _declare_missing_schemas() -> None:
    global _fragment
    try:
        torch.ops.torchvision.nms  # noqa: B018  (attribute access is the test)
        return
    except (AttributeError, RuntimeError):
        pass
    _fragment = torch.library.Library("torchvision", "FRAGMENT")
    _fragment.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _fragment.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")


def import_torchvision():
    """Return the torchvision module, or raise ImportError with how to install it."""
    _declare_missing_schemas()
    try:
        return importlib.import_module("torchvision")
    except ImportError as err:
        raise ImportError(
            "torchvision is needed for this feature; install it with `pip install torchvision` "
            "(the version paired with your torch, e.g. torchvision==0.28.0 for torch==2.13.0)"
        ) from err

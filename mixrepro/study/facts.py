"""What the study shows about a method, read from the method's own class (label, scored network, colour).

Methods the papers compare but this study does not implement (their rows appear in
transcribed tables only) get a label here and a neutral colour.
"""
from __future__ import annotations

NOT_IMPLEMENTED_LABELS = {"comixup": "Co-Mixup", "augmix": "AugMix", "gridmix": "GridMix"}
NOT_IMPLEMENTED_COLOR = "#7f7f7f"


def _method_class(method: str):
    from ..methods import METHODS

    return METHODS.get(method) if method in METHODS.names() else None


def method_label(method: str) -> str:
    """The method's display name, e.g. 'AutoMix'; unknown names are shown as given."""
    cls = _method_class(method)
    return cls.label if cls is not None else NOT_IMPLEMENTED_LABELS.get(method, method)


def scored_network(method: str) -> str:
    """The network the papers score for ``method`` ('ema' for the learned mixers' momentum network)."""
    cls = _method_class(method)
    return cls.scored_network if cls is not None else "online"


def method_color(method: str) -> str:
    """One colour per method, the same in every figure of the book."""
    cls = _method_class(method)
    return cls.color if cls is not None else NOT_IMPLEMENTED_COLOR

"""Training methods: one object per method owning its training step.

Importing this package imports every method module, so ``METHODS`` is complete:
static mixers (``static.py``), PuzzleMix (``puzzlemix.py``), and
the learned mixers AutoMix, SAMix and AdAutoMix (one file each).
"""
from . import adautomix, automix, puzzlemix, samix, static  # noqa: F401  (registration)
from .base import Method, StepContext, StepOutput, automix_momentum
from .registry import METHODS, build_method, describe_methods, print_methods

__all__ = [
    "METHODS", "Method", "StepContext", "StepOutput", "automix_momentum",
    "build_method", "describe_methods", "print_methods",
]

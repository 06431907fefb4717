"""Per-image test predictions of a run's final networks, stored compactly for paired comparisons.

Two runs scored on the same test images can be compared image by image (McNemar's
test, ``mixrepro.study`` statistics) instead of only by their accuracies. A run keeps
each network's predicted class per test image as base64 of a little-endian integer
array, with the labels in the same order, in ``predictions.json`` beside its results.
"""
from __future__ import annotations

import base64

import numpy as np
import torch

from ..errors import InvalidParameterError

ENCODING = "base64-uint16le"


def _encode(values: torch.Tensor) -> str:
    return base64.b64encode(values.cpu().numpy().astype("<u2").tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<u2").astype(np.int64)


def encode_predictions(predicted: dict[str, torch.Tensor], labels: torch.Tensor) -> dict:
    """{'encoding', 'labels', <network>: ...} with every array as base64 text (JSON-safe)."""
    if int(labels.max()) >= 2 ** 16:
        raise InvalidParameterError("labels", int(labels.max()), "class indices below 65,536")
    return {"encoding": ENCODING, "labels": _encode(labels), **{k: _encode(v) for k, v in predicted.items()}}


def decode_predictions(stored: dict) -> dict[str, np.ndarray]:
    """The arrays of :func:`encode_predictions` back as int64 numpy arrays."""
    if stored.get("encoding") != ENCODING:
        raise InvalidParameterError("predictions encoding", stored.get("encoding"), ENCODING)
    return {k: _decode(v) for k, v in stored.items() if k != "encoding"}


def correct_per_image(stored: dict, network: str) -> np.ndarray:
    """Boolean per test image: whether ``network`` (online or ema) classified it correctly."""
    arrays = decode_predictions(stored)
    if network not in arrays:
        raise InvalidParameterError("network", network, " or ".join(k for k in arrays if k != "labels"))
    return arrays[network] == arrays["labels"]


# Per-image confidence (maximum softmax probability) and correctness of one network, the inputs of its
# ECE: stored by the 'confidence' evaluation so two networks' ECEs can be compared by a paired bootstrap
# over test images (mixrepro.study.paired.BinnedCalibration). float32 keeps the ECE recomputed from them
# within about 1e-5 points of the float64 one (an image would need a confidence within float32's
# rounding of a bin edge to change bins).
CONFIDENCE_ENCODING = "base64-float32le+packbits"


def encode_confidence(confidence: torch.Tensor, correct: torch.Tensor) -> dict:
    """{'encoding', 'images', 'confidence', 'correct'}: JSON-safe per-image arrays of one network."""
    conf = confidence.detach().cpu().numpy().astype("<f4")
    flags = np.packbits(correct.detach().cpu().numpy().astype(bool))
    return {"encoding": CONFIDENCE_ENCODING, "images": int(conf.size),
            "confidence": base64.b64encode(conf.tobytes()).decode("ascii"),
            "correct": base64.b64encode(flags.tobytes()).decode("ascii")}


def decode_confidence(stored: dict) -> tuple[np.ndarray, np.ndarray]:
    """(confidence float64 [N], correct bool [N]) from :func:`encode_confidence`'s record."""
    if stored.get("encoding") != CONFIDENCE_ENCODING:
        raise InvalidParameterError("confidence encoding", stored.get("encoding"), CONFIDENCE_ENCODING)
    n = int(stored["images"])
    confidence = np.frombuffer(base64.b64decode(stored["confidence"]), dtype="<f4").astype(np.float64)
    correct = np.unpackbits(np.frombuffer(base64.b64decode(stored["correct"]), dtype=np.uint8))[:n].astype(bool)
    if confidence.size != n:
        raise InvalidParameterError("confidence record", confidence.size, f"{n} confidences (its 'images')")
    return confidence, correct

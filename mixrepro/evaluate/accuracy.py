"""Top-k accuracy, the scored number of a run, and the shared evaluation plumbing.

Every evaluation in this package runs the model in eval mode (BN running
statistics, no dropout) and restores each submodule's own train/eval flag
afterwards, so the trainer can call it between epochs. Batches are any iterable
of ``(x, y)`` with ``x`` float ``[B, C, H, W]`` in ``[0, 1]`` (the model
normalises internally), e.g. ``TensorBatcher(..., train=False).epoch()`` or
:func:`array_batches`.
"""
from __future__ import annotations

import statistics
from typing import Iterable, Iterator, Sequence

import torch
from torch import nn

from ..errors import InvalidParameterError
from ..validation import eval_mode  # noqa: F401  (re-exported for the evaluations)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless model)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def check_batch_size(batch_size: int) -> int:
    if not (isinstance(batch_size, int) and batch_size > 0):
        raise InvalidParameterError("batch_size", batch_size, "a positive integer")
    return batch_size


def array_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, device=None) -> Iterator:
    """Fixed-order, unaugmented batches of a whole split held as uint8 [N, H, W, C] tensors.

    The images go to ``device`` once as uint8; each batch becomes float [0, 1] NCHW
    only when it is needed (``TensorBatcher`` in eval mode).
    """
    from ..data.batching import TensorBatcher

    check_batch_size(batch_size)
    device = "cpu" if device is None else device
    return TensorBatcher(images, labels, batch_size, train=False, device=device, padding=0).epoch()


@torch.no_grad()
def predict_logits(model: nn.Module, batches: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of every batch, concatenated on the CPU (float32 logits, int64 labels)."""
    logits, labels = [], []
    with eval_mode(model):
        for x, y in batches:
            logits.append(model(x).float().cpu())
            labels.append(y.cpu())
    if not logits:
        raise InvalidParameterError("batches", "an empty iterable", "at least one (x, y) batch")
    return torch.cat(logits), torch.cat(labels).long()


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int]) -> dict[int, torch.Tensor]:
    """Boolean [N] per k: whether the label is among the k highest logits."""
    num_classes = logits.shape[1]
    for k in ks:
        if not (isinstance(k, int) and 1 <= k <= num_classes):
            raise InvalidParameterError("k", k, f"an integer in [1, {num_classes}] (the number of classes)")
    top = logits.topk(max(ks), dim=1).indices
    hits = top == labels[:, None]
    return {k: hits[:, :k].any(1) for k in ks}


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """{'top1': %, 'top5': %} from precomputed logits."""
    return {f"top{k}": 100.0 * hit.double().mean().item() for k, hit in topk_correct(logits, labels, ks).items()}


def evaluate_topk(model: nn.Module, batches: Iterable, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy in percent over all batches (top-5 is skipped for fewer than 5 classes by asking ks=(1,))."""
    return topk_accuracy(*predict_logits(model, batches), ks)


def score_last_epochs(values: Sequence[float], window: int = 10) -> dict[str, float]:
    """The reported number of a run from its per-epoch top-1 accuracies.

    The papers' rule and the reference scripts' window: book/protocol_notes.md, "How the papers
    score a run".

    - ``median_last{window}``: the paper's rule, median over the last ``window`` epochs;
    - ``median_ref_window{window+1}``: the reference summary script, epochs >= E - window,
      i.e. ``window + 1`` values;
    - ``final``: the last epoch; ``best``: the maximum over all epochs (an upward selection,
      shown only to measure how much it adds).
    With fewer epochs than a window, the window takes every epoch there is.
    """
    if not (isinstance(window, int) and window > 0):
        raise InvalidParameterError("window", window, "a positive integer (number of epochs)")
    values = [float(v) for v in values]
    if not values:
        raise InvalidParameterError("values", values, "at least one per-epoch accuracy")
    return {
        f"median_last{window}": statistics.median(values[-window:]),
        f"median_ref_window{window + 1}": statistics.median(values[-(window + 1) :]),
        "final": values[-1],
        "best": max(values),
    }

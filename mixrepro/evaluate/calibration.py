"""Expected calibration error and reliability diagrams (book/protocol_notes.md, "Calibration (ECE)").

Confidence is the maximum softmax probability. Bins are equal-width intervals
(a, b] of [0, 1] (the first bin also holds a confidence of exactly 0, which a
softmax never gives). ECE = sum_m |B_m|/N * |acc(B_m) - conf(B_m)|.

:func:`ece_reference_sorted` is the reference code's faulty variant, kept only
to measure how much it changes the published numbers: it is wrong.
"""
from __future__ import annotations

import torch

from ..errors import InvalidParameterError

REPORTED_BINS = (10, 15)


def _check_bins(n_bins: int) -> int:
    if not (isinstance(n_bins, int) and n_bins > 0):
        raise InvalidParameterError("n_bins", n_bins, "a positive integer")
    return n_bins


def _looks_like_probs(t: torch.Tensor) -> bool:
    sums_to_one = torch.allclose(t.sum(1), torch.ones(len(t), dtype=t.dtype), atol=1e-4)
    return bool(t.min() >= 0 and t.max() <= 1 and sums_to_one)


def confidence_and_correct(probs_or_logits: torch.Tensor, labels: torch.Tensor, from_logits: bool | None = None):
    """(confidence [N] float64, correct [N] bool) from probabilities or logits [N, K].

    ``from_logits=None`` decides by looking: rows that are non-negative, at most 1 and
    sum to 1 are taken as probabilities, anything else as logits.
    """
    t = probs_or_logits.detach().double().cpu()
    if t.ndim != 2 or len(t) != len(labels):
        raise InvalidParameterError("probs_or_logits", tuple(t.shape), f"[N, K] with N = {len(labels)} labels")
    if from_logits is None:
        from_logits = not _looks_like_probs(t)
    probs = t.softmax(1) if from_logits else t
    confidence, prediction = probs.max(1)
    return confidence, prediction == labels.cpu().long()


def bin_index(confidence: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Index of the (a, b] bin of each confidence; float64 edges linspace(0, 1, n_bins + 1)."""
    inner_edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)[1:-1]
    return torch.bucketize(confidence, inner_edges, right=False)  # edge e < c <= next edge


def binned_statistics(probs_or_logits, labels, n_bins: int = 10, from_logits: bool | None = None) -> dict:
    """Per-bin count, accuracy and mean confidence as float64 tensors (NaN for empty bins)."""
    _check_bins(n_bins)
    confidence, correct = confidence_and_correct(probs_or_logits, labels, from_logits)
    index = bin_index(confidence, n_bins)
    count = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, torch.ones_like(confidence))
    hits = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct.double())
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, confidence)
    return {"count": count, "accuracy": hits / count, "confidence": conf_sum / count, "n": len(confidence)}


def ece(probs_or_logits, labels, n_bins: int = 10, from_logits: bool | None = None) -> float:
    """Expected calibration error as a fraction in [0, 1] (multiply by 100 for the papers' %)."""
    s = binned_statistics(probs_or_logits, labels, n_bins, from_logits)
    filled = s["count"] > 0
    gaps = (s["accuracy"][filled] - s["confidence"][filled]).abs()
    return float((s["count"][filled] / s["n"] * gaps).sum())


def ece_reference_sorted(probs_or_logits, labels, n_bins: int = 10, from_logits: bool | None = None) -> float:
    """WRONG, on purpose: the reference code's ECE, kept to measure its effect (protocol notes, "Calibration").

    The reference sorts the per-bin accuracies and the per-bin confidences
    independently before pairing them, so a bin's accuracy is compared with
    another bin's confidence. Our reading of it: over the non-empty bins, the
    ascending accuracies and ascending confidences are paired rank by rank and
    weighted by the bin counts in bin order. It equals :func:`ece` whenever
    both arrays are already in the same order (e.g. accuracy rising with
    confidence), and is never larger than it when the counts are equal.
    """
    s = binned_statistics(probs_or_logits, labels, n_bins, from_logits)
    filled = s["count"] > 0
    acc_sorted = s["accuracy"][filled].sort().values
    conf_sorted = s["confidence"][filled].sort().values
    return float((s["count"][filled] / s["n"] * (acc_sorted - conf_sorted).abs()).sum())


def reliability_diagram_data(probs_or_logits, labels, n_bins: int = 10, from_logits: bool | None = None) -> dict:
    """JSON-able reliability diagram: bin edges, counts, accuracy and confidence (None where empty)."""
    s = binned_statistics(probs_or_logits, labels, n_bins, from_logits)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)

    def listed(t):
        return [None if v != v else float(v) for v in t.tolist()]  # NaN (empty bin) -> None

    return {
        "bin_lower": edges[:-1].tolist(),
        "bin_upper": edges[1:].tolist(),
        "count": [int(c) for c in s["count"].tolist()],
        "accuracy": listed(s["accuracy"]),
        "confidence": listed(s["confidence"]),
    }


def calibration_report(probs_or_logits, labels, bins=REPORTED_BINS, from_logits: bool | None = None) -> dict:
    """ECE in percent for each bin count, the labelled reference variant, and reliability data."""
    report = {}
    for n in bins:
        report[f"ece_percent_{n}bins"] = 100 * ece(probs_or_logits, labels, n, from_logits)
        report[f"ece_percent_{n}bins_reference_sorted_WRONG"] = 100 * ece_reference_sorted(
            probs_or_logits, labels, n, from_logits
        )
        report[f"reliability_{n}bins"] = reliability_diagram_data(probs_or_logits, labels, n, from_logits)
    return report

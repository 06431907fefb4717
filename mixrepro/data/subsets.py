"""Seeded, class-balanced subsets (the budgets' ``train_subset`` / ``test_subset``)."""
from __future__ import annotations

import torch

from ..errors import InvalidParameterError


def _rank_within_class(labels: torch.Tensor) -> torch.Tensor:
    """For each position, how many earlier positions hold the same label."""
    sorted_labels, order = torch.sort(labels, stable=True)
    counts = torch.bincount(sorted_labels)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(labels)
    rank[order] = torch.arange(len(labels)) - starts[sorted_labels]
    return rank


def balanced_subset(labels, n: int, seed: int) -> torch.Tensor:
    """Indices (int64) of ``n`` samples with class counts as equal as possible.

    Each class's samples are taken in a seeded random order, one class after
    another in rounds (round r takes every class's r-th sample, classes in a
    seeded order per round). The result is a prefix of that sequence, so the
    subset of size n is the first n indices of any larger subset with the same
    seed ("prefix-stable"): growing a budget only adds images. A class with too
    few samples simply drops out of later rounds.
    """
    labels = torch.as_tensor(labels).to("cpu", torch.int64).flatten()
    if not (isinstance(n, int) and 0 < n <= len(labels)):
        raise InvalidParameterError("n", n, f"an integer in 1..{len(labels)} (the number of samples)")
    if len(labels) and int(labels.min()) < 0:
        raise InvalidParameterError("labels", int(labels.min()), "non-negative class indices")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(labels), generator=gen)
    permuted = labels[perm]
    rank = _rank_within_class(permuted)
    num_classes = int(permuted.max()) + 1
    rounds = int(rank.max()) + 1
    keys = torch.rand(rounds, num_classes, generator=gen)
    position_in_round = keys.argsort(1).argsort(1)  # [round, class] -> place of the class in that round
    sequence = rank * num_classes + position_in_round[rank, permuted]
    return perm[sequence.argsort()[:n]]

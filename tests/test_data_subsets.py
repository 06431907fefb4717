"""balanced_subset: balance, prefix stability, seeding, uneven classes."""
import pytest
import torch

from mixrepro.data.subsets import balanced_subset
from mixrepro.errors import InvalidParameterError


def shuffled_labels(per_class=50, classes=10, seed=0):
    labels = torch.arange(classes).repeat_interleave(per_class)
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


@pytest.mark.parametrize("n", [1, 7, 10, 95, 100, 333, 500])
def test_class_counts_differ_by_at_most_one(n):
    labels = shuffled_labels()
    idx = balanced_subset(labels, n, seed=3)
    assert idx.dtype == torch.int64 and len(idx) == n and len(set(idx.tolist())) == n
    counts = torch.bincount(labels[idx], minlength=10)
    assert counts.max() - counts.min() <= 1
    if n % 10 == 0:
        assert (counts == n // 10).all()


def test_prefix_stable_seeded_and_deterministic():
    labels = shuffled_labels()
    full = balanced_subset(labels, 500, seed=1)
    for n in (1, 13, 100, 499):
        assert torch.equal(balanced_subset(labels, n, seed=1), full[:n])
    assert torch.equal(balanced_subset(labels, 100, seed=1), balanced_subset(labels, 100, seed=1))
    assert set(balanced_subset(labels, 100, seed=2).tolist()) != set(balanced_subset(labels, 100, seed=1).tolist())
    assert sorted(full.tolist()) == list(range(500))


def test_uneven_classes_take_all_of_a_small_class_then_the_rest():
    labels = torch.tensor([0] * 3 + [1] * 20 + [2] * 20)
    counts = torch.bincount(labels[balanced_subset(labels, 13, seed=0)], minlength=3)
    assert counts.tolist() == [3, 5, 5]


def test_extra_samples_go_to_varying_classes_across_seeds():
    labels = shuffled_labels()
    favoured = {int(torch.bincount(labels[balanced_subset(labels, 11, seed=s)]).argmax()) for s in range(20)}
    assert len(favoured) > 1  # which class gets the 11th sample is drawn, not always class 0


@pytest.mark.parametrize("n", [0, -1, 501, 2.5])
def test_invalid_n_raises(n):
    with pytest.raises(InvalidParameterError):
        balanced_subset(shuffled_labels(), n, seed=0)

"""TensorBatcher: batched crop/flip against per-image references, coverage, determinism."""
import math

import pytest
import torch
import torch.nn.functional as F

from mixrepro.data.batching import TensorBatcher
from mixrepro.errors import InvalidParameterError

PAD = 4


def coordinate_images(n: int, size: int = 32) -> torch.Tensor:
    """uint8 [n, size, size, 3]: channel 0 = 8*row, channel 1 = 8*col, channel 2 = image index % 251."""
    rows = torch.arange(size).view(1, size, 1).expand(n, size, size)
    cols = torch.arange(size).view(1, 1, size).expand(n, size, size)
    ids = torch.arange(n).view(n, 1, 1).expand(n, size, size) % 251
    return torch.stack([rows * 8, cols * 8, ids], dim=-1).to(torch.uint8)


def decode_offsets(x: torch.Tensor):
    """(dy, dx, flipped) of each crop, read back from coordinate-encoded output pixels.

    Output row 4 / column 4 of a crop at padded offset (dy, dx) shows source row dy /
    column dx (no reflection there, since dy, dx <= 8 < 32). Flipped crops show
    column dx at output column 27 and decrease from left to right.
    """
    pix = (x * 255).round().long()
    rows, cols = pix[:, 0] // 8, pix[:, 1] // 8
    flipped = cols[:, 16, 17] < cols[:, 16, 16]
    dy = rows[:, 4, 16]
    dx = torch.where(flipped, cols[:, 16, 27], cols[:, 16, 4])
    return dy, dx, flipped


def reference_crop(image_hwc: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    """Independent per-image computation: reflect-pad, slice, mirror."""
    padded = F.pad(image_hwc.permute(2, 0, 1).float()[None], (PAD, PAD, PAD, PAD), mode="reflect")[0]
    h, w = image_hwc.shape[:2]
    crop = padded[:, dy : dy + h, dx : dx + w]
    return (crop.flip(-1) if flip else crop) / 255


def test_crop_offsets_cover_all_81_positions_uniformly_and_flip_half():
    images = coordinate_images(4050)
    batcher = TensorBatcher(images, torch.zeros(4050, dtype=torch.long), 450, train=True)
    gen = torch.Generator().manual_seed(0)
    decoded = [decode_offsets(x) for _ in range(2) for x, _ in batcher.epoch(gen)]
    dy, dx, flipped = (torch.cat(parts) for parts in zip(*decoded))
    n = len(dy)
    assert n == 8100 and dy.min() == 0 and dy.max() == 2 * PAD and dx.min() == 0 and dx.max() == 2 * PAD
    counts = torch.bincount(dy * 9 + dx, minlength=81).double()
    assert (counts > 0).all()
    expected = n / 81
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 135  # chi-square, 80 degrees of freedom: p ~ 1e-4
    assert abs(flipped.double().mean().item() - 0.5) < 4 * math.sqrt(0.25 / n)


def test_crops_equal_independent_reflect_pad_reference():
    gen_data = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (64, 32, 32, 3), generator=gen_data, dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,), generator=gen_data)
    batcher = TensorBatcher(images, labels, 16, train=True)
    plan = batcher.plan_epoch(torch.Generator().manual_seed(5))
    xs, ys = zip(*batcher.iterate(plan))
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.dtype == torch.float32 and x.shape == (64, 3, 32, 32)
    assert torch.equal(y, labels[plan.order])
    assert plan.flip.any() and (~plan.flip).any()
    for k in range(64):
        i = int(plan.order[k])
        ref = reference_crop(images[i], int(plan.dy[k]), int(plan.dx[k]), bool(plan.flip[k]))
        assert torch.equal(x[k], ref), k


def test_non_square_single_channel_images_and_other_padding():
    images = torch.randint(0, 256, (10, 20, 28, 1), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    batcher = TensorBatcher(images, torch.arange(10), 5, train=True, padding=2)
    plan = batcher.plan_epoch(torch.Generator().manual_seed(0))
    x = torch.cat([b for b, _ in batcher.iterate(plan)])
    assert x.shape == (10, 1, 20, 28) and plan.dy.max() <= 4
    for k in range(10):
        i, dy, dx, f = int(plan.order[k]), int(plan.dy[k]), int(plan.dx[k]), bool(plan.flip[k])
        padded = F.pad(images[i].permute(2, 0, 1).float()[None], (2, 2, 2, 2), mode="reflect")[0]
        crop = padded[:, dy : dy + 20, dx : dx + 28]
        assert torch.equal(x[k], (crop.flip(-1) if f else crop) / 255)


def test_same_seed_same_batches_different_seed_different():
    images = torch.randint(0, 256, (50, 32, 32, 3), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    batcher = TensorBatcher(images, torch.arange(50), 10, train=True)

    def run(seed):
        return list(batcher.epoch(torch.Generator().manual_seed(seed)))

    a, b, c = run(7), run(7), run(8)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not all(torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_consecutive_epochs_differ_and_use_every_sample_once():
    batcher = TensorBatcher(coordinate_images(30), torch.arange(30), 10, train=True)
    gen = torch.Generator().manual_seed(0)
    first = torch.cat([y for _, y in batcher.epoch(gen)])
    second = torch.cat([y for _, y in batcher.epoch(gen)])
    assert sorted(first.tolist()) == list(range(30)) and sorted(second.tolist()) == list(range(30))
    assert not torch.equal(first, second)


def test_test_mode_returns_images_unchanged_in_order_with_last_partial_batch():
    images = torch.randint(0, 256, (23, 32, 32, 3), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    labels = torch.arange(23) % 10
    batcher = TensorBatcher(images, labels, 10, train=False)
    batches = list(batcher.epoch())
    assert len(batcher) == 3 and [len(y) for _, y in batches] == [10, 10, 3]
    x = torch.cat([b for b, _ in batches])
    assert torch.equal(x, images.permute(0, 3, 1, 2).float() / 255)
    assert torch.equal(torch.cat([y for _, y in batches]), labels)


def test_train_mode_len_drops_the_last_partial_batch_by_default():
    images = torch.zeros(23, 8, 8, 3, dtype=torch.uint8)
    assert len(TensorBatcher(images, torch.zeros(23), 10, train=True)) == 2
    assert len(TensorBatcher(images, torch.zeros(23), 10, train=True, drop_last=False)) == 3
    batches = list(TensorBatcher(images, torch.zeros(23), 10, train=True).epoch(torch.Generator()))
    assert [len(y) for _, y in batches] == [10, 10]


def test_no_flip_option_and_zero_padding_give_plain_shuffle():
    images = coordinate_images(40)
    batcher = TensorBatcher(images, torch.arange(40), 40, train=True, padding=0, flip=False)
    (x, y), = list(batcher.epoch(torch.Generator().manual_seed(0)))
    assert torch.equal(x, images[y].permute(0, 3, 1, 2).float() / 255)


def test_draws_come_only_from_the_given_generator():
    batcher = TensorBatcher(coordinate_images(20), torch.arange(20), 5, train=True)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    list(batcher.epoch(torch.Generator().manual_seed(1)))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(images=torch.zeros(4, 8, 8, 3), batch_size=2),  # float, not uint8
        dict(images=torch.zeros(4, 8, 8, dtype=torch.uint8), batch_size=2),  # 3-d
        dict(images=torch.zeros(4, 8, 8, 3, dtype=torch.uint8), batch_size=0),
        dict(images=torch.zeros(4, 8, 8, 3, dtype=torch.uint8), batch_size=2, padding=8),
        dict(images=torch.zeros(4, 8, 8, 3, dtype=torch.uint8), batch_size=5),  # no full batch in train mode
    ],
)
def test_invalid_arguments_raise(kwargs):
    images = kwargs.pop("images")
    with pytest.raises(InvalidParameterError):
        TensorBatcher(images, torch.zeros(len(images)), train=True, **kwargs)


def test_train_mode_requires_a_generator():
    batcher = TensorBatcher(torch.zeros(4, 8, 8, 3, dtype=torch.uint8), torch.zeros(4), 2, train=True)
    with pytest.raises(InvalidParameterError):
        batcher.epoch(None)

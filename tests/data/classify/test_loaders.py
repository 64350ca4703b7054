"""The batching rule: deterministic per (seed, epoch), same global batches for any number of processes."""

import torch

from vislab.data.classify.source import ImageSource
from vislab.data.classify.stream import BatchAugment, BatchStream


def _src(n=37, size=8, lazy=False):
    g = torch.Generator().manual_seed(1)
    imgs = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 3
    if not lazy:
        return ImageSource(["a", "b", "c"], labels, images=imgs, size=(size, size), channels=3, name="t")
    src = ImageSource(["a", "b", "c"], labels, paths=[str(i) for i in range(n)], size=(size, size), channels=3, name="t",
                      decode=lambda p: imgs[int(p)].permute(1, 2, 0).numpy())
    return src


def _stream(src, **kw):
    args = dict(train=True, device=torch.device("cpu"), mean=(0.5,) * 3, std=(0.25,) * 3, augment="standard", seed=3)
    args.update(kw)
    return BatchStream(src, 8, **args)


def test_same_seed_same_epoch_same_batches():
    a = [b.x for b in _stream(_src()).epoch(2)]
    b = [b.x for b in _stream(_src()).epoch(2)]
    c = [b.x for b in _stream(_src()).epoch(3)]
    assert len(a) == 37 // 8
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_ranks_partition_the_global_batch():
    one = list(_stream(_src()).epoch(1))
    r0 = list(_stream(_src(), rank=0, world=2).epoch(1))
    r1 = list(_stream(_src(), rank=1, world=2).epoch(1))
    for g, a, b in zip(one, r0, r1, strict=True):
        assert a.n_global == b.n_global == g.n_global == 8
        # the two shares, interleaved, are exactly the single-process batch (augmentation included)
        merged = torch.empty_like(g.x)
        merged[0::2], merged[1::2] = a.x, b.x
        assert torch.equal(merged, g.x)
        assert torch.equal(torch.sort(torch.cat([a.index, b.index])).values, torch.sort(g.index).values)


def test_fast_path_equals_dataloader_path():
    fast = list(_stream(_src()).epoch(0))
    slow = list(_stream(_src(lazy=True), fast_path=False).epoch(0))
    assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y) for a, b in zip(fast, slow, strict=True))


def test_eval_covers_every_image_once_without_augmentation():
    s = _stream(_src(), train=False)
    idx = torch.cat([b.index for b in s.epoch(0)])
    assert torch.equal(idx, torch.arange(37))
    x = next(iter(s.epoch(0))).x
    raw = _src().images[:8].float() / 255
    assert torch.allclose(x, (raw - 0.5) / 0.25)


def test_translate_and_flip():
    aug = BatchAugment("standard", (32, 32))
    x = torch.arange(2 * 1 * 32 * 32, dtype=torch.float32).view(2, 1, 32, 32)
    p = aug.pad
    flips = torch.tensor([True, False])
    dy, dx = torch.tensor([p, p]), torch.tensor([p, p + 1])  # p = no shift; p+1 = shift left by one
    y = aug(x, flips, dy, dx)
    assert torch.equal(y[0], x[0].flip(-1))
    assert torch.equal(y[1, :, :, :-1], x[1, :, :, 1:])


def test_a_process_with_no_share_of_the_last_eval_batch_gets_an_empty_batch_on_both_paths():
    """37 images in evaluation batches of 36 over 3 processes: the last batch holds 1 image, so processes 1 and 2 have
    no share of it -- an empty batch (the DataLoader path used to fail there)."""
    for lazy in (False, True):
        shares = [list(BatchStream(_src(lazy=lazy), 36, train=False, device=torch.device("cpu"), mean=(0.5,) * 3, std=(0.25,) * 3,
                                   rank=r, world=3, fast_path=not lazy).epoch(0)) for r in range(3)]
        assert [len(s) for s in shares] == [2, 2, 2]
        assert [len(s[1]) for s in shares] == [1, 0, 0] and all(s[1].n_global == 1 for s in shares)
        assert shares[1][1].x.shape == (0, 3, 8, 8)
        idx = torch.sort(torch.cat([b.index for s in shares for b in s])).values
        assert torch.equal(idx, torch.arange(37))

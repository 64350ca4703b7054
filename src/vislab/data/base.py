"""What every kind of data shares: the fields of a data section, the global-batch rule, batch flip/translate,
and the normalisation statistics.

**The global-batch rule.** Each epoch is cut into *global* batches from a permutation seeded by ``(seed, epoch)``
(:func:`global_batches`); a process takes the strided share ``batch[rank::world]``. Augmentation parameters are
drawn per global batch from :func:`epoch_generator` and sliced the same way. So 1 process and N processes
see the same samples per optimizer step, and a resumed run needs no RNG state beyond ``(seed, epoch)``.
Every stream (classification, segmentation, detection, and the tasks to come) follows it.

Example:
    >>> [b.tolist() for b in global_batches(5, 2, train=False, seed=0, epoch=0)]
    [[0, 1], [2, 3], [4]]
    >>> len(global_batches(5, 2, train=True, seed=0, epoch=0))  # training drops the last partial batch
    2
    >>> image_stats(torch.full((4, 3, 2, 2), 255, dtype=torch.uint8))
    ((1.0, 1.0, 1.0), (0.001, 0.001, 0.001))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vislab.core.config import opt


@dataclass
class ImageDataConfig:
    """The fields every task's data section has. A task's section subclasses it, declares ``data`` again with
    its own default and formats, and adds its own fields; its task config may set other defaults (detection
    trains at ``--img-size 64``)."""

    data: str = opt("", "dataset: a generated one by name, or a path")
    img_size: int = opt(0, "resize images (with their masks and boxes) to this square size (0: the dataset's own size; a folder: its first image's)")
    val_split: float = opt(0.1, "fraction of the training images held out for validation when the dataset has no val split")
    split_seed: int = opt(0, "seed of the train/val/test split and of generated data (independent of --seed)")
    batch_size: int = opt(32, "global batch size per optimizer micro-step (split across processes)")
    eval_batch_size: int = opt(0, "batch size for evaluation (0: 2 x batch-size)")

    def eval_batch(self) -> int:
        """The evaluation batch size (``eval_batch_size``, or twice the training batch)."""
        return self.eval_batch_size or 2 * self.batch_size


def epoch_generator(seed: int, epoch: int, salt: int = 0) -> torch.Generator:
    """A CPU generator that depends only on (seed, epoch, salt): resumable and rank-independent."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7919 + salt) % (2**63 - 1))


def global_batches(n: int, batch_size: int, train: bool, seed: int, epoch: int) -> list[torch.Tensor]:
    """Dataset indices of each global batch of ``epoch``: a permutation seeded by (seed, epoch) cut into
    ``batch_size`` chunks when training (the last partial one dropped), ``0..n-1`` in order otherwise.
    Every process computes the same list and takes its strided share ``batch[rank::world]``."""
    order = torch.randperm(n, generator=epoch_generator(seed, epoch)) if train else torch.arange(n)
    chunks = list(order.split(batch_size))
    if train and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    return chunks


def train_batch_size(batch_size: int, n: int, world: int) -> int:
    """The global training batch for ``n`` samples: at most ``n``, at least one sample per process."""
    return max(world, min(batch_size, n))


AUGMENT_PRESETS = {"none": (False, 0), "light": (False, 2), "standard": (True, 2)}  # (flip, translate px at 32px)


class BatchAugment:
    """Random horizontal flip and pad-and-crop translation on ``(B, C, H, W)`` batches.

    Parameters are drawn from a generator for the *whole global batch* and then sliced, so the
    result does not depend on how many processes share the batch.
    """

    def __init__(self, preset: str, size: tuple[int, int]):
        flip, pad = AUGMENT_PRESETS[preset]
        self.flip = flip
        self.pad = max(1, round(pad * min(size) / 32)) if pad else 0  # 2 px at 32x32, scaled with size

    @property
    def active(self) -> bool:
        return self.flip or self.pad > 0

    def params(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flips = torch.rand(n, generator=g) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        dy = torch.randint(0, 2 * self.pad + 1, (n,), generator=g) if self.pad else torch.zeros(n, dtype=torch.long)
        dx = torch.randint(0, 2 * self.pad + 1, (n,), generator=g) if self.pad else torch.zeros(n, dtype=torch.long)
        return flips, dy, dx

    def __call__(self, x: torch.Tensor, flips: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        dev = x.device
        if self.flip and bool(flips.any()):
            f = flips.to(dev)
            x = torch.where(f[:, None, None, None], x.flip(3), x)
        if self.pad:
            p = self.pad
            b, c, h, w = x.shape
            xp = F.pad(x, (p, p, p, p), mode="reflect")  # (b, c, h+2p, w+2p)
            rows = (torch.arange(h, device=dev)[None, :] + dy.to(dev)[:, None])  # (b, h)
            cols = (torch.arange(w, device=dev)[None, :] + dx.to(dev)[:, None])  # (b, w)
            bi = torch.arange(b, device=dev)[:, None, None]
            x = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (b, c, h, w)
        return x


def image_stats(images: torch.Tensor | None, n: int | None = None, get: Callable[[int], torch.Tensor] | None = None,
                max_images: int = 2000, max_decoded: int = 256) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (0..1 scale, rounded to 4 decimals) of up to ``max_images`` evenly spaced images.

    Args:
        images: ``(N, C, H, W)`` uint8 in memory; or None with ``n`` and ``get(i) -> (C, H, W)`` uint8 for images
            decoded on demand (then at most ``max_decoded`` of them are read).
    """
    count = len(images) if images is not None else int(n or 0)
    idx = torch.linspace(0, count - 1, min(count, max_images)).round().long().unique()
    if images is not None:
        x = images[idx].float() / 255.0
    else:
        assert get is not None
        x = torch.stack([get(int(i)) for i in idx[:max_decoded]]).float() / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)

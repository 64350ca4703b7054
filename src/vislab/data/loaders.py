"""Batches for the engine: the in-memory fast path and the DataLoader path, one batching rule.

Both paths cut each epoch into the same *global* batches (a seeded permutation per epoch) and give
each process its strided share, so 1 process and N processes see the same samples per optimizer step
and the same augmentation parameters (drawn per global batch). Augmentation (flip, pad-and-crop
translate) runs on whole batches on the training device -- the airbench trick -- for both paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vislab.data.base import ImageSource

AUGMENT_PRESETS = {"none": (False, 0), "light": (False, 2), "standard": (True, 2)}  # (flip, translate px at 32px)


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


@dataclass
class Batch:
    """One process's share of a global batch."""

    x: torch.Tensor  # (b, C, H, W) float, normalised, on device
    y: torch.Tensor  # (b,) int64 on device
    n_global: int  # samples in the whole global batch, across processes
    index: torch.Tensor | None = None  # (b,) dataset indices (for predictions)
    y2: torch.Tensor | None = None  # (b,) partner labels of mixup / cutmix
    lam: torch.Tensor | None = None  # () weight of ``y`` in the mixed target (``1 - lam`` for ``y2``)

    def __len__(self) -> int:
        return len(self.x)


class _Decoded(torch.utils.data.Dataset):
    def __init__(self, src: ImageSource):
        self.src = src

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.src.get(i), int(self.src.labels[i])


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


class BatchStream:
    """Iterate one process's batches of an :class:`ImageSource`, epoch by epoch.

    Args:
        source: the images (in memory -> fast path; lazy -> DataLoader with ``workers``).
        batch_size: the global batch size (all processes together).
        train: shuffle, drop the last partial batch, augment.
        mean, std: per-channel normalisation (0..1 scale).
        rank, world: this process and the number of processes.
        channels_last: give batches in channels_last memory format.
        augment: a preset (none, light, standard, strong) or a comma list of operations
            (:mod:`vislab.data.augment`); none / light / standard run on :class:`BatchAugment`.
        mixup_alpha, cutmix_alpha: Beta parameters for the ``mixup`` / ``cutmix`` operations.
    """

    def __init__(
        self,
        source: ImageSource,
        batch_size: int,
        *,
        train: bool,
        device: torch.device,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        augment: str = "none",
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        workers: int = 0,
        channels_last: bool = False,
        fast_path: bool = True,
        mixup_alpha: float = 0.2,
        cutmix_alpha: float = 1.0,
    ):
        self.src = source
        self.train = train
        self.device = device
        self.seed = seed
        self.rank, self.world = rank, world
        self.workers = workers
        self.channels_last = channels_last
        n = len(source)
        self.batch_size = max(world, min(batch_size, n)) if train else batch_size
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        from vislab.data.augment import LEGACY, BatchPipeline, parse_augment

        spec = augment if train else "none"
        self.aug = BatchAugment(spec if spec in LEGACY else "none", source.size)
        self.pipeline = None if spec in LEGACY else BatchPipeline(parse_augment(spec), source.size, source.channels, mixup_alpha, cutmix_alpha)
        self.fast = fast_path and source.in_memory
        if self.fast:
            self.images = source.images.to(device)  # (N, C, H, W) uint8, decoded once
            self.labels = source.labels.to(device)

    def __len__(self) -> int:
        n = len(self.src)
        return n // self.batch_size if self.train else math.ceil(n / self.batch_size)

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        return global_batches(len(self.src), self.batch_size, self.train, self.seed, epoch)

    def _prepare(self, x: torch.Tensor, g: torch.Generator | None, n_global: int, rank_sel: slice) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True).float().div_(255.0)
        if self.aug.active and g is not None:
            flips, dy, dx = (p[rank_sel] for p in self.aug.params(n_global, g))
            x = self.aug(x, flips, dy, dx)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _make(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator | None, n_global: int, rank_sel: slice, index) -> Batch:
        if self.pipeline is None or g is None:
            return Batch(self._prepare(x, g, n_global, rank_sel), y, n_global, index)
        xf, y2, lam = self.pipeline(x.to(self.device, non_blocking=True), y, g, n_global, rank_sel)
        xf = (xf - self.mean) / self.std
        xf = xf.contiguous(memory_format=torch.channels_last) if self.channels_last else xf
        return Batch(xf, y, n_global, index, y2, lam)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """Yield this process's share of each global batch of ``epoch`` (deterministic in seed, epoch)."""
        batches = self._global_batches(epoch)
        rank_sel = slice(self.rank, None, self.world)
        if self.fast:
            for k, gb in enumerate(batches):
                local = gb[rank_sel]
                g = epoch_generator(self.seed, epoch, salt=k + 1) if self.train else None
                idx = local.to(self.device)
                yield self._make(self.images[idx], self.labels[idx], g, len(gb), rank_sel, local)
            return
        loader = torch.utils.data.DataLoader(
            _Decoded(self.src),
            batch_sampler=[gb[rank_sel].tolist() for gb in batches],
            num_workers=self.workers,
            persistent_workers=False,
        )
        for k, ((x, y), gb) in enumerate(zip(loader, batches, strict=True)):
            g = epoch_generator(self.seed, epoch, salt=k + 1) if self.train else None
            yield self._make(x, y.to(self.device), g, len(gb), rank_sel, gb[rank_sel])


def channel_stats(src: ImageSource, max_images: int = 2000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (0..1 scale) from up to ``max_images`` evenly spaced training images."""
    n = len(src)
    idx = torch.linspace(0, n - 1, min(n, max_images)).round().long().unique()
    if src.images is not None:
        x = src.images[idx].float() / 255.0
    else:
        x = torch.stack([src.get(int(i)) for i in idx[:256]]).float() / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)

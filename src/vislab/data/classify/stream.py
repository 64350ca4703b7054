"""Classification batches for the engine: the in-memory fast path and the DataLoader path, one batching rule.

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

from vislab.data.base import BatchAugment, epoch_generator, global_batches, train_batch_size
from vislab.data.classify.source import ImageSource

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
            (:mod:`vislab.data.classify.augment`); none / light / standard run on :class:`BatchAugment`.
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
        self.batch_size = train_batch_size(batch_size, n, world) if train else batch_size
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        from vislab.data.classify.augment import LEGACY, BatchPipeline, parse_augment

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
        shares = [gb[rank_sel].tolist() for gb in batches]
        loader = iter(torch.utils.data.DataLoader(
            _Decoded(self.src),
            batch_sampler=[sh for sh in shares if sh],  # a last eval batch smaller than the world leaves some processes none
            num_workers=self.workers,
            persistent_workers=False,
        ))
        for k, (gb, share) in enumerate(zip(batches, shares, strict=True)):
            if not share:
                c, (h, w) = self.src.channels, self.src.size
                yield Batch(torch.empty((0, c, h, w), device=self.device), torch.empty(0, dtype=torch.long, device=self.device), len(gb),
                            torch.empty(0, dtype=torch.long))
                continue
            x, y = next(loader)
            g = epoch_generator(self.seed, epoch, salt=k + 1) if self.train else None
            yield self._make(x, y.to(self.device), g, len(gb), rank_sel, gb[rank_sel])



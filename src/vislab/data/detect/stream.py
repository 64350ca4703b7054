"""Detection batches for the engine, by the global-batch rule of :mod:`vislab.data.base`: global batches from a
permutation seeded by (seed, epoch), each process takes ``batch[rank::world]``; augmentation parameters
(``--augment``, see :mod:`vislab.data.detect.augment`) are drawn per global batch and applied to images, boxes and
masks together.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from vislab.data.base import epoch_generator, global_batches, train_batch_size
from vislab.data.detect.augment import JointAugment
from vislab.data.detect.split import DetSplit


@dataclass
class DetBatch:
    """One process's share of a global batch."""

    x: torch.Tensor  # (b, 3, S, S) normalised, on device
    y: list[dict[str, torch.Tensor]]  # b target dicts on device
    n_global: int
    index: torch.Tensor
    sizes: list[tuple[int, int]] | None = None  # the images' original (width, height), for metrics at that scale

    def __len__(self) -> int:
        return len(self.x)


class DetStream:
    """Batches of a :class:`DetSplit` by the shared rule (see the module docstring)."""

    def __init__(self, split: DetSplit, batch_size: int, *, train: bool, device: torch.device, mean, std,
                 augment: str = "flip", seed: int = 0, rank: int = 0, world: int = 1, channels_last: bool = False):
        self.split, self.train, self.device, self.seed = split, train, device, seed
        self.rank, self.world, self.channels_last = rank, world, channels_last
        self.batch_size = train_batch_size(batch_size, len(split), world) if train else batch_size
        self.augment = JointAugment(augment if train else "none", mean=mean)
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.images = split.images.to(device)

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.train else math.ceil(n / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[DetBatch]:
        chunks = global_batches(len(self.split), self.batch_size, self.train, self.seed, epoch)
        sel = slice(self.rank, None, self.world)
        for k, gb in enumerate(chunks):
            local = gb[sel]
            x = self.images[local.to(self.device)].float().div_(255.0)
            ys = [{k: v.to(self.device) for k, v in self.split.targets[j].items()} for j in local.tolist()]
            if self.augment.preset != "none":  # parameters for the global batch, this process's share applied
                params = self.augment.sample(len(gb), epoch_generator(self.seed, epoch, salt=k + 1))[sel]
                x, ys = self.augment(x, ys, params)
            x = (x - self.mean) / self.std
            sizes = [self.split.sizes[j] for j in local.tolist()] if self.split.sizes is not None else None
            yield DetBatch(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x, ys, len(gb), local, sizes)

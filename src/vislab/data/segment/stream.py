"""Segmentation batches for the engine, by the global-batch rule of :mod:`vislab.data.base`.

:class:`SegBatchStream` takes global batches from a permutation seeded by ``(seed, epoch)``, the process takes
``batch[rank::world]``, augmentation parameters are drawn per global batch and sliced the same way, and the
augmentation (horizontal flip, reflect-pad-and-crop translation; ``strong``: :class:`JointAffineAugment`'s random
scale/crop, rotation and colour jitter) runs on the batch on the device -- applied to image and mask
*together*, so they stay aligned pixel for pixel.

Example:
    >>> from vislab.data.segment.source import generate_shapes_segmentation
    >>> s = generate_shapes_segmentation(4, classes=2, size=16, seed=0)
    >>> st = SegBatchStream(s, 2, train=True, device=torch.device("cpu"), mean=(0.5,) * 3, std=(0.25,) * 3, augment="standard")
    >>> b = next(iter(st.epoch(0)))
    >>> b.x.shape, b.y.shape, b.y.dtype, b.n_global
    (torch.Size([2, 3, 16, 16]), torch.Size([2, 16, 16]), torch.int64, 2)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from vislab.data.base import BatchAugment, epoch_generator, global_batches, train_batch_size
from vislab.data.segment.source import SegSource


@dataclass
class SegBatch:
    """One process's share of a global batch."""

    x: torch.Tensor  # (b, C, H, W) float, normalised, on device
    y: torch.Tensor  # (b, H, W) int64 class indices (ignore_index where ignored), on device
    n_global: int  # samples in the whole global batch
    index: torch.Tensor | None = None  # (b,) dataset indices

    def __len__(self) -> int:
        return len(self.x)


class SegBatchStream:
    """Iterate one process's batches of a :class:`SegSource`, epoch by epoch (in memory).

    Args:
        source: the split.
        batch_size: the global batch size (all processes together).
        train: shuffle, drop the last partial batch, augment.
        mean, std: per-channel normalisation (0..1 scale).
        augment: ``none | light | standard`` (see :data:`vislab.data.base.AUGMENT_PRESETS`) or ``strong``.
        rank, world: this process and the number of processes.
    """

    def __init__(self, source: SegSource, batch_size: int, *, train: bool, device: torch.device, mean: tuple[float, ...],
                 std: tuple[float, ...], augment: str = "none", seed: int = 0, rank: int = 0, world: int = 1,
                 channels_last: bool = False):
        self.src = source
        self.train, self.device, self.seed = train, device, seed
        self.rank, self.world = rank, world
        self.channels_last = channels_last
        n = len(source)
        self.batch_size = train_batch_size(batch_size, n, world) if train else batch_size
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.aug = BatchAugment(augment if train and augment != "strong" else "none", source.size)
        self.joint = JointAffineAugment() if train and augment == "strong" else None
        self.images = source.images.to(device)
        self.masks = source.masks.to(device)

    def __len__(self) -> int:
        n = len(self.src)
        return n // self.batch_size if self.train else math.ceil(n / self.batch_size)

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        return global_batches(len(self.src), self.batch_size, self.train, self.seed, epoch)

    def epoch(self, epoch: int) -> Iterator[SegBatch]:
        """Yield this process's share of each global batch of ``epoch`` (deterministic in seed, epoch)."""
        rank_sel = slice(self.rank, None, self.world)
        for k, gb in enumerate(self._global_batches(epoch)):
            local = gb[rank_sel]
            idx = local.to(self.device)
            x = self.images[idx].float().div_(255.0)  # (b, C, H, W)
            y = self.masks[idx].float()  # (b, H, W), exact small integers
            if self.train and self.aug.active:
                g = epoch_generator(self.seed, epoch, salt=k + 1)
                flips, dy, dx = (p[rank_sel] for p in self.aug.params(len(gb), g))
                both = self.aug(torch.cat([x, y[:, None]], 1), flips, dy, dx)  # one warp for image and mask
                x, y = both[:, :-1], both[:, -1]
            if self.joint is not None:
                g = epoch_generator(self.seed, epoch, salt=k + 1)
                x, y = self.joint(x, y, {n: p[rank_sel] for n, p in self.joint.params(len(gb), g).items()}, self.src.ignore_index)
            x = (x - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield SegBatch(x, y.round().long(), len(gb), local)


class JointAffineAugment:
    """Random flip, scale (zoom in = crop, zoom out = pad), rotation and shift: one affine warp per image,
    sampled for image *and* mask from the same grid (image bilinear, mask nearest), then brightness /
    contrast jitter of the image alone. Mask pixels whose source lies outside the image get ``ignore_index``
    (the image there is 0). Parameters are drawn for the whole global batch (see :class:`SegBatchStream`).

    Example:
        >>> aug = JointAffineAugment()
        >>> p = aug.params(2, torch.Generator().manual_seed(0))
        >>> x, y = aug(torch.rand(2, 3, 11, 9), torch.randint(0, 3, (2, 11, 9)).float(), p, 255)
        >>> x.shape, y.shape, set(y.unique().tolist()) <= {0.0, 1.0, 2.0, 255.0}
        (torch.Size([2, 3, 11, 9]), torch.Size([2, 11, 9]), True)
    """

    def __init__(self, scale: tuple[float, float] = (0.75, 1.5), degrees: float = 15.0, flip: bool = True,
                 brightness: float = 0.15, contrast: float = 0.2):
        self.scale, self.degrees, self.flip = scale, degrees, flip
        self.brightness, self.contrast = brightness, contrast

    def params(self, n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        u = torch.rand(n, 7, generator=g)  # one draw per image and parameter
        lo, hi = math.log(self.scale[0]), math.log(self.scale[1])
        s = torch.exp(lo + (hi - lo) * u[:, 0])  # log-uniform zoom
        reach = (1 - 1 / s).clamp_min(0.1)  # how far the crop window may move (normalised units)
        return {"scale": s, "angle": (2 * u[:, 1] - 1) * math.radians(self.degrees),
                "flip": (u[:, 2] < 0.5) if self.flip else torch.zeros(n, dtype=torch.bool),
                "tx": (2 * u[:, 3] - 1) * reach, "ty": (2 * u[:, 4] - 1) * reach,
                "brightness": (2 * u[:, 5] - 1) * self.brightness, "contrast": 1 + (2 * u[:, 6] - 1) * self.contrast}

    def __call__(self, x: torch.Tensor, y: torch.Tensor, p: dict[str, torch.Tensor], ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(b, C, H, W)`` in [0, 1], ``y`` ``(b, H, W)`` float class indices -> both warped the same way."""
        import torch.nn.functional as F

        b, _, h, w = x.shape
        dev = x.device
        s, a = p["scale"].to(dev), p["angle"].to(dev)
        cos, sin = torch.cos(a) / s, torch.sin(a) / s
        fx = torch.where(p["flip"].to(dev), -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=dev)  # output -> input, in normalised coords (rotation in pixel units)
        theta[:, 0, 0], theta[:, 0, 1] = cos * fx, -sin * h / w
        theta[:, 1, 0], theta[:, 1, 1] = sin * w / h * fx, cos
        theta[:, 0, 2], theta[:, 1, 2] = p["tx"].to(dev), p["ty"].to(dev)
        grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        m = F.grid_sample(y[:, None] + 1, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0]  # 0 = outside
        y = torch.where(m > 0, m - 1, torch.full_like(m, float(ignore_index)))
        c, br = p["contrast"].to(dev).view(-1, 1, 1, 1), p["brightness"].to(dev).view(-1, 1, 1, 1)
        mu = x.mean((1, 2, 3), keepdim=True)
        return ((x - mu) * c + mu + br).clamp(0, 1), y

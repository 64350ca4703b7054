"""Semantic-segmentation data: image + mask sources, the generated ``shapes`` set, batches.

A :class:`SegSource` holds a split in memory: images ``(N, C, H, W)`` uint8 and masks ``(N, H, W)``
uint8 of class indices (``ignore_index``, 255 by default, marks pixels no loss or metric sees).
Folders of image + mask files are read by :mod:`vislab.data.segmentation_formats`.

:class:`SegBatchStream` follows the classification batching rule of :mod:`vislab.data.loaders`:
global batches from a permutation seeded by ``(seed, epoch)``, the process takes ``batch[rank::world]``,
augmentation parameters are drawn per global batch and sliced the same way, and the augmentation
(horizontal flip, reflect-pad-and-crop translation; ``strong``: :class:`JointAffineAugment`'s random
scale/crop, rotation and colour jitter) runs on the batch on the device -- applied to image and mask
*together*, so they stay aligned pixel for pixel.

Example:
    >>> s = generate_shapes_segmentation(4, classes=2, size=16, seed=0)
    >>> s.images.shape, s.masks.shape, s.classes
    (torch.Size([4, 3, 16, 16]), torch.Size([4, 16, 16]), ['background', 'circle', 'square'])
    >>> st = SegBatchStream(s, 2, train=True, device=torch.device("cpu"), mean=(0.5,) * 3, std=(0.25,) * 3, augment="standard")
    >>> b = next(iter(st.epoch(0)))
    >>> b.x.shape, b.y.shape, b.y.dtype, b.n_global
    (torch.Size([2, 3, 16, 16]), torch.Size([2, 16, 16]), torch.int64, 2)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.errors import DataError
from vislab.data.loaders import BatchAugment, epoch_generator, global_batches

IGNORE_INDEX = 255


@dataclass
class SegDataConfig:
    """Where the images and masks come from and how they are batched."""

    data: str = opt("shapes", "dataset: shapes (generated, offline) or a folder with images/ and masks/ (optionally train/ val/ test/ subfolders)")
    format: str = opt("auto", "dataset format (auto: shapes by name, coco if <data>/annotations/instances_*.json, voc if a VOC2012 layout, else a mask folder)", choices=("auto", "shapes", "folder", "coco", "voc"))
    coco_categories: list[str] = opt([], "COCO: categories to keep, comma-separated (classes = background + these; others are background); empty: all")
    coco_skip_empty: bool = opt(False, "COCO: leave out images without an instance of the kept categories")
    img_size: int = opt(0, "resize images and masks to this square size (0: the dataset's size; folders: the first image's)")
    mask_mode: str = opt("auto", "how mask files encode classes: index (pixel = class), palette (RGB colours of the class map), binary (0 / >127); auto sniffs", choices=("auto", "index", "palette", "binary"))
    class_map: str = opt("", "class map file: one class per line, 'name' or 'name R G B' (default: <data>/classes.txt if present)")
    ignore_index: int = opt(IGNORE_INDEX, "mask value of pixels to ignore in loss and metrics")
    val_split: float = opt(0.1, "fraction of the training images held out for validation when there is no val split")
    test_split: float = opt(0.1, "fraction held out for test when there is no test split")
    split_seed: int = opt(0, "seed of the train/val/test split")
    batch_size: int = opt(32, "global batch size (split across processes)")
    eval_batch_size: int = opt(0, "batch size for evaluation (0: 2 x batch-size)")
    augment: str = opt("standard", "joint image+mask batch augmentation: none, light (translate), standard (translate + flip), strong (flip + random scale/crop + rotation + brightness/contrast; pixels from outside the image are ignored)", choices=("none", "light", "standard", "strong"))
    limit: int = opt(0, "use at most this many training images (0: all)")
    synth_count: int = opt(0, "images to generate for shapes (0: 800)")
    synth_classes: int = opt(0, "shape classes of the generated set, background not counted (0: 3)")


@dataclass
class SegSource:
    """A split of images and masks in memory.

    Attributes:
        images: ``(N, C, H, W)`` uint8.
        masks: ``(N, H, W)`` uint8 class indices; ``ignore_index`` marks ignored pixels.
        classes: class names, index = mask value (class 0 is the background where there is one).
        palette: ``(K, 3)`` RGB colours per class, for overlays and palette PNGs.
        names: a name per image (file stem or ``shapes_00012``), for per-image reports.
    """

    images: torch.Tensor
    masks: torch.Tensor
    classes: list[str]
    palette: list[tuple[int, int, int]]
    name: str = ""
    ignore_index: int = IGNORE_INDEX
    names: list[str] | None = None

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.ndim != 4 or self.masks.ndim != 3 or self.masks.shape[0] != n:
            raise DataError(f"{self.name}: expected images (N, C, H, W) and masks (N, H, W), got {tuple(self.images.shape)} and {tuple(self.masks.shape)}")
        if self.images.shape[-2:] != self.masks.shape[-2:]:
            raise DataError(f"{self.name}: expected masks of the image size {tuple(self.images.shape[-2:])}, got {tuple(self.masks.shape[-2:])}")
        if self.names is None:
            self.names = [f"{self.name}_{i:05d}" for i in range(n)]
        k = len(self.classes)
        bad = (self.masks >= k) & (self.masks != self.ignore_index)
        if bool(bad.any()):
            i = int(bad.flatten(1).any(1).nonzero()[0])
            v = int(self.masks[i][bad[i]][0])
            raise DataError(f"{self.name} '{self.names[i]}': expected mask values in [0, {k - 1}] or {self.ignore_index} (ignore), got {v}")
        if len(self.palette) < k:
            self.palette = list(self.palette) + default_palette(k)[len(self.palette):]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.images.shape[-2]), int(self.images.shape[-1]))

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def in_memory(self) -> bool:
        return True

    def subset(self, idx: torch.Tensor | np.ndarray | list[int]) -> SegSource:
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return SegSource(self.images[idx], self.masks[idx], self.classes, self.palette, self.name, self.ignore_index,
                         [self.names[i] for i in idx.tolist()])  # type: ignore[index]


@dataclass
class SegSplits:
    train: SegSource
    val: SegSource | None = None
    test: SegSource | None = None

    def get(self, split: str) -> SegSource:
        src = getattr(self, split, None)
        if src is None:
            raise DataError(f"dataset {self.train.name}: expected a '{split}' split, got none")
        return src


def default_palette(k: int) -> list[tuple[int, int, int]]:
    """Pascal VOC's colour map (bit-interleaved), the usual palette of index PNGs: class 0 black."""
    out = []
    for i in range(k):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def generate_shapes_segmentation(n: int, classes: int = 3, size: int = 32, seed: int | tuple[int, ...] = 0,
                                 objects_per_image: tuple[int, int] = (1, 2)) -> SegSource:
    """Generated shapes with semantic masks: class 0 = background, class ``c + 1`` = shape ``c``.

    Uses :func:`vislab.data.synthetic.shapes.generate_shapes` (clutter and noise are background).
    """
    from vislab.data.synthetic.shapes import generate_shapes

    d = generate_shapes(n, classes, size, seed=seed, objects_per_image=objects_per_image, scale=(0.18, 0.35))
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(n):
        for lab, m in zip(d["labels"][i], d["masks"][i], strict=True):
            masks[i][m] = lab + 1
    names = ["background", *d["classes"]]
    return SegSource(torch.from_numpy(d["images"]), torch.from_numpy(masks), names, default_palette(len(names)), "shapes")


def holdout(src: SegSource, val_frac: float, test_frac: float, seed: int) -> tuple[SegSource, SegSource | None, SegSource | None]:
    """Split ``src`` randomly (seeded) into train / val / test."""
    n = len(src)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    nv, nt = round(n * val_frac), round(n * test_frac)
    if n - nv - nt < 1:
        raise DataError(f"{src.name}: expected enough images to split off val/test, got {n}")
    val = src.subset(perm[:nv]) if nv else None
    test = src.subset(perm[nv:nv + nt]) if nt else None
    return src.subset(perm[nv + nt:].sort().values), val, test


def sniff_format(data: str) -> str:
    """``coco``, ``voc`` or ``folder`` from the layout of the folder ``data``."""
    from pathlib import Path

    from vislab.data.segmentation_datasets import is_coco_root, voc_root

    root = Path(data).expanduser()
    if root.is_dir() and is_coco_root(root):
        return "coco"
    if root.is_dir() and voc_root(root) is not None:
        return "voc"
    return "folder"


def load_segmentation(cfg: SegDataConfig) -> SegSplits:
    """The splits of the dataset ``cfg.data`` (generated shapes, a mask folder, a COCO or a VOC layout)."""
    fmt = cfg.format
    if fmt == "auto":
        fmt = "shapes" if cfg.data == "shapes" else sniff_format(cfg.data)
    if fmt == "shapes":
        size = cfg.img_size or 32
        count = cfg.synth_count or 800
        k = cfg.synth_classes or 3
        train = generate_shapes_segmentation(count, k, size, seed=(0, 0x5E6))
        test = generate_shapes_segmentation(max(8, round(0.2 * count)), k, size, seed=(1, 0x5E6))
        train, val, _ = holdout(train, cfg.val_split, 0.0, cfg.split_seed)
        splits = SegSplits(train, val, test)
    elif fmt == "coco":
        from vislab.data.segmentation_datasets import read_coco_segmentation

        splits = read_coco_segmentation(cfg)
    elif fmt == "voc":
        from vislab.data.segmentation_datasets import read_voc_segmentation

        splits = read_voc_segmentation(cfg)
    else:
        from vislab.data.segmentation_formats import read_mask_folder

        splits = read_mask_folder(cfg)
    if cfg.limit and cfg.limit < len(splits.train):
        splits.train = splits.train.subset(torch.arange(cfg.limit))
    return splits


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
        augment: ``none | light | standard`` (see :data:`vislab.data.loaders.AUGMENT_PRESETS`).
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
        self.batch_size = max(world, min(batch_size, n)) if train else batch_size
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


def image_stats(src: SegSource, max_images: int = 2000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (0..1 scale) from up to ``max_images`` evenly spaced images."""
    n = len(src)
    idx = torch.linspace(0, n - 1, min(n, max_images)).round().long().unique()
    x = src.images[idx].float() / 255.0
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)

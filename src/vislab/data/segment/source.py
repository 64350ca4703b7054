"""Semantic-segmentation data in memory: the data section, :class:`SegSource` (images + masks of one split),
the generated ``shapes`` set and the random holdout.

A :class:`SegSource` holds a split: images ``(N, C, H, W)`` uint8 and masks ``(N, H, W)`` uint8 of class
indices (``ignore_index``, 255 by default, marks pixels no loss or metric sees). Folders of image + mask files
are read by :mod:`vislab.data.segment.folder`, COCO and Pascal VOC by :mod:`vislab.data.segment.coco_voc`;
:func:`vislab.data.segment.load_segmentation` picks the reader.

Example:
    >>> s = generate_shapes_segmentation(4, classes=2, size=16, seed=0)
    >>> s.images.shape, s.masks.shape, s.classes
    (torch.Size([4, 3, 16, 16]), torch.Size([4, 16, 16]), ['background', 'circle', 'square'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.errors import DataError
from vislab.data.base import ImageDataConfig, image_stats

IGNORE_INDEX = 255


@dataclass
class SegDataConfig(ImageDataConfig):
    """Where the images and masks come from and how they are batched."""

    data: str = opt("shapes", "dataset: shapes (generated, offline) or a folder with images/ and masks/ (optionally train/ val/ test/ subfolders)")
    format: str = opt("auto", "dataset format (auto: shapes by name, coco if <data>/annotations/instances_*.json, voc if a VOC2012 layout, else a mask folder)", choices=("auto", "shapes", "folder", "coco", "voc"))
    coco_categories: list[str] = opt([], "COCO: categories to keep, comma-separated (classes = background + these; others are background); empty: all")
    coco_skip_empty: bool = opt(False, "COCO: leave out images without an instance of the kept categories")
    mask_mode: str = opt("auto", "how mask files encode classes: index (pixel = class), palette (RGB colours of the class map), binary (0 / >127); auto sniffs", choices=("auto", "index", "palette", "binary"))
    class_map: str = opt("", "class map file: one class per line, 'name' or 'name R G B' (default: <data>/classes.txt if present)")
    ignore_index: int = opt(IGNORE_INDEX, "mask value of pixels to ignore in loss and metrics")
    test_split: float = opt(0.1, "fraction held out for test when there is no test split")
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

    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the images (:func:`vislab.data.base.image_stats`)."""
        return image_stats(self.images)

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

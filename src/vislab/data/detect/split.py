"""Detection splits in memory: the data section, :class:`DetSplit` (images resized to squares, targets scaled
with them) and :func:`load_splits` (generated shapes / digits, or a COCO / YOLO / VOC dataset, validated first:
every bad box, unknown class or size mismatch is named by file).

Images are resized to ``--img-size`` squares and held in memory as uint8; each image's original size is kept
so that metrics are computed at the original scale. Instance masks are carried only when asked for (mask
models): resized with the image (nearest) and put in the targets as ``"masks": (n, S, S) uint8``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vislab.core.config import opt
from vislab.core.errors import ConfigError, DataError
from vislab.data.base import ImageDataConfig, image_stats
from vislab.data.detect.augment import PRESETS


@dataclass
class DetDataConfig(ImageDataConfig):
    """Where the annotated images come from and how they are batched (the task config trains at ``--img-size 64``
    with ``--val-split 0.2`` by default)."""

    data: str = opt("shapes", "shapes or digits (generated), or a COCO .json / YOLO data.yaml / VOC folder")
    det_format: str = opt("auto", "annotation format of --data", choices=("auto", "coco", "yolo", "voc"))
    val_data: str = opt("", "validation set in any format (default: generated for shapes, else --val-split of --data)")
    synth_count: int = opt(1000, "generated training images (shapes, digits)")
    synth_classes: int = opt(3, "generated classes (shapes: up to 8; digits: up to 10)")
    objects: list[int] = opt([0, 3], "generated objects per image: min,max (0 allows empty images)")
    augment: str = opt("flip", "joint image/box/mask augmentation: none, flip, standard (flip, zoom 0.75-1.25, shift, colour), "
                               "strong (zoom 0.5-1.5), ssd (torchvision v2 SSD recipe per image, slow)", choices=PRESETS)



@dataclass
class DetSplit:
    """Images ``(N, 3, S, S)`` uint8 and per-image targets ``{"boxes": (n, 4) xyxy, "labels": (n,)}`` at that size
    (and ``"masks": (n, S, S) uint8`` when loaded with masks)."""

    images: torch.Tensor
    targets: list[dict[str, torch.Tensor]]
    classes: list[str]
    files: list[str]
    name: str = ""
    sizes: list[tuple[int, int]] | None = None  # each image's original (width, height); None: already S x S

    def __len__(self) -> int:
        return len(self.targets)

    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the images (:func:`vislab.data.base.image_stats`)."""
        return image_stats(self.images)

    def subset(self, idx: list[int]) -> DetSplit:
        sizes = [self.sizes[i] for i in idx] if self.sizes is not None else None
        return DetSplit(self.images[idx], [self.targets[i] for i in idx], self.classes, [self.files[i] for i in idx], self.name, sizes)


def from_dataset(ds, size: int, masks: bool = False) -> DetSplit:
    """Resize every image of a :class:`~vislab.data.detect.DetDataset` to ``size x size`` (boxes scaled; with
    ``masks``, the instance masks resized by nearest neighbour, and a :class:`DataError` if an image has none).

    Example:
        >>> from vislab.data.detect import shapes_detection
        >>> s = from_dataset(shapes_detection(2, size=48, objects=(1, 2)), 32, masks=True)
        >>> s.images.shape, s.targets[0]["masks"].shape[1:], s.targets[0]["masks"].dtype
        (torch.Size([2, 3, 32, 32]), torch.Size([32, 32]), torch.uint8)
    """
    from vislab.data.detect.core import load_pixels

    imgs, targets = torch.empty(len(ds), 3, size, size, dtype=torch.uint8), []
    for i, im in enumerate(ds.images):
        a = torch.from_numpy(np.array(load_pixels(ds, i))).permute(2, 0, 1)  # (3, H, W)
        if a.shape[1:] != (im.height, im.width):
            raise DataError(f"image '{ds.path(i)}': expected {im.width}x{im.height} as annotated, got {a.shape[2]}x{a.shape[1]}")
        if a.shape[1:] != (size, size):
            a = F.interpolate(a[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].round().clamp(0, 255).byte()
        imgs[i] = a
        scale = torch.tensor([size / im.width, size / im.height] * 2)
        t = {"boxes": torch.from_numpy(im.boxes).float() * scale, "labels": torch.from_numpy(im.labels).long()}
        if masks and len(im.labels) == 0:  # an image without objects has no masks to give: an empty stack
            t["masks"] = torch.zeros(0, size, size, dtype=torch.uint8)
        elif masks:
            if im.masks is None or len(im.masks) != len(im.labels):
                raise DataError(f"dataset {ds.source or '<memory>'}: expected instance masks for a mask model (COCO 'segmentation' "
                                f"polygons or RLE), got none for image '{im.file}'")
            m = torch.from_numpy(np.asarray(im.masks)).to(torch.uint8)
            if m.shape[1:] != (size, size) and len(m):
                m = F.interpolate(m[None].float(), size=(size, size), mode="nearest-exact")[0].to(torch.uint8)
            t["masks"] = m.reshape(-1, size, size)
        targets.append(t)
    return DetSplit(imgs, targets, list(ds.classes), [im.file for im in ds.images], ds.source, [(im.width, im.height) for im in ds.images])


def load_splits(cfg: DetDataConfig, masks: bool = False) -> tuple[DetSplit, DetSplit | None]:
    """Train and validation splits of ``cfg`` (validated, resized, in memory; with ``masks``, instance masks in the targets)."""
    from vislab.data.detect.convert import read_any
    from vislab.data.detect.core import check
    from vislab.data.detect.synthetic import digits_detection, shapes_detection

    if len(cfg.objects) != 2 or not 0 <= cfg.objects[0] <= cfg.objects[1]:
        raise ConfigError(f"--objects: expected min,max with 0 <= min <= max, got {cfg.objects}")
    if cfg.data in ("shapes", "digits"):
        if cfg.data == "digits" and not 1 <= cfg.synth_classes <= 10:
            raise ConfigError(f"--synth-classes: expected 1..10 for digits, got {cfg.synth_classes}")
        make = shapes_detection if cfg.data == "shapes" else digits_detection
        kw = {"classes": cfg.synth_classes, "size": cfg.img_size, "objects": tuple(cfg.objects), "masks": masks}
        tr = from_dataset(make(cfg.synth_count, seed=(cfg.split_seed, 1), **kw), cfg.img_size, masks)
        va = from_dataset(make(max(1, round(cfg.val_split * cfg.synth_count)), seed=(cfg.split_seed, 2), **kw), cfg.img_size, masks)
        return tr, va
    full = from_dataset(check(read_any(cfg.data, cfg.det_format, masks=masks)), cfg.img_size, masks)
    if cfg.val_data:
        va = from_dataset(check(read_any(cfg.val_data, cfg.det_format, split="val", masks=masks)), cfg.img_size, masks)
        if va.classes != full.classes:
            raise DataError(f"--val-data {cfg.val_data}: expected the classes of {cfg.data} {full.classes}, got {va.classes}")
        return full, va
    n_val = round(cfg.val_split * len(full))
    if n_val == 0:
        return full, None
    perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(cfg.split_seed)).tolist()
    return full.subset(perm[n_val:]), full.subset(perm[:n_val])

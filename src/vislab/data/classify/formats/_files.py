"""Datasets of image files: a cheap verification pass, the channel/size policy, a picklable decoder.

Every file-based format (ImageFolder, CSV lists) goes through :func:`scan_images` once, up
front: a file that is missing, empty or undecodable fails the load with its name (``bad_images=
"fail"``) or is left out with a warning (``"skip"``). The same pass records each file's PIL mode
and size, from which :func:`file_sources` picks the channel count and image size of the dataset.

Example:
    >>> dec = ImageDecoder((4, 6), "L")
    >>> import pickle
    >>> pickle.loads(pickle.dumps(dec)) == dec
    True
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vislab.core.errors import DataError
from vislab.core.io import IMAGE_EXTENSIONS, read_image
from vislab.data.classify.source import ImageSource

GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


@dataclass(frozen=True)
class ImageInfo:
    """What the verification pass learnt about one readable file."""

    mode: str  # PIL mode, e.g. "RGB", "L", "P", "I;16"
    size: tuple[int, int]  # (H, W)


@dataclass(frozen=True)
class ImageDecoder:
    """Decode one file to ``(H, W, C)`` uint8 of a fixed size and channel count.

    A small frozen dataclass so that DataLoader workers can pickle it.

    Attributes:
        size: ``(H, W)`` every decoded image is resized to (bilinear, PIL).
        mode: "RGB" (C = 3) or "L" (C = 1).
    """

    size: tuple[int, int]
    mode: str = "RGB"

    def __call__(self, path: str) -> np.ndarray:
        a = resize_array(read_image(path, self.mode), self.size)  # (H, W, C) uint8; DataError names the file
        return a if a.flags.writeable else a.copy()  # torch.from_numpy wants a writable array


def resize_array(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(H, W, C)`` uint8 to ``size`` ``(H', W')`` with PIL's bilinear filter."""
    if a.shape[:2] == tuple(size):
        return a
    from PIL import Image

    im = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
    r = np.asarray(im.resize((size[1], size[0]), Image.BILINEAR), dtype=np.uint8)
    return r[:, :, None] if r.ndim == 2 else r


def probe_image(path: str) -> ImageInfo | str:
    """Open and fully decode ``path`` once; return its :class:`ImageInfo` or why it is unreadable.

    JPEGs are decoded at reduced scale (PIL ``draft``), which still reads every byte of the scan.
    """
    from PIL import Image

    try:
        st = os.stat(path)
    except OSError:
        return "nothing at that path"
    if st.st_size == 0:
        return "an empty file"
    try:
        with Image.open(path) as im:
            mode, (w, h) = im.mode, im.size
            if im.format == "JPEG":
                im.draft(None, (max(1, w // 8), max(1, h // 8)))
            im.load()
    except Exception as e:  # noqa: BLE001  (any failure to decode means: a bad image)
        return f"a corrupt or unknown file ({e.__class__.__name__}: {e})"
    if w < 1 or h < 1:
        return f"an image of size {w}x{h}"
    return ImageInfo(mode, (h, w))


def scan_images(paths: list[str], bad_images: str, name: str) -> tuple[list[int], list[ImageInfo]]:
    """Verify every file once; keep the readable ones.

    Args:
        paths: image files.
        bad_images: "fail" raises on the first unreadable file; "skip" leaves it out with a warning.
        name: dataset name for messages.

    Returns:
        Indices into ``paths`` of the readable files, and their :class:`ImageInfo` (same order).

    Raises:
        DataError: a file is unreadable and ``bad_images == "fail"`` (the message names the file).
    """
    if bad_images not in ("fail", "skip"):
        raise DataError(f"{name}: expected bad_images 'fail' or 'skip', got {bad_images!r}")
    if len(paths) > 64:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as ex:
            results = list(ex.map(probe_image, paths, chunksize=32))
    else:
        results = [probe_image(p) for p in paths]
    keep: list[int] = []
    infos: list[ImageInfo] = []
    skipped = 0
    for i, r in enumerate(results):
        if isinstance(r, ImageInfo):
            keep.append(i)
            infos.append(r)
            continue
        if bad_images == "fail":
            raise DataError(
                f"image '{paths[i]}': expected a readable image, got {r}; pass --bad-images skip to leave such files out"
            )
        warnings.warn(f"{name}: skipping unreadable image '{paths[i]}' ({r})", stacklevel=2)
        skipped += 1
    if skipped:
        warnings.warn(f"{name}: skipped {skipped} unreadable image(s) of {len(paths)}", stacklevel=2)
    return keep, infos


def pick_channels(infos: list[ImageInfo]) -> int:
    """1 when every image is grayscale (modes 1, L, LA, I, I;16, F), else 3."""
    return 1 if infos and all(i.mode in GRAY_MODES for i in infos) else 3


def file_sources(
    splits: dict[str, tuple[list[str], list[int]]],
    classes: list[str],
    name: str,
    img_size: int,
    bad_images: str,
    augment: str = "standard",
) -> dict[str, ImageSource]:
    """Verify the files of each split and wrap them as lazy :class:`ImageSource` objects.

    The image size is ``(img_size, img_size)`` when ``img_size > 0``, else the size of the first
    readable training image; the channel count is 1 when every training image is grayscale.
    Every split shares one :class:`ImageDecoder`.

    Args:
        splits: split name ("train", "val", "test") -> (paths, labels); must contain "train".
        classes: class names, index = label.
        name: dataset name for messages and reports.
        img_size: square target size, 0 for the first image's size.
        bad_images: "fail" or "skip" (see :func:`scan_images`).
        augment: the augmentation preset of this data.

    Returns:
        Split name -> lazy ImageSource.
    """
    checked: dict[str, tuple[list[str], list[int], list[ImageInfo]]] = {}
    for split, (paths, labels) in splits.items():
        keep, infos = scan_images(paths, bad_images, f"{name} ({split})")
        checked[split] = ([paths[i] for i in keep], [labels[i] for i in keep], infos)
    train_infos = checked["train"][2]
    if not train_infos:
        raise DataError(f"{name}: expected at least one readable training image, got none")
    size = (img_size, img_size) if img_size > 0 else train_infos[0].size
    channels = pick_channels(train_infos)
    decoder = ImageDecoder(size, "L" if channels == 1 else "RGB")
    return {
        split: ImageSource(
            classes=list(classes),
            labels=torch.as_tensor(labels, dtype=torch.int64),
            paths=paths,
            size=size,
            channels=channels,
            name=name,
            augment=augment,
            decode=decoder,
        )
        for split, (paths, labels, _) in checked.items()
    }


def as_str_paths(paths: list[Path]) -> list[str]:
    return [os.fspath(p) for p in paths]


def find_image(folder: Path, stem: str) -> str:
    """``folder/<stem>.jpg``, or the first other image extension present (only looked up on a miss)."""
    p = os.fspath(folder / f"{stem}.jpg")
    if os.path.isfile(p):
        return p
    for ext in IMAGE_EXTENSIONS:
        q = os.fspath(folder / f"{stem}{ext}")
        if os.path.isfile(q):
            return q
    return p

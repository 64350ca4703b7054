"""MNIST and Fashion-MNIST from their idx files (raw or ``.gz``).

Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, looked up in ``root``, ``root/raw`` and the torchvision layout
``root/MNIST/raw`` (``root/FashionMNIST/raw``). An idx file is a big-endian header (magic
``0x00000803`` for images, ``0x00000801`` for labels, then the dimensions) and the raw uint8 data.

Example:
    >>> import tempfile, pathlib, struct
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> _ = p.write_bytes(struct.pack(">II", 2049, 3) + bytes([7, 0, 9]))
    >>> read_idx(p, 1).tolist()
    [7, 0, 9]
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from vislab.core.errors import DataError
from vislab.data.classify.source import DATASETS, DataConfig, ImageSource, Splits
from vislab.data.classify.formats._common import require_root, resize_images, target_size, torchvision_download

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}  # number of dimensions -> magic (uint8 data)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an idx file of uint8 data with ``ndim`` dimensions (1: labels, 3: images).

    Returns:
        ``(N,)`` or ``(N, H, W)`` uint8.

    Raises:
        DataError: wrong magic number, or a data size that does not match the header (names the file).
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"idx '{path}': expected a readable (gzipped) idx file, got {e.__class__.__name__}: {e}") from None
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"idx '{path}': expected a header of {head} bytes, got a file of {len(raw)} bytes")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != IDX_MAGIC[ndim]:
        raise DataError(f"idx '{path}': expected magic number {IDX_MAGIC[ndim]:#010x} ({ndim}-d uint8), got {magic:#010x}")
    dims = struct.unpack(f">{ndim}I", raw[4:head])
    need = int(np.prod(dims))
    if len(raw) - head != need:
        raise DataError(f"idx '{path}': expected {need} data bytes for shape {dims}, got {len(raw) - head}")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims)


def find_idx(root: Path, stem: str, sub: str) -> Path | None:
    """The first of ``stem`` / ``stem.gz`` in ``root``, ``root/raw``, ``root/<sub>/raw``."""
    for d in (root, root / "raw", root / sub / "raw"):
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    return None


def load_mnist(root: Path, kind: str = "mnist", img_size: int = 0, download: bool = False) -> Splits:
    """Read MNIST (``kind="mnist"``) or Fashion-MNIST (``kind="fashion_mnist"``) into memory.

    Args:
        root: folder holding the idx files (directly, in ``raw/`` or in the torchvision layout).
        kind: "mnist" or "fashion_mnist".
        img_size: square size to resize to (0: native).
        download: fetch the files with torchvision when they are missing.

    Returns:
        Splits with train and test, each ``(N, 1, H, W)`` uint8 in memory.
    """
    if kind not in ("mnist", "fashion_mnist"):
        raise DataError(f"load_mnist: expected kind 'mnist' or 'fashion_mnist', got {kind!r}")
    sub, tv = ("MNIST", "MNIST") if kind == "mnist" else ("FashionMNIST", "FashionMNIST")
    stems = [s for pair in FILES.values() for s in pair]
    found = {s: find_idx(root, s, sub) for s in stems}
    if download and None in found.values():
        torchvision_download(tv, root)
        found = {s: find_idx(root, s, sub) for s in stems}
    missing = [s for s, p in found.items() if p is None]
    if missing:
        raise DataError(
            f"{kind}: expected the idx file '{missing[0]}' (or .gz) in '{root}', '{root / 'raw'}' or '{root / sub / 'raw'}', "
            f"got nothing ({len(missing)} of 4 files missing); pass --download to fetch {tv} into '{root}'"
        )
    classes = MNIST_CLASSES if kind == "mnist" else FASHION_CLASSES
    augment = "light" if kind == "mnist" else "standard"  # flipped digits are other digits; flipped shoes are shoes
    out: dict[str, ImageSource] = {}
    for split, (img_stem, lab_stem) in FILES.items():
        images = read_idx(found[img_stem], 3)  # (N, H, W)
        labels = read_idx(found[lab_stem], 1)  # (N,)
        if len(images) != len(labels):
            raise DataError(
                f"{kind} '{found[lab_stem]}': expected one label per image of '{found[img_stem].name}' ({len(images)}), got {len(labels)}"
            )
        size = target_size(img_size, images.shape[1:])
        x = resize_images(torch.from_numpy(images.copy()).unsqueeze(1), size)  # (N, 1, H, W)
        y = torch.from_numpy(labels.astype(np.int64))
        out[split] = ImageSource(classes, y, images=x, size=size, channels=1, name=kind, augment=augment)
    return Splits(train=out["train"], test=out["test"])


@DATASETS.register(task="classify")
def mnist(cfg: DataConfig, root: Path | None) -> Splits:
    """MNIST handwritten digits: 70k 28x28 grayscale images (idx files, in memory)."""
    return load_mnist(require_root("mnist", root), "mnist", cfg.img_size, cfg.download)


@DATASETS.register(task="classify")
def fashion_mnist(cfg: DataConfig, root: Path | None) -> Splits:
    """Fashion-MNIST: 70k 28x28 grayscale images of 10 clothing classes (idx files, in memory)."""
    return load_mnist(require_root("fashion_mnist", root), "fashion_mnist", cfg.img_size, cfg.download)

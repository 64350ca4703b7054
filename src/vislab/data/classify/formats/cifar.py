"""CIFAR-10 / CIFAR-100 in the official "python version" pickle layout.

``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5``, ``test_batch``, ``batches.meta``.
``cifar-100-python/``: ``train``, ``test``, ``meta`` (the 100 fine labels are used).
Each batch is a pickled dict whose ``data`` is ``(N, 3072)`` uint8, one row per image: 1024 red,
then 1024 green, then 1024 blue values, each a 32x32 plane in row-major order, so a plain reshape
gives ``(N, 3, 32, 32)``.

The pickles are read with a restricted unpickler that builds only plain containers and numpy
arrays, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core.errors import DataError
from vislab.data.classify.source import DATASETS, DataConfig, ImageSource, Splits
from vislab.data.classify.formats._common import require_root, resize_images, target_size, torchvision_download

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a CIFAR batch")


def load_pickle(path: Path) -> dict[str, Any]:
    """Load one CIFAR pickle (Python 2 or 3) as a dict with ``str`` keys.

    Raises:
        DataError: the file is missing or not a CIFAR pickle (the message names the file).
    """
    try:
        obj = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"cifar: expected the file '{path}', got nothing at that path") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DataError(f"cifar '{path}': expected a CIFAR python pickle, got an unreadable file ({e.__class__.__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"cifar '{path}': expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 of one CIFAR batch file."""
    d = load_pickle(path)
    if "data" not in d or label_key not in d:
        raise DataError(f"cifar '{path}': expected keys 'data' and '{label_key}', got {sorted(d)}")
    data = np.asarray(d["data"])
    labels = np.asarray(d[label_key], dtype=np.int64).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"cifar '{path}': expected data of shape (N, 3072) uint8, got {data.shape} {data.dtype}")
    if len(labels) != len(data):
        raise DataError(f"cifar '{path}': expected one label per image, got {len(data)} images and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def read_names(path: Path, key: str) -> list[str]:
    """Class names stored under ``key`` in a CIFAR meta file."""
    d = load_pickle(path)
    if key not in d:
        raise DataError(f"cifar '{path}': expected the key '{key}', got {sorted(d)}")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in d[key]]


def find_cifar_dir(root: Path, folder: str, probe: str) -> Path | None:
    """``root/folder`` or ``root`` itself, whichever holds ``probe``; None when neither does."""
    for d in (root / folder, root):
        if (d / probe).is_file():
            return d
    return None


def _missing(name: str, root: Path, folder: str, files: tuple[str, ...], title: str) -> DataError:
    d = root if root.name == folder else root / folder
    missing = [f for f in files if not (d / f).is_file()]
    return DataError(
        f"{name}: expected the {title} python files in '{d}' (missing: {', '.join(missing)}), got "
        f"{'no such folder' if not d.is_dir() else 'an incomplete folder'}; pass --download to fetch {title} into '{root}'"
    )


def _source(images: np.ndarray, labels: np.ndarray, classes: list[str], name: str, img_size: int) -> ImageSource:
    x = torch.from_numpy(np.ascontiguousarray(images))  # (N, 3, 32, 32) uint8
    size = target_size(img_size, (32, 32))
    x = resize_images(x, size)
    return ImageSource(classes, torch.from_numpy(labels), images=x, size=size, channels=3, name=name, augment="standard")


def load_cifar(root: Path, kind: str, img_size: int = 0, download: bool = False) -> Splits:
    """Read CIFAR-10 (``kind="cifar10"``) or CIFAR-100 (``kind="cifar100"``, fine labels) into memory.

    Args:
        root: the folder holding ``cifar-10-batches-py`` / ``cifar-100-python``, or that folder.
        kind: "cifar10" or "cifar100".
        img_size: square size to resize to (0: the native 32x32).
        download: fetch the files with torchvision when they are missing.

    Returns:
        Splits with train and test, each ``(N, 3, H, W)`` uint8 in memory.
    """
    if kind == "cifar10":
        folder, title, files, probe = CIFAR10_DIR, "CIFAR-10", (*CIFAR10_TRAIN, "test_batch", "batches.meta"), "data_batch_1"
    elif kind == "cifar100":
        folder, title, files, probe = CIFAR100_DIR, "CIFAR-100", ("train", "test", "meta"), "train"
    else:
        raise DataError(f"load_cifar: expected kind 'cifar10' or 'cifar100', got {kind!r}")
    d = find_cifar_dir(root, folder, probe)
    if (d is None or not all((d / f).is_file() for f in files)) and download:
        torchvision_download("CIFAR10" if kind == "cifar10" else "CIFAR100", root if root.name != folder else root.parent)
        d = find_cifar_dir(root, folder, probe)
    if d is None or not all((d / f).is_file() for f in files):
        raise _missing(kind, root, folder, files, title)
    if kind == "cifar10":
        classes = read_names(d / "batches.meta", "label_names")
        parts = [read_batch(d / f, "labels") for f in CIFAR10_TRAIN]
        train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        test = read_batch(d / "test_batch", "labels")
    else:
        classes = read_names(d / "meta", "fine_label_names")
        train = read_batch(d / "train", "fine_labels")
        test = read_batch(d / "test", "fine_labels")
    return Splits(
        train=_source(*train, classes, kind, img_size),
        test=_source(*test, classes, kind, img_size),
    )


@DATASETS.register(task="classify")
def cifar10(cfg: DataConfig, root: Path | None) -> Splits:
    """CIFAR-10: 60k 32x32 colour images of 10 classes (official python pickles, in memory)."""
    return load_cifar(require_root("cifar10", root), "cifar10", cfg.img_size, cfg.download)


@DATASETS.register(task="classify")
def cifar100(cfg: DataConfig, root: Path | None) -> Splits:
    """CIFAR-100: 60k 32x32 colour images of 100 fine classes (official python pickles, in memory)."""
    return load_cifar(require_root("cifar100", root), "cifar100", cfg.img_size, cfg.download)

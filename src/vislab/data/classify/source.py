"""What every image-classification dataset gives the engine: an :class:`ImageSource` per split.

An ImageSource is either *in memory* (one ``(N, C, H, W)`` uint8 tensor: the fast path, decoded
once) or *lazy* (file paths decoded on demand by DataLoader workers). Both hand the engine uint8
batches; augmentation and normalisation happen on batches, on the training device.

Datasets are registered builders ``fn(cfg: DataConfig, root: Path | None) -> Splits`` in
:data:`DATASETS`; :func:`load_dataset` picks one from ``cfg.format`` or by sniffing ``cfg.data``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.errors import DataError
from vislab.core.registry import Registry
from vislab.data.base import ImageDataConfig, image_stats


@dataclass
class DataConfig(ImageDataConfig):
    """Where the images come from and how they are batched and augmented (classification's ``data:``)."""

    data: str = opt("digits", "dataset: a bundled name (digits, shapes), or a path to an ImageFolder / CIFAR / MNIST folder or a CSV of path,label")
    format: str = opt(
        "auto",
        "dataset format (auto sniffs the path)",
        choices=(
            "auto", "imagefolder", "csv", "cifar10", "cifar100", "mnist", "fashion_mnist",
            "food101", "pets", "pets_species", "cats_vs_dogs", "digits", "shapes", "identities",
        ),
    )
    test_split: float = opt(0.1, "fraction held out for test when the dataset has no test split")
    workers: int = opt(0, "DataLoader worker processes for datasets read from disk")
    fast_path: str = opt("auto", "keep the decoded dataset in memory and augment whole batches on the device", choices=("auto", "on", "off"))
    max_memory_mb: int = opt(4096, "largest decoded dataset the fast path keeps in memory (auto mode)")
    augment: str = opt("auto", "batch augmentation: a preset (none, light = translate, standard = flip + translate, strong = flip, crop, jitter, randaugment, erasing) or a comma list of flip, translate, crop, rotate, jitter, randaugment, trivialaugment, erasing, mixup, cutmix; auto picks per dataset")
    mixup_alpha: float = opt(0.2, "Beta(alpha, alpha) of the mixing weight for the mixup operation")
    cutmix_alpha: float = opt(1.0, "Beta(alpha, alpha) of the pasted area for the cutmix operation")
    bad_images: str = opt("fail", "on an unreadable image: fail, or skip it with a warning", choices=("fail", "skip"))
    download: bool = opt(False, "download CIFAR / MNIST into --data when missing (needs network)")
    limit: int = opt(0, "use at most this many training images (0: all), for quick experiments")
    synth_count: int = opt(0, "images to generate for synthetic datasets (0: the dataset's default)")
    synth_classes: int = opt(0, "classes of synthetic datasets (0: the dataset's default)")


@dataclass
class ImageSource:
    """A labelled set of images of one size, in memory or on disk.

    Attributes:
        classes: class names, index = label.
        labels: ``(N,)`` int64.
        images: ``(N, C, H, W)`` uint8 when in memory, else ``None``.
        paths: file paths when lazy, else ``None``.
        size: ``(H, W)`` every image has (lazy images are resized to it on decode).
        channels: 1 (gray) or 3 (RGB).
        name: dataset name for reports.
        augment: the augmentation preset that suits this data ("light" for digits, "standard" for photos).
    """

    classes: list[str]
    labels: torch.Tensor
    images: torch.Tensor | None = None
    paths: list[str] | None = None
    size: tuple[int, int] = (0, 0)
    channels: int = 3
    name: str = ""
    augment: str = "standard"
    decode: Callable[[str], np.ndarray] | None = field(default=None, repr=False)  # path -> (H, W, C) uint8

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.images is not None and self.images.shape[0] != n:
            raise DataError(f"{self.name}: expected one label per image, got {self.images.shape[0]} images and {n} labels")
        if self.paths is not None and len(self.paths) != n:
            raise DataError(f"{self.name}: expected one label per file, got {len(self.paths)} files and {n} labels")
        if n and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            bad = int(self.labels.max()) if int(self.labels.max()) >= len(self.classes) else int(self.labels.min())
            raise DataError(f"{self.name}: expected labels in [0, {len(self.classes) - 1}], got label {bad}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    def nbytes(self) -> int:
        return len(self) * self.channels * self.size[0] * self.size[1]

    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the images (:func:`vislab.data.base.image_stats`; lazy ones: 256 decoded)."""
        return image_stats(self.images, len(self), self.get)

    def get(self, i: int) -> torch.Tensor:
        """Image ``i`` as ``(C, H, W)`` uint8."""
        if self.images is not None:
            return self.images[i]
        assert self.paths is not None and self.decode is not None
        return hwc_to_chw(self.decode(self.paths[i]))

    def subset(self, idx: torch.Tensor | np.ndarray | list[int]) -> ImageSource:
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return ImageSource(
            classes=self.classes,
            labels=self.labels[idx],
            images=self.images[idx] if self.images is not None else None,
            paths=[self.paths[i] for i in idx.tolist()] if self.paths is not None else None,
            size=self.size,
            channels=self.channels,
            name=self.name,
            augment=self.augment,
            decode=self.decode,
        )

    def materialize(self, progress: bool = False) -> ImageSource:
        """Decode every lazy image once into memory (the fast path)."""
        if self.images is not None:
            return self
        out = torch.empty((len(self), self.channels, *self.size), dtype=torch.uint8)
        for i in range(len(self)):
            out[i] = self.get(i)
        return ImageSource(self.classes, self.labels, out, None, self.size, self.channels, self.name, self.augment, None)


@dataclass
class Splits:
    """The splits of a dataset; ``val`` / ``test`` may be carved from ``train`` by :func:`split_holdout`."""

    train: ImageSource
    val: ImageSource | None = None
    test: ImageSource | None = None

    def get(self, split: str) -> ImageSource:
        src = getattr(self, split, None)
        if src is None:
            raise DataError(f"dataset {self.train.name}: expected a '{split}' split, got none")
        return src


def hwc_to_chw(a: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` array -> ``(C, H, W)`` tensor (copied when the array is read-only, e.g. from PIL)."""
    chw = a.transpose(2, 0, 1)
    return torch.from_numpy(np.array(chw, copy=True) if not a.flags.writeable else np.ascontiguousarray(chw))


def split_holdout(splits: Splits, val_frac: float, test_frac: float, seed: int) -> Splits:
    """Carve missing val/test splits out of train, stratified by class, reproducibly by ``seed``."""
    need_val = splits.val is None and val_frac > 0
    need_test = splits.test is None and test_frac > 0
    if not (need_val or need_test):
        return splits
    labels = splits.train.labels.numpy()
    rng = np.random.default_rng(seed)
    tr, va, te = [], [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_te = int(math.floor(len(idx) * test_frac + 0.5)) if need_test else 0
        n_va = int(math.floor(len(idx) * val_frac + 0.5)) if need_val else 0
        if len(idx) - n_te - n_va < 1:
            raise DataError(
                f"{splits.train.name}: class '{splits.train.classes[c]}' has {len(idx)} image(s); expected enough to split off val/test"
            )
        te.extend(idx[:n_te])
        va.extend(idx[n_te : n_te + n_va])
        tr.extend(idx[n_te + n_va :])
    src = splits.train
    return Splits(
        train=src.subset(np.sort(tr)),
        val=src.subset(np.sort(va)) if need_val else splits.val,
        test=src.subset(np.sort(te)) if need_test else splits.test,
    )


def _load_formats() -> None:
    import vislab.data.classify.formats  # noqa: F401
    import vislab.data.synthetic  # noqa: F401


DATASETS = Registry("dataset", DataError, loader=_load_formats)


def sniff_format(path: Path) -> str:
    """Guess a dataset format from what is on disk."""
    if path.is_file() and path.suffix.lower() in (".csv", ".txt"):
        return "csv"
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        if "cifar-10-batches-py" in names or "data_batch_1" in names:
            return "cifar10"
        if "cifar-100-python" in names or {"train", "meta"} <= names and (path / "meta").is_file():
            return "cifar100"
        def has_idx(d: Path) -> bool:
            return d.is_dir() and any("idx3-ubyte" in p.name for p in d.iterdir())

        if has_idx(path) or has_idx(path / "raw") or has_idx(path / "MNIST" / "raw"):
            return "mnist"
        if has_idx(path / "FashionMNIST" / "raw"):
            return "fashion_mnist"
        if (path / "food-101" / "meta" / "classes.txt").is_file() or ((path / "meta" / "classes.txt").is_file() and (path / "images").is_dir()):
            return "food101"
        pets = path / "oxford-iiit-pet" if (path / "oxford-iiit-pet").is_dir() else path
        if (pets / "annotations" / "trainval.txt").is_file() and (pets / "images").is_dir():
            return "pets"
        if has_cats_dogs(path) or has_cats_dogs(path / "train"):
            return "cats_vs_dogs"
        return "imagefolder"
    raise DataError(f"--data: expected a bundled dataset name ({', '.join(BUNDLED)}) or an existing folder/CSV, got '{path}' (not found)")


def has_cats_dogs(d: Path) -> bool:
    """Whether folder ``d`` holds Kaggle Dogs vs. Cats files (``cat.<n>.jpg`` / ``dog.<n>.jpg``)."""
    if not d.is_dir():
        return False
    import os

    from vislab.data.classify.formats.pets import is_cats_dogs_file

    with os.scandir(d) as it:
        return any(is_cats_dogs_file(e.name) and e.is_file() for e in it)


BUNDLED = ("digits", "shapes", "identities")


def use_fast_path(cfg: DataConfig, src: ImageSource) -> bool:
    """Whether ``src`` goes through the in-memory fast path: ``--fast-path on``, or auto and it is in memory or its
    decoded size fits ``--max-memory-mb`` (any data section with ``fast_path`` and ``max_memory_mb``)."""
    if cfg.fast_path == "off":
        return False
    return cfg.fast_path == "on" or src.in_memory or src.nbytes() <= cfg.max_memory_mb * 2**20


def load_dataset(cfg: DataConfig) -> Splits:
    """Load the dataset ``cfg`` names, carve val/test splits, apply ``limit``."""
    fmt = cfg.format
    root: Path | None = None
    if fmt == "auto":
        fmt = cfg.data if cfg.data in BUNDLED else sniff_format(Path(cfg.data).expanduser())
    if fmt not in BUNDLED:
        root = Path(cfg.data).expanduser()
        if not root.exists() and not cfg.download:
            raise DataError(f"--data: expected an existing {fmt} dataset path, got '{root}' (not found)")
    splits: Splits = DATASETS.build(fmt, cfg=cfg, root=root)
    splits = split_holdout(splits, cfg.val_split, cfg.test_split, cfg.split_seed)
    if cfg.limit and cfg.limit < len(splits.train):
        g = torch.Generator().manual_seed(cfg.split_seed)
        splits.train = splits.train.subset(torch.randperm(len(splits.train), generator=g)[: cfg.limit].sort().values)
    if len(splits.train) == 0:
        raise DataError(f"{splits.train.name}: expected training images, got none")
    return splits

"""Metric-learning data: identities (one class per person / object), split so that test identities are unseen.

* **Sources**: every classification format (identity folders = an ImageFolder, a CSV of ``path,label``, CIFAR,
  MNIST, digits, ...), the LFW layout (``lfw/<Name>/<Name>_0001.jpg`` with ``pairs.txt`` beside it), and the
  generated ``identities`` (:mod:`vislab.data.synthetic.identities`). A dataset's own splits are pooled first.
* **Splits** (:func:`split_identities`): by default by *identity* -- val and test hold identities the model never
  trains on (the open-set protocol of face verification); ``--split-by image`` holds out images of the same
  identities instead (closed set). Each split's labels are renumbered ``0..k-1`` with its own class names.
* **Batches** (:func:`m_per_class_batches`, :class:`EmbedStream`): each training batch holds ``P`` identities with
  ``m`` images each (``P = batch / m``), so every anchor has positives; drawn from ``(seed, epoch)`` like every
  vislab stream (the global-batch rule of :mod:`vislab.data.base`), so N processes and a resumed run see the same
  batches as one uninterrupted process.
* **Pairs** (:func:`read_pairs`): LFW's ``pairs.txt`` (10 sets of matched ``name n1 n2`` and mismatched
  ``name1 n1 name2 n2`` lines) or a CSV ``path_a,path_b,same`` -- the verification protocol of ``embed eval``.

Example:
    >>> s = load_embed_data(EmbedDataConfig(data="identities", synth_classes=10, synth_count=60))
    >>> len(s.train.classes), len(s.val.classes), len(s.test.classes), len(s.train) + len(s.val) + len(s.test)
    (6, 2, 2, 60)
    >>> b = m_per_class_batches(s.train.labels, 8, 4, seed=0, epoch=0)
    >>> [sorted(set(s.train.labels[x].tolist())).__len__() for x in b[:3]]  # 2 identities x 4 images per batch
    [2, 2, 2]
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.errors import ConfigError, DataError
from vislab.data.base import ImageDataConfig, epoch_generator
from vislab.data.classify.source import DataConfig, ImageSource, Splits, load_dataset, split_holdout
from vislab.data.classify.stream import BatchStream

FORMATS = ("auto", "imagefolder", "csv", "lfw", "digits", "identities", "shapes", "cifar10", "cifar100", "mnist", "fashion_mnist")
LFW_DIRS = ("lfw", "lfw-deepfunneled", "lfw_funneled", "lfw-funneled")


@dataclass
class EmbedDataConfig(ImageDataConfig):
    """Where the identities come from, how they are split and batched (``embed``'s ``data:``)."""

    data: str = opt("identities", "dataset: identities (generated), digits, or a path: identity folders (one per person), LFW, a CSV of path,label")
    format: str = opt("auto", "dataset format (auto sniffs the path; lfw: identity folders + pairs.txt)", choices=FORMATS)
    split_by: str = opt("identity", "identity: val/test identities are never seen in training (open set, the verification protocol); image: held-out images of the training identities (closed set)", choices=("identity", "image"))
    val_split: float = opt(0.15, "fraction of the identities (--split-by image: of each identity's images) held out for validation")
    test_split: float = opt(0.2, "fraction of the identities (--split-by image: of each identity's images) held out for test")
    m_per_class: int = opt(4, "images of each identity in a training batch: a batch holds batch-size / m identities")
    min_images: int = opt(0, "leave out identities with fewer images (0: refuse a training identity with one image: it has no positive pair)")
    pairs: str = opt("", "verification pairs for eval: LFW pairs.txt or a CSV path_a,path_b,same (auto: pairs.txt beside an LFW folder)")
    augment: str = opt("auto", "batch augmentation (as for classify: none, light, standard, strong or a list); auto: per dataset")
    workers: int = opt(0, "DataLoader worker processes for datasets read from disk")
    fast_path: str = opt("auto", "keep the decoded dataset in memory and augment whole batches on the device", choices=("auto", "on", "off"))
    max_memory_mb: int = opt(4096, "largest decoded dataset the fast path keeps in memory (auto mode)")
    bad_images: str = opt("fail", "on an unreadable image: fail, or skip it with a warning", choices=("fail", "skip"))
    synth_count: int = opt(0, "images of the generated identities (0: 20 per identity)")
    synth_classes: int = opt(0, "generated identities (0: 60)")


@dataclass
class EmbedSplits:
    """Train / val / test images (each with its own identities unless ``--split-by image``) and the pairs file."""

    train: ImageSource
    val: ImageSource | None
    test: ImageSource | None
    pairs: Path | None = None
    root: Path | None = None  # where pairs' names are looked up (LFW's image folder)

    def get(self, split: str) -> ImageSource:
        src = getattr(self, split, None)
        if src is None or len(src) == 0:
            raise DataError(f"dataset {self.train.name}: expected a '{split}' split, got none")
        return src


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def lfw_root(path: Path) -> Path | None:
    """The folder of LFW's identity folders under ``path`` (``path/lfw`` & co., or ``path`` with a ``pairs.txt``)."""
    for name in LFW_DIRS:
        if (path / name).is_dir():
            return path / name
    if (path / "pairs.txt").is_file() or (path.name in LFW_DIRS and (path.parent / "pairs.txt").is_file()):
        return path
    return None


def _find_pairs(path: Path, images: Path) -> Path | None:
    for cand in (path / "pairs.txt", images / "pairs.txt", images.parent / "pairs.txt"):
        if cand.is_file():
            return cand
    return None


def load_embed_data(cfg: EmbedDataConfig, training: bool = True) -> EmbedSplits:
    """Pool the dataset's images, check its identities, split them (see the module docstring). ``training``: refuse
    training identities with a single image (evaluation keeps them: they are distractors)."""
    fmt, pairs, root = cfg.format, Path(cfg.pairs).expanduser() if cfg.pairs else None, None
    data = cfg.data
    if fmt in ("auto", "lfw") and data not in ("identities", "digits", "shapes"):
        path = Path(data).expanduser()
        found = lfw_root(path) if path.is_dir() else None
        if fmt == "lfw" and found is None:
            if not path.is_dir():
                raise DataError(f"--data: expected an LFW folder (lfw/<Name>/<Name>_0001.jpg), got '{path}' (not found)")
            found = path
        if found is not None:
            root, data, fmt = found, str(found), "imagefolder"
            pairs = pairs or _find_pairs(path, found)
    dc = DataConfig(data=data, format=fmt, img_size=cfg.img_size, val_split=0, test_split=0, split_seed=cfg.split_seed,
                    workers=cfg.workers, fast_path=cfg.fast_path, max_memory_mb=cfg.max_memory_mb, bad_images=cfg.bad_images,
                    synth_count=cfg.synth_count, synth_classes=cfg.synth_classes)
    pool = pooled(load_dataset(dc))
    if root is None and Path(cfg.data).expanduser().is_dir():
        root = Path(cfg.data).expanduser()
    pool = drop_small(pool, cfg.min_images)
    tr, va, te = split_identities(pool, cfg.split_by, cfg.val_split, cfg.test_split, cfg.split_seed)
    if training and cfg.min_images == 0:
        counts = np.bincount(tr.labels.numpy(), minlength=len(tr.classes))
        if (counts < 2).any():
            name = tr.classes[int(np.flatnonzero(counts < 2)[0])]
            raise DataError(f"dataset {pool.name}: expected at least 2 images of every training identity (a positive pair), got 1 of '{name}' "
                            f"({int((counts < 2).sum())} such identities; --min-images 2 leaves them out)")
    return EmbedSplits(tr, va, te, pairs, root)


def pooled(splits: Splits) -> ImageSource:
    """Every image of every split in one source (identities are split again by :func:`split_identities`)."""
    parts = [s for s in (splits.train, splits.val, splits.test) if s is not None and len(s)]
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if any(list(p.classes) != list(first.classes) for p in parts):
        raise DataError(f"dataset {first.name}: expected every split to have the same classes, got different ones")
    labels = torch.cat([p.labels for p in parts])
    if all(p.in_memory for p in parts):
        return ImageSource(first.classes, labels, images=torch.cat([p.images for p in parts]), size=first.size, channels=first.channels,
                           name=first.name, augment=first.augment)
    if any(p.in_memory for p in parts):  # one split decoded, another on disk: decode all (rare: small sets)
        return pooled(Splits(*[p.materialize() for p in parts]))
    return ImageSource(first.classes, labels, paths=[f for p in parts for f in p.paths], size=first.size, channels=first.channels,
                       name=first.name, augment=first.augment, decode=first.decode)


def drop_small(src: ImageSource, min_images: int) -> ImageSource:
    """``src`` without the identities that have fewer than ``min_images`` images (a warning says how many)."""
    if min_images <= 1:
        return src
    counts = np.bincount(src.labels.numpy(), minlength=len(src.classes))
    keep_cls = np.flatnonzero(counts >= min_images)
    if len(keep_cls) < len(src.classes):
        warnings.warn(f"--min-images {min_images}: left out {len(src.classes) - len(keep_cls)} of {len(src.classes)} identities "
                      f"({int(counts[counts < min_images].sum())} images)", stacklevel=2)
    return _relabel(src, np.flatnonzero(np.isin(src.labels.numpy(), keep_cls)))


def _relabel(src: ImageSource, idx: np.ndarray) -> ImageSource:
    """The images ``idx`` of ``src`` with their identities renumbered ``0..k-1`` (in the order of the old labels)."""
    sub = src.subset(np.sort(idx))
    old = np.unique(sub.labels.numpy())
    remap = np.full(len(src.classes), -1, dtype=np.int64)
    remap[old] = np.arange(len(old))
    sub.classes = [src.classes[c] for c in old]
    sub.labels = torch.from_numpy(remap[sub.labels.numpy()])
    return sub


def split_identities(src: ImageSource, by: str, val_frac: float, test_frac: float, seed: int) -> tuple[ImageSource, ImageSource | None, ImageSource | None]:
    """Train / val / test of ``src``: disjoint identities (``by="identity"``) or held-out images (``"image"``)."""
    k = len(src.classes)
    if k < 2:
        raise DataError(f"dataset {src.name}: expected at least 2 identities, got {k}")
    if by == "image":
        s = split_holdout(Splits(src), val_frac, test_frac, seed)
        return s.train, s.val, s.test
    order = np.random.default_rng(seed).permutation(k)
    n_te = int(math.floor(k * test_frac + 0.5)) if test_frac > 0 else 0
    n_va = int(math.floor(k * val_frac + 0.5)) if val_frac > 0 else 0
    n_te, n_va = (max(2, n_te) if n_te else 0), (max(2, n_va) if n_va else 0)  # a retrieval set needs 2 identities
    if k - n_te - n_va < 2:
        raise DataError(f"dataset {src.name}: expected enough identities for train (2+), val ({n_va}) and test ({n_te}), got {k}; "
                        f"lower --val-split / --test-split or add identities")
    labels = src.labels.numpy()
    parts = np.split(order, [n_te, n_te + n_va])
    te, va, tr = (_relabel(src, np.flatnonzero(np.isin(labels, p))) if len(p) else None for p in parts)
    return tr, va, te


# --------------------------------------------------------------------------------------------
# Batches: m images of each of P identities
# --------------------------------------------------------------------------------------------
def m_per_class_batches(labels: torch.Tensor, batch_size: int, m: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The global training batches of ``epoch``: ``len(labels) // batch_size`` batches, each ``batch_size // m``
    distinct identities with ``m`` images each (an identity with fewer images repeats some). Identities take turns
    in a seeded order and each one's images in a seeded order, so every image is seen about once an epoch."""
    if m < 1 or batch_size % m:
        raise ConfigError(f"--batch-size: expected a multiple of --m-per-class {m}, got {batch_size}")
    g = epoch_generator(seed, epoch, salt=7)
    lab = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    classes = np.unique(lab)
    p = batch_size // m
    if p > len(classes):
        raise ConfigError(f"--batch-size: expected at most {len(classes) * m} ({len(classes)} identities x --m-per-class {m}), got {batch_size}")
    pools = {int(c): torch.from_numpy(np.flatnonzero(lab == c)) for c in classes}
    queues: dict[int, list[int]] = {c: [] for c in pools}
    turn: list[int] = []

    def take(c: int) -> list[int]:
        out = []
        while len(out) < m:
            if not queues[c]:
                queues[c] = pools[c][torch.randperm(len(pools[c]), generator=g)].tolist()
            out.append(queues[c].pop())
        return out

    batches = []
    for _ in range(len(lab) // batch_size):
        chosen: list[int] = []
        while len(chosen) < p:
            if not turn:
                turn = classes[torch.randperm(len(classes), generator=g).numpy()].tolist()
            c = turn.pop()
            if c not in chosen:
                chosen.append(int(c))
        batches.append(torch.tensor([i for c in chosen for i in take(c)], dtype=torch.long))
    return batches


class EmbedStream(BatchStream):
    """A :class:`~vislab.data.classify.stream.BatchStream` whose training batches are m-per-class
    (:func:`m_per_class_batches`); evaluation batches are in order. Batches are the classification ones
    (``x``, ``y``, ``index``, ``n_global``)."""

    def __init__(self, source: ImageSource, batch_size: int, *, m_per_class: int = 4, **kw):
        super().__init__(source, batch_size, **kw)
        self.m = m_per_class
        if self.train:
            self.batch_size = batch_size
            if batch_size % m_per_class:
                raise ConfigError(f"--batch-size: expected a multiple of --m-per-class {m_per_class}, got {batch_size}")
            ids = len(torch.unique(source.labels))
            fits = min(ids * m_per_class, len(source)) // m_per_class * m_per_class  # P distinct identities of m
            if fits < 2 * m_per_class:
                raise ConfigError(f"--batch-size: expected room for 2 identities x --m-per-class {m_per_class}, got {ids} training identities "
                                  f"({len(source)} images)")
            if batch_size > fits:
                warnings.warn(f"--batch-size {batch_size} is more than the {ids} training identities x --m-per-class {m_per_class} allow; using {fits}",
                              stacklevel=2)
                self.batch_size = fits

    def __len__(self) -> int:
        return len(self.src) // self.batch_size if self.train else math.ceil(len(self.src) / self.batch_size)

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        if not self.train:
            return super()._global_batches(epoch)
        return m_per_class_batches(self.src.labels, self.batch_size, self.m, self.seed, epoch)


# --------------------------------------------------------------------------------------------
# Verification pairs
# --------------------------------------------------------------------------------------------
def lfw_image(root: Path, name: str, number: str) -> Path:
    """LFW's file of ``name``'s ``number``-th image: ``root/Name/Name_0003.jpg``."""
    return root / name / f"{name}_{int(number):04d}.jpg"


def read_pairs(path: Path, root: Path | None) -> tuple[list[str], list[str], np.ndarray, int]:
    """``(paths_a, paths_b, issame, folds)`` of a pairs file: LFW's ``pairs.txt`` (its header: folds and pairs per
    half-fold; then ``name n1 n2`` matched and ``name1 n1 name2 n2`` mismatched lines) or a CSV with a header
    ``path_a,path_b,same`` (paths relative to the CSV's folder or absolute; 10 folds). Every named image must exist.

    Raises:
        DataError: a line that is neither form, or an image that is not there (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--pairs: expected a pairs file, got '{path}' (not found)")
    lines = path.read_text().splitlines()
    a, b, same = [], [], []
    if lines and lines[0].replace(" ", "").lower().startswith("path_a,path_b"):
        folds = 10
        for no, row in enumerate(csv.reader(lines[1:]), 2):
            if not row:
                continue
            if len(row) != 3:
                raise DataError(f"pairs '{path}' line {no}: expected path_a,path_b,same, got {','.join(row)!r}")
            a.append(str(_resolve(path.parent, row[0]))), b.append(str(_resolve(path.parent, row[1])))
            same.append(row[2].strip().lower() in ("1", "true", "yes", "same"))
    else:
        if root is None:
            raise DataError(f"pairs '{path}': expected --data to be the LFW image folder its names refer to, got none")
        head = lines[0].split() if lines else []
        has_head = len(head) in (1, 2) and all(h.isdigit() for h in head)  # "10 300": folds, pairs per half-fold; "1100" (pairsDevTrain)
        folds = int(head[0]) if has_head and len(head) == 2 else 10
        for no, line in enumerate(lines[1:] if has_head else lines, 2 if has_head else 1):
            f = line.split()
            if not f:
                continue
            if len(f) == 3:
                a.append(str(lfw_image(root, f[0], f[1]))), b.append(str(lfw_image(root, f[0], f[2]))), same.append(True)
            elif len(f) == 4:
                a.append(str(lfw_image(root, f[0], f[1]))), b.append(str(lfw_image(root, f[2], f[3]))), same.append(False)
            else:
                raise DataError(f"pairs '{path}' line {no}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {line.strip()!r}")
    for i, (pa, pb) in enumerate(zip(a, b, strict=True)):
        for p in (pa, pb):
            if not Path(p).is_file():
                raise DataError(f"pairs '{path}': expected the image '{p}' of pair {i + 1}, got none (missing)")
    if not a:
        raise DataError(f"pairs '{path}': expected at least one pair, got none")
    return a, b, np.asarray(same, dtype=bool), max(1, min(folds, len(a)))


def _resolve(base: Path, p: str) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else base / q

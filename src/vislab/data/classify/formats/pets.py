"""Oxford-IIIT Pets and Kaggle's Dogs vs. Cats, in their published layouts.

``pets``: ``images/<Breed_Name>_<n>.jpg`` with ``annotations/trainval.txt`` and
``annotations/test.txt`` of lines ``<image> <class id 1..37> <species 1=cat 2=dog> <breed id>``
(``#`` lines are comments). Class names are the breeds (the image name before its last ``_``),
ordered by class id. ``pets_species`` reads the same files and classifies cat vs dog. ``--data``
may name the folder holding ``images/`` and ``annotations/``, or the folder holding
``oxford-iiit-pet/`` (torchvision's layout). The trainval list becomes train; val is carved by
:func:`vislab.data.classify.source.load_dataset`.

``cats_vs_dogs``: ``train/cat.0.jpg``, ``train/dog.12.jpg``... (``--data`` the folder holding
``train/`` or ``train/`` itself); the class is the filename prefix; val and test are carved by a
seeded stratified split.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "train"
    >>> d.mkdir()
    >>> for f in ("cat.0.jpg", "dog.0.jpg", "dog.1.jpg"):
    ...     Image.new("RGB", (5, 4)).save(d / f)
    >>> s = cats_vs_dogs(DataConfig(), d.parent)
    >>> s.train.classes, s.train.labels.tolist()
    (['cat', 'dog'], [0, 1, 1])
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vislab.core.errors import DataError
from vislab.core.io import IMAGE_EXTENSIONS
from vislab.data.classify.source import DATASETS, DataConfig, Splits
from vislab.data.classify.formats._common import require_root
from vislab.data.classify.formats._files import find_image, file_sources

PETS_FOLDER = "oxford-iiit-pet"
SPECIES = ["cat", "dog"]
CATS_DOGS_RE = re.compile(r"^(cat|dog)\.[^.]+\.[A-Za-z0-9]+$", re.IGNORECASE)


def pets_dir(root: Path) -> Path:
    """``root/oxford-iiit-pet`` when it exists, else ``root``."""
    return root / PETS_FOLDER if (root / PETS_FOLDER).is_dir() else root


def read_pets_list(path: Path, name: str) -> list[tuple[int, str, int, int]]:
    """``(line, image, class_id, species)`` of each record of a Pets annotation list.

    Raises:
        DataError: the file is missing, or a line is not ``<image> <class id> <species> <breed id>``.
    """
    if not path.is_file():
        raise DataError(f"{name}: expected the annotation list '{path}' (lines '<image> <class id> <species> <breed id>'), got nothing at that path")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{name}: expected '{path}' as readable UTF-8 text, got {e.__class__.__name__}") from None
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        rec = raw.split()
        if not rec or rec[0].startswith("#"):
            continue
        if len(rec) < 3 or not rec[1].isdigit() or rec[2] not in ("1", "2"):
            raise DataError(f"{name} '{path}' line {line}: expected '<image> <class id> <species 1|2> <breed id>', got {raw.strip()!r}")
        rows.append((line, rec[0], int(rec[1]), int(rec[2])))
    return rows


def _pets(cfg: DataConfig, root: Path | None, name: str, species: bool) -> Splits:
    base = pets_dir(require_root(name, root))
    images, ann = base / "images", base / "annotations"
    lists = {split: read_pets_list(ann / f"{file}.txt", name) for split, file in (("train", "trainval"), ("test", "test"))}
    if not images.is_dir():
        raise DataError(f"{name}: expected the image folder '{images}' (images/<Breed>_<n>.jpg), got nothing at that path")
    breeds: dict[int, str] = {}
    for split, rows in lists.items():
        for line, image, cid, _ in rows:
            breed = image.rsplit("_", 1)[0]
            if breeds.setdefault(cid, breed) != breed:
                raise DataError(
                    f"{name} '{ann / (('trainval' if split == 'train' else 'test') + '.txt')}' line {line}: "
                    f"expected class id {cid} to be breed '{breeds[cid]}', got '{breed}' ({image})"
                )
    ids = sorted(breeds)
    classes = SPECIES if species else [breeds[i] for i in ids]
    index = {cid: i for i, cid in enumerate(ids)}
    parts: dict[str, tuple[list[str], list[int]]] = {}
    for split, rows in lists.items():
        paths, labels = [], []
        for line, image, cid, sp in rows:
            p = find_image(images, image)
            if cfg.bad_images == "fail" and not os.path.isfile(p):  # with "skip", scan_images warns and leaves it out
                raise DataError(f"{name} '{ann}' ({split}) line {line}: expected an image file at '{p}', got nothing at that path")
            paths.append(p)
            labels.append(sp - 1 if species else index[cid])
        parts[split] = (paths, labels)
    if not parts["train"][0]:
        raise DataError(f"{name}: expected image lines in '{ann / 'trainval.txt'}', got none")
    srcs = file_sources(parts, classes, name, cfg.img_size, cfg.bad_images, augment="standard")
    return Splits(train=srcs["train"], test=srcs["test"] if parts["test"][0] else None)


@DATASETS.register(task="classify")
def pets(cfg: DataConfig, root: Path | None) -> Splits:
    """Oxford-IIIT Pets, 37 breeds (``images/`` + ``annotations/{trainval,test}.txt``); lazy, read from disk."""
    return _pets(cfg, root, "pets", species=False)


@DATASETS.register(task="classify")
def pets_species(cfg: DataConfig, root: Path | None) -> Splits:
    """Oxford-IIIT Pets as cat vs dog (the species column of the annotation lists); lazy, read from disk."""
    return _pets(cfg, root, "pets_species", species=True)


def cats_dogs_dir(root: Path) -> Path:
    """``root/train`` when it exists, else ``root``."""
    return root / "train" if (root / "train").is_dir() else root


def is_cats_dogs_file(name: str) -> bool:
    """Whether ``name`` looks like ``cat.<n>.<ext>`` / ``dog.<n>.<ext>`` with an image extension."""
    return bool(CATS_DOGS_RE.match(name)) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@DATASETS.register(task="classify")
def cats_vs_dogs(cfg: DataConfig, root: Path | None) -> Splits:
    """Kaggle Dogs vs. Cats (``train/cat.<n>.jpg``, ``train/dog.<n>.jpg``); lazy, read from disk."""
    folder = cats_dogs_dir(require_root("cats_vs_dogs", root))
    if not folder.is_dir():
        raise DataError(f"cats_vs_dogs: expected a folder of cat.<n>.jpg / dog.<n>.jpg files, got '{folder}'")
    names = sorted(e.name for e in os.scandir(folder) if e.is_file() and is_cats_dogs_file(e.name))
    if not names:
        raise DataError(f"cats_vs_dogs: expected files named cat.<n>.jpg / dog.<n>.jpg in '{folder}', got none")
    paths = [os.fspath(folder / n) for n in names]
    labels = [SPECIES.index(n.split(".", 1)[0].lower()) for n in names]
    srcs = file_sources({"train": (paths, labels)}, SPECIES, "cats_vs_dogs", cfg.img_size, cfg.bad_images, augment="standard")
    return Splits(train=srcs["train"])

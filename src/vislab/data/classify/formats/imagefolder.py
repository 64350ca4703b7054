"""ImageFolder datasets: ``root/<class>/*.png``, or ``root/{train,val,test}/<class>/*.png``.

Class names are the sorted sub-folder names. With one flat set of class folders, val and test
are carved from it later by :func:`vislab.data.classify.source.split_holdout`; with explicit split folders
(``val`` may also be called ``valid`` or ``validation``) every split must have train's classes.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for c in ("cat", "dog"):
    ...     (root / c).mkdir()
    ...     Image.new("RGB", (5, 4)).save(root / c / "a.png")
    >>> s = imagefolder(DataConfig(), root)
    >>> s.train.classes, s.train.size, s.train.channels, s.val is None
    (['cat', 'dog'], (4, 5), 3, True)
"""

from __future__ import annotations

from pathlib import Path

from vislab.core.errors import DataError
from vislab.core.io import IMAGE_EXTENSIONS
from vislab.data.classify.source import DATASETS, DataConfig, Splits
from vislab.data.classify.formats._common import require_root
from vislab.data.classify.formats._files import as_str_paths, file_sources

SPLIT_DIRS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden entries skipped), sorted by path."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)
    )


def class_dirs(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def split_dirs(root: Path) -> dict[str, Path] | None:
    """``{"train": root/train, "val": root/valid, ...}`` when ``root`` is laid out by split, else None.

    A root is laid out by split when it has a ``train`` folder and every visible sub-folder is a
    split name.
    """
    subs = {p.name: p for p in class_dirs(root)}
    known = {n for names in SPLIT_DIRS.values() for n in names}
    if "train" not in subs or not set(subs) <= known:
        return None
    out: dict[str, Path] = {}
    for split, names in SPLIT_DIRS.items():
        found = [subs[n] for n in names if n in subs]
        if len(found) > 1:
            raise DataError(f"imagefolder '{root}': expected one {split} folder, got {[p.name for p in found]}")
        if found:
            out[split] = found[0]
    return out


def scan_class_folders(folder: Path) -> tuple[list[str], list[Path], list[int]]:
    """Classes, image paths and labels of ``folder/<class>/*``.

    Raises:
        DataError: no class folders, or an empty one (the message names the folder).
    """
    dirs = class_dirs(folder)
    if not dirs:
        loose = list_images(folder)
        got = f"{len(loose)} loose image(s) and no sub-folders" if loose else "no sub-folders"
        raise DataError(f"imagefolder '{folder}': expected one sub-folder of images per class (<root>/<class>/*.png), got {got}")
    classes, paths, labels = [], [], []
    for label, d in enumerate(dirs):
        files = list_images(d)
        if not files:
            raise DataError(f"imagefolder: expected at least one image in '{d}', got none")
        classes.append(d.name)
        paths.extend(files)
        labels.extend([label] * len(files))
    return classes, paths, labels


@DATASETS.register(task="classify")
def imagefolder(cfg: DataConfig, root: Path | None) -> Splits:
    """Images in class sub-folders, optionally inside train/val/test folders (lazy, read from disk)."""
    root = require_root("imagefolder", root)
    if not root.is_dir():
        raise DataError(f"imagefolder: expected a folder, got '{root}'")
    name = root.name or "imagefolder"
    layout = split_dirs(root)
    if layout is None:
        classes, paths, labels = scan_class_folders(root)
        parts = {"train": (as_str_paths(paths), labels)}
    else:
        classes, paths, labels = scan_class_folders(layout["train"])
        parts = {"train": (as_str_paths(paths), labels)}
        for split in ("val", "test"):
            if split not in layout:
                continue
            c, p, lab = scan_class_folders(layout[split])
            if c != classes:
                raise DataError(
                    f"imagefolder '{layout[split]}': expected the classes of '{layout['train']}' {classes}, got {c}"
                )
            parts[split] = (as_str_paths(p), lab)
    srcs = file_sources(parts, classes, name, cfg.img_size, cfg.bad_images, augment="standard")
    return Splits(train=srcs["train"], val=srcs.get("val"), test=srcs.get("test"))

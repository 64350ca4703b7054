"""Food-101 in its published layout: ``food-101/images/<class>/<id>.jpg`` and ``food-101/meta/``.

``meta/classes.txt`` lists the class names (one a line; the order fixes the labels);
``meta/train.txt`` and ``meta/test.txt`` list the images of each split as ``<class>/<id>`` lines
(no extension). ``--data`` may name the folder that holds ``food-101`` or ``food-101`` itself.
There is no val split: :func:`vislab.data.classify.source.load_dataset` carves it from train.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp()) / "food-101"
    >>> for c in ("pho", "ramen"):
    ...     (root / "images" / c).mkdir(parents=True)
    ...     Image.new("RGB", (5, 4)).save(root / "images" / c / "1.jpg")
    >>> (root / "meta").mkdir()
    >>> _ = (root / "meta" / "classes.txt").write_text("pho\\nramen\\n")
    >>> _ = (root / "meta" / "train.txt").write_text("pho/1\\nramen/1\\n")
    >>> _ = (root / "meta" / "test.txt").write_text("ramen/1\\n")
    >>> s = food101(DataConfig(), root.parent)
    >>> s.train.classes, s.train.labels.tolist(), s.test.labels.tolist(), s.val is None
    (['pho', 'ramen'], [0, 1], [1], True)
"""

from __future__ import annotations

import os
from pathlib import Path

from vislab.core.errors import DataError
from vislab.data.classify.source import DATASETS, DataConfig, Splits
from vislab.data.classify.formats._common import require_root
from vislab.data.classify.formats._files import find_image, file_sources

FOLDER = "food-101"


def food101_dir(root: Path) -> Path:
    """``root/food-101`` when it exists, else ``root`` (which must then hold ``meta/classes.txt``)."""
    return root / FOLDER if (root / FOLDER).is_dir() else root


def read_lines(path: Path, what: str) -> list[str]:
    """Non-empty stripped lines of ``path``.

    Raises:
        DataError: the file is missing or unreadable (the message names it).
    """
    if not path.is_file():
        raise DataError(f"food101: expected {what} at '{path}', got nothing at that path")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"food101: expected {what} at '{path}' as readable UTF-8 text, got {e.__class__.__name__}") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


@DATASETS.register(task="classify")
def food101(cfg: DataConfig, root: Path | None) -> Splits:
    """Food-101 (``food-101/images`` + ``meta/{classes,train,test}.txt``); lazy, read from disk."""
    base = food101_dir(require_root("food101", root))
    meta, images = base / "meta", base / "images"
    classes = read_lines(meta / "classes.txt", "the class list meta/classes.txt")
    if len(set(classes)) != len(classes):
        raise DataError(f"food101 '{meta / 'classes.txt'}': expected distinct class names, got duplicates")
    lookup = {c: i for i, c in enumerate(classes)}
    if not images.is_dir():
        raise DataError(f"food101: expected the image folder '{images}' (images/<class>/<id>.jpg), got nothing at that path")
    parts: dict[str, tuple[list[str], list[int]]] = {}
    for split in ("train", "test"):
        list_file = meta / f"{split}.txt"
        paths, labels = [], []
        for line, item in enumerate(read_lines(list_file, f"the {split} list meta/{split}.txt"), start=1):
            cls = item.split("/", 1)[0]
            if "/" not in item or cls not in lookup:
                raise DataError(f"food101 '{list_file}' line {line}: expected '<class>/<id>' with a class of meta/classes.txt, got {item!r}")
            p = find_image(images, item)
            if cfg.bad_images == "fail" and not os.path.isfile(p):  # with "skip", scan_images warns and leaves it out
                raise DataError(f"food101 '{list_file}' line {line}: expected an image file at '{p}', got nothing at that path")
            paths.append(p)
            labels.append(lookup[cls])
        parts[split] = (paths, labels)
    srcs = file_sources(parts, classes, "food101", cfg.img_size, cfg.bad_images, augment="standard")
    return Splits(train=srcs["train"], test=srcs["test"])

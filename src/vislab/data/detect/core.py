"""The in-memory form every detection format is read into and written from.

A :class:`DetDataset` is a list of :class:`DetImage` (one per image file: its size, boxes ``(N, 4)``
float32 xyxy in *pixel-edge* coordinates, labels ``(N,)`` int64 indexing ``classes``, optional
instance masks ``(N, H, W)``) plus the class names and the folder image paths are relative to.
Readers never raise on a bad annotation: they record an :class:`Issue` naming the file, so
:func:`validate` can report every problem at once; :func:`check` turns issues into one DataError.

Example:
    >>> import numpy as np
    >>> im = DetImage("a.png", 20, 10, np.array([[2, 1, 25, 9]], np.float32), np.array([0]))
    >>> ds = DetDataset(["cat"], [im])
    >>> [str(i) for i in validate(ds, check_files=False)]
    ['a.png: box 0 [2.0, 1.0, 25.0, 9.0] expected inside the 20x10 image, got one outside it']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vislab.core.errors import DataError



@dataclass
class Issue:
    """One problem in one annotated file."""

    file: str
    message: str
    kind: str = "other"  # outside | empty_box | unknown_class | size_mismatch | missing_image | parse

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class DetImage:
    """One image and its objects."""

    file: str  # path relative to the dataset root (or absolute)
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float32 xyxy, pixel edges
    labels: np.ndarray  # (N,) int64 class indices
    masks: np.ndarray | None = None  # (N, H, W) bool
    id: int = 0
    annotation: str = ""  # the file the annotation came from (for messages)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, np.int64).reshape(-1)


@dataclass
class DetDataset:
    """Images with boxes (and masks), in one class list."""

    classes: list[str]
    images: list[DetImage]
    root: Path = Path(".")
    source: str = ""
    issues: list[Issue] = field(default_factory=list)  # found while reading
    pixels: np.ndarray | None = None  # (N, 3, H, W) uint8 when held in memory (generated data)

    def __len__(self) -> int:
        return len(self.images)

    def path(self, i: int) -> Path:
        p = Path(self.images[i].file)
        return p if p.is_absolute() else self.root / p

    def n_objects(self) -> int:
        return int(sum(len(im.labels) for im in self.images))


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the file header, or None when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):
        return None


def validate(ds: DetDataset, check_files: bool = True) -> list[Issue]:
    """Every problem: boxes outside the image or of zero area, unknown classes, sizes that disagree
    with the image file, missing images -- each naming its file. Issues found while reading come first."""
    out = list(ds.issues)
    k = len(ds.classes)
    for i, im in enumerate(ds.images):
        name = im.annotation or im.file
        if check_files and ds.pixels is None:
            p = ds.path(i)
            size = image_size(p) if p.is_file() else None
            if not p.is_file():
                out.append(Issue(name, f"image expected at '{p}', got no file there", "missing_image"))
            elif size is None:
                out.append(Issue(name, f"image '{p}' expected readable, got an unreadable file", "missing_image"))
            elif size != (im.width, im.height):
                out.append(Issue(name, f"image size expected {im.width}x{im.height} as annotated, got {size[0]}x{size[1]} in '{p}'", "size_mismatch"))
        for j, (b, c) in enumerate(zip(im.boxes, im.labels, strict=True)):
            bl = [round(float(v), 2) for v in b]
            if not 0 <= c < k:
                out.append(Issue(name, f"box {j}: class index expected in [0, {k}), got {int(c)}", "unknown_class"))
            if b[2] <= b[0] or b[3] <= b[1]:
                out.append(Issue(name, f"box {j} {bl} expected positive width and height, got zero area", "empty_box"))
            elif b[0] < -0.5 or b[1] < -0.5 or b[2] > im.width + 0.5 or b[3] > im.height + 0.5:
                out.append(Issue(name, f"box {j} {bl} expected inside the {im.width}x{im.height} image, got one outside it", "outside"))
    return out


def check(ds: DetDataset, check_files: bool = True, limit: int = 5) -> DetDataset:
    """``ds`` when valid; otherwise a DataError listing the first ``limit`` issues by file."""
    issues = validate(ds, check_files)
    if issues:
        shown = "; ".join(str(i) for i in issues[:limit])
        more = f" (and {len(issues) - limit} more; run `vislab data validate {ds.source}`)" if len(issues) > limit else ""
        raise DataError(f"dataset {ds.source or '<memory>'}: expected valid annotations, got {len(issues)} problem(s): {shown}{more}")
    return ds


def load_pixels(ds: DetDataset, i: int) -> np.ndarray:
    """Image ``i`` as ``(H, W, 3)`` uint8."""
    if ds.pixels is not None:
        return ds.pixels[i].transpose(1, 2, 0)
    from vislab.core.io import read_image

    return read_image(ds.path(i), "RGB")


def save_image(ds: DetDataset, i: int, dst: Path) -> None:
    """Write image ``i`` to ``dst`` (copied as is when it is a file in the same format)."""
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    if ds.pixels is None and ds.path(i).suffix.lower() == dst.suffix.lower():
        if ds.path(i).resolve() != dst.resolve():
            shutil.copyfile(ds.path(i), dst)
        return
    from PIL import Image

    Image.fromarray(load_pixels(ds, i)).save(dst)


def image_name(ds: DetDataset, i: int) -> str:
    """A flat file name for image ``i`` (unique within the dataset)."""
    p = Path(ds.images[i].file)
    suffix = p.suffix if ds.pixels is None and p.suffix else ".png"
    return p.stem + suffix

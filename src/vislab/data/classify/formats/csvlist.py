"""CSV image lists: a header ``path,label`` and optionally ``split`` (train / val / test).

Paths are relative to the CSV's folder (absolute paths are kept). Labels are class names, or
integer indices when every label is an integer. A ``classes.txt`` beside the CSV (one name per
line) fixes the class list and its order; labels must then be one of its names or an index into
it. Without it, name labels give sorted class names and integer labels give classes ``"0".."max"``.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("L", (3, 3)).save(d / "a.png")
    >>> _ = (d / "list.csv").write_text("path,label\\na.png,zero\\na.png,one\\n")
    >>> s = csv_dataset(DataConfig(), d / "list.csv")
    >>> s.train.classes, s.train.labels.tolist(), s.train.channels
    (['one', 'zero'], [1, 0], 1)
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from vislab.core.errors import DataError
from vislab.data.classify.source import DATASETS, DataConfig, Splits
from vislab.data.classify.formats._common import require_root
from vislab.data.classify.formats._files import file_sources

SPLIT_NAMES = {"": "train", "train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def _is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()


def read_csv_rows(path: Path) -> list[tuple[int, str, str, str]]:
    """Rows of an image-list CSV as ``(line, path, label, split)``, whitespace stripped.

    Raises:
        DataError: no ``path`` / ``label`` header, or a row with too few fields.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"csv '{path}': expected a readable UTF-8 text file, got {e.__class__.__name__}") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    if "path" not in header or "label" not in header:
        raise DataError(f"csv '{path}': expected a header 'path,label[,split]', got {','.join(header) or 'an empty file'!r}")
    ip, il, isp = header.index("path"), header.index("label"), header.index("split") if "split" in header else -1
    rows = []
    for line, rec in enumerate(reader, start=2):
        if not rec or all(not f.strip() for f in rec):
            continue
        if len(rec) <= max(ip, il, isp):
            raise DataError(f"csv '{path}' line {line}: expected {len(header)} fields ({','.join(header)}), got {len(rec)}")
        rows.append((line, rec[ip].strip(), rec[il].strip(), rec[isp].strip().lower() if isp >= 0 else ""))
    if not rows:
        raise DataError(f"csv '{path}': expected at least one image row, got none")
    return rows


def resolve_labels(rows: list[tuple[int, str, str, str]], csv_path: Path, classes: list[str] | None) -> tuple[list[str], list[int]]:
    """Class names and one label index per row.

    Raises:
        DataError: a label that is not a known class or an index out of range (names row and file).
    """
    labels = [r[2] for r in rows]
    all_int = all(_is_int(s) for s in labels)
    if classes is None:
        classes = [str(i) for i in range(max(int(s) for s in labels) + 1)] if all_int else sorted(set(labels))
    lookup = {c: i for i, c in enumerate(classes)}
    out = []
    for line, file, label, _ in rows:
        if label in lookup:
            out.append(lookup[label])
        elif _is_int(label) and 0 <= int(label) < len(classes):
            out.append(int(label))
        else:
            want = f"an index in [0, {len(classes) - 1}] or one of {classes}" if len(classes) <= 20 else f"an index in [0, {len(classes) - 1}] or a class name"
            raise DataError(f"csv '{csv_path}' line {line} ('{file}'): expected a label {want}, got {label!r}")
    return classes, out


@DATASETS.register(name="csv", task="classify")
def csv_dataset(cfg: DataConfig, root: Path | None) -> Splits:
    """Images listed in a CSV of path,label[,split] (lazy, read from disk)."""
    path = require_root("csv", root)
    if not path.is_file():
        raise DataError(f"csv: expected a CSV file of path,label rows, got '{path}'")
    rows = read_csv_rows(path)
    base = path.parent
    classes_file = base / "classes.txt"
    fixed = None
    if classes_file.is_file():
        fixed = [ln.strip() for ln in classes_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    classes, labels = resolve_labels(rows, path, fixed)
    parts: dict[str, tuple[list[str], list[int]]] = {}
    for (line, file, _, split), label in zip(rows, labels, strict=True):
        if split not in SPLIT_NAMES:
            raise DataError(f"csv '{path}' line {line}: expected split train, val or test, got {split!r}")
        full = os.fspath(Path(file) if os.path.isabs(file) else base / file)
        if not file or not os.path.isfile(full):
            raise DataError(f"csv '{path}' line {line}: expected an image file at '{full}', got nothing at that path")
        ps, ls = parts.setdefault(SPLIT_NAMES[split], ([], []))
        ps.append(full)
        ls.append(label)
    if "train" not in parts:
        raise DataError(f"csv '{path}': expected rows of the train split, got only {sorted(parts)}")
    srcs = file_sources(parts, classes, path.stem, cfg.img_size, cfg.bad_images, augment="standard")
    return Splits(train=srcs["train"], val=srcs.get("val"), test=srcs.get("test"))

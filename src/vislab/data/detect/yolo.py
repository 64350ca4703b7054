"""YOLO txt: ``data.yaml`` (``path``, ``train``/``val`` image folders, ``names``) and one
``labels/<split>/<stem>.txt`` per image with lines ``class cx cy w h`` normalised to [0, 1].
An image without a label file has no objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from vislab.core.errors import DataError
from vislab.core.io import IMAGE_EXTENSIONS
from vislab.data.detect.core import (
    DetDataset,
    DetImage,
    Issue,
    image_name,
    image_size,
    save_image,
)


def _label_path(img: Path) -> Path:
    parts = list(img.parts)
    if "images" in parts:
        k = len(parts) - 1 - parts[::-1].index("images")
        parts[k] = "labels"
    return Path(*parts).with_suffix(".txt")


def read_yolo(data_yaml: str | Path, split: str = "train") -> DetDataset:
    """Read the ``split`` of a YOLO dataset described by ``data_yaml``."""
    p = Path(data_yaml)
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"YOLO data file '{p}': expected readable YAML, got {e.__class__.__name__}") from None
    names = d.get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or split not in d:
        raise DataError(f"YOLO data file '{p}': expected 'names' and a '{split}' entry, got keys {sorted(d)}")
    base = Path(d.get("path") or ".")
    base = base if base.is_absolute() else p.parent / base
    img_dir = base / d[split]
    if not img_dir.is_dir():
        raise DataError(f"YOLO data file '{p}': expected the {split} image folder '{img_dir}', got no folder there")
    files = sorted(f for f in img_dir.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
    images, issues = [], []
    for i, f in enumerate(files):
        lab = _label_path(f)
        size = image_size(f)
        if size is None:
            issues.append(Issue(str(f), "expected a readable image, got an unreadable file", "missing_image"))
            continue
        w, h = size
        boxes, labels = [], []
        if lab.is_file():
            for n, line in enumerate(lab.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                v = line.split()
                try:
                    c, cx, cy, bw, bh = int(v[0]), *(float(x) for x in v[1:5])
                except (ValueError, IndexError):
                    issues.append(Issue(f"{lab}:{n}", f"expected 'class cx cy w h', got {line.strip()!r}", "parse"))
                    continue
                boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
                labels.append(c)
        images.append(DetImage(str(f.relative_to(base)), w, h, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64),
                               id=i + 1, annotation=str(lab)))
    return DetDataset(list(map(str, names)), images, base, str(p), issues)


def write_yolo(ds: DetDataset, out: str | Path, split: str = "train") -> Path:
    """Write ``out/images/<split>/``, ``out/labels/<split>/`` and ``out/data.yaml``; returns the YAML path."""
    from vislab.core.io import atomic_write_text

    out = Path(out)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(ds.images):
        name = image_name(ds, i)
        save_image(ds, i, out / "images" / split / name)
        lines = []
        for b, c in zip(im.boxes.tolist(), im.labels.tolist(), strict=True):
            cx, cy = (b[0] + b[2]) / 2 / im.width, (b[1] + b[3]) / 2 / im.height
            lines.append(f"{c} {cx:.6f} {cy:.6f} {(b[2] - b[0]) / im.width:.6f} {(b[3] - b[1]) / im.height:.6f}")
        atomic_write_text(out / "labels" / split / (Path(name).stem + ".txt"), "".join(x + "\n" for x in lines))
    path = out / "data.yaml"
    names = dict(enumerate(ds.classes))
    data: dict = {"path": "."}
    if path.is_file():  # another split written here before: keep its entry (same classes only)
        try:
            old = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            old = {}
        if isinstance(old, dict):
            old_names = old.get("names")
            old_names = dict(enumerate(old_names)) if isinstance(old_names, list) else old_names
            if old_names not in (None, names):
                raise DataError(f"write yolo '{path}': expected the classes of the split already there {list(old_names.values())}, got {ds.classes}")
            data.update({k: v for k, v in old.items() if k in ("train", "val", "test")})
    data[split] = f"images/{split}"
    data["names"] = names
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    return path

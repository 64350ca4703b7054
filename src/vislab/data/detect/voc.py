"""Pascal VOC XML: ``Annotations/<stem>.xml`` (filename, size, objects with 1-based inclusive
``bndbox``) beside ``JPEGImages/``. The class order is kept in ``classes.txt`` when written
(VOC itself has none); without it, classes are the sorted names found."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from vislab.core.errors import DataError
from vislab.data.detect.core import (
    DetDataset,
    DetImage,
    Issue,
    image_name,
    save_image,
)


def read_voc(root: str | Path, classes: list[str] | None = None) -> DetDataset:
    """Read every ``root/Annotations/*.xml``; images are looked up in ``root/JPEGImages``."""
    root = Path(root)
    ann_dir = root / "Annotations"
    if not ann_dir.is_dir():
        raise DataError(f"VOC folder '{root}': expected an Annotations/ folder, got none")
    if classes is None and (root / "classes.txt").is_file():
        classes = [c.strip() for c in (root / "classes.txt").read_text().splitlines() if c.strip()]
    parsed, issues = [], []
    for f in sorted(ann_dir.glob("*.xml")):
        try:
            r = ET.parse(f).getroot()
            fname = r.findtext("filename") or f.stem + ".jpg"
            w, h = int(float(r.findtext("size/width"))), int(float(r.findtext("size/height")))
            objs = [(o.findtext("name").strip(), [float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")])
                    for o in r.iter("object")]
        except (ET.ParseError, TypeError, ValueError, AttributeError) as e:
            issues.append(Issue(str(f), f"expected VOC XML with filename, size and objects/bndbox, got {e.__class__.__name__}: {e}", "parse"))
            continue
        parsed.append((f, fname, w, h, objs))
    known = classes if classes is not None else sorted({n for *_, objs in parsed for n, _ in objs})
    index = {c: i for i, c in enumerate(known)}
    images = []
    for i, (f, fname, w, h, objs) in enumerate(parsed):
        boxes, labels = [], []
        for n, (x0, y0, x1, y1) in objs:
            if n not in index:
                issues.append(Issue(str(f), f"class expected one of {known}, got '{n}'", "unknown_class"))
                continue
            boxes.append([x0 - 1, y0 - 1, x1, y1])  # 1-based inclusive -> pixel edges
            labels.append(index[n])
        images.append(DetImage(f"JPEGImages/{fname}", w, h, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64),
                               id=i + 1, annotation=str(f)))
    return DetDataset(list(known), images, root, str(root), issues)


def write_voc(ds: DetDataset, out: str | Path) -> Path:
    """Write ``out/Annotations/*.xml``, ``out/JPEGImages/`` and ``out/classes.txt``; returns ``out``."""
    from vislab.core.io import atomic_write_text

    out = Path(out)
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(ds.images):
        name = image_name(ds, i)
        save_image(ds, i, out / "JPEGImages" / name)
        r = ET.Element("annotation")
        ET.SubElement(r, "folder").text = "JPEGImages"
        ET.SubElement(r, "filename").text = name
        size = ET.SubElement(r, "size")
        for k, v in (("width", im.width), ("height", im.height), ("depth", 3)):
            ET.SubElement(size, k).text = str(v)
        for b, c in zip(im.boxes.tolist(), im.labels.tolist(), strict=True):
            o = ET.SubElement(r, "object")
            ET.SubElement(o, "name").text = ds.classes[c] if 0 <= c < len(ds.classes) else str(c)
            ET.SubElement(o, "difficult").text = "0"
            bb = ET.SubElement(o, "bndbox")
            for k, v in zip(("xmin", "ymin", "xmax", "ymax"), (round(b[0]) + 1, round(b[1]) + 1, round(b[2]), round(b[3])), strict=True):
                ET.SubElement(bb, k).text = str(int(v))
        ET.indent(r)
        atomic_write_text(out / "Annotations" / (Path(name).stem + ".xml"), ET.tostring(r, encoding="unicode") + "\n")
    atomic_write_text(out / "classes.txt", "\n".join(ds.classes) + "\n")
    return out

"""COCO JSON: ``{"images": [...], "annotations": [...], "categories": [...]}``, boxes ``[x, y, w, h]``.

Classes are the categories in order of id; their ids are kept (``DetDataset.source`` aside) in
:data:`CATEGORY_IDS_KEY` of the written file's order, so COCO -> anything -> COCO keeps the ids'
order. Masks are written as RLE when present and read back with ``masks=True``.
"""

from __future__ import annotations

import json
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


def read_coco(path: str | Path, image_root: str | Path | None = None, masks: bool = False) -> DetDataset:
    """Read a COCO instances JSON; images are relative to ``image_root`` (default: ``<json dir>/images``
    when it exists, else the JSON's folder)."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"COCO file '{p}': expected readable JSON, got {e.__class__.__name__}: {e}") from None
    for key in ("images", "annotations", "categories"):
        if key not in d:
            raise DataError(f"COCO file '{p}': expected a '{key}' list, got keys {sorted(d)}")
    cats = sorted(d["categories"], key=lambda c: c["id"])
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    root = Path(image_root) if image_root else (p.parent / "images" if (p.parent / "images").is_dir() else p.parent)
    by_image: dict[int, list[dict]] = {im["id"]: [] for im in d["images"]}
    issues: list[Issue] = []
    for a in d["annotations"]:
        if a.get("image_id") not in by_image:
            issues.append(Issue(str(p), f"annotation {a.get('id')}: image_id expected among the images, got {a.get('image_id')}", "parse"))
            continue
        by_image[a["image_id"]].append(a)
    images = []
    for im in d["images"]:
        boxes, labels, segs = [], [], []
        where = f"{p.name}:{im['file_name']}"
        for a in by_image[im["id"]]:
            if a["category_id"] not in cat_index:
                issues.append(Issue(where, f"annotation {a.get('id')}: category_id expected one of {sorted(cat_index)}, got {a['category_id']}", "unknown_class"))
                continue
            x, y, w, h = (float(v) for v in a["bbox"])
            boxes.append([x, y, x + w, y + h])
            labels.append(cat_index[a["category_id"]])
            segs.append(a.get("segmentation"))
        m = _decode_masks(segs, im["height"], im["width"]) if masks and segs and all(segs) else None
        images.append(DetImage(im["file_name"], int(im["width"]), int(im["height"]), np.array(boxes, np.float32).reshape(-1, 4),
                               np.array(labels, np.int64), m, int(im["id"]), where))
    return DetDataset([c["name"] for c in cats], images, root, str(p), issues)


def _decode_masks(segs: list, h: int, w: int) -> np.ndarray:
    from faster_coco_eval.core import mask as mask_utils

    out = []
    for s in segs:
        if isinstance(s, list):  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(s, h, w))
        elif isinstance(s.get("counts"), list):
            rle = mask_utils.frPyObjects(s, h, w)
        else:
            rle = s
        out.append(mask_utils.decode(rle).astype(bool))
    return np.stack(out) if out else np.zeros((0, h, w), bool)


def to_coco_dict(ds: DetDataset, file_names: list[str] | None = None) -> dict:
    """The COCO dict of ``ds`` (category ids 1..K, image ids 1..N, areas of the boxes)."""
    images, anns = [], []
    rle_encode = None
    for i, im in enumerate(ds.images):
        images.append({"id": i + 1, "file_name": file_names[i] if file_names else im.file, "width": im.width, "height": im.height})
        for j, (b, c) in enumerate(zip(im.boxes.tolist(), im.labels.tolist(), strict=True)):
            w, h = b[2] - b[0], b[3] - b[1]
            a = {"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1, "bbox": [b[0], b[1], w, h],
                 "area": float(max(w, 0) * max(h, 0)), "iscrowd": 0}
            if im.masks is not None:
                if rle_encode is None:
                    from faster_coco_eval.core.mask import encode as rle_encode
                r = rle_encode(np.asfortranarray(im.masks[j].astype(np.uint8)))
                a["segmentation"] = {"size": r["size"], "counts": r["counts"].decode() if isinstance(r["counts"], bytes) else r["counts"]}
            anns.append(a)
    cats = [{"id": k + 1, "name": n, "supercategory": "object"} for k, n in enumerate(ds.classes)]
    return {"images": images, "annotations": anns, "categories": cats}


def write_coco(ds: DetDataset, out: str | Path, copy_images: bool = True) -> Path:
    """Write ``out/annotations.json`` and (with ``copy_images``) the images to ``out/images/``; returns the JSON path."""
    from vislab.core.io import atomic_write_text

    out = Path(out)
    names = [image_name(ds, i) for i in range(len(ds))]
    if copy_images:
        for i, n in enumerate(names):
            save_image(ds, i, out / "images" / n)
    path = out / "annotations.json"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(to_coco_dict(ds, names)))
    return path

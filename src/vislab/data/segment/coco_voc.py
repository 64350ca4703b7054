"""Public segmentation layouts read into memory: COCO instances rendered to semantic masks, Pascal VOC.

COCO (``--data ROOT --format coco``, sniffed from ``ROOT/annotations/instances_*.json``)::

    ROOT/annotations/instances_<split>.json      (split: train, val, test; also train2017 etc.)
    ROOT/<split>/ | ROOT/<split>2017/ | ROOT/images/<split>/ | ROOT/images/ | ROOT/   (image files)

Every instance of a kept category is painted with its class (largest first, so small objects stay on
top); polygons, uncompressed and compressed RLE are decoded with ``faster_coco_eval``'s mask API (or
``pycocotools.mask``, the same API). ``iscrowd`` regions of kept categories become ``ignore_index`` where no
instance covers them. ``--coco-categories person,dog`` keeps those categories: classes are
``background`` + them in that order; other categories are background. Default: every category, in id order.

Pascal VOC (``--format voc``, sniffed from ``ROOT``, ``ROOT/VOC2012`` or ``ROOT/VOCdevkit/VOC2012``)::

    VOC2012/JPEGImages/<id>.jpg   VOC2012/SegmentationClass/<id>.png   VOC2012/ImageSets/Segmentation/{train,val}.txt

Masks are palettised PNGs whose indices are the 21 classes (:data:`VOC_CLASSES`, colours
:func:`~vislab.data.segment.default_palette`); 255 (object boundaries) is ignored.

Images of other sizes are resized to ``--img-size`` (default: the first image's size), masks with
nearest sampling. Every problem names the file.

Example:
    >>> VOC_CLASSES[15], len(VOC_CLASSES)
    ('person', 21)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vislab.core.errors import DataError, did_you_mean
from vislab.data.segment.source import SegDataConfig, SegSource, SegSplits, default_palette, holdout

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")  # fmt: skip
SPLITS = ("train", "val", "test")


# ----------------------------------------------------------------------------------------- sniffing
def coco_annotation_file(root: Path, split: str) -> Path | None:
    for name in (f"instances_{split}.json", f"instances_{split}2017.json", f"instances_{split}2014.json"):
        if (root / "annotations" / name).is_file():
            return root / "annotations" / name
    return None


def is_coco_root(root: Path) -> bool:
    return any((root / "annotations").glob("instances_*.json")) if (root / "annotations").is_dir() else False


def voc_root(root: Path) -> Path | None:
    """The ``VOC2012``-like folder (with JPEGImages/ and SegmentationClass/) under ``root``, if any."""
    for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (cand / "JPEGImages").is_dir() and (cand / "SegmentationClass").is_dir():
            return cand
    return None


def _mask_api():
    try:  # the same API; faster-coco-eval is already the detection reader's, pycocotools warns under numpy 2
        from faster_coco_eval.core import mask
    except ImportError:
        try:
            from pycocotools import mask
        except ImportError:
            raise DataError("COCO masks: expected pycocotools or faster-coco-eval to decode polygons and RLE, got neither installed") from None
    return mask


# ----------------------------------------------------------------------------------------- COCO
def render_semantic(anns: list[dict], h: int, w: int, cat_to_class: dict[int, int], ignore_index: int = 255,
                    where: str = "") -> np.ndarray:
    """COCO annotations of one image -> ``(h, w)`` uint8 class indices.

    ``cat_to_class`` maps kept category ids to classes (1..); other categories stay background (0).
    Instances are painted largest first; crowd regions of kept categories become ``ignore_index``
    where no instance covers them.

    Example:
        >>> a = [{"category_id": 7, "segmentation": [[1, 1, 5, 1, 5, 4, 1, 4]], "iscrowd": 0},
        ...      {"category_id": 7, "segmentation": {"size": [6, 8], "counts": [36, 2, 10]}, "iscrowd": 1}]
        >>> render_semantic(a, 6, 8, {7: 1})[:, 0:7]
        array([[  0,   0,   0,   0,   0,   0, 255],
               [  0,   1,   1,   1,   1,   0, 255],
               [  0,   1,   1,   1,   1,   0,   0],
               [  0,   1,   1,   1,   1,   0,   0],
               [  0,   0,   0,   0,   0,   0,   0],
               [  0,   0,   0,   0,   0,   0,   0]], dtype=uint8)
    """
    mu = _mask_api()
    out = np.zeros((h, w), np.uint8)
    crowd = np.zeros((h, w), bool)
    painted = []
    for a in anns:
        cls = cat_to_class.get(a.get("category_id"))
        seg = a.get("segmentation")
        if cls is None or not seg:
            continue
        try:
            if isinstance(seg, list):  # polygons [[x1, y1, x2, y2, ...], ...]
                rle = mu.merge(mu.frPyObjects([p for p in seg if len(p) >= 6], h, w))
            elif isinstance(seg.get("counts"), list):  # uncompressed RLE
                rle = mu.frPyObjects(seg, h, w)
            else:
                rle = dict(seg, counts=seg["counts"].encode() if isinstance(seg["counts"], str) else seg["counts"])
            m = mu.decode(rle).astype(bool)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
            raise DataError(f"{where} annotation {a.get('id')}: expected a polygon list or RLE segmentation, got {type(e).__name__}: {e}") from None
        if m.shape != (h, w):
            raise DataError(f"{where} annotation {a.get('id')}: expected a segmentation of the image size {h}x{w}, got {m.shape[0]}x{m.shape[1]}")
        if a.get("iscrowd"):
            crowd |= m
        else:
            painted.append((int(m.sum()), cls, m))
    for _, cls, m in sorted(painted, key=lambda t: -t[0]):
        out[m] = cls
    out[crowd & (out == 0)] = ignore_index
    return out


def _coco_image_dir(root: Path, split: str) -> Path:
    for cand in (root / split, root / f"{split}2017", root / "images" / split, root / "images" / f"{split}2017", root / "images"):
        if cand.is_dir():
            return cand
    return root


def _load_json(p: Path) -> dict:
    try:
        d = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"COCO file '{p}': expected readable JSON, got {type(e).__name__}: {e}") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(d, dict) or key not in d:
            raise DataError(f"COCO file '{p}': expected a '{key}' list, got keys {sorted(d) if isinstance(d, dict) else type(d).__name__}")
    return d


def coco_classes(d: dict, wanted: list[str], path: Path) -> tuple[list[str], dict[int, int]]:
    """Class names (background first) and category id -> class of a COCO dict, filtered by name."""
    cats = sorted(d["categories"], key=lambda c: c["id"])
    names = [c["name"] for c in cats]
    if not wanted:
        return ["background", *names], {c["id"]: i + 1 for i, c in enumerate(cats)}
    ids = {c["name"]: c["id"] for c in cats}
    out = {}
    for i, w in enumerate(wanted):
        if w not in ids:
            raise DataError(f"COCO file '{path}': --coco-categories '{w}'{did_you_mean(w, names)}: expected category names of the file {names}, got '{w}'")
        out[ids[w]] = i + 1
    return ["background", *wanted], out


def _read_coco_split(root: Path, split: str, cfg: SegDataConfig, size: tuple[int, int] | None, limit: int = 0) -> SegSource | None:
    from vislab.core.io import read_image
    from vislab.data.segment.folder import to_tensors

    path = coco_annotation_file(root, split)
    if path is None:
        return None
    d = _load_json(path)
    wanted = [c.strip() for c in cfg.coco_categories if c.strip()]
    classes, cat_to_class = coco_classes(d, wanted, path)
    by_image: dict[int, list[dict]] = {im["id"]: [] for im in d["images"]}
    for a in d["annotations"]:
        by_image.setdefault(a.get("image_id"), []).append(a)
    folder = _coco_image_dir(root, split)
    ims, ms, names = [], [], []
    for im in d["images"]:
        anns = by_image[im["id"]]
        if cfg.coco_skip_empty and not any(a.get("category_id") in cat_to_class and not a.get("iscrowd") for a in anns):
            continue
        f = folder / im["file_name"]
        where = f"COCO file '{path.name}' image '{im['file_name']}'"
        if not f.is_file():
            raise DataError(f"{where}: expected the image file '{f}', got no such file")
        img = read_image(f, "RGB")
        h, w = int(im.get("height", img.shape[0])), int(im.get("width", img.shape[1]))
        if img.shape[:2] != (h, w):
            raise DataError(f"image '{f}': expected {h}x{w} as in '{path.name}', got {img.shape[0]}x{img.shape[1]}")
        x, m = to_tensors(img, render_semantic(anns, h, w, cat_to_class, cfg.ignore_index, where), size)
        size = size or (int(x.shape[1]), int(x.shape[2]))
        ims.append(x)
        ms.append(m)
        names.append(Path(im["file_name"]).stem)
        if limit and len(ims) >= limit:
            break
    if not ims:
        raise DataError(f"COCO file '{path}': expected images with annotations of {wanted or 'any category'}, got none")
    return SegSource(torch.stack(ims), torch.stack(ms), classes, default_palette(len(classes)), f"coco-{split}",
                     cfg.ignore_index, names)


def read_coco_segmentation(cfg: SegDataConfig) -> SegSplits:
    """Train / val / test of a local COCO layout, instances rendered to semantic masks (module docstring)."""
    root = Path(cfg.data).expanduser()
    if not is_coco_root(root):
        raise DataError(f"dataset '{root}': expected a COCO layout with annotations/instances_<split>.json, got none")
    size = (cfg.img_size, cfg.img_size) if cfg.img_size else None
    train = _read_coco_split(root, "train", cfg, size, cfg.limit)
    if train is None:
        found = sorted(p.name for p in (root / "annotations").glob("instances_*.json"))
        raise DataError(f"dataset '{root}': expected annotations/instances_train.json (or train2017), got {found}")
    val = _read_coco_split(root, "val", cfg, train.size)
    test = _read_coco_split(root, "test", cfg, train.size)
    return _finish(train, val, test, cfg)


def _finish(train: SegSource, val: SegSource | None, test: SegSource | None, cfg: SegDataConfig) -> SegSplits:
    if val is None and test is None:
        train, val, test = holdout(train, cfg.val_split, cfg.test_split, cfg.split_seed)
    elif val is None:
        train, val, _ = holdout(train, cfg.val_split, 0.0, cfg.split_seed)
    return SegSplits(train, val, test)


# ----------------------------------------------------------------------------------------- VOC
def _read_voc_split(voc: Path, split: str, cfg: SegDataConfig, size: tuple[int, int] | None, limit: int = 0) -> SegSource | None:
    from vislab.core.io import read_image
    from vislab.data.segment.folder import decode_mask, to_tensors

    lst = voc / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not lst.is_file():
        return None
    ids = [ln.split()[0] for ln in lst.read_text().splitlines() if ln.strip()]
    if not ids:
        raise DataError(f"split file '{lst}': expected image ids, one per line, got none")
    palette = default_palette(len(VOC_CLASSES))
    ims, ms = [], []
    for i in ids[:limit or None]:
        img_p, mask_p = voc / "JPEGImages" / f"{i}.jpg", voc / "SegmentationClass" / f"{i}.png"
        if not mask_p.is_file():
            raise DataError(f"split file '{lst.name}' id '{i}': expected the mask '{mask_p}', got no such file")
        img = read_image(img_p, "RGB")
        mask = decode_mask(mask_p, cfg.mask_mode, len(VOC_CLASSES), palette, cfg.ignore_index)
        if img.shape[:2] != mask.shape:
            raise DataError(f"mask '{mask_p}': expected the size of its image '{img_p.name}' {img.shape[0]}x{img.shape[1]}, got {mask.shape[0]}x{mask.shape[1]}")
        x, m = to_tensors(img, mask, size)
        size = size or (int(x.shape[1]), int(x.shape[2]))
        ims.append(x)
        ms.append(m)
    return SegSource(torch.stack(ims), torch.stack(ms), list(VOC_CLASSES), palette, f"voc-{split}", cfg.ignore_index,
                     ids[:limit or None])


def read_voc_segmentation(cfg: SegDataConfig) -> SegSplits:
    """Train / val (/ test when its masks exist) of a Pascal VOC segmentation layout (module docstring)."""
    root = Path(cfg.data).expanduser()
    voc = voc_root(root)
    if voc is None:
        raise DataError(f"dataset '{root}': expected a VOC layout (JPEGImages/ and SegmentationClass/ in it, VOC2012/ or VOCdevkit/VOC2012/), got neither")
    size = (cfg.img_size, cfg.img_size) if cfg.img_size else None
    train = _read_voc_split(voc, "train", cfg, size, cfg.limit) or _read_voc_split(voc, "trainval", cfg, size, cfg.limit)
    if train is None:
        raise DataError(f"dataset '{voc}': expected ImageSets/Segmentation/train.txt (or trainval.txt), got neither")
    val = _read_voc_split(voc, "val", cfg, train.size)
    test_list = voc / "ImageSets" / "Segmentation" / "test.txt"
    has_test = test_list.is_file() and all((voc / "SegmentationClass" / f"{i}.png").is_file() for i in test_list.read_text().split())
    test = _read_voc_split(voc, "test", cfg, train.size) if has_test else None  # VOC's own test split has no masks
    return _finish(train, val, test, cfg)

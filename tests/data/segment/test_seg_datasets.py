"""COCO instances -> semantic masks (polygons, RLE, crowd, category filter) and the Pascal VOC layout, on tiny generated trees."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vislab.core.errors import DataError
from vislab.data.segment import SegDataConfig, default_palette, load_segmentation
from vislab.data.segment.coco_voc import VOC_CLASSES


def _rle_counts(m: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE (column-major runs, starting with zeros) of a bool mask."""
    flat = m.flatten(order="F").astype(np.uint8)
    counts, cur, run = [], 0, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    return counts


def _write_coco(root, n=5, h=12, w=16, compressed=False):
    (root / "annotations").mkdir(parents=True)
    (root / "train2017").mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "train2017" / f"{i:03d}.jpg")
        images.append({"id": i + 1, "file_name": f"{i:03d}.jpg", "height": h, "width": w})
        # a person polygon (rows 2..6, cols 2..7), a dog as RLE (rows 7..10, cols 10..13), a crowd of people (rows 0..1, cols 12..15)
        anns.append({"id": 10 * i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "bbox": [2, 2, 6, 5],
                     "segmentation": [[2, 2, 8, 2, 8, 7, 2, 7]]})
        dog = np.zeros((h, w), bool)
        dog[7:11, 10:14] = True
        seg = {"size": [h, w], "counts": _rle_counts(dog)}
        if compressed:
            from faster_coco_eval.core import mask as mu

            seg = mu.frPyObjects(seg, h, w)
            seg["counts"] = seg["counts"].decode()
        anns.append({"id": 10 * i + 2, "image_id": i + 1, "category_id": 18, "iscrowd": 0, "bbox": [10, 7, 4, 4], "segmentation": seg})
        crowd = np.zeros((h, w), bool)
        crowd[0:2, 12:16] = True
        anns.append({"id": 10 * i + 3, "image_id": i + 1, "category_id": 1, "iscrowd": 1, "bbox": [12, 0, 4, 2],
                     "segmentation": {"size": [h, w], "counts": _rle_counts(crowd)}})
    cats = [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 3, "name": "car"}]
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


@pytest.mark.parametrize("compressed", [False, True])
def test_coco_instances_become_semantic_masks(tmp_path, compressed):
    _write_coco(tmp_path, compressed=compressed)
    s = load_segmentation(SegDataConfig(data=str(tmp_path), val_split=0.2, test_split=0.0))  # format sniffed
    assert s.train.classes == ["background", "person", "car", "dog"]  # category id order
    assert len(s.train) == 4 and len(s.val) == 1 and s.train.size == (12, 16)
    m = s.train.masks[0].numpy()
    assert (m[3:6, 3:7] == 1).all() and (m[7:11, 10:14] == 3).all()  # polygon person, RLE dog
    assert (m[0:2, 12:16] == 255).all()  # crowd -> ignore
    assert m[11, 0] == 0 and m[1, 0] == 0

    p = load_segmentation(SegDataConfig(data=str(tmp_path), format="coco", coco_categories=["person"], val_split=0.2, test_split=0.0))
    assert p.train.classes == ["background", "person"]
    m = p.train.masks[0].numpy()
    assert (m[3:6, 3:7] == 1).all() and (m[7:11, 10:14] == 0).all() and (m[0:2, 12:16] == 255).all()  # dog -> background

    d = load_segmentation(SegDataConfig(data=str(tmp_path), coco_categories=["dog"], val_split=0.2, test_split=0.0, img_size=8))
    assert d.train.classes == ["background", "dog"] and d.train.size == (8, 8)
    assert set(np.unique(d.train.masks.numpy())) == {0, 1}  # a person crowd is not ignored when persons are background


def test_coco_bad_input_names_the_problem(tmp_path):
    _write_coco(tmp_path)
    with pytest.raises(DataError, match=r"instances_train2017\.json.*'persn' \(did you mean 'person'\?\): expected category names"):
        load_segmentation(SegDataConfig(data=str(tmp_path), coco_categories=["persn"]))
    (tmp_path / "train2017" / "002.jpg").unlink()
    with pytest.raises(DataError, match=r"image '002\.jpg'.*expected the image file '.*002\.jpg', got no such file"):
        load_segmentation(SegDataConfig(data=str(tmp_path)))


def _write_voc(root, ids_train=("2007_000001", "2007_000002", "2007_000003"), ids_val=("2007_000004",), h=10, w=14):
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    rng = np.random.default_rng(1)
    flat = [c for rgb in default_palette(256) for c in rgb]
    for k, i in enumerate((*ids_train, *ids_val)):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(voc / "JPEGImages" / f"{i}.jpg")
        m = np.zeros((h, w), np.uint8)
        m[2:7, 3:9] = 15 if k % 2 == 0 else 12  # person / dog
        m[1, 2:10] = 255  # boundary
        im = Image.fromarray(m, mode="P")
        im.putpalette(flat)
        im.save(voc / "SegmentationClass" / f"{i}.png")
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids_train) + "\n")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids_val) + "\n")
    return voc


def test_voc_layout(tmp_path):
    voc = _write_voc(tmp_path)
    s = load_segmentation(SegDataConfig(data=str(tmp_path)))  # VOCdevkit's parent, sniffed
    assert s.train.classes == list(VOC_CLASSES) and s.train.palette[15] == (192, 128, 128)
    assert len(s.train) == 3 and len(s.val) == 1 and s.test is None
    assert s.train.names == ["2007_000001", "2007_000002", "2007_000003"]
    m = s.train.masks[0]
    assert int(m[4, 5]) == 15 and int(m[1, 5]) == 255 and int(m[0, 0]) == 0 and int(s.train.masks[1][4, 5]) == 12
    s2 = load_segmentation(SegDataConfig(data=str(voc), format="voc", img_size=8))
    assert s2.train.size == (8, 8) and s2.val.size == (8, 8)

    (voc / "SegmentationClass" / "2007_000002.png").unlink()
    with pytest.raises(DataError, match=r"train\.txt' id '2007_000002': expected the mask '.*2007_000002\.png'"):
        load_segmentation(SegDataConfig(data=str(voc)))

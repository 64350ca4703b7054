"""Detection formats: COCO -> YOLO -> VOC -> COCO keeps every box (within a pixel) and class; bad input is named by file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vislab.core.errors import DataError
from vislab.data.detect import (
    check,
    read_any,
    read_coco,
    shapes_detection,
    validate,
    write_any,
    write_coco,
)


def _objects(ds):
    return [(im.boxes, im.labels) for im in ds.images]


def test_round_trip_coco_yolo_voc_coco(tmp_path):
    ds = shapes_detection(12, classes=4, size=41, seed=3, objects=(0, 3))
    assert any(len(im.labels) == 0 for im in ds.images) and ds.n_objects() > 10
    src = write_coco(ds, tmp_path / "coco")
    y = write_any(read_any(src), tmp_path / "yolo", "yolo")
    v = write_any(read_any(y), tmp_path / "voc", "voc")
    c = write_any(read_any(v), tmp_path / "coco2", "coco")
    back = read_any(c)
    assert back.classes == ds.classes
    assert validate(back) == []
    for (b0, l0), (b1, l1) in zip(_objects(ds), _objects(back), strict=True):
        assert l1.tolist() == l0.tolist()
        np.testing.assert_allclose(b1, b0, atol=1.0)


def test_coco_masks_round_trip(tmp_path):
    ds = shapes_detection(3, classes=2, size=32, seed=1, objects=(2, 2))
    back = read_coco(write_coco(ds, tmp_path), masks=True)
    for a, b in zip(ds.images, back.images, strict=True):
        assert np.array_equal(a.masks, b.masks)


def test_validator_names_files_and_problems(tmp_path):
    ds = shapes_detection(3, classes=2, size=32, seed=1, objects=(1, 1))
    path = write_coco(ds, tmp_path)
    d = json.loads(path.read_text())
    d["annotations"][0]["bbox"] = [20, 20, 30, 5]  # runs out of the 32x32 image
    d["annotations"][1]["bbox"] = [3, 3, 0, 4]  # zero area
    d["annotations"][2]["category_id"] = 9  # unknown
    d["images"][2]["width"] = 50  # disagrees with the file
    path.write_text(json.dumps(d))
    issues = validate(read_coco(path))
    kinds = sorted(i.kind for i in issues)
    assert kinds == ["empty_box", "outside", "size_mismatch", "unknown_class"]
    assert all(d["images"][k]["file_name"] in str(i) for k, i in zip((0, 1, 2, 2), sorted(issues, key=lambda i: i.file), strict=True))
    with pytest.raises(DataError, match="4 problem"):
        check(read_coco(path))


def test_yolo_and_voc_bad_input(tmp_path):
    ds = shapes_detection(2, classes=2, size=32, seed=1, objects=(1, 1))
    y = write_any(ds, tmp_path / "y", "yolo")
    lab = min((tmp_path / "y" / "labels" / "train").glob("*.txt"))
    lab.write_text("7 0.5 0.5 0.2 0.2\n0 0.95 0.5 0.3 0.2\n")
    issues = validate(read_any(y))
    assert {i.kind for i in issues} == {"unknown_class", "outside"} and all(lab.name in i.file for i in issues)
    v = write_any(ds, tmp_path / "v", "voc")
    xml = min((v / "Annotations").glob("*.xml"))
    xml.write_text(xml.read_text().replace(f"<name>{ds.classes[ds.images[0].labels[0]]}</name>", "<name>zebra</name>"))
    issues = validate(read_any(v))
    assert [i.kind for i in issues] == ["unknown_class"] and xml.name in str(issues[0]) and "zebra" in str(issues[0])
    with pytest.raises(DataError, match="expected an existing"):
        read_any(tmp_path / "nope")


def test_yolo_splits_written_one_after_the_other_share_data_yaml(tmp_path):
    import yaml

    from vislab.data.detect import read_yolo, shapes_detection, write_yolo

    write_yolo(shapes_detection(4, size=32, seed=1), tmp_path, split="train")
    path = write_yolo(shapes_detection(2, size=32, seed=2), tmp_path, split="val")
    d = yaml.safe_load(path.read_text())
    assert d["train"] == "images/train" and d["val"] == "images/val"  # the train entry is kept
    assert len(read_yolo(path, "train")) == 4 and len(read_yolo(path, "val")) == 2
    with pytest.raises(DataError, match="expected the classes of the split already there"):
        write_yolo(shapes_detection(2, size=32, classes=2, seed=3), tmp_path, split="test")

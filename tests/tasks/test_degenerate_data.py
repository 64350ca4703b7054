"""Data that would give a meaningless "successful" run is refused with one line before anything is written."""

from __future__ import annotations

import numpy as np
from PIL import Image


def test_one_class_classification_is_refused(tmp_path, cli):
    for i in range(6):
        (tmp_path / "data" / "cat").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / "data" / "cat" / f"{i}.png")
    code, out, err = cli("classify", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "runs"), "--epochs", "1",
                         "--val-split", "0", "--test-split", "0")
    assert code == 2 and err.strip() == "error: dataset data: expected training images of at least 2 classes, got only class 'cat' (6 images)"
    assert not (tmp_path / "runs" / "classify" / "exp").exists()


def test_detection_set_without_any_object_is_refused(tmp_path, cli):
    import json

    (tmp_path / "d" / "images").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((32, 32, 3), 30 * i, np.uint8)).save(tmp_path / "d" / "images" / f"{i}.png")
    ann = tmp_path / "d" / "annotations.json"
    ann.write_text(json.dumps({"images": [{"id": i + 1, "file_name": f"{i}.png", "width": 32, "height": 32} for i in range(6)],
                               "annotations": [], "categories": [{"id": 1, "name": "thing"}]}))
    code, out, err = cli("detect", "train", "--data", str(ann), "--out", str(tmp_path / "runs"), "--epochs", "1", "--img-size", "32")
    assert code == 2 and err.count("\n") == 1 and "expected annotated objects in the training images, got none in" in err, err
    assert not (tmp_path / "runs" / "detect" / "exp").exists()


def test_generated_detection_needs_objects(tmp_path, cli):
    code, out, err = cli("data", "generate-detection", str(tmp_path / "d"), "--count", "6", "--objects", "0,0")
    assert code == 2 and "expected objects (min, max) with 0 <= min <= max and max >= 1, got (0, 0)" in err

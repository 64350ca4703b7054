"""Mask models train and evaluate on COCO data with images that have no objects (as `data generate-detection` writes)."""

from __future__ import annotations

import json


def test_maskrcnn_trains_on_coco_with_empty_images(tmp_path, cli, one_thread):
    code, out, err = cli("data", "generate-detection", str(tmp_path / "d"), "--count", "12", "--size", "48", "--objects", "0,2",
                         "--to", "coco", "--seed", "3")
    assert code == 0, err
    coco = json.loads((tmp_path / "d" / "annotations.json").read_text())
    with_objects = {a["image_id"] for a in coco["annotations"]}
    assert len(with_objects) < len(coco["images"])  # some images are empty
    code, out, err = cli("detect", "train", "--data", str(tmp_path / "d" / "annotations.json"), "--model", "maskrcnn_tiny",
                         "--img-size", "48", "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "runs"), "--progress", "off")
    assert code == 0, err
    metrics = json.loads((tmp_path / "runs" / "detect" / "exp" / "val_metrics.json").read_text())
    assert "mask_map" in metrics and metrics["n_images"] >= 1

"""COCO metrics: vislab (faster-coco-eval) equals pycocotools to 1e-6 on a fixed set of detections."""

from __future__ import annotations

import numpy as np
import pytest

from vislab.metrics.detection import STAT_NAMES, DetectionMetrics, coco_evaluate


def fixed_detections(n_images: int = 60, k: int = 4, seed: int = 0):
    """GT of all three COCO size ranges and noisy detections (hits, misses, duplicates, false positives)."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(1, n_images + 1):
        images.append({"id": i, "width": 640, "height": 480})
        for _ in range(rng.integers(0, 6)):
            s = rng.choice([12.0, 50.0, 150.0]) * rng.uniform(0.7, 1.3)
            x, y, w, h = rng.uniform(0, 400), rng.uniform(0, 300), s * rng.uniform(0.6, 1.4), s * rng.uniform(0.6, 1.4)
            c = int(rng.integers(1, k + 1))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": c, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            for _ in range(rng.integers(0, 3)):  # detections near the object, some with the wrong class
                j = rng.normal(0, 0.15 * s, 4)
                cc = c if rng.random() < 0.85 else int(rng.integers(1, k + 1))
                dets.append({"image_id": i, "category_id": cc, "bbox": [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])],
                             "score": float(rng.uniform(0.05, 1))})
        for _ in range(rng.integers(0, 3)):  # false positives
            dets.append({"image_id": i, "category_id": int(rng.integers(1, k + 1)), "bbox": [*rng.uniform(0, 400, 2), *rng.uniform(5, 120, 2)],
                         "score": float(rng.uniform(0, 0.6))})
    cats = [{"id": c, "name": f"c{c}"} for c in range(1, k + 1)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def test_parity_with_pycocotools():
    pytest.importorskip("pycocotools")
    gt, dets = fixed_detections()
    ours, ref = coco_evaluate(gt, dets), coco_evaluate(gt, dets, backend="pycocotools")
    for n in STAT_NAMES:
        assert abs(ours[n] - ref[n]) <= 1e-6, (n, ours[n], ref[n])
    for c in ours["per_class"]:
        assert abs(ours["per_class"][c] - ref["per_class"][c]) <= 1e-6
    assert 0.05 < ours["map"] < 0.9 and ours["map_small"] > -1 and ours["map_large"] > -1  # a non-trivial case


def test_accumulator_perfect_and_empty():
    import torch

    m = DetectionMetrics(["a", "b"])
    t = {"boxes": torch.tensor([[1.0, 2, 30, 40], [50, 50, 60, 70]]), "labels": torch.tensor([0, 1])}
    m.update([{**t, "scores": torch.tensor([0.9, 0.8])}], [t])
    m.update([{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0)}],
             [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}])  # an image without objects
    r = m.compute()
    assert r["map"] == pytest.approx(1.0) and r["map50"] == pytest.approx(1.0)

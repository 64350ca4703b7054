"""Detection metrics are judged at each image's original size: a run that resizes images to --img-size must not
move objects between COCO's small / medium / large ranges."""

from __future__ import annotations

import torch

from vislab.data.detect import read_any, shapes_detection, write_any
from vislab.metrics.detection import DetectionMetrics
from vislab.data.detect import DetStream, from_dataset


def _perfect(boxes, masks=None):
    t = {"boxes": boxes, "labels": torch.zeros(len(boxes), dtype=torch.long)}
    p = {**t, "scores": torch.ones(len(boxes))}
    if masks is not None:
        t["masks"], p["masks"] = masks, masks.float()
    return [p], [t]


def test_area_ranges_use_the_original_size():
    # a 40x40 object in a 128x96 image (area 1600: medium) seen at 64x64 (20x26.7 = 533: small)
    box = torch.tensor([[20.0, 20, 40, 46.6667]])
    m = torch.zeros(1, 64, 64, dtype=torch.uint8)
    m[0, 20:47, 20:40] = 1
    plain = DetectionMetrics(["x"])
    plain.update(*_perfect(box))
    assert plain.compute()["map_small"] == 1.0 and plain.compute()["map_medium"] == -1.0
    scaled = DetectionMetrics(["x"])
    scaled.update(*_perfect(box, m), sizes=[(128, 96)], image_size=(64, 64))
    r = scaled.compute()
    assert r["map_medium"] == 1.0 and r["map_small"] == -1.0, r
    assert r["mask_map_medium"] == 1.0 and r["mask_map_small"] == -1.0, r
    gb = scaled.items[0][0]
    assert abs(gb[0, 2] - gb[0, 0] - 40.0) < 1e-3 and abs(gb[0, 3] - gb[0, 1] - 40.0) < 1e-3


def test_original_sizes_travel_with_the_split(tmp_path):
    write_any(shapes_detection(3, size=96, seed=0, objects=(1, 2)), tmp_path / "d", "coco")
    split = from_dataset(read_any(str(tmp_path / "d" / "annotations.json")), 48)
    assert split.sizes == [(96, 96)] * 3 and split.subset([2, 0]).sizes == [(96, 96)] * 2
    batch = next(DetStream(split, 2, train=False, device=torch.device("cpu"), mean=[0.5] * 3, std=[0.25] * 3).epoch(0))
    assert batch.sizes == [(96, 96)] * 2 and batch.x.shape[-1] == 48

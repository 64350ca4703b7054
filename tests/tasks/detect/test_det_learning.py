"""Learning bars: trained briefly on generated shapes (several per image, varied scale and overlap, empty images
included), the detectors must clear a stated COCO AP50 on held-out generated images.

- yolo_tiny: AP50 >= 0.8 (the issue's bar) and AP >= 0.6; measured AP50 0.99, AP 0.82 (~30 s on two quiet cores, two
  threads; these tests run on one thread per pytest worker).
- fasterrcnn_tiny (torchvision's Faster R-CNN from scratch on a tiny CNN + FPN at 64 px, anchors 8-48 px): a lower
  bar, AP50 >= 0.6; measured AP50 0.795, AP@[.5:.95] 0.55 (deterministic) in 6 epochs of 1,000 images; an epoch
  takes ~9 s on two quiet CPU cores (~110 img/s), about a minute in all; 10x longer under heavy load from other jobs.
  (It replaces the slow fasterrcnn_mobilenet bar: MobileNet-v3-Large upsampled to 256 px took 634 s an epoch.)
- maskrcnn_tiny: mask AP50 bar in tests/detect/test_det_torchvision.py.
"""

from __future__ import annotations

import json

from vislab.core import config as C
from vislab.tasks.detect import DetectConfig, train


def _run(tmp_path, **over):
    cfg = C.from_dict(DetectConfig, {"out": str(tmp_path), "name": "learn", "progress": "off", "tensorboard": False, "report": False,
                                     "precision": "fp32", "threads": 1, **over})
    run = train(cfg)
    return json.loads((run / "run.json").read_text())["summary"]


def test_yolo_tiny_learns_generated_shapes(tmp_path):
    s = _run(tmp_path, synth_count=1500, synth_classes=3, objects=[0, 3], epochs=8, lr=3e-3, val_split=0.2)
    assert s["final_val_map50"] >= 0.8, s  # the bar; measured 0.99
    assert s["final_val_map"] >= 0.6, s  # boxes must be tight too (AP over IoU .5:.95; measured 0.82)


def test_fasterrcnn_tiny_learns_generated_shapes(tmp_path):
    s = _run(tmp_path, model="fasterrcnn_tiny", synth_count=1000, synth_classes=3, objects=[0, 3], epochs=6, lr=2e-3, val_split=0.2)
    assert s["final_val_map50"] >= 0.6, s

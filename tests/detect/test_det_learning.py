"""Learning bars: trained briefly on generated shapes (several per image, varied scale and overlap, empty images
included), the detectors must clear a stated COCO AP50 on held-out generated images.

- yolo_tiny: AP50 >= 0.8 (the issue's bar); measured 0.91 in 40 s on two quiet CPU cores (deterministic).
- fasterrcnn_mobilenet (torchvision, from scratch, tiny size): a lower bar, AP50 >= 0.3, marked slow. NOT YET VERIFIED:
  on the shared 2-core machine its first epoch took 634 s (val AP50 ~0 after one epoch) and the run was cut off;
  the bar and the budget still have to be measured on a quiet machine or a GPU.
"""

from __future__ import annotations

import json

import pytest

from vislab.core import config as C
from vislab.tasks.detect import DetectConfig, train


def _run(tmp_path, **over):
    cfg = C.from_dict(DetectConfig, {"out": str(tmp_path), "name": "learn", "progress": "off", "tensorboard": False, "report": False,
                                     "precision": "fp32", "threads": 2, **over})
    run = train(cfg)
    return json.loads((run / "run.json").read_text())["summary"]


def test_yolo_tiny_learns_generated_shapes(tmp_path):
    s = _run(tmp_path, synth_count=1500, synth_classes=3, objects=[0, 3], epochs=8, lr=3e-3, val_split=0.2)
    assert s["final_val_map50"] >= 0.8, s


@pytest.mark.slow
def test_faster_rcnn_mobilenet_learns_generated_shapes(tmp_path):
    s = _run(tmp_path, model="fasterrcnn_mobilenet", synth_count=400, synth_classes=2, objects=[1, 2], epochs=6, lr=1e-3,
             batch_size=16, val_split=0.25)
    assert s["final_val_map50"] >= 0.3, s

"""Learning bars: models trained briefly on generated shapes-with-masks must clear a stated test mIoU.

Data: ``shapes`` with 2 shape classes (circle, square) + background, 32x32, 1-2 shapes per image on
cluttered noisy backgrounds; test mIoU over the 3 classes on 100 held-out generated images.
"""

from __future__ import annotations

import json

import pytest
import torch

from vislab.core import config as C
from vislab.tasks.segment import SegmentConfig, train


def _fit(tmp_path, name: str, **over) -> dict:
    opts = {"synth_count": 500, "synth_classes": 2, "batch_size": 16, "lr": 1e-2, "epochs": 10, "out": str(tmp_path),
            "name": name, "progress": "off", "tensorboard": False, "report": False, "threads": 1, "seed": 0, **over}
    run = train(C.from_dict(SegmentConfig, opts))
    return json.loads((run / "run.json").read_text())["summary"]


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_unet_learns_shapes(tmp_path):
    s = _fit(tmp_path, "unet", model="unet", width=16, depth=3)
    print(f"unet test mIoU {s['test_miou']:.4f}")
    assert s["test_miou"] >= 0.85, s


@pytest.mark.parametrize("model,bar", [("deeplabv3plus", 0.6), ("pspnet", 0.5)])
def test_deeplab_and_pspnet_learn_shapes(tmp_path, model, bar):
    s = _fit(tmp_path, model, model=model, encoder="small_cnn", epochs=6, synth_count=300)
    print(f"{model} test mIoU {s['test_miou']:.4f}")
    assert s["test_miou"] >= bar, s

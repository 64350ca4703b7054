"""``vislab detect import``: a torchvision detector's state dict (here random, in torchvision's own key layout and
COCO class count) becomes a vislab run whose predictions equal torchvision's on the same image; weights of
another model are refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import detection as tvd
from torchvision.models._meta import _COCO_CATEGORIES

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ssdlite_coco(tmp_path_factory):
    torch.manual_seed(0)
    tv = tvd.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=91).eval()
    path = tmp_path_factory.mktemp("w") / "ssdlite_coco.pth"
    torch.save(tv.state_dict(), path)
    return tv, path


def test_imported_run_predicts_what_torchvision_predicts(cli, tmp_path, ssdlite_coco):
    tv, path = ssdlite_coco
    run = tmp_path / "run"
    code, out, err = cli("detect", "import", str(path), "--model", "ssdlite320_mobilenet", "--classes", "coco", "--img-size", "320",
                         "--score-thresh", "0.001", "--nms-iou", "0.55", "--max-det", "300", "--out", str(run))
    assert code == 0 and "imported" in out, err
    img = (np.random.default_rng(0).random((320, 320, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "x.png")
    code, out, err = cli("detect", "predict", str(run), str(tmp_path / "x.png"), "--score-thresh", "0.001", "--out", str(tmp_path / "p"), "--no-draw")
    assert code == 0, err
    dets = json.loads((tmp_path / "p" / "detections.json").read_text())
    with torch.no_grad():
        ref = tv([torch.from_numpy(img).permute(2, 0, 1).float() / 255])[0]
    assert len(dets) == len(ref["boxes"]) > 0
    got = sorted((d["category"], round(d["score"], 4)) for d in dets)
    want = sorted((_COCO_CATEGORIES[int(c)], round(float(s), 4)) for c, s in zip(ref["labels"], ref["scores"], strict=True))
    assert got == want
    boxes = np.array(sorted(d["bbox"] for d in dets))
    ref_xywh = ref["boxes"].numpy().copy()
    ref_xywh[:, 2:] -= ref_xywh[:, :2]
    assert np.abs(boxes - np.array(sorted(ref_xywh.tolist()))).max() < 0.05


def test_weights_of_another_model_are_refused_in_one_line(cli, tmp_path, ssdlite_coco):
    _, path = ssdlite_coco
    code, out, err = cli("detect", "import", str(path), "--model", "fasterrcnn_tiny", "--classes", "a,b", "--out", str(tmp_path / "r"))
    assert code == 2 and "another model" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = cli("detect", "import", str(path), "--model", "ssdlite320_mobilenet", "--classes", "a,b", "--out", str(tmp_path / "r"))
    assert code == 2 and "expected every tensor of ssdlite320_mobilenet with 2 classes" in err and "of another shape" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r" / "checkpoints").exists()
    code, out, err = cli("detect", "import", str(tmp_path / "missing.pth"))
    assert code == 2 and "missing.pth" in err

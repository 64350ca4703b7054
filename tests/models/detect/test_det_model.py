"""yolo_tiny: losses and gradients with and without objects, detections after post-processing, soft-NMS, registry."""

from __future__ import annotations

import pytest
import torch

from vislab.models import create_model, list_models
from vislab.models.detect.post import postprocess, soft_nms


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_registry_keeps_detectors_out_of_classifiers():
    assert "yolo_tiny" in list_models(task="detect")
    assert "yolo_tiny" not in list_models(task="classify")


@pytest.mark.parametrize("backbone", ["tiny", "small_cnn"])
def test_losses_gradients_and_detections(backbone):
    torch.manual_seed(0)
    m = create_model("yolo_tiny", num_classes=3, width=8, backbone=backbone)
    x = torch.randn(2, 3, 48, 40)
    targets = [{"boxes": torch.tensor([[3.0, 4, 20, 30], [25, 20, 39, 47], [10, 10, 12, 11]]), "labels": torch.tensor([0, 2, 1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]  # an image without objects
    losses = m(x, targets)
    assert set(losses) == {"cls", "box", "ctr"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    head = [p for n, p in m.named_parameters() if not n.startswith("backbone")]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head)
    only_empty = m(x[1:], targets[1:])  # no objects at all: still a finite loss with a graph
    sum(only_empty.values()).backward()
    m.eval()
    dets = m(x)
    assert len(dets) == 2
    for d in dets:
        assert d["boxes"].shape[1] == 4 and len(d["boxes"]) == len(d["scores"]) == len(d["labels"]) <= 100
        assert (d["boxes"][:, 0] >= 0).all() and (d["boxes"][:, 2] <= 40).all()


def test_every_box_gets_a_location():
    m = create_model("yolo_tiny", num_classes=1, width=8)
    pts, strides, *_ = m.dense(torch.zeros(1, 3, 64, 64))
    gt = torch.tensor([[0.0, 0, 2, 2], [10, 10, 60, 60], [30, 30, 33, 34], [5, 40, 60, 44]])
    idx = m.assign(pts, strides, gt)
    assert set(idx[idx >= 0].tolist()) == {0, 1, 2, 3}


def test_postprocess_per_class_nms_and_max_det():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.5, 0.5, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]])
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.6, 0.0]])
    out = postprocess(boxes, scores, score_thresh=0.05, iou_thresh=0.5)
    # the duplicate of class 0 goes; the same box as class 1 stays (per-class NMS)
    assert out["labels"].tolist() == [0, 1, 0] and out["scores"].tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert len(postprocess(boxes, scores, max_det=2)["boxes"]) == 2


def test_soft_nms_decays_instead_of_removing():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.5])
    s = scores.clone()
    keep = soft_nms(boxes, s, torch.zeros(3, dtype=torch.long), sigma=0.5)
    iou = 90 / 110
    assert keep.tolist() == [0, 2, 1]
    assert s[1].item() == pytest.approx(0.8 * torch.exp(torch.tensor(-(iou**2) / 0.5)).item(), rel=1e-5)
    out = postprocess(boxes, scores[:, None], score_thresh=0.05, method="soft")
    assert len(out["boxes"]) == 3


def test_torchvision_faster_rcnn_wrapper_losses_and_labels():
    torch.manual_seed(0)
    m = create_model("fasterrcnn_mobilenet", num_classes=2, img_size=32)
    x = torch.randn(2, 3, 32, 32)
    targets = [{"boxes": torch.tensor([[2.0, 3, 20, 25]]), "labels": torch.tensor([1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    losses = m(x, targets)
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    sum(losses.values()).backward()
    m.eval()
    with torch.no_grad():
        d = m(x)[0]
    assert d["boxes"].shape[1] == 4 and (d["labels"] >= 0).all() and (d["labels"] < 2).all()  # 0-based, background removed

"""torchvision detectors on vislab's data: the tiny Faster / Mask R-CNN learn generated shapes, the other
torchvision detectors take a training step and an evaluation at 64 px, masks flow through the data path,
mask AP equals pycocotools' segm numbers, and eval / predict report and draw masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vislab.core import config as C
from vislab.core.errors import DataError
from vislab.data.detect import shapes_detection, write_yolo
from vislab.metrics.detection import (
    STAT_NAMES,
    DetectionMetrics,
    coco_evaluate,
    encode_masks,
    mask_area,
)
from vislab.models import create_model
from vislab.data.detect import DetDataConfig, DetStream, from_dataset, load_splits
from vislab.tasks.detect import DetectConfig, train
from vislab.tasks.detect.task import needs_masks


def _train(tmp_path, **over):
    cfg = C.from_dict(DetectConfig, {"out": str(tmp_path), "name": "learn", "progress": "off", "tensorboard": False, "report": False,
                                     "precision": "fp32", "threads": 1, **over})
    run = train(cfg)
    return run, json.loads((run / "run.json").read_text())["summary"]


# --------------------------------------------------------------------------------------------
# Learning bar (generated shapes, 64 px, 3 classes, 0-3 per image); fasterrcnn_tiny's is in test_det_learning.py
# --------------------------------------------------------------------------------------------
def test_maskrcnn_tiny_learns_masks_then_evaluates_and_predicts(tmp_path):
    """Bar mask AP50 >= 0.55 (measured once: 0.726, mask AP@[.5:.95] 0.42, box AP50 0.735; ~8 s an epoch on two quiet
    CPU cores, about a minute in all); then ``detect eval`` reports mask AP and ``detect predict`` writes RLEs and draws masks."""
    from vislab.tasks.detect import DetEvalConfig, DetPredictConfig, evaluate, predict

    run, s = _train(tmp_path, model="maskrcnn_tiny", synth_count=1000, synth_classes=3, objects=[0, 3], epochs=6, lr=2e-3, val_split=0.2)
    assert s["final_val_mask_map50"] >= 0.55, s
    assert 0 <= s["final_val_mask_map"] <= s["final_val_mask_map50"] and "final_val_map50" in s

    res = evaluate(C.from_dict(DetEvalConfig, {"checkpoint": str(run), "out": str(tmp_path / "ev")}))
    assert res["mask_map50"] == pytest.approx(s["final_val_mask_map50"], abs=1e-9) and set(res["mask_per_class"]) == {"circle", "square", "triangle"}
    written = json.loads((tmp_path / "ev" / "val_metrics.json").read_text())
    assert written["mask_map50"] == res["mask_map50"]

    ds = shapes_detection(2, classes=3, size=64, seed=(5, 5), objects=(2, 2))
    files = []
    for i in range(2):
        from PIL import Image

        files.append(tmp_path / f"img{i}.png")
        Image.fromarray(ds.pixels[i].transpose(1, 2, 0)).save(files[-1])
    out = predict(C.from_dict(DetPredictConfig, {"checkpoint": str(run), "inputs": [str(f) for f in files], "out": str(tmp_path / "pr")}))
    dets = json.loads((tmp_path / "pr" / "detections.json").read_text())
    assert dets and all(d["segmentation"]["size"] == [64, 64] and isinstance(d["segmentation"]["counts"], str) for d in dets)
    assert len(out["written"]) == 2
    # the masks are drawn: the picture differs from a boxes-only drawing inside the first detection's mask
    from vislab.core.io import read_image
    from vislab.tasks.detect.infer import draw_boxes

    drawn = read_image(out["written"][0], "RGB")
    d0 = [d for d in dets if d["file_name"] == str(files[0])]
    boxes = np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in (d["bbox"] for d in d0)])
    plain = draw_boxes(read_image(files[0], "RGB"), boxes, [d["category_id"] - 1 for d in d0], [d["score"] for d in d0], ds.classes, scale=4)
    assert drawn.shape == plain.shape and (drawn != plain).any(axis=-1).mean() > 0.01


# --------------------------------------------------------------------------------------------
# Every torchvision detector: a training step and an evaluation on 64 px generated data
# --------------------------------------------------------------------------------------------
_BIG = pytest.mark.slow  # 15-30 s each on a CPU; the wrapper paths they use are covered by the tiny R-CNNs, FCOS and SSDlite


@pytest.mark.parametrize("name", ["fasterrcnn_tiny", "maskrcnn_tiny", "fcos_resnet50_fpn", "ssdlite320_mobilenet",
                                  pytest.param("fasterrcnn_mobilenet", marks=_BIG), pytest.param("retinanet_resnet50_fpn", marks=_BIG),
                                  pytest.param("ssd300_vgg16", marks=_BIG), pytest.param("maskrcnn_resnet50_fpn", marks=_BIG)])
def test_one_training_step_and_evaluation(name):
    torch.manual_seed(0)
    split = from_dataset(shapes_detection(4, classes=2, size=64, seed=0, objects=(0, 2)), 64, masks=needs_masks(name))
    batch = next(DetStream(split, 4, train=True, device=torch.device("cpu"), mean=[0.5] * 3, std=[0.25] * 3).epoch(0))
    m = create_model(name, num_classes=2, img_size=64)
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)
    losses = m(batch.x, batch.y)
    assert losses and all(torch.isfinite(v) for v in losses.values()), losses
    assert ("loss_mask" in losses) == needs_masks(name)
    before = [p.detach().clone() for p in m.parameters()]
    sum(losses.values()).backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, m.parameters(), strict=True))
    m.eval()
    with torch.no_grad():
        preds = m(batch.x)
    metrics = DetectionMetrics(split.classes)
    metrics.update(preds, batch.y)
    r = metrics.compute()
    assert set(STAT_NAMES) <= set(r) and all(np.isfinite(v) for v in r.values())
    assert ("mask_map" in r) == needs_masks(name)
    for p in preds:
        assert p["boxes"].shape[1] == 4 and ((p["labels"] >= 0) & (p["labels"] < 2)).all()
        if needs_masks(name):
            assert p["masks"].shape == (len(p["boxes"]), 64, 64) and p["masks"].dtype == torch.float32


def test_tiny_rcnn_takes_a_registry_backbone():
    from vislab.tasks.detect import DetModelConfig, build_model

    m, args = build_model(DetModelConfig(model="fasterrcnn_tiny", backbone="resnet18"), 2, 64)
    assert args["backbone"] == "resnet18" and type(m.net.backbone.body).__name__ != "TinyBackbone"
    x = torch.randn(2, 3, 64, 64)
    losses = m(x, [{"boxes": torch.tensor([[4.0, 4, 30, 30]]), "labels": torch.tensor([1])}, {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}])
    assert torch.isfinite(sum(losses.values()))


# --------------------------------------------------------------------------------------------
# Masks through the data path
# --------------------------------------------------------------------------------------------
def test_masks_are_carried_only_when_asked_resized_and_flipped_with_the_image():
    ds = shapes_detection(16, classes=3, size=48, seed=3, objects=(1, 3))
    assert "masks" not in from_dataset(ds, 32).targets[0]  # box-only models: no masks in memory
    split = from_dataset(ds, 32, masks=True)
    for t, im in zip(split.targets, ds.images, strict=True):
        assert t["masks"].shape == (len(im.labels), 32, 32) and t["masks"].dtype == torch.uint8
    stream = DetStream(split, 16, train=True, device=torch.device("cpu"), mean=[0.0] * 3, std=[1.0] * 3, seed=1)
    n_flipped = 0
    for b in stream.epoch(0):
        for t, j in zip(b.y, b.index.tolist(), strict=True):
            src = split.targets[j]
            flipped = not torch.equal(t["boxes"], src["boxes"])
            n_flipped += flipped
            assert torch.equal(t["masks"], src["masks"].flip(-1) if flipped else src["masks"])
            for box, m in zip(t["boxes"], t["masks"], strict=True):  # the mask stays inside its (flipped) box
                ys, xs = m.nonzero(as_tuple=True)
                assert xs.min() >= box[0] - 1.5 and xs.max() + 1 <= box[2] + 1.5 and ys.min() >= box[1] - 1.5 and ys.max() + 1 <= box[3] + 1.5
    assert 0 < n_flipped < 16


def test_mask_model_on_data_without_masks_is_a_one_line_data_error(tmp_path):
    yaml_path = write_yolo(shapes_detection(6, classes=2, size=32, seed=0), tmp_path / "yolo")
    cfg = DetDataConfig(data=str(yaml_path), img_size=32)
    assert load_splits(cfg)[0].targets  # box-only is fine
    with pytest.raises(DataError) as e:
        load_splits(cfg, masks=True)
    assert "expected instance masks" in str(e.value) and str(yaml_path) in str(e.value) and "\n" not in str(e.value)


# --------------------------------------------------------------------------------------------
# Mask AP
# --------------------------------------------------------------------------------------------
def fixed_masks(n_images: int = 30, k: int = 3, size: tuple[int, int] = (240, 240), seed: int = 0):
    """GT instance masks of all three COCO size ranges and noisy predicted masks (shifted, eroded, wrong
    class, duplicates, false positives) as a COCO GT dict and segm results."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    images, anns, dets = [], [], []
    for i in range(1, n_images + 1):
        images.append({"id": i, "width": w, "height": h})
        for _ in range(rng.integers(0, 5)):
            r = rng.choice([3.0, 10.0, 70.0]) * rng.uniform(0.8, 1.2)
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            gm = ((xx - cx) / r) ** 2 + ((yy - cy) / (r * rng.uniform(0.6, 1.4))) ** 2 <= 1
            if not gm.any():
                continue
            c = int(rng.integers(1, k + 1))
            (rle,) = encode_masks(gm[None])
            ys, xs = gm.nonzero()
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": c, "segmentation": rle, "area": mask_area(rle),
                         "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)], "iscrowd": 0})
            for _ in range(rng.integers(0, 3)):
                dx, dy = rng.normal(0, 0.25 * r, 2)
                pm = ((xx - cx - dx) / (r * rng.uniform(0.7, 1.2))) ** 2 + ((yy - cy - dy) / r) ** 2 <= 1
                cc = c if rng.random() < 0.85 else int(rng.integers(1, k + 1))
                if pm.any():
                    dets.append({"image_id": i, "category_id": cc, "segmentation": encode_masks(pm[None])[0], "score": float(rng.uniform(0.05, 1))})
        for _ in range(rng.integers(0, 3)):
            x0, y0 = rng.integers(0, w - 20), rng.integers(0, h - 20)
            fp = np.zeros((h, w), bool)
            fp[y0:y0 + rng.integers(2, 20), x0:x0 + rng.integers(2, 20)] = True
            dets.append({"image_id": i, "category_id": int(rng.integers(1, k + 1)), "segmentation": encode_masks(fp[None])[0], "score": float(rng.uniform(0, 0.6))})
    return {"images": images, "annotations": anns, "categories": [{"id": c, "name": f"c{c}"} for c in range(1, k + 1)]}, dets


def test_mask_ap_parity_with_pycocotools():
    pytest.importorskip("pycocotools")
    gt, dets = fixed_masks()
    ours, ref = coco_evaluate(gt, dets, iou_type="segm"), coco_evaluate(gt, dets, backend="pycocotools", iou_type="segm")
    for n in STAT_NAMES:
        assert abs(ours[n] - ref[n]) <= 1e-6, (n, ours[n], ref[n])
    for c in ours["per_class"]:
        assert abs(ours["per_class"][c] - ref["per_class"][c]) <= 1e-6
    assert 0.05 < ours["map"] < 0.9 and ours["map_small"] > -1 and ours["map_medium"] > -1 and ours["map_large"] > -1  # a non-trivial case
    boxes = coco_evaluate(gt, [{**d, "bbox": [0, 0, 1, 1]} for d in dets])  # really the masks that are scored
    assert abs(boxes["map"] - ours["map"]) > 0.01


def test_metrics_score_masks_beside_boxes():
    yy, xx = np.mgrid[:40, :40]
    disc = torch.from_numpy((xx - 20) ** 2 + (yy - 20) ** 2 <= 64).to(torch.uint8)[None]  # r=8 disc, box 12..29
    box = torch.tensor([[12.0, 12, 29, 29]])
    t = {"boxes": box, "labels": torch.tensor([0]), "masks": disc}

    def score(pred_mask):
        m = DetectionMetrics(["a"])
        m.update([{"boxes": box, "labels": torch.tensor([0]), "scores": torch.tensor([0.9]), "masks": pred_mask}], [t])
        return m.compute()

    perfect = score(disc.float() * 0.8)  # probabilities, cut at 0.5
    assert perfect["map"] == pytest.approx(1.0) and perfect["mask_map"] == pytest.approx(1.0)
    square = torch.zeros(1, 40, 40)
    square[0, 12:29, 12:29] = 1.0  # the box filled: same box, a worse mask (IoU pi/4 ~ 0.78 with the disc)
    r = score(square)
    assert r["map"] == pytest.approx(1.0) and r["mask_map50"] == pytest.approx(1.0) and r["mask_map"] < 0.7
    m = DetectionMetrics(["a"])
    m.update([{"boxes": box, "labels": torch.tensor([0]), "scores": torch.tensor([0.9])}], [t])  # predictions without masks: box AP only
    assert "mask_map" not in m.compute()

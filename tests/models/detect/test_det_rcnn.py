"""rcnn: R-CNN on selective-search proposals (box deltas, region labelling, proposal cache, learning bar)."""

from __future__ import annotations

import json

import torch

from vislab.core import config as C
from vislab.models import create_model, list_models
from vislab.models.detect.rcnn import _as_image, decode_deltas, encode_deltas
from vislab.tasks.detect import DetectConfig, train


def test_deltas_round_trip_and_zero_for_the_same_box():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 40
    ref = torch.cat([xy, xy + 2 + torch.rand(50, 2, generator=g) * 20], 1)
    xy2 = torch.rand(50, 2, generator=g) * 40
    gt = torch.cat([xy2, xy2 + 2 + torch.rand(50, 2, generator=g) * 20], 1)
    assert torch.allclose(decode_deltas(ref, encode_deltas(ref, gt)), gt, atol=1e-4)
    assert encode_deltas(ref, ref).abs().max() < 1e-6


def test_regions_are_labelled_by_iou_with_the_ground_truth():
    torch.manual_seed(0)
    m = create_model("rcnn", num_classes=3, jitter=0, rois_per_image=100, pos_fraction=0.5)
    gt, labels = torch.tensor([[10.0, 10.0, 30.0, 30.0]]), torch.tensor([2])
    props = torch.tensor([
        [11.0, 10.0, 31.0, 30.0],  # IoU 0.9  -> class 2 + 1
        [10.0, 10.0, 30.0, 20.0],  # IoU 0.5  -> positive (>= 0.5)
        [10.0, 10.0, 22.0, 30.0],  # IoU 0.6  -> positive
        [10.0, 10.0, 30.0, 17.0],  # IoU 0.35 -> ignored (between 0.3 and 0.5)
        [40.0, 40.0, 60.0, 60.0],  # IoU 0    -> background
        [0.0, 0.0, 12.0, 12.0],    # IoU 0.01 -> background
    ])  # fmt: skip
    regions, cls, matched = m.sample(props, gt, labels, 64, 64)
    got = {tuple(r.tolist()): int(c) for r, c in zip(regions, cls, strict=True)}
    assert got == {(11.0, 10.0, 31.0, 30.0): 3, (10.0, 10.0, 30.0, 20.0): 3, (10.0, 10.0, 22.0, 30.0): 3, (10.0, 10.0, 30.0, 30.0): 3,
                   (40.0, 40.0, 60.0, 60.0): 0, (0.0, 0.0, 12.0, 12.0): 0}  # the ground truth itself is a positive
    assert (matched[cls > 0] == gt).all()
    # the positive fraction is capped, negatives fill the rest; jittered copies of the box are extra positives
    m = create_model("rcnn", num_classes=3, jitter=8, rois_per_image=8, pos_fraction=0.25)
    _, cls, _ = m.sample(props, gt, labels, 64, 64)
    assert (cls > 0).sum() == 2 and (cls == 0).sum() == 2  # 2 = round(8 * 0.25); only two negatives exist
    m = create_model("rcnn", num_classes=3, jitter=6, rois_per_image=40, pos_fraction=0.5)
    regions, cls, _ = m.sample(props, gt, labels, 64, 64)
    assert (cls > 0).sum() > 4 + 2  # jittered copies added positives
    # an image without objects: every region is background
    _, cls, _ = m.sample(props, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 64, 64)
    assert len(cls) == len(props) and (cls == 0).all()


def test_proposals_are_cached_by_content_and_mirrored():
    from vislab.data.detect import shapes_detection

    ds = shapes_detection(3, classes=2, size=64, seed=0, objects=(1, 2))
    x = torch.from_numpy(ds.pixels).float() / 255
    x = (x - 0.5) / 0.25  # normalised, as the detector receives it
    m = create_model("rcnn", num_classes=2)
    first = m.proposals(x)
    assert m.searched == 3 and all(len(p) >= 1 for p in first)
    again = m.proposals(x)
    assert m.searched == 3 and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    flipped = m.proposals(x.flip(-1))  # the training augmentation: found in the cache as mirrored boxes
    assert m.searched == 3
    assert torch.equal(flipped[0], torch.stack([64 - first[0][:, 2], first[0][:, 1], 64 - first[0][:, 0], first[0][:, 3]], 1))
    # the search sees the image, not the normalisation: per-channel min-max undoes mean/std
    assert torch.allclose(_as_image(x), _as_image(torch.from_numpy(ds.pixels).float()), atol=1e-5)


def test_interface_losses_and_detections():
    torch.manual_seed(0)
    assert "rcnn" in list_models(task="detect")
    m = create_model("rcnn", num_classes=2, score_thresh=0.0, nms_iou=0.5, max_det=5, img_size=64)
    x = torch.rand(2, 3, 64, 64)
    t = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 30.0]]), "labels": torch.tensor([1])}, {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    losses = m(x, t)
    assert set(losses) == {"cls", "box"} and all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert m.box.weight.grad.abs().sum() > 0
    dets = m.eval()(x)
    assert len(dets) == 2
    for d in dets:
        assert 1 <= len(d["boxes"]) <= 5 and d["labels"].max() < 2
        assert (d["boxes"][:, 2] <= 64).all() and (d["boxes"][:, :2] >= 0).all()


def test_rcnn_learns_generated_shapes(tmp_path):
    """Bar: AP50 >= 0.7 on held-out generated shapes (3 classes, 0-3 per image) after 3 epochs on 600 images.
    Measured 0.95 AP50 (see docs/detect.md); on these clean shapes selective search nearly recovers every box."""
    cfg = C.from_dict(DetectConfig, {"out": str(tmp_path), "name": "rcnn", "progress": "off", "tensorboard": False, "report": False,
                                     "precision": "fp32", "threads": 1, "model": "rcnn", "synth_count": 600, "synth_classes": 3,
                                     "objects": [0, 3], "epochs": 3, "lr": 3e-3, "val_split": 0.25})
    s = json.loads((train(cfg) / "run.json").read_text())["summary"]
    assert s["final_val_map50"] >= 0.7, s

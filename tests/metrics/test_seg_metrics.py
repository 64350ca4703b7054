"""Segmentation metrics: a hand-checked confusion matrix and parity with torchmetrics; losses against torch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassF1Score, MulticlassJaccardIndex

from vislab.core.errors import ConfigError
from vislab.metrics.segmentation import SegmentationMetrics, confusion_matrix
from vislab.losses.segmentation import LOSSES, build_loss, cross_entropy, dice_loss


def test_hand_checked_confusion_matrix():
    pred = torch.tensor([[0, 0, 1], [1, 2, 2]])
    target = torch.tensor([[0, 1, 1], [255, 2, 0]])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[1, 0, 1], [1, 1, 0], [0, 0, 1]]  # rows true, cols predicted; the 255 pixel left out
    m = SegmentationMetrics(3)
    m.update(pred, target)
    r = m.compute()
    # IoU: c0 1/(1+1+1), c1 1/(1+0+1)... c1: tp 1, fn 1, fp 0 -> 1/2 ; c2: tp 1, fn 0, fp 1 -> 1/2
    assert r["miou"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    assert r["pixel_acc"] == pytest.approx(3 / 5)
    assert r["dice"] == pytest.approx((2 / 4 + 2 / 3 + 2 / 3) / 3)


def test_parity_with_torchmetrics_over_batches():
    g = torch.Generator().manual_seed(0)
    k = 5
    tm_iou = MulticlassJaccardIndex(k, average="macro", ignore_index=255)
    tm_iou_c = MulticlassJaccardIndex(k, average="none", ignore_index=255)
    tm_f1 = MulticlassF1Score(k, average="none", ignore_index=255, multidim_average="global")
    tm_cm = MulticlassConfusionMatrix(k, ignore_index=255)
    ours = SegmentationMetrics(k)
    for _ in range(3):
        target = torch.randint(0, k - 1, (2, 13, 7), generator=g)  # class 4 never in the target
        target[torch.rand(target.shape, generator=g) < 0.1] = 255
        logits = torch.randn(2, k, 13, 7, generator=g)
        logits[:, 3] -= 10  # class 3 rarely predicted
        pred = logits.argmax(1)
        ours.update(logits, target)
        for t in (tm_iou, tm_iou_c, tm_f1, tm_cm):
            t.update(pred, target)
    r = ours.compute()
    assert torch.equal(ours.confmat.long(), tm_cm.compute())
    assert r["miou"] == pytest.approx(float(tm_iou.compute()), abs=1e-6)
    per = ours.per_class()
    for a, b in zip(per["iou"], tm_iou_c.compute().tolist(), strict=True):
        assert (math.isnan(a) and b == 0) or a == pytest.approx(b, abs=1e-6)
    for a, b in zip(per["dice"], tm_f1.compute().tolist(), strict=True):
        assert (math.isnan(a) and b == 0) or a == pytest.approx(b, abs=1e-6)


def test_losses():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, 9, 7, generator=g, requires_grad=True)
    target = torch.randint(0, 4, (3, 9, 7), generator=g)
    target[0, :2] = 255
    w = torch.tensor([0.5, 1.0, 2.0, 1.0])
    ref = torch.stack([F.cross_entropy(logits[i:i + 1], target[i:i + 1], weight=w, ignore_index=255) for i in range(3)])
    assert torch.allclose(cross_entropy(logits, target, w), ref, atol=1e-5)
    perfect = F.one_hot(target.clamp(max=3), 4).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(perfect, target).max()) < 1e-3
    for name in LOSSES:
        loss = build_loss(name)(logits, target)
        assert loss.shape == (3,) and torch.isfinite(loss).all()
        assert float(build_loss(name)(perfect, target).mean()) < float(loss.detach().mean())
        loss.sum().backward()
    combo = build_loss("0.5*ce+2*dice")(logits, target)
    assert torch.allclose(combo, 0.5 * build_loss("ce")(logits, target) + 2 * build_loss("dice")(logits, target))
    with pytest.raises(ConfigError, match="did you mean 'dice'"):
        build_loss("ce+dcie")

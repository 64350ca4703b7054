"""Joint detection augmentation: the batched warp equals torchvision v2's affine on the same parameters (image and
boxes), masks move with their boxes, flips are exact, the randomness is a function of the generator only, and the
per-image torchvision v2 SSD recipe keeps images, boxes and masks together."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors as tvt
from torchvision.transforms.v2 import functional as TF
from torchvision.ops import masks_to_boxes

from vislab.core.errors import ConfigError
from vislab.data.detect.augment import JointAugment, JointParams, photometric, warp_all_boxes


def _params(flip, scale, shift):
    n = len(flip)
    return JointParams(torch.tensor(flip), torch.tensor(scale), torch.tensor(shift), torch.ones(n, 3), torch.arange(n))


def _square_masks(boxes, size):
    m = torch.zeros(len(boxes), size, size, dtype=torch.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
        m[k, y1:y2, x1:x2] = 1
    return m


@pytest.mark.parametrize("scale,shift", [(1.25, (0.0, 0.0)), (0.8, (0.1, -0.05)), (1.4, (-0.15, 0.1))])
def test_warp_equals_torchvision_affine(scale, shift):
    torch.manual_seed(0)
    s = 48
    x = torch.rand(1, 3, s, s)
    boxes = torch.tensor([[10.0, 12, 30, 28], [20, 18, 36, 40]])
    aug = JointAugment("standard", mean=[0.0, 0.0, 0.0], min_visible=0.0)
    y, t = aug._warp(x, [{"boxes": boxes, "labels": torch.tensor([0, 1])}], _params([False], [scale], [list(shift)]))
    tx, ty = shift[0] * s, shift[1] * s
    ref = TF.affine(x[0], angle=0.0, translate=[tx, ty], scale=scale, shear=[0.0, 0.0], interpolation=TF.InterpolationMode.BILINEAR)
    ref_b = TF.affine(tvt.BoundingBoxes(boxes, format="XYXY", canvas_size=(s, s)), angle=0.0, translate=[tx, ty], scale=scale, shear=[0.0, 0.0])
    inner = (slice(None), slice(4, -4), slice(4, -4))  # the borders differ only in how far outside pixels bleed in
    assert torch.allclose(y[0][inner], ref[inner], atol=2e-2), (y[0][inner] - ref[inner]).abs().max()
    assert (y[0] - ref).abs().mean() < 1e-2
    assert torch.allclose(t[0]["boxes"], ref_b.as_subclass(torch.Tensor).clamp(0, s), atol=1e-4)


def test_flip_is_exact_and_moves_boxes_and_masks():
    x = torch.rand(2, 3, 32, 32)
    boxes = torch.tensor([[2.0, 4, 10, 20]])
    tg = {"boxes": boxes, "labels": torch.tensor([3]), "masks": _square_masks(boxes, 32)}
    y, t = JointAugment("flip")(x, [tg, tg], _params([True, False], [1.0, 1.0], [[0.0, 0.0]] * 2))
    assert torch.equal(y[0], x[0].flip(-1)) and torch.equal(y[1], x[1])
    assert t[0]["boxes"].tolist() == [[22.0, 4.0, 30.0, 20.0]] and torch.equal(t[1]["boxes"], boxes)
    assert torch.equal(masks_to_boxes(t[0]["masks"]) + torch.tensor([0, 0, 1, 1]), t[0]["boxes"])


def test_masks_follow_their_boxes_and_cut_objects_are_dropped():
    s = 64
    boxes = torch.tensor([[8.0, 8, 24, 24], [40, 36, 60, 58], [28, 2, 36, 10]])
    tg = {"boxes": boxes, "labels": torch.tensor([0, 1, 2]), "masks": _square_masks(boxes, s)}
    aug = JointAugment("strong", mean=[0.5] * 3)
    y, t = aug(torch.rand(1, 3, s, s), [tg], _params([True], [1.5], [[0.1, -0.1]]))
    kept = t[0]
    assert 0 < len(kept["boxes"]) < 3  # zoomed in and shifted: some objects leave the image
    assert len(kept["masks"]) == len(kept["boxes"]) == len(kept["labels"])
    tight = masks_to_boxes(kept["masks"]) + torch.tensor([0, 0, 1, 1])
    assert (tight - kept["boxes"]).abs().max() <= 1.0, (tight, kept["boxes"])
    assert (kept["boxes"][:, 2:] <= s).all() and (kept["boxes"] >= 0).all()


def test_warp_boxes_visibility_rule():
    t = {"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([1])}
    def moved(dx: float) -> torch.Tensor:  # shifted by dx pixels in a 32 x 32 image
        return warp_all_boxes([t], _params([False], [1.0], [[dx / 32, 0.0]]), (32, 32), min_visible=0.4)[0]["boxes"]

    assert len(moved(-7.0)) == 0  # 30% left
    assert moved(-5.0).tolist() == [[0.0, 0.0, 5.0, 10.0]]


def test_randomness_is_a_function_of_the_generator_and_slices_per_process():
    aug = JointAugment("strong")
    a, b = aug.sample(8, torch.Generator().manual_seed(3)), aug.sample(8, torch.Generator().manual_seed(3))
    assert torch.equal(a.scale, b.scale) and torch.equal(a.flip, b.flip) and torch.equal(a.seeds, b.seeds)
    half = a[slice(1, None, 2)]
    assert torch.equal(half.scale, a.scale[1::2]) and half.photo.shape == (4, 3)
    assert 0.5 <= float(a.scale.min()) and float(a.scale.max()) <= 1.5
    assert not torch.equal(a.scale, aug.sample(8, torch.Generator().manual_seed(4)).scale)


def test_photometric_matches_torchvision():
    x = torch.rand(2, 3, 16, 16)
    f = torch.tensor([[1.2, 0.8, 1.3], [0.7, 1.3, 0.6]])
    got = photometric(x, f)
    for i in range(2):
        ref = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x[i], float(f[i, 0])), float(f[i, 1])), float(f[i, 2]))
        assert torch.allclose(got[i], ref, atol=2e-3)


def test_ssd_recipe_keeps_images_boxes_and_masks_together():
    s = 48
    boxes = torch.tensor([[6.0, 6, 22, 22], [26, 24, 44, 42]])
    tg = {"boxes": boxes, "labels": torch.tensor([0, 1]), "masks": _square_masks(boxes, s)}
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, s, s, dtype=torch.uint8)}
    aug = JointAugment("ssd", mean=[0.5] * 3)
    p = aug.sample(6, torch.Generator().manual_seed(0))
    y, t = aug(torch.rand(6, 3, s, s), [tg] * 5 + [empty], p)
    y2, t2 = aug(torch.rand(6, 3, s, s), [tg] * 5 + [empty], p)
    assert y.shape == (6, 3, s, s) and len(t[5]["boxes"]) == 0
    for a, b in zip(t, t2, strict=True):  # the same seeds -> the same geometry
        assert torch.equal(a["boxes"], b["boxes"])
    changed = 0
    for d in t[:5]:
        assert len(d["boxes"]) == len(d["labels"]) == len(d["masks"])
        if len(d["boxes"]):
            tight = masks_to_boxes(d["masks"]) + torch.tensor([0, 0, 1, 1])
            assert (tight - d["boxes"]).abs().max() <= 1.5
        changed += not torch.equal(d["boxes"], boxes)
    assert changed >= 3


def test_unknown_preset_is_one_clear_error():
    with pytest.raises(ConfigError, match="--augment: expected one of"):
        JointAugment("mosaic")

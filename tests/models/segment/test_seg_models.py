"""Segmentation models over the registry, sliding window == whole image, CRF / SLIC refinement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vislab.core.errors import ModelError
from vislab.models import create_model, list_models
from vislab.ops.refine import crf_refine, slic_refine
from vislab.tasks.segment.infer import predict_probs

SEGMENTERS = list_models(task="segment")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_registry_lists_the_families():
    assert {"unet", "unet_residual", "unet_dense", "attention_unet", "segnet", "fcn8s", "fcn16s", "fcn32s",
            "deeplabv3", "deeplabv3plus", "pspnet"} <= set(SEGMENTERS)
    assert not set(SEGMENTERS) & set(list_models(task="classify"))


@pytest.mark.parametrize("name", SEGMENTERS)
def test_forward_backward_odd_size(name):
    torch.manual_seed(0)
    kw = {"width": 8, "depth": 3} if "unet" in name or name == "segnet" else {"encoder": "small_cnn"}
    m = create_model(name, num_classes=3, **kw)
    y = m(torch.randn(2, 3, 17, 11))
    assert y.shape == (2, 3, 17, 11) and torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]


@pytest.mark.parametrize("upsample", ["bilinear", "transposed", "pixelshuffle", "unpool"])
@pytest.mark.parametrize("attention", ["se", "cbam"])
def test_unet_upsampling_and_attention(upsample, attention):
    m = create_model("unet", num_classes=2, width=8, depth=2, upsample=upsample, attention=attention)
    assert m(torch.randn(2, 3, 13, 10)).shape == (2, 2, 13, 10)


def test_unpool_needs_own_encoder_and_unknown_choice():
    with pytest.raises(ModelError, match="own encoder"):
        create_model("unet", upsample="unpool", encoder="small_cnn")
    with pytest.raises(ModelError, match="expected one of bilinear"):
        create_model("unet", upsample="nearest")


def test_unet_parameter_count_of_the_paper_config():
    # Ronneberger et al.'s U-Net (64..1024 channels, transposed-conv upsampling, 2 classes): 31.03 M parameters
    # with BatchNorm, the count of the common reference implementation (milesial/Pytorch-UNet, bilinear=False).
    with torch.device("meta"):
        m = create_model("unet", num_classes=2, width=64, depth=4, upsample="transposed")
    n = sum(p.numel() for p in m.parameters())
    assert abs(n - 31_037_698) / 31_037_698 < 0.01, n


def test_sliding_window_equals_whole_image_when_the_window_covers_it():
    torch.manual_seed(0)
    m = create_model("unet", num_classes=3, width=8, depth=2).eval()
    x = torch.randn(1, 3, 20, 14)
    whole = predict_probs(m, x, "whole")
    assert torch.allclose(predict_probs(m, x, "sliding", (20, 14)), whole, atol=1e-6)
    assert torch.allclose(predict_probs(m, x, "sliding", (64, 64)), whole, atol=1e-6)
    tiled = predict_probs(m, x, "sliding", (8, 8), overlap=0.5)
    assert tiled.shape == whole.shape and torch.allclose(tiled.sum(1), torch.ones(1, 20, 14), atol=1e-5)
    tta = predict_probs(m, x, "whole", tta=True)
    assert torch.allclose(tta, 0.5 * (whole + predict_probs(m, x.flip(-1)).flip(-1)), atol=1e-6)


def _boundary_iou(pred: np.ndarray, gt: np.ndarray, width: int = 2) -> float:
    """IoU of the foreground restricted to pixels within ``width`` of the true boundary."""
    import cv2

    edge = cv2.morphologyEx(gt.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    band = cv2.dilate(edge.astype(np.uint8), np.ones((2 * width + 1,) * 2, np.uint8)) > 0
    p, g = (pred > 0) & band, (gt > 0) & band
    return float((p & g).sum() / max((p | g).sum(), 1))


@pytest.mark.parametrize("refine", ["crf", "slic"])
def test_refinement_sharpens_a_blurred_mask(refine):
    rng = np.random.default_rng(0)
    h = w = 48
    yy, xx = np.mgrid[:h, :w]
    gt = (((yy - 22) ** 2 + (xx - 25) ** 2) < 13**2) | ((abs(yy - 10) < 5) & (abs(xx - 38) < 7))
    img = np.where(gt[..., None], [200, 60, 40], [40, 90, 180]).astype(np.float32) + rng.normal(0, 8, (h, w, 3))
    img = img.clip(0, 255).astype(np.uint8)
    onehot = torch.from_numpy(np.stack([~gt, gt]).astype(np.float32))[None]
    blurred = F.avg_pool2d(F.pad(onehot, [4] * 4, mode="replicate"), 9, stride=1)  # a mask with rounded, smeared edges
    shifted = torch.roll(blurred, shifts=(2, 2), dims=(2, 3))[0]  # and displaced by 2 px
    raw = shifted.numpy() * 0.6 + 0.2
    before = _boundary_iou(raw.argmax(0), gt)
    refined = crf_refine(img, raw) if refine == "crf" else slic_refine(img, raw, n_segments=150)
    after = _boundary_iou(refined.argmax(0), gt)
    print(f"{refine}: boundary IoU {before:.3f} -> {after:.3f}")
    assert after > before + 0.1, (before, after)

"""vislab.ops colour spaces and colour detection: parity with OpenCV / scikit-image, round trips, grads."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from ops_helpers import assert_close, check_batched, check_gradcheck, hwc, rand, run_both

from vislab import ops
from vislab.core.errors import ConfigError, ShapeError

X = rand(2, 3, 17, 11)
IM = hwc(X[0])


def _cv(code, scale_h=False, order=None):
    def ref(im):
        out = cv2.cvtColor(im, code)
        out = out[:, :, None] if out.ndim == 2 else out
        if scale_h:
            out = out.copy()
            out[:, :, 0] /= 360.0
        return out[:, :, order] if order else out
    return ref


# (name, forward, inverse, module, reference(HWC float32) -> HWC, tolerance, round-trip tolerance)
SPACES = [
    ("gray", ops.rgb_to_gray, None, ops.RgbToGray, _cv(cv2.COLOR_RGB2GRAY), 1e-6, None),
    ("hsv", ops.rgb_to_hsv, ops.hsv_to_rgb, ops.RgbToHsv, _cv(cv2.COLOR_RGB2HSV, True), 1e-5, 1e-5),
    ("hls", ops.rgb_to_hls, ops.hls_to_rgb, ops.RgbToHls, _cv(cv2.COLOR_RGB2HLS, True), 1e-5, 1e-5),
    ("lab", ops.rgb_to_lab, ops.lab_to_rgb, ops.RgbToLab, lambda im: __import__("skimage.color").color.rgb2lab(im),
     1e-2, 1e-4),
    ("ycbcr", ops.rgb_to_ycbcr, ops.ycbcr_to_rgb, ops.RgbToYcbcr, _cv(cv2.COLOR_RGB2YCrCb, order=[0, 2, 1]), 1e-6, 1e-3),
    ("xyz", ops.rgb_to_xyz, ops.xyz_to_rgb, ops.RgbToXyz, _cv(cv2.COLOR_RGB2XYZ), 1e-6, 1e-5),
]


@pytest.mark.parametrize("case", SPACES, ids=[c[0] for c in SPACES])
def test_color_space(case):
    name, fwd, inv, module, ref, tol, rt_tol = case
    y = fwd(X)
    assert y.shape == (2, 1 if name == "gray" else 3, 17, 11)
    assert_close(hwc(y[0]), ref(IM), tol, msg=f"{name} vs reference")
    a, b = run_both(fwd, X)
    assert_close(a, b, 1e-5, msg="backends")
    assert_close(module()(X), y, 0.0)
    check_batched(fwd, X)
    check_gradcheck(fwd, rand(1, 3, 4, 3, seed=5) * 0.8 + 0.1)
    if inv is not None:
        assert_close(inv(y), X, rt_tol, msg="round trip")
        a, b = run_both(inv, y)
        assert_close(a, b, 1e-5, msg="inverse backends")
        check_gradcheck(inv, fwd(rand(1, 3, 4, 3, seed=6) * 0.8 + 0.1))
    with pytest.raises(ShapeError, match=rf"rgb_to_{name}: expected \(\*, 3, H, W\), got \(2, 1, 4, 4\)"):
        fwd(torch.rand(2, 1, 4, 4))


def test_lab_close_to_opencv_and_hsv_inverse_to_opencv():
    assert_close(hwc(ops.rgb_to_lab(X)[0]), cv2.cvtColor(IM, cv2.COLOR_RGB2Lab), 0.3)  # OpenCV's cube-root approximation
    hsv = cv2.cvtColor(IM, cv2.COLOR_RGB2HSV)
    assert_close(hwc(ops.hsv_to_rgb(ops.rgb_to_hsv(X))[0]), cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 1e-5)


def test_gray_to_rgb_bgr_and_convert_color():
    g = ops.rgb_to_gray(X)
    assert ops.gray_to_rgb(g).shape == X.shape
    assert_close(ops.rgb_to_bgr(X)[:, 0], X[:, 2], 0.0)
    assert_close(ops.convert_color(ops.convert_color(X, "rgb", "hls"), "hls", "lab"), ops.rgb_to_lab(X), 1e-3)
    with pytest.raises(ConfigError, match="did you mean 'hsv'"):
        ops.convert_color(X, "rgb", "hsb")


def test_hsv_range_mask_and_presets():
    colors = torch.tensor([[1, 0, 0], [0, 0.8, 0], [0, 0, 1], [1, 1, 0], [1, 1, 1], [0, 0, 0], [0.5, 0.5, 0.5],
                           [0.9, 0.05, 0.1]], dtype=torch.float32)
    img = colors.T.reshape(1, 3, 1, -1)
    expect = {"red": [1, 0, 0, 0, 0, 0, 0, 1], "green": [0, 1, 0, 0, 0, 0, 0, 0], "blue": [0, 0, 1, 0, 0, 0, 0, 0],
              "yellow": [0, 0, 0, 1, 0, 0, 0, 0], "white": [0, 0, 0, 0, 1, 0, 0, 0], "black": [0, 0, 0, 0, 0, 1, 0, 0],
              "gray": [0, 0, 0, 0, 0, 0, 1, 0]}
    for name, want in expect.items():
        assert ops.color_mask(img, name).flatten().tolist() == want, name
    # same as cv2.inRange on OpenCV's float HSV (H in degrees)
    hsv = cv2.cvtColor(IM, cv2.COLOR_RGB2HSV)
    ref = cv2.inRange(hsv, np.array([100, 0.2, 0.3]), np.array([250, 1.0, 0.9])) > 0
    got = ops.hsv_range_mask(X[0], hue=(100, 250), sat=(0.2, 1), val=(0.3, 0.9))
    assert got.shape == (1, 17, 11) and (got[0].numpy() > 0).tolist() == ref.tolist()
    u8 = (IM * 255).astype(np.uint8)
    m = ops.color_mask(u8, "red")
    assert m.shape == (17, 11) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
    assert_close(ops.ColorMask(name="red")(X), ops.color_mask(X, "red"), 0.0)
    assert_close(ops.HsvRangeMask(hue=(10, 20))(X), ops.hsv_range_mask(X, (10, 20)), 0.0)
    with pytest.raises(ConfigError, match="did you mean 'green'"):
        ops.color_mask(X, "gren")


def test_dominant_colors():
    img = torch.zeros(2, 3, 10, 10)
    img[:, 0, :, :3] = 1.0  # 30% red, 70% black
    img[1, 2, 5:, 5:] = 1.0  # second image: 25% blue too
    cols, frac = ops.dominant_colors(img, k=3)
    assert cols.shape == (2, 3, 3) and frac.shape == (2, 3)
    assert_close(frac.sum(1), torch.ones(2), 1e-6)
    assert_close(cols[1, 0], [0, 0, 0], 1e-6) and abs(frac[1, 0].item() - 0.45) < 1e-6
    c2, f2 = ops.dominant_colors(img, k=3)
    assert torch.equal(cols, c2) and torch.equal(frac, f2)  # deterministic
    cnp, fnp = ops.dominant_colors((hwc(img[0]) * 255).astype(np.uint8), k=2)
    assert cnp.shape == (2, 3) and np.allclose(fnp, [0.7, 0.3])


def test_channels_last_input_takes_the_zero_copy_path():
    cl = X.contiguous(memory_format=torch.channels_last)
    for fwd, inv in [(ops.rgb_to_hsv, ops.hsv_to_rgb), (ops.rgb_to_hls, ops.hls_to_rgb)]:
        y = fwd(cl)
        assert_close(y, fwd(X), 1e-6)
        back = inv(y.contiguous(memory_format=torch.channels_last))
        assert_close(back, X, 1e-5)
        assert_close(cl, X, 0.0)  # the input is untouched

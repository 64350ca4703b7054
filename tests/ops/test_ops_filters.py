"""vislab.ops filters / edges / kernels: parity with OpenCV, both backends, modules, batching, grads."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from ops_helpers import assert_close, check_batched, check_gradcheck, hwc, rand, run_both

from vislab import ops
from vislab.core.errors import ConfigError, ShapeError, VislabError

X = rand(2, 3, 17, 11)
CV_BORDER = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
K34 = rand(3, 4, seed=3) - 0.5

# (name, fn, kwargs, module, cv2 reference on an HWC float32 image or None, differentiable)
CASES = [
    ("filter2d", ops.filter2d, {"kernel": K34}, lambda: ops.Filter2d(K34),
     lambda im, b: cv2.filter2D(im, -1, K34.numpy(), borderType=CV_BORDER[b]), True),
    ("box", ops.box_blur, {"ksize": 3}, lambda: ops.BoxBlur(3),
     lambda im, b: cv2.boxFilter(im, -1, (3, 3), borderType=CV_BORDER[b]), True),
    ("gaussian", ops.gaussian_blur, {"ksize": 5, "sigma": 1.3}, lambda: ops.GaussianBlur(5, 1.3),
     lambda im, b: cv2.GaussianBlur(im, (5, 5), 1.3, borderType=CV_BORDER[b]), True),
    ("sobel_x", ops.sobel, {"dx": 1, "dy": 0}, lambda: ops.Sobel(1, 0),
     lambda im, b: cv2.Sobel(im, -1, 1, 0, ksize=3, borderType=CV_BORDER[b]), True),
    ("sobel_yy5", ops.sobel, {"dx": 0, "dy": 2, "ksize": 5}, lambda: ops.Sobel(0, 2, 5),
     lambda im, b: cv2.Sobel(im, -1, 0, 2, ksize=5, borderType=CV_BORDER[b]), True),
    ("scharr", ops.sobel, {"dx": 1, "dy": 0, "ksize": -1}, lambda: ops.Sobel(1, 0, -1),
     lambda im, b: cv2.Scharr(im, -1, 1, 0, borderType=CV_BORDER[b]), True),
    ("magnitude", ops.sobel_magnitude, {}, lambda: ops.SobelMagnitude(),
     lambda im, b: cv2.magnitude(cv2.Sobel(im, -1, 1, 0, borderType=CV_BORDER[b]),
                                 cv2.Sobel(im, -1, 0, 1, borderType=CV_BORDER[b])), True),
    ("laplacian1", ops.laplacian, {"ksize": 1}, lambda: ops.Laplacian(1),
     lambda im, b: cv2.Laplacian(im, -1, ksize=1, borderType=CV_BORDER[b]), True),
    ("laplacian3", ops.laplacian, {"ksize": 3}, lambda: ops.Laplacian(3),
     lambda im, b: cv2.Laplacian(im, -1, ksize=3, borderType=CV_BORDER[b]), True),
    ("bilateral", ops.bilateral_filter, {"d": 5, "sigma_color": 0.2, "sigma_space": 2.0},
     lambda: ops.BilateralFilter(5, 0.2, 2.0),
     lambda im, b: cv2.bilateralFilter(im, 5, 0.2, 2.0, borderType=CV_BORDER[b]), True),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("border", ["reflect", "replicate", "constant"])
def test_parity_with_opencv_both_backends(case, border):
    _, fn, kw, _, ref, _ = case
    a, b = run_both(fn, X, border=border, **kw)
    assert a.shape == b.shape == X.shape
    assert_close(a, b, 1e-5, msg="opencv vs torch path")
    expected = ref(hwc(X[0]), border)
    expected = expected[:, :, None] if expected.ndim == 2 else expected
    assert_close(hwc(b[0]), expected, 1e-5 if case[0] != "bilateral" else 1e-4, msg="vs cv2")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_module_batched_gradcheck(case):
    _, fn, kw, module, _, diff = case
    assert_close(module()(X), fn(X, **kw), 0.0)
    check_batched(fn, X, **kw)
    if diff:
        check_gradcheck(fn, rand(1, 2, 5, 4, seed=1), **kw)


def test_median_parity_and_backends():
    for k in (3, 5):
        a, b = run_both(ops.median_blur, X, k)
        assert_close(a, b, 0.0)
        assert_close(hwc(a[0]), cv2.medianBlur(hwc(X[0]), k), 0.0)
    assert_close(ops.MedianBlur(3)(X), ops.median_blur(X, 3), 0.0)
    check_batched(ops.median_blur, X, 7)
    check_gradcheck(ops.median_blur, rand(1, 1, 5, 4, seed=2), 3)


def test_filter2d_circular_and_tiny_images():
    y = ops.filter2d(X, K34, border="circular")  # torch path (OpenCV filters have no wrap border)
    xp = np.pad(hwc(X[0]), ((1, 1), (2, 1), (0, 0)), mode="wrap")
    ref = cv2.filter2D(xp, -1, K34.numpy(), borderType=cv2.BORDER_CONSTANT)[1:-1, 2:-1]
    assert_close(hwc(y[0]), ref, 1e-5)
    tiny = rand(1, 1, 2, 3)  # kernel wider than the image: padding reflects again, as OpenCV
    a, b = run_both(ops.gaussian_blur, tiny, 7, 2.0)
    assert_close(a, b, 1e-6)


def test_kernel_catalogue():
    assert len(ops.list_kernels()) >= 15
    for name in ops.list_kernels():
        k = ops.get_kernel(name)
        assert k.ndim == 2 and k.shape[0] % 2 == 1
        y = ops.apply_kernel(X, name)
        assert y.shape == X.shape and torch.isfinite(y).all()
        assert_close(ops.ApplyKernel(name)(X), y, 0.0)
    for name in ("box", "gaussian", "identity", "sharpen", "unsharp"):
        assert abs(ops.get_kernel(name).sum().item() - 1) < 1e-6
    for name in ("sobel_x", "sobel_y", "scharr_x", "laplacian", "log", "outline", "prewitt_y"):
        assert abs(ops.get_kernel(name).sum().item()) < 1e-6
    kx, ky = cv2.getDerivKernels(1, 0, 5)
    assert_close(ops.get_kernel("sobel_x", 5), np.outer(ky, kx), 0.0)
    assert_close(ops.get_kernel("gaussian", 5, 1.2), np.outer(*(2 * [cv2.getGaussianKernel(5, 1.2)])), 1e-7)
    assert_close(ops.apply_kernel(X, "identity"), X, 0.0)
    with pytest.raises(ConfigError, match="did you mean 'sobel_x'"):
        ops.get_kernel("sobelx")


def test_canny_matches_opencv():
    u8 = (hwc(ops.gaussian_blur(rand(1, 1, 33, 29), 3)) * 255).round().astype(np.uint8)[:, :, 0]
    ref = cv2.Canny(u8, 0.1 * 255, 0.2 * 255, L2gradient=True)
    got = ops.canny(u8, 0.1, 0.2)
    assert got.dtype == np.uint8 and got.shape == u8.shape
    assert (got == ref).all()
    assert ops.canny(X).shape == (2, 1, 17, 11)
    assert_close(ops.Canny()(X), ops.canny(X), 0.0)


def test_direction_and_magnitude_relation():
    x = rand(1, 1, 9, 9)
    gx, gy = ops.sobel(x, 1, 0), ops.sobel(x, 0, 1)
    assert_close(ops.sobel_direction(x), torch.atan2(gy, gx), 1e-6)
    a, b = run_both(ops.sobel_direction, x)
    assert_close(a, b, 1e-5)
    assert_close(ops.SobelDirection()(x), a, 0.0)


def test_input_kinds_round_trip():
    from PIL import Image

    u8 = (hwc(X[0]) * 255).round().astype(np.uint8)
    y = ops.gaussian_blur(u8, 3)
    assert y.dtype == np.uint8 and y.shape == u8.shape
    assert np.abs(y.astype(int) - cv2.GaussianBlur(u8, (3, 3), 0.8)).max() <= 1
    f = ops.box_blur(hwc(X[0]), 3)
    assert f.dtype == np.float32 and f.shape == (17, 11, 3)
    g = ops.box_blur(u8[:, :, 0], 3)
    assert g.shape == (17, 11)
    pil = ops.gaussian_blur(Image.fromarray(u8), 3)
    assert isinstance(pil, Image.Image) and pil.size == (11, 17) and pil.mode == "RGB"
    assert ops.box_blur(X[0]).shape == (3, 17, 11)


def test_bad_inputs():
    with pytest.raises(ShapeError, match=r"filter2d: expected \(B, C, H, W\) or \(C, H, W\), got \(17, 11\)"):
        ops.filter2d(torch.rand(17, 11), K34)
    with pytest.raises(ShapeError, match="kernel"):
        ops.filter2d(X, torch.rand(3))
    with pytest.raises(ConfigError, match="did you mean 'reflect'"):
        ops.gaussian_blur(X, 3, border="reflct")
    with pytest.raises(ConfigError, match="odd"):
        ops.box_blur(X, 4)
    with pytest.raises(ConfigError):
        ops.median_blur(X, (3, 5))
    with pytest.raises(ConfigError):
        ops.canny(X, 0.5, 0.1)
    with pytest.raises(ShapeError):
        ops.sobel(torch.zeros(1, 1, 3, 3, dtype=torch.int32))
    with pytest.raises(VislabError):
        ops.backend("cuda").__enter__()


def test_autograd_uses_torch_path_and_flows_to_kernel():
    x = rand(1, 1, 7, 6).requires_grad_(True)
    k = torch.rand(3, 3, requires_grad=True)
    ops.filter2d(x, k).sum().backward()
    assert x.grad is not None and k.grad is not None and k.grad.abs().sum() > 0
    m = ops.Filter2d(torch.rand(3, 3), learnable=True)
    m(x.detach()).sum().backward()
    assert m.kernel.grad is not None

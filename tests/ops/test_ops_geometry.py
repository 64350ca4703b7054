"""vislab.ops geometry: parity with cv2.resize / warpAffine / warpPerspective, backends, grads."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from ops_helpers import assert_close, check_batched, check_gradcheck, hwc, rand, run_both, smooth

from vislab import ops
from vislab.core.errors import ConfigError, ShapeError

X = smooth(2, 3, 17, 11)
IM = hwc(X[0])
CVB = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101}


@pytest.mark.parametrize("mode,flag", [("bilinear", cv2.INTER_LINEAR), ("nearest", cv2.INTER_NEAREST),
                                       ("bicubic", cv2.INTER_CUBIC), ("area", cv2.INTER_AREA)])
@pytest.mark.parametrize("size", [(8, 5), (34, 22), (9, 6)])
def test_resize_matches_opencv(mode, flag, size):
    y, yt = run_both(ops.resize, X, size, mode)
    assert y.shape == yt.shape == (2, 3, *size)
    assert_close(y, yt, 1e-5, msg="backends")
    if mode == "area" and (17 % size[0] or 11 % size[1]) and size[0] < 17:
        pytest.skip("INTER_AREA with a non-integer shrink factor: OpenCV weights partial pixels, torch does not")
    assert_close(hwc(y[0]), cv2.resize(IM, size[::-1], interpolation=flag), 1e-5)


def test_resize_exact_half_fast_path():
    x = rand(2, 3, 16, 12)
    a, b = run_both(ops.resize, x, (8, 6))
    assert_close(a, b, 1e-6)
    assert_close(hwc(a[1]), cv2.resize(hwc(x[1]), (6, 8), interpolation=cv2.INTER_LINEAR), 1e-6)


def test_resize_scale_antialias_module_grad():
    assert ops.resize(X, 22).shape == (2, 3, 34, 22)
    assert ops.scale(X, 0.5).shape == (2, 3, 8, 6)
    assert ops.scale(X, (2.0, 1.0)).shape == (2, 3, 34, 11)
    aa = ops.resize(X, (8, 5), antialias=True)
    assert aa.std() < ops.resize(X, (8, 5)).std() + 1e-6
    assert_close(ops.Resize((8, 5))(X), ops.resize(X, (8, 5)), 0.0)
    check_batched(ops.resize, X, (9, 6))
    check_gradcheck(ops.resize, rand(1, 1, 5, 4), (3, 7), "bicubic")
    assert ops.scale((IM * 255).astype(np.uint8), 2.0).shape == (34, 22, 3)


@pytest.mark.parametrize("border", ["constant", "replicate", "reflect"])
@pytest.mark.parametrize("interp,flag", [("bilinear", cv2.INTER_LINEAR), ("nearest", cv2.INTER_NEAREST)])
def test_rotate_and_warps_match_opencv(border, interp, flag):
    m = cv2.getRotationMatrix2D((5.0, 8.0), 30, 1.0)
    ref = cv2.warpAffine(IM, m, (11, 17), flags=flag, borderMode=CVB[border])
    a, b = run_both(ops.rotate, X, 30, border=border, interpolation=interp)
    assert_close(hwc(a[0]), ref, 1e-6)
    if interp == "bilinear":  # grid_sample rounds nearest ties differently; bilinear is exact
        assert_close(hwc(b[0]), ref, 1e-5)
    h = np.array([[1.1, 0.1, -1.0], [0.05, 0.9, 1.0], [0.01, 0.002, 1.0]])
    ref = cv2.warpPerspective(IM, h, (13, 15), flags=flag, borderMode=CVB[border])
    a, b = run_both(ops.warp_perspective, X, h, (15, 13), interp, border)
    assert_close(hwc(a[0]), ref, 1e-6)
    if interp == "bilinear":
        assert_close(hwc(b[0]), ref, 1e-5)


def test_warp_batched_matrices_fill_expand_grad():
    ms = torch.stack([ops.rotation_matrix((5, 8), 10), ops.rotation_matrix((5, 8), 40)])
    a, b = run_both(ops.warp_affine, X, ms)
    assert_close(a, b, 1e-5)
    assert_close(a[1:], ops.warp_affine(X[1:], ms[1]), 1e-6)
    a, b = run_both(ops.rotate, X, 45, fill=0.5)
    assert_close(a, b, 1e-5)
    assert_close(hwc(a[0]), cv2.warpAffine(IM, cv2.getRotationMatrix2D((5.0, 8.0), 45, 1), (11, 17), borderValue=(0.5,) * 4), 1e-6)
    assert ops.rotate(X, 90, expand=True).shape == (2, 3, 11, 17)
    assert_close(ops.rotate(X, 90, expand=True), X.transpose(2, 3).flip(2), 1e-5)
    assert_close(ops.Rotate(30)(X), ops.rotate(X, 30), 0.0)
    assert_close(ops.WarpAffine(ms)(X), ops.warp_affine(X, ms), 0.0)
    check_batched(ops.rotate, X, 25)
    check_gradcheck(ops.rotate, rand(1, 1, 5, 4), 17.0)
    theta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)  # gradient reaches the matrix
    m = torch.stack([torch.stack([theta.cos(), -theta.sin(), theta * 0]), torch.stack([theta.sin(), theta.cos(), theta * 0])])
    ops.warp_affine(X.double(), m).sum().backward()
    assert theta.grad is not None and theta.grad.abs() > 0


def test_point_pair_transforms_match_opencv():
    src = np.float32([[0, 0], [10, 0], [0, 16], [10, 16]])
    dst = np.float32([[1, 1], [9, 0], [0, 15], [10, 16]])
    assert_close(ops.get_perspective_transform(src, dst), cv2.getPerspectiveTransform(src, dst), 1e-6)
    assert_close(ops.get_affine_transform(src[:3], dst[:3]), cv2.getAffineTransform(src[:3], dst[:3]), 1e-6)
    many = np.random.default_rng(0).random((10, 2)) * 10
    m = np.array([[1.2, 0.1, 3.0], [-0.2, 0.9, 1.0]])
    assert_close(ops.get_affine_transform(many, many @ m[:, :2].T + m[:, 2]), m, 1e-6)  # least squares, exact data
    batched = ops.get_perspective_transform(torch.tensor(np.stack([src, src])), torch.tensor(np.stack([dst, src])))
    assert batched.shape == (2, 3, 3) and torch.allclose(batched[1], torch.eye(3), atol=1e-5)
    assert_close(ops.rotation_matrix((3.0, 4.0), 33, 1.5), cv2.getRotationMatrix2D((3.0, 4.0), 33, 1.5), 1e-9)


def test_flip_crop_pad():
    assert_close(hwc(ops.flip(X, "horizontal")[0]), cv2.flip(IM, 1), 0.0)
    assert_close(hwc(ops.flip(X, "vertical")[0]), cv2.flip(IM, 0), 0.0)
    assert_close(hwc(ops.flip(X, "both")[0]), cv2.flip(IM, -1), 0.0)
    assert_close(ops.crop(X, 2, 3, 5, 4), X[..., 2:7, 3:7], 0.0)
    assert ops.center_crop(X, (5, 3)).shape == (2, 3, 5, 3)
    for border in ("constant", "replicate", "reflect", "circular"):
        flag = {**CVB, "circular": cv2.BORDER_WRAP}[border]
        assert_close(hwc(ops.pad(X, (2, 1, 3, 0), border)[0]), cv2.copyMakeBorder(IM, 3, 0, 2, 1, flag), 0.0, msg=border)
    assert_close(hwc(ops.pad(X, 20, "reflect")[0]), cv2.copyMakeBorder(IM, 20, 20, 20, 20, cv2.BORDER_REFLECT_101), 0.0)
    for m, fn in [(ops.Flip("vertical"), lambda x: ops.flip(x, "vertical")), (ops.Pad(2), lambda x: ops.pad(x, 2)),
                  (ops.Crop(1, 1, 3, 3), lambda x: ops.crop(x, 1, 1, 3, 3)), (ops.CenterCrop(3), lambda x: ops.center_crop(x, 3))]:
        assert_close(m(X), fn(X), 0.0)


def test_bad_inputs():
    with pytest.raises(ShapeError, match="crop"):
        ops.crop(X, 10, 0, 10, 3)
    with pytest.raises(ShapeError, match=r"warp_affine: expected a matrix \(2, 3\)"):
        ops.warp_affine(X, torch.eye(3))
    with pytest.raises(ConfigError, match="did you mean 'bilinear'"):
        ops.resize(X, (4, 4), "bilinar")
    with pytest.raises(ConfigError):
        ops.rotate(X, 10, border="circular")
    with pytest.raises(ConfigError):
        ops.flip(X, "diagonal")
    with pytest.raises(ShapeError):
        ops.get_perspective_transform(np.zeros((3, 2)), np.zeros((3, 2)))

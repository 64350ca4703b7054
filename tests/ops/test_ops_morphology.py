"""vislab.ops morphology: parity with cv2.morphologyEx on both backends, modules, batching, grads."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from ops_helpers import assert_close, check_batched, check_gradcheck, hwc, rand, run_both

from vislab import ops
from vislab.core.errors import ConfigError, ShapeError

X = rand(2, 3, 17, 11)
CV = {"erode": cv2.MORPH_ERODE, "dilate": cv2.MORPH_DILATE, "open": cv2.MORPH_OPEN, "close": cv2.MORPH_CLOSE,
      "gradient": cv2.MORPH_GRADIENT, "tophat": cv2.MORPH_TOPHAT, "blackhat": cv2.MORPH_BLACKHAT}
FUNCS = {"erode": (ops.erode, ops.Erode), "dilate": (ops.dilate, ops.Dilate), "open": (ops.opening, ops.Opening),
         "close": (ops.closing, ops.Closing), "gradient": (ops.morph_gradient, ops.MorphGradient),
         "tophat": (ops.tophat, ops.TopHat), "blackhat": (ops.blackhat, ops.BlackHat)}


@pytest.mark.parametrize("op", ops.MORPH_OPS)
def test_morphology(op):
    fn, module = FUNCS[op]
    for kernel, shape in [(3, "rect"), (5, "ellipse"), ((3, 5), "cross"), (np.array([[1, 0, 0], [0, 1, 1]]), "rect")]:
        a, b = run_both(fn, X, kernel, shape, 2)
        assert_close(a, b, 0.0, msg=f"backends {kernel} {shape}")
        el = kernel.astype(np.uint8) if isinstance(kernel, np.ndarray) else ops.structuring_element(kernel, shape)
        assert_close(hwc(a[0]), cv2.morphologyEx(hwc(X[0]), CV[op], el, iterations=2), 0.0, msg="vs cv2")
    assert_close(module(3)(X), fn(X, 3), 0.0)
    assert_close(ops.morphology(X, op, 3), fn(X, 3), 0.0)
    check_batched(fn, X, 3)
    check_gradcheck(fn, rand(1, 1, 5, 4, seed=3), 3)


def test_binary_mask_and_errors():
    m = np.zeros((9, 9), np.uint8)
    m[2:7, 2:7] = 255
    m[4, 4] = 0
    assert (ops.closing(m, 3) == cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))).all()
    assert ops.structuring_element(5, "ellipse").tolist() == cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)).tolist()
    with pytest.raises(ConfigError, match="did you mean 'close'"):
        ops.morphology(X, "clse")
    with pytest.raises(ConfigError):
        ops.erode(X, np.zeros((3, 3)))
    with pytest.raises(ShapeError):
        ops.erode(X, np.ones(3))
    with pytest.raises(ConfigError):
        ops.dilate(X, 3, "star")
    assert torch.isfinite(ops.dilate(X.double().requires_grad_(), 3)).all()

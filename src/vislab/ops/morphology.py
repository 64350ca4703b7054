"""Mathematical morphology on grey-level (and binary) images: erode, dilate, open, close, gradient, top-hat.

The structuring element is a size with a shape (``rect``, ``ellipse``, ``cross``, as
``cv2.getStructuringElement``) or any 2-D 0/1 array, anchored at its centre. Outside the image
counts as "no effect" (OpenCV's default border: +inf for erosion, -inf for dilation). Dilation
takes ``max over the element of x(p + offset)`` as OpenCV does (no reflection of the element).

Example:
    >>> import torch
    >>> x = torch.zeros(1, 1, 5, 5); x[0, 0, 2, 2] = 1.0
    >>> dilate(x, 3).sum().item(), erode(dilate(x, 3), 3).sum().item()
    (9.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vislab.core.errors import ConfigError, ShapeError, did_you_mean
from vislab.ops._convert import image_op, op_module
from vislab.ops._dispatch import map_planes, use_opencv

__all__ = ["structuring_element", "erode", "dilate", "opening", "closing", "morph_gradient", "tophat", "blackhat",
           "morphology", "MORPH_OPS", "Erode", "Dilate", "Opening", "Closing", "MorphGradient", "TopHat", "BlackHat",
           "Morphology"]

MORPH_OPS = ("erode", "dilate", "open", "close", "gradient", "tophat", "blackhat")
_SHAPES = ("rect", "ellipse", "cross")


def structuring_element(size: int | tuple[int, int] = 3, shape: str = "rect") -> np.ndarray:
    """A ``(kH, kW)`` uint8 0/1 element: ``rect``, ``ellipse`` or ``cross`` (``cv2.getStructuringElement``).

    Example:
        >>> structuring_element(3, "cross").tolist()
        [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    """
    import cv2

    if shape not in _SHAPES:
        raise ConfigError(f"structuring_element: expected shape in {_SHAPES}, got {shape!r}{did_you_mean(shape, _SHAPES)}")
    kh, kw = (size, size) if isinstance(size, int) else size
    if kh < 1 or kw < 1:
        raise ConfigError(f"structuring_element: expected a positive size, got {size}")
    flag = {"rect": cv2.MORPH_RECT, "ellipse": cv2.MORPH_ELLIPSE, "cross": cv2.MORPH_CROSS}[shape]
    return cv2.getStructuringElement(flag, (kw, kh))


def _element(kernel: Any, shape: str) -> np.ndarray:
    if isinstance(kernel, int | tuple) and not isinstance(kernel, np.ndarray):
        return structuring_element(kernel, shape)
    k = kernel.detach().cpu().numpy() if isinstance(kernel, torch.Tensor) else np.asarray(kernel)
    if k.ndim != 2 or 0 in k.shape:
        raise ShapeError("morphology", "a structuring element (kH, kW)", k.shape)
    k = (k != 0).astype(np.uint8)
    if not k.any():
        raise ConfigError("morphology: expected a structuring element with at least one 1, got all zeros")
    return k


def _shift_reduce(x: torch.Tensor, k: np.ndarray, use_max: bool) -> torch.Tensor:
    kh, kw = k.shape
    h, w = x.shape[-2:]
    fill = float("-inf") if use_max else float("inf")
    xp = F.pad(x, (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2), value=fill)
    out = None
    for i, j in zip(*np.nonzero(k)):
        s = xp[..., i:i + h, j:j + w]
        out = s if out is None else (torch.maximum(out, s) if use_max else torch.minimum(out, s))
    return out


def _torch_op(x: torch.Tensor, op: str, k: np.ndarray, iterations: int) -> torch.Tensor:
    def ero(t: torch.Tensor) -> torch.Tensor:
        for _ in range(iterations):
            t = _shift_reduce(t, k, False)
        return t

    def dil(t: torch.Tensor) -> torch.Tensor:
        for _ in range(iterations):
            t = _shift_reduce(t, k, True)
        return t

    if op == "erode":
        return ero(x)
    if op == "dilate":
        return dil(x)
    if op == "open":
        return dil(ero(x))
    if op == "close":
        return ero(dil(x))
    if op == "gradient":
        return dil(x) - ero(x)
    if op == "tophat":
        return x - dil(ero(x))
    return ero(dil(x)) - x  # blackhat


@image_op("morphology")
def morphology(x: torch.Tensor, op: str, kernel: Any = 3, shape: str = "rect", iterations: int = 1) -> torch.Tensor:
    """Any morphological operation in :data:`MORPH_OPS` (``cv2.morphologyEx``).

    Args:
        x: image ``(B, C, H, W)``, each channel on its own.
        op: ``erode`` | ``dilate`` | ``open`` | ``close`` | ``gradient`` | ``tophat`` | ``blackhat``.
        kernel: element size (int or ``(kH, kW)``) or a 2-D 0/1 array.
        shape: element shape when ``kernel`` is a size: ``rect`` | ``ellipse`` | ``cross``.
        iterations: how many times erosion / dilation is applied inside the operation.

    Example:
        >>> import torch
        >>> morphology(torch.ones(1, 1, 5, 5), "gradient").abs().sum().item()
        0.0
    """
    if op not in MORPH_OPS:
        raise ConfigError(f"morphology: expected op in {MORPH_OPS}, got {op!r}{did_you_mean(op, MORPH_OPS)}")
    if iterations < 1:
        raise ConfigError(f"morphology: expected iterations >= 1, got {iterations}")
    k = _element(kernel, shape)
    if use_opencv(x):
        import cv2

        flag = {"erode": cv2.MORPH_ERODE, "dilate": cv2.MORPH_DILATE, "open": cv2.MORPH_OPEN, "close": cv2.MORPH_CLOSE,
                "gradient": cv2.MORPH_GRADIENT, "tophat": cv2.MORPH_TOPHAT, "blackhat": cv2.MORPH_BLACKHAT}[op]
        return map_planes(lambda s, d: cv2.morphologyEx(s, flag, k, dst=d, iterations=iterations), x)
    return _torch_op(x, op, k, iterations)


def erode(x: Any, kernel: Any = 3, shape: str = "rect", iterations: int = 1) -> Any:
    """Minimum over the element (shrinks bright regions; ``cv2.erode``).

    Example:
        >>> import torch
        >>> erode(torch.ones(1, 1, 4, 4)).sum().item()
        16.0
    """
    return morphology(x, "erode", kernel, shape, iterations)


def dilate(x: Any, kernel: Any = 3, shape: str = "rect", iterations: int = 1) -> Any:
    """Maximum over the element (grows bright regions; ``cv2.dilate``).

    Example:
        >>> import torch
        >>> dilate(torch.zeros(1, 1, 4, 4)).sum().item()
        0.0
    """
    return morphology(x, "dilate", kernel, shape, iterations)


def opening(x: Any, kernel: Any = 3, shape: str = "rect", iterations: int = 1) -> Any:
    """Erode then dilate: removes bright specks smaller than the element.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 5, 5); x[0, 0, 2, 2] = 1.0
        >>> opening(x).sum().item()
        0.0
    """
    return morphology(x, "open", kernel, shape, iterations)


def closing(x: Any, kernel: Any = 3, shape: str = "rect", iterations: int = 1) -> Any:
    """Dilate then erode: fills dark holes smaller than the element.

    Example:
        >>> import torch
        >>> x = torch.ones(1, 1, 5, 5); x[0, 0, 2, 2] = 0.0
        >>> closing(x).sum().item()
        25.0
    """
    return morphology(x, "close", kernel, shape, iterations)


def morph_gradient(x: Any, kernel: Any = 3, shape: str = "rect", iterations: int = 1) -> Any:
    """Dilation minus erosion: the outline of shapes.

    Example:
        >>> import torch
        >>> morph_gradient(torch.ones(1, 1, 4, 4)).sum().item()
        0.0
    """
    return morphology(x, "gradient", kernel, shape, iterations)


def tophat(x: Any, kernel: Any = 3, shape: str = "rect", iterations: int = 1) -> Any:
    """Image minus its opening: bright details smaller than the element.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 5, 5); x[0, 0, 2, 2] = 1.0
        >>> tophat(x).sum().item()
        1.0
    """
    return morphology(x, "tophat", kernel, shape, iterations)


def blackhat(x: Any, kernel: Any = 3, shape: str = "rect", iterations: int = 1) -> Any:
    """Closing minus the image: dark details smaller than the element.

    Example:
        >>> import torch
        >>> x = torch.ones(1, 1, 5, 5); x[0, 0, 2, 2] = 0.0
        >>> blackhat(x).sum().item()
        1.0
    """
    return morphology(x, "blackhat", kernel, shape, iterations)


Morphology = op_module("Morphology", morphology)
Erode = op_module("Erode", erode)
Dilate = op_module("Dilate", dilate)
Opening = op_module("Opening", opening)
Closing = op_module("Closing", closing)
MorphGradient = op_module("MorphGradient", morph_gradient)
TopHat = op_module("TopHat", tophat)
BlackHat = op_module("BlackHat", blackhat)

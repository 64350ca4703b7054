"""Geometric transforms: resize, scale, rotate, flip, crop, pad, affine and perspective warps.

Coordinates are OpenCV's: pixel ``(x, y)`` is column x, row y, pixel centres on integers, so a
matrix that works with ``cv2.warpAffine`` works here. Sizes are ``(H, W)`` (torch order, not
OpenCV's ``(W, H)``). Angles are degrees, positive = counter-clockwise on screen (as
``cv2.getRotationMatrix2D``). Warps run ``cv2.warpAffine`` / ``cv2.warpPerspective`` per plane on CPU
(no grad) and ``F.grid_sample`` (``align_corners=True`` on pixel coordinates) otherwise; the two
agree to float32 rounding for bilinear and nearest.

Example:
    >>> import torch
    >>> x = torch.rand(2, 3, 17, 11)
    >>> resize(x, (8, 6)).shape, rotate(x, 30).shape, flip(x, "horizontal").shape
    (torch.Size([2, 3, 8, 6]), torch.Size([2, 3, 17, 11]), torch.Size([2, 3, 17, 11]))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vislab.core.errors import ConfigError, ShapeError, did_you_mean
from vislab.ops._border import check_border, cv_border, pad2d
from vislab.ops._convert import image_op, op_module
from vislab.ops._dispatch import empty, map_planes, parallel_for, use_opencv

__all__ = [
    "resize", "scale", "rotate", "flip", "crop", "center_crop", "pad", "warp_affine", "warp_perspective",
    "rotation_matrix", "get_affine_transform", "get_perspective_transform", "INTERPOLATIONS",
    "Resize", "Scale", "Rotate", "Flip", "Crop", "CenterCrop", "Pad", "WarpAffine", "WarpPerspective",
]

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area")
_WARP_BORDERS = ("constant", "replicate", "reflect")


def _size(size: int | tuple[int, int], where: str) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if h < 1 or w < 1:
        raise ConfigError(f"{where}: expected a positive size (H, W), got {size}")
    return h, w


def _interp(mode: str, where: str, allowed: tuple[str, ...] = INTERPOLATIONS) -> str:
    if mode not in allowed:
        raise ConfigError(f"{where}: expected interpolation in {allowed}, got {mode!r}{did_you_mean(mode, allowed)}")
    return mode


@image_op("resize")
def resize(x: torch.Tensor, size: int | tuple[int, int], interpolation: str = "bilinear", antialias: bool = False) -> torch.Tensor:
    """Resize to ``size`` = ``(H, W)`` (an int resizes the shorter side, keeping the aspect ratio).

    ``bilinear`` / ``bicubic`` / ``nearest`` / ``area`` match ``cv2.resize`` with ``INTER_LINEAR`` /
    ``INTER_CUBIC`` / ``INTER_NEAREST`` / ``INTER_AREA`` (area: for integer shrink factors).
    ``antialias=True`` low-passes when shrinking (PIL / torchvision's filter; OpenCV has none but area).

    Example:
        >>> import torch
        >>> resize(torch.rand(1, 3, 17, 11), 22).shape
        torch.Size([1, 3, 34, 22])
    """
    _interp(interpolation, "resize")
    h, w = x.shape[-2:]
    if isinstance(size, int):
        s = size / min(h, w)
        size = (size, max(1, round(w * s))) if h <= w else (max(1, round(h * s)), size)
    oh, ow = _size(size, "resize")
    if (oh, ow) == (h, w):
        return x.clone()
    if interpolation == "area":
        return F.interpolate(x, size=(oh, ow), mode="area")
    if interpolation == "nearest" and not use_opencv(x):
        return F.interpolate(x, size=(oh, ow), mode="nearest")
    aa = antialias and (oh < h or ow < w)
    if not aa and use_opencv(x):
        import cv2

        flag = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[interpolation]
        if interpolation == "bilinear" and (h, w) == (2 * oh, 2 * ow):
            flag = cv2.INTER_AREA  # exact halving: bilinear samples fall between pixel pairs = 2x2 mean, 2x faster
        return map_planes(lambda s, d: cv2.resize(s, (ow, oh), dst=d, interpolation=flag), x, (oh, ow))
    return F.interpolate(x, size=(oh, ow), mode=interpolation, align_corners=False, antialias=aa)


def scale(x: Any, factor: float | tuple[float, float], interpolation: str = "bilinear", antialias: bool = False) -> Any:
    """Resize by ``factor`` (or ``(fy, fx)``): the new size is ``round(H * fy), round(W * fx)``.

    Example:
        >>> import torch
        >>> scale(torch.rand(1, 1, 17, 11), 0.5).shape
        torch.Size([1, 1, 8, 6])
    """
    fy, fx = (factor, factor) if isinstance(factor, int | float) else factor
    if fy <= 0 or fx <= 0:
        raise ConfigError(f"scale: expected a positive factor, got {factor}")
    h, w = (x.shape[-2:] if isinstance(x, torch.Tensor) else (np.asarray(x).shape[:2]))
    return resize(x, (max(1, round(h * fy)), max(1, round(w * fx))), interpolation, antialias)


@image_op("flip")
def flip(x: torch.Tensor, direction: str = "horizontal") -> torch.Tensor:
    """Mirror left-right (``horizontal``), top-bottom (``vertical``) or ``both`` (``cv2.flip`` 1 / 0 / -1).

    Example:
        >>> import torch
        >>> flip(torch.arange(3.).view(1, 1, 1, 3)).flatten().tolist()
        [2.0, 1.0, 0.0]
    """
    dims = {"horizontal": (-1,), "vertical": (-2,), "both": (-2, -1)}
    if direction not in dims:
        raise ConfigError(f"flip: expected direction in {tuple(dims)}, got {direction!r}{did_you_mean(direction, dims)}")
    return x.flip(dims[direction])


@image_op("crop")
def crop(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The ``height x width`` window whose top-left pixel is ``(top, left)``; it must lie inside the image.

    Example:
        >>> import torch
        >>> crop(torch.rand(1, 3, 17, 11), 2, 3, 5, 4).shape
        torch.Size([1, 3, 5, 4])
    """
    h, w = x.shape[-2:]
    if top < 0 or left < 0 or height < 1 or width < 1 or top + height > h or left + width > w:
        raise ShapeError("crop", f"a window inside ({h}, {w})", (top, left, height, width))
    return x[..., top:top + height, left:left + width]


@image_op("center_crop")
def center_crop(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """The centred ``size`` window (``(H, W)`` or an int for a square).

    Example:
        >>> import torch
        >>> center_crop(torch.rand(1, 3, 17, 11), 5).shape
        torch.Size([1, 3, 5, 5])
    """
    oh, ow = _size(size, "center_crop")
    h, w = x.shape[-2:]
    return crop(x, (h - oh) // 2, (w - ow) // 2, oh, ow)


@image_op("pad")
def pad(x: torch.Tensor, padding: int | tuple[int, int, int, int], border: str = "constant", value: float = 0.0) -> torch.Tensor:
    """Pad by ``(left, right, top, bottom)`` (or one int for all) with a border mode (``cv2.copyMakeBorder``).

    Example:
        >>> import torch
        >>> pad(torch.ones(1, 1, 2, 2), 1).sum().item(), pad(torch.ones(1, 1, 2, 2), (1, 0, 2, 0)).shape
        (4.0, torch.Size([1, 1, 4, 3]))
    """
    check_border(border, "pad")
    p = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    if len(p) != 4 or min(p) < 0:
        raise ConfigError(f"pad: expected (left, right, top, bottom) >= 0, got {padding}")
    return pad2d(x, p, border, value)


def rotation_matrix(center: tuple[float, float], angle: float, scale: float = 1.0) -> torch.Tensor:
    """The ``(2, 3)`` matrix of ``cv2.getRotationMatrix2D(center, angle, scale)``; center is ``(x, y)``.

    Example:
        >>> [round(v, 3) for v in rotation_matrix((0.0, 0.0), 90.0)[0].tolist()]
        [0.0, 1.0, 0.0]
    """
    a = math.radians(angle)
    al, be = scale * math.cos(a), scale * math.sin(a)
    cx, cy = center
    return torch.tensor([[al, be, (1 - al) * cx - be * cy], [-be, al, be * cx + (1 - al) * cy]], dtype=torch.float64)


def _as_mats(m: Any, b: int, rows: int, where: str, like: torch.Tensor) -> torch.Tensor:
    t = m if isinstance(m, torch.Tensor) else torch.as_tensor(np.asarray(m, dtype=np.float64))
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3 or t.shape[1:] != (rows, 3) or t.shape[0] not in (1, b):
        raise ShapeError(where, f"a matrix ({rows}, 3) or (B, {rows}, 3) with B = {b}", tuple(t.shape))
    t = t.to(device=like.device, dtype=torch.float64 if not t.requires_grad else t.dtype)
    if rows == 2:
        t = torch.cat([t, torch.tensor([[[0.0, 0.0, 1.0]]], dtype=t.dtype, device=t.device).expand(t.shape[0], 1, 3)], 1)
    return t.expand(b, 3, 3)


def _warp_torch(x: torch.Tensor, m: torch.Tensor, size: tuple[int, int], interpolation: str, border: str,
                fill: float) -> torch.Tensor:
    """Sample ``x`` at ``inv(m) @ (u, v, 1)`` for every output pixel (``m``: ``(B, 3, 3)`` forward map)."""
    b, c, h, w = x.shape
    oh, ow = size
    minv = torch.linalg.inv(m).to(x.dtype if x.is_floating_point() else torch.float32)
    ys, xs = torch.meshgrid(torch.arange(oh, dtype=minv.dtype, device=x.device),
                            torch.arange(ow, dtype=minv.dtype, device=x.device), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, -1, 3)  # (1, N, 3)
    src = pts @ minv.transpose(1, 2)  # (B, N, 3)
    sx, sy = src[..., 0] / src[..., 2], src[..., 1] / src[..., 2]
    gx = sx * (2.0 / max(w - 1, 1)) - 1.0
    gy = sy * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], -1).view(b, oh, ow, 2).to(x.dtype)
    padding = {"constant": "zeros", "replicate": "border", "reflect": "reflection"}[border]
    y = F.grid_sample(x, grid, mode=interpolation, padding_mode=padding, align_corners=True)
    if border == "constant" and fill != 0.0:
        inside = F.grid_sample(torch.ones_like(x[:, :1]), grid, mode=interpolation, padding_mode="zeros", align_corners=True)
        y = y + fill * (1.0 - inside)
    return y


def _warp(x: torch.Tensor, m: torch.Tensor, size: tuple[int, int] | None, interpolation: str, border: str, fill: float,
          where: str, perspective: bool) -> torch.Tensor:
    _interp(interpolation, where, ("nearest", "bilinear", "bicubic"))
    check_border(border, where, _WARP_BORDERS)
    oh, ow = _size(size, where) if size is not None else tuple(x.shape[-2:])
    if not (use_opencv(x) and not m.requires_grad):
        return _warp_torch(x, m, (oh, ow), interpolation, border, fill)
    import cv2

    flags = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[interpolation]
    bflag, bval = cv_border(border), (float(fill),) * 4
    mats = m.detach().cpu().numpy()
    c = x.shape[1]
    warp = cv2.warpPerspective if perspective else cv2.warpAffine
    per_image = [mi if perspective else mi[:2] for mi in mats]
    out = empty((x.shape[0], c, oh, ow), x.dtype)
    src, dst = x.detach().contiguous().numpy().reshape(-1, *x.shape[-2:]), out.numpy().reshape(-1, oh, ow)
    parallel_for(len(src), lambda i: warp(src[i], per_image[i // c], (ow, oh), dst=dst[i], flags=flags,
                                          borderMode=bflag, borderValue=bval))
    return out



@image_op("warp_affine")
def warp_affine(x: torch.Tensor, matrix: Any, size: tuple[int, int] | None = None, interpolation: str = "bilinear",
                border: str = "constant", fill: float = 0.0) -> torch.Tensor:
    """Warp by the affine ``matrix`` ``(2, 3)`` or ``(B, 2, 3)`` mapping source to output pixels (``cv2.warpAffine``).

    Args:
        x: image ``(B, C, H, W)``.
        matrix: forward map, OpenCV convention; differentiable when it is a tensor that requires grad.
        size: output ``(H, W)``; the input's by default.
        interpolation: ``nearest`` | ``bilinear`` | ``bicubic``.
        border: ``constant`` (``fill``) | ``replicate`` | ``reflect``.
        fill: value outside the source with ``border="constant"``.

    Example:
        >>> import torch
        >>> x = torch.arange(6.).view(1, 1, 2, 3)
        >>> warp_affine(x, [[1, 0, 1], [0, 1, 0]]).flatten().tolist()
        [0.0, 0.0, 1.0, 0.0, 3.0, 4.0]
    """
    return _warp(x, _as_mats(matrix, x.shape[0], 2, "warp_affine", x), size, interpolation, border, fill,
                 "warp_affine", False)


@image_op("warp_perspective")
def warp_perspective(x: torch.Tensor, matrix: Any, size: tuple[int, int] | None = None, interpolation: str = "bilinear",
                     border: str = "constant", fill: float = 0.0) -> torch.Tensor:
    """Warp by the homography ``matrix`` ``(3, 3)`` or ``(B, 3, 3)`` (``cv2.warpPerspective``).

    Example:
        >>> import torch
        >>> warp_perspective(torch.ones(1, 1, 5, 5), torch.eye(3)).sum().item()
        25.0
    """
    return _warp(x, _as_mats(matrix, x.shape[0], 3, "warp_perspective", x), size, interpolation, border, fill,
                 "warp_perspective", True)


@image_op("rotate")
def rotate(x: torch.Tensor, angle: float, center: tuple[float, float] | None = None, scale: float = 1.0,
           interpolation: str = "bilinear", border: str = "constant", fill: float = 0.0, expand: bool = False) -> torch.Tensor:
    """Rotate by ``angle`` degrees counter-clockwise about ``center`` = ``(x, y)`` (the image centre by default).

    ``expand=True`` grows the output so that nothing is cut off. The matrix is
    ``cv2.getRotationMatrix2D(center, angle, scale)``; the default centre is ``((W-1)/2, (H-1)/2)``.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 3, 3); x[0, 0, 0, 1] = 1.0
        >>> rotate(x, 90)[0, 0, 1, 0].item()
        1.0
    """
    h, w = x.shape[-2:]
    cx, cy = center if center is not None else ((w - 1) / 2, (h - 1) / 2)
    m = rotation_matrix((cx, cy), angle, scale)
    size = None
    if expand:
        cos, sin = abs(m[0, 0].item()), abs(m[0, 1].item())
        nw, nh = int(math.ceil(h * sin + w * cos - 1e-9)), int(math.ceil(h * cos + w * sin - 1e-9))
        m[0, 2] += (nw - 1) / 2 - cx
        m[1, 2] += (nh - 1) / 2 - cy
        size = (nh, nw)
    return warp_affine(x, m, size, interpolation, border, fill)


def _points(p: Any, where: str, n: int) -> torch.Tensor:
    t = p if isinstance(p, torch.Tensor) else torch.as_tensor(np.asarray(p, dtype=np.float64))
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3 or t.shape[-1] != 2 or t.shape[1] < n:
        raise ShapeError(where, f"points (N, 2) or (B, N, 2) with N >= {n}", tuple(t.shape))
    return t if t.is_floating_point() else t.double()


def get_affine_transform(src: Any, dst: Any) -> torch.Tensor:
    """The affine ``(2, 3)`` (or ``(B, 2, 3)``) mapping points ``src`` to ``dst`` (``cv2.getAffineTransform``).

    With exactly 3 point pairs the map is exact; with more it is the least-squares fit. Batched
    ``(B, N, 2)`` points give ``(B, 2, 3)``; differentiable.

    Example:
        >>> m = get_affine_transform([[0, 0], [1, 0], [0, 1]], [[1, 1], [3, 1], [1, 3]])
        >>> [[round(v, 6) + 0.0 for v in row] for row in m.tolist()]
        [[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]]
    """
    s, d = _points(src, "get_affine_transform", 3), _points(dst, "get_affine_transform", 3)
    if s.shape != d.shape:
        raise ShapeError("get_affine_transform", f"dst shaped like src {tuple(s.shape)}", tuple(d.shape))
    a = torch.cat([s, torch.ones_like(s[..., :1])], -1)  # (B, N, 3)
    sol = torch.linalg.solve(a, d) if s.shape[1] == 3 else torch.linalg.lstsq(a, d).solution
    m = sol.transpose(1, 2)  # (B, 2, 3)
    return m[0] if (not isinstance(src, torch.Tensor) or src.ndim == 2) else m


def get_perspective_transform(src: Any, dst: Any) -> torch.Tensor:
    """The homography ``(3, 3)`` (or ``(B, 3, 3)``) mapping 4+ points ``src`` to ``dst`` (``cv2.getPerspectiveTransform``).

    Solves the 8-unknown linear system (``h33 = 1``) exactly for 4 pairs, in least squares for more;
    differentiable.

    Example:
        >>> h = get_perspective_transform([[0, 0], [1, 0], [1, 1], [0, 1]], [[0, 0], [2, 0], [2, 2], [0, 2]])
        >>> [round(v, 6) for v in h[0].tolist()]
        [2.0, 0.0, 0.0]
    """
    s, d = _points(src, "get_perspective_transform", 4), _points(dst, "get_perspective_transform", 4)
    if s.shape != d.shape:
        raise ShapeError("get_perspective_transform", f"dst shaped like src {tuple(s.shape)}", tuple(d.shape))
    x, y, u, v = s[..., 0], s[..., 1], d[..., 0], d[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)  # (B, 2N, 8)
    bvec = torch.cat([u, v], 1).unsqueeze(-1)
    h8 = torch.linalg.lstsq(a, bvec).solution.squeeze(-1) if s.shape[1] > 4 else torch.linalg.solve(a, bvec).squeeze(-1)
    h = torch.cat([h8, torch.ones_like(h8[:, :1])], -1).view(-1, 3, 3)
    return h[0] if (not isinstance(src, torch.Tensor) or src.ndim == 2) else h


Resize = op_module("Resize", resize)
Scale = op_module("Scale", scale)
Rotate = op_module("Rotate", rotate)
Flip = op_module("Flip", flip)
Crop = op_module("Crop", crop)
CenterCrop = op_module("CenterCrop", center_crop)
Pad = op_module("Pad", pad)
WarpAffine = op_module("WarpAffine", warp_affine)
WarpPerspective = op_module("WarpPerspective", warp_perspective)

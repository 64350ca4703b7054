"""Optical flow: corners to track, sparse pyramidal Lucas-Kanade, dense Farneback, flow pictures.

Flows are ``(B, 2, H, W)`` float tensors of ``(dx, dy)`` in pixels (x right, y down): where pixel
``p`` of the first frame went in the second. The trackers run OpenCV on the CPU (frames are made
gray and, for Lucas-Kanade, uint8); :func:`flow_to_color` is torch and differentiable.

Example:
    >>> import torch
    >>> flow_to_color(torch.zeros(1, 2, 4, 4)).shape
    torch.Size([1, 3, 4, 4])
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from vislab.core.errors import ConfigError, ShapeError
from vislab.ops._convert import from_bchw, to_bchw
from vislab.ops._dispatch import parallel_for

__all__ = ["good_features_to_track", "lucas_kanade", "farneback", "flow_to_color", "SparseFlow", "Farneback"]


def _gray_np(t: torch.Tensor) -> np.ndarray:
    """``(B, H, W)`` float32 gray frames in [0, 1] from ``(B, 1|3, H, W)``."""
    if t.shape[1] == 3:
        t = 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]
    elif t.shape[1] == 1:
        t = t[:, 0]
    else:
        raise ShapeError("flow", "frames (*, 1 or 3, H, W)", tuple(t.shape))
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


def _pair(a: Any, b: Any, where: str) -> tuple[np.ndarray, np.ndarray, Any, torch.Tensor]:
    ta, kind = to_bchw(a, where)
    tb, _ = to_bchw(b, where)
    if ta.shape != tb.shape:
        raise ShapeError(where, f"two frames of the same shape {tuple(ta.shape)}", tuple(tb.shape))
    return _gray_np(ta), _gray_np(tb), kind, ta


def good_features_to_track(x: Any, max_corners: int = 100, quality: float = 0.01, min_distance: float = 5.0,
                           block_size: int = 3, harris: bool = False) -> Any:
    """Shi-Tomasi (or Harris) corners per image (``cv2.goodFeaturesToTrack``), strongest first.

    Returns:
        A list of ``(N, 2)`` float32 ``(x, y)`` tensors, one per image (a single tensor / array for a
        single-image input).

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 21, 21); x[..., 5:15, 5:15] = 1.0
        >>> good_features_to_track(x, 4)[0].shape
        torch.Size([4, 2])
    """
    import cv2

    t, kind = to_bchw(x, "good_features_to_track")
    gray = _gray_np(t)
    out: list[torch.Tensor] = [torch.empty(0)] * len(gray)

    def one(i: int) -> None:
        pts = cv2.goodFeaturesToTrack(gray[i], max_corners, quality, min_distance, blockSize=block_size,
                                      useHarrisDetector=harris)
        out[i] = torch.from_numpy(pts.reshape(-1, 2).astype(np.float32)) if pts is not None else torch.zeros(0, 2)

    parallel_for(len(gray), one)
    if kind.kind != "tensor":
        return out[0].numpy()
    return out[0] if kind.squeeze else out


class SparseFlow(NamedTuple):
    """Tracked points of one image pair: ``points0`` ``(N, 2)`` -> ``points1`` ``(N, 2)``, ``status`` ``(N,)`` bool."""

    points0: torch.Tensor
    points1: torch.Tensor
    status: torch.Tensor


def lucas_kanade(prev: Any, next: Any, points: Any = None, win_size: int = 21, max_level: int = 3,
                 max_corners: int = 200) -> list[SparseFlow] | SparseFlow:
    """Sparse pyramidal Lucas-Kanade (``cv2.calcOpticalFlowPyrLK``) on uint8 gray frames.

    Args:
        prev, next: frames ``(B, C, H, W)`` (or any input kind), C = 1 or 3.
        points: ``(N, 2)`` (or a list per image) of ``(x, y)`` to track; corners from
            :func:`good_features_to_track` when None.
        win_size: search window per pyramid level.
        max_level: pyramid levels above the image (0 = no pyramid).
        max_corners: corners to pick when ``points`` is None.

    Returns:
        One :class:`SparseFlow` per image pair (a single one for single-image inputs).

    Example:
        >>> import torch
        >>> a = torch.zeros(1, 1, 32, 32); a[..., 10:20, 10:20] = 1.0
        >>> f = lucas_kanade(a, torch.roll(a, (1, 2), (2, 3)))
        >>> d = (f[0].points1 - f[0].points0)[f[0].status]
        >>> [round(v) for v in d.mean(0).tolist()]
        [2, 1]
    """
    import cv2

    g0, g1, kind, t0 = _pair(prev, next, "lucas_kanade")
    u0 = (g0.clip(0, 1) * 255).round().astype(np.uint8)
    u1 = (g1.clip(0, 1) * 255).round().astype(np.uint8)
    if points is None:
        pts = good_features_to_track(t0, max_corners)
        pts = pts if isinstance(pts, list) else [pts]
    else:
        pts = points if isinstance(points, list) else [points] * len(u0)
        pts = [torch.as_tensor(np.asarray(p, dtype=np.float32)).reshape(-1, 2) for p in pts]
    if len(pts) != len(u0):
        raise ShapeError("lucas_kanade", f"one point set per image ({len(u0)})", len(pts))
    out: list[SparseFlow] = [None] * len(u0)  # type: ignore[list-item]
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)

    def one(i: int) -> None:
        p0 = pts[i].numpy().reshape(-1, 1, 2).astype(np.float32)
        if len(p0) == 0:
            out[i] = SparseFlow(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0, dtype=torch.bool))
            return
        p1, st, _ = cv2.calcOpticalFlowPyrLK(u0[i], u1[i], p0, None, winSize=(win_size, win_size),
                                             maxLevel=max_level, criteria=crit)
        out[i] = SparseFlow(torch.from_numpy(p0.reshape(-1, 2)), torch.from_numpy(p1.reshape(-1, 2)),
                            torch.from_numpy(st.reshape(-1).astype(bool)))

    parallel_for(len(u0), one)
    return out if kind.kind == "tensor" and not kind.squeeze else out[0]


def farneback(prev: Any, next: Any, pyr_scale: float = 0.5, levels: int = 3, winsize: int = 15, iterations: int = 3,
              poly_n: int = 5, poly_sigma: float = 1.2) -> Any:
    """Dense optical flow by Farneback's polynomial expansion (``cv2.calcOpticalFlowFarneback``).

    Returns:
        ``(B, 2, H, W)`` float32 ``(dx, dy)`` per pixel (numpy ``(H, W, 2)`` for numpy / PIL inputs,
        OpenCV's layout).

    Example:
        >>> import torch
        >>> farneback(torch.rand(2, 3, 17, 11), torch.rand(2, 3, 17, 11)).shape
        torch.Size([2, 2, 17, 11])
    """
    import cv2

    if not 0 < pyr_scale < 1 or levels < 1 or winsize < 1 or poly_n not in (5, 7):
        raise ConfigError(f"farneback: expected 0 < pyr_scale < 1, levels >= 1, winsize >= 1, poly_n 5 or 7; got "
                          f"{pyr_scale}, {levels}, {winsize}, {poly_n}")
    g0, g1, kind, t0 = _pair(prev, next, "farneback")
    out = torch.empty((len(g0), 2, *g0.shape[1:]), dtype=torch.float32)

    def one(i: int) -> None:
        f = cv2.calcOpticalFlowFarneback(g0[i] * 255, g1[i] * 255, None, pyr_scale, levels, winsize, iterations,
                                         poly_n, poly_sigma, 0)
        out[i] = torch.from_numpy(f).permute(2, 0, 1)

    parallel_for(len(g0), one)
    return from_bchw(out.to(t0.device), kind, "labels")


def flow_to_color(flow: Any, max_magnitude: float | None = None) -> Any:
    """Picture of a flow: hue = direction, brightness = speed (the OpenCV tutorial's HSV coding).

    Direction 0 (moving right) is red, 90 degrees (down) yellow-green, 180 (left) cyan, 270 (up)
    purple; brightness is ``|flow| / max_magnitude`` (the largest in each image when None).
    Differentiable.

    Args:
        flow: ``(B, 2, H, W)`` (or numpy ``(H, W, 2)``).
        max_magnitude: the speed shown at full brightness.

    Returns:
        ``(B, 3, H, W)`` RGB in [0, 1] (uint8 ``(H, W, 3)`` for numpy input).

    Example:
        >>> import torch
        >>> f = torch.zeros(1, 2, 1, 1); f[0, 0] = 3.0
        >>> flow_to_color(f).flatten().tolist()
        [1.0, 0.0, 0.0]
    """
    from vislab.ops._dispatch import backend
    from vislab.ops.color import hsv_to_rgb

    if isinstance(flow, np.ndarray):
        if flow.ndim != 3 or flow.shape[2] != 2:
            raise ShapeError("flow_to_color", "a flow (H, W, 2)", flow.shape)
        rgb = flow_to_color(torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(2, 0, 1)[None],
                            max_magnitude)
        return (rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    t = flow if flow.ndim == 4 else flow.unsqueeze(0)
    if t.ndim != 4 or t.shape[1] != 2:
        raise ShapeError("flow_to_color", "a flow (B, 2, H, W)", tuple(flow.shape))
    dx, dy = t[:, 0:1], t[:, 1:2]
    mag = torch.sqrt(dx * dx + dy * dy + 1e-12)
    hue = torch.atan2(dy, dx) / (2 * np.pi) % 1.0
    top = torch.full_like(mag[:, :1, :1, :1], float(max_magnitude)) if max_magnitude else \
        mag.detach().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-6)
    val = (mag / top).clamp(0, 1)
    with backend("torch"):
        rgb = hsv_to_rgb(torch.cat([hue, torch.ones_like(val), val], 1))
    return rgb if flow.ndim == 4 else rgb[0]


class Farneback(torch.nn.Module):
    """Module form of :func:`farneback`: ``forward(prev, next)``."""

    def __init__(self, **kwargs: Any):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, prev: torch.Tensor, next: torch.Tensor) -> torch.Tensor:
        return farneback(prev, next, **self.kwargs)

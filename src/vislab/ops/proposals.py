"""Region proposals by selective search (OpenCV contrib), and drawing boxes and tracks on images.

Boxes are ``(N, 4)`` float tensors ``(x1, y1, x2, y2)`` in pixels (torchvision's convention), one
tensor per image.

Example:
    >>> import torch
    >>> boxes = selective_search(torch.rand(1, 3, 33, 29), max_boxes=5)[0]
    >>> boxes.shape[1], bool((boxes[:, 2] <= 29).all())
    (4, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vislab.core.errors import ConfigError, ShapeError
from vislab.ops._convert import from_bchw, to_bchw
from vislab.ops._dispatch import parallel_for

__all__ = ["selective_search", "draw_boxes", "draw_tracks", "SelectiveSearch"]

_MODES = ("fast", "quality", "single")


def selective_search(x: Any, mode: str = "fast", max_boxes: int | None = 2000, max_side: int | None = 500,
                     min_size: int = 0) -> Any:
    """Selective search proposals (Uijlings et al.) via ``cv2.ximgproc.segmentation``.

    Args:
        x: RGB images ``(B, 3, H, W)`` (or any input kind).
        mode: ``fast`` (OpenCV's fast strategy set), ``quality`` (more strategies, slower) or ``single``
            (one strategy: quickest).
        max_boxes: keep the first (best-ranked) boxes only.
        max_side: shrink images whose longer side exceeds this first (boxes come back in the input's
            pixels); None works at full size (slow on large images).
        min_size: drop boxes narrower or shorter than this, in pixels.

    Returns:
        A list of ``(N, 4)`` float32 ``(x1, y1, x2, y2)`` tensors (one tensor, or a numpy array for
        numpy / PIL input, for a single image).

    Example:
        >>> import torch
        >>> len(selective_search(torch.rand(2, 3, 20, 20), "single", max_boxes=3))
        2
    """
    import cv2

    if mode not in _MODES:
        raise ConfigError(f"selective_search: expected mode in {_MODES}, got {mode!r}")
    t, kind = to_bchw(x, "selective_search")
    if t.shape[1] not in (1, 3):
        raise ShapeError("selective_search", "(*, 1 or 3, H, W)", tuple(t.shape))
    u8 = (t.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    if u8.shape[1] == 1:
        u8 = u8.expand(-1, 3, -1, -1)
    imgs = np.ascontiguousarray(u8.permute(0, 2, 3, 1).numpy()[..., ::-1])  # BGR for OpenCV
    h, w = imgs.shape[1:3]
    f = min(1.0, max_side / max(h, w)) if max_side else 1.0
    out: list[torch.Tensor] = [torch.empty(0)] * len(imgs)

    def one(i: int) -> None:
        im = imgs[i] if f == 1.0 else cv2.resize(imgs[i], (max(1, round(w * f)), max(1, round(h * f))),
                                                  interpolation=cv2.INTER_AREA)
        ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
        ss.setBaseImage(im)
        {"fast": ss.switchToSelectiveSearchFast, "quality": ss.switchToSelectiveSearchQuality,
         "single": ss.switchToSingleStrategy}[mode]()
        rects = ss.process().reshape(-1, 4).astype(np.float32)
        if len(rects):
            rects = rects[(rects[:, 2] >= min_size * f) & (rects[:, 3] >= min_size * f)]
        if max_boxes is not None:
            rects = rects[:max_boxes]
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1) / f
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        out[i] = torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32))

    parallel_for(len(imgs), one, threads=1)  # the segmentation is not thread-safe in all builds
    if kind.kind != "tensor":
        return out[0].numpy()
    return out[0] if kind.squeeze else out


def _to_u8_bgr(x: Any, where: str) -> tuple[np.ndarray, Any, torch.Tensor]:
    t, kind = to_bchw(x, where)
    if t.shape[1] not in (1, 3):
        raise ShapeError(where, "(*, 1 or 3, H, W)", tuple(t.shape))
    u8 = (t.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    u8 = u8.expand(-1, 3, -1, -1) if u8.shape[1] == 1 else u8
    return np.ascontiguousarray(u8.permute(0, 2, 3, 1).numpy()), kind, t


def _back(imgs: np.ndarray, kind: Any, t: torch.Tensor) -> Any:
    out = torch.from_numpy(imgs).permute(0, 3, 1, 2).to(t.dtype).div(255.0).to(t.device)
    return from_bchw(out, kind)


def draw_boxes(x: Any, boxes: Any, color: tuple[float, float, float] = (1.0, 0.2, 0.2), thickness: int = 1) -> Any:
    """Draw ``(x1, y1, x2, y2)`` boxes (a tensor per image, or one for all) on RGB images; returns a copy.

    Example:
        >>> import torch
        >>> y = draw_boxes(torch.zeros(1, 3, 8, 8), torch.tensor([[1.0, 1.0, 5.0, 5.0]]))
        >>> y[0, 0, 1, 1].item() > 0.9, y[0, 0, 3, 3].item()
        (True, 0.0)
    """
    import cv2

    imgs, kind, t = _to_u8_bgr(x, "draw_boxes")
    per = boxes if isinstance(boxes, list | tuple) else [boxes] * len(imgs)
    col = tuple(int(round(c * 255)) for c in color)
    for im, bx in zip(imgs, per):
        for x1, y1, x2, y2 in np.asarray(torch.as_tensor(bx).detach().cpu(), dtype=np.float64).reshape(-1, 4):
            cv2.rectangle(im, (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2))), col, thickness)
    return _back(imgs, kind, t)


def draw_tracks(x: Any, points0: Any, points1: Any, color: tuple[float, float, float] = (0.1, 1.0, 0.1),
                scale: float = 1.0) -> Any:
    """Draw arrows from ``points0`` to ``points1`` (``(N, 2)`` each, ``(x, y)``) on one image.

    ``scale`` lengthens the arrows (small motions are easier to see at 3-5x).

    Example:
        >>> import torch
        >>> draw_tracks(torch.zeros(3, 9, 9), torch.tensor([[2.0, 2.0]]), torch.tensor([[6.0, 2.0]])).shape
        torch.Size([3, 9, 9])
    """
    import cv2

    imgs, kind, t = _to_u8_bgr(x, "draw_tracks")
    p0 = np.asarray(torch.as_tensor(points0).detach().cpu(), dtype=np.float64).reshape(-1, 2)
    p1 = np.asarray(torch.as_tensor(points1).detach().cpu(), dtype=np.float64).reshape(-1, 2)
    col = tuple(int(round(c * 255)) for c in color)
    for a, b in zip(p0, p1):
        end = a + (b - a) * scale
        cv2.arrowedLine(imgs[0], (int(round(a[0])), int(round(a[1]))), (int(round(end[0])), int(round(end[1]))), col, 1,
                        tipLength=0.3)
        cv2.circle(imgs[0], (int(round(a[0])), int(round(a[1]))), 1, col, -1)
    return _back(imgs, kind, t)


class SelectiveSearch(torch.nn.Module):
    """Module form of :func:`selective_search`."""

    def __init__(self, mode: str = "fast", max_boxes: int | None = 2000, max_side: int | None = 500):
        super().__init__()
        self.mode, self.max_boxes, self.max_side = mode, max_boxes, max_side

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return selective_search(x, self.mode, self.max_boxes, self.max_side)

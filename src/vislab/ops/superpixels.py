"""Superpixels (SLIC), connected components, and the pictures made from label maps.

Label maps are ``(B, 1, H, W)`` int64 tensors. SLIC runs scikit-image and connected components
run OpenCV, on the CPU, image by image on the thread pool (CUDA inputs make a round trip); the
picture helpers (:func:`superpixel_mean`, :func:`mark_boundaries`) are torch and differentiable in
the image.

Example:
    >>> import torch
    >>> labels = slic(torch.rand(2, 3, 17, 11), n_segments=6)
    >>> labels.shape, labels.dtype
    (torch.Size([2, 1, 17, 11]), torch.int64)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vislab.core.errors import ConfigError, ShapeError
from vislab.ops._convert import from_bchw, image_op, to_bchw
from vislab.ops._dispatch import parallel_for

__all__ = ["slic", "superpixel_mean", "mark_boundaries", "connected_components", "Slic"]


@image_op("slic", out="labels")
def slic(x: torch.Tensor, n_segments: int = 100, compactness: float = 10.0, sigma: float = 1.0,
         max_num_iter: int = 10, enforce_connectivity: bool = True) -> torch.Tensor:
    """SLIC superpixels (``skimage.segmentation.slic``; colour images are clustered in Lab).

    Args:
        x: image ``(B, C, H, W)`` in [0, 1], C = 1 or 3.
        n_segments: approximate number of superpixels.
        compactness: colour vs space trade-off (higher: squarer superpixels).
        sigma: Gaussian pre-smoothing.
        max_num_iter: k-means iterations.
        enforce_connectivity: merge small disconnected pieces.

    Returns:
        ``(B, 1, H, W)`` int64 labels starting at 0.

    Example:
        >>> import torch
        >>> int(slic(torch.zeros(1, 1, 8, 8), n_segments=4).max()) >= 0
        True
    """
    from skimage.segmentation import slic as sk_slic

    if x.shape[1] not in (1, 3):
        raise ShapeError("slic", "(*, 1 or 3, H, W)", tuple(x.shape))
    if n_segments < 1:
        raise ConfigError(f"slic: expected n_segments >= 1, got {n_segments}")
    imgs = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    out = torch.empty((x.shape[0], 1, *x.shape[-2:]), dtype=torch.int64)

    def one(i: int) -> None:
        im = imgs[i] if x.shape[1] == 3 else imgs[i][:, :, 0]
        lab = sk_slic(im.astype(np.float64), n_segments=n_segments, compactness=compactness, sigma=sigma,
                      max_num_iter=max_num_iter, enforce_connectivity=enforce_connectivity, start_label=0,
                      channel_axis=-1 if x.shape[1] == 3 else None)
        out[i, 0] = torch.from_numpy(lab.astype(np.int64))

    parallel_for(x.shape[0], one)
    return out.to(x.device)


def _labels(labels: Any, like: torch.Tensor, where: str) -> torch.Tensor:
    lab = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    if lab.ndim == 2:
        lab = lab[None, None]
    elif lab.ndim == 3:
        lab = lab[:, None] if lab.shape[0] == like.shape[0] and like.shape[0] > 1 else lab[None]
    if lab.ndim != 4 or lab.shape[1] != 1 or lab.shape[0] != like.shape[0] or lab.shape[-2:] != like.shape[-2:]:
        raise ShapeError(where, f"labels (B, 1, H, W) matching the image {tuple(like.shape)}", tuple(lab.shape))
    return lab.long().to(like.device)


def superpixel_mean(x: Any, labels: Any) -> Any:
    """Paint every segment with its mean colour (the classic superpixel picture); differentiable in ``x``.

    Example:
        >>> import torch
        >>> x = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])
        >>> superpixel_mean(x, torch.tensor([[[[0, 0], [1, 1]]]])).flatten().tolist()
        [0.5, 0.5, 0.5, 0.5]
    """
    t, kind = to_bchw(x, "superpixel_mean")
    lab = _labels(labels, t, "superpixel_mean")
    b, c, h, w = t.shape
    n = int(lab.max()) + 1 if lab.numel() else 1
    flat = (lab.view(b, 1, h * w) + torch.arange(b, device=t.device).view(b, 1, 1) * n).expand(b, c, h * w)
    idx = flat.permute(1, 0, 2).reshape(c, -1)
    vals = t.permute(1, 0, 2, 3).reshape(c, -1)
    sums = torch.zeros(c, b * n, dtype=t.dtype, device=t.device).scatter_add(1, idx, vals)
    cnt = torch.bincount(idx[0], minlength=b * n).to(t.dtype).clamp(min=1)
    out = (sums / cnt).gather(1, idx).view(c, b, h, w).permute(1, 0, 2, 3)
    return from_bchw(out, kind)


def mark_boundaries(x: Any, labels: Any, color: tuple[float, ...] = (1.0, 1.0, 0.0)) -> Any:
    """Draw segment boundaries (pixels whose right or lower neighbour has another label) in ``color``.

    Example:
        >>> import torch
        >>> y = mark_boundaries(torch.zeros(1, 3, 2, 2), torch.tensor([[[[0, 1], [0, 1]]]]))
        >>> y[0, :, 0, 0].tolist()
        [1.0, 1.0, 0.0]
    """
    t, kind = to_bchw(x, "mark_boundaries")
    lab = _labels(labels, t, "mark_boundaries")
    edge = torch.zeros_like(lab, dtype=torch.bool)
    edge[..., :, :-1] |= lab[..., :, :-1] != lab[..., :, 1:]
    edge[..., :-1, :] |= lab[..., :-1, :] != lab[..., 1:, :]
    col = torch.tensor(color, dtype=t.dtype, device=t.device)
    col = col[: t.shape[1]] if col.numel() >= t.shape[1] else col.mean().expand(t.shape[1])
    out = torch.where(edge, col.view(1, -1, 1, 1), t)
    return from_bchw(out, kind)


def connected_components(mask: Any, connectivity: int = 8, stats: bool = False) -> Any:
    """Label the connected regions of a binary mask (``cv2.connectedComponentsWithStats``).

    Args:
        mask: ``(B, 1, H, W)`` (or any input kind); pixels > 0.5 (uint8: > 127) are foreground.
        connectivity: 4 or 8.
        stats: also return, per image, an ``(N, 5)`` int64 tensor of ``x, y, w, h, area`` for the
            labels 1..N (label 0 is the background and has no row).

    Returns:
        ``(B, 1, H, W)`` int64 labels (0 = background, 1..N regions), and the stats list if asked.

    Example:
        >>> import torch
        >>> m = torch.tensor([[[[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]])
        >>> connected_components(m).flatten().tolist()
        [1, 0, 2, 1, 0, 0]
    """
    import cv2

    if connectivity not in (4, 8):
        raise ConfigError(f"connected_components: expected connectivity 4 or 8, got {connectivity}")
    t, kind = to_bchw(mask, "connected_components")
    if t.shape[1] != 1:
        raise ShapeError("connected_components", "a one-channel mask (*, 1, H, W)", tuple(t.shape))
    u8 = (t.detach().cpu() > 0.5).to(torch.uint8).numpy()
    out = torch.empty((t.shape[0], 1, *t.shape[-2:]), dtype=torch.int64)
    rows: list[torch.Tensor] = [torch.empty(0)] * t.shape[0]

    def one(i: int) -> None:
        n, lab, st, _ = cv2.connectedComponentsWithStats(u8[i, 0], connectivity=connectivity, ltype=cv2.CV_32S)
        out[i, 0] = torch.from_numpy(lab.astype(np.int64))
        rows[i] = torch.from_numpy(st[1:].astype(np.int64))

    parallel_for(t.shape[0], one)
    labels = from_bchw(out.to(t.device), kind, "labels")
    if not stats:
        return labels
    return labels, (rows if kind.kind == "tensor" and not kind.squeeze else rows[0])


class Slic(torch.nn.Module):
    """Module form of :func:`slic`."""

    def __init__(self, n_segments: int = 100, compactness: float = 10.0, sigma: float = 1.0):
        super().__init__()
        self.n_segments, self.compactness, self.sigma = n_segments, compactness, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return slic(x, self.n_segments, self.compactness, self.sigma)

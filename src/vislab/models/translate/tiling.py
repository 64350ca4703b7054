"""Tiled inference: run an image-to-image function on overlapping tiles of a large image and stitch them seamlessly.

:func:`tiled` cuts ``x`` into ``tile x tile`` windows (input pixels) that overlap their neighbours by at least
``overlap`` pixels -- the last row and column of tiles are shifted back to end at the image border, so every tile has
the same size -- runs ``fn`` on each, and keeps from each tile only the pixels where it is the farthest from a tile
border: the tiles split each overlap at its middle, so every tile gives up ``overlap // 2`` (or more) pixels on every
side that is not the image border. Every kept pixel is then at least ``overlap // 2`` input pixels from the edge of
the tile that computed it, so whenever the receptive-field radius of ``fn`` is at most ``overlap // 2`` (and ``fn``
treats every position alike, as convolutions do) the stitched result *equals* ``fn(x)``; with a larger radius it
still equals it everywhere but near the seams. ``scale`` is the output / input size ratio of ``fn`` (super-resolution).

Example:
    >>> import torch
    >>> conv = torch.nn.Conv2d(1, 2, 5, padding=2)  # radius 2 <= overlap // 2
    >>> x = torch.randn(1, 1, 50, 70)
    >>> with torch.no_grad():
    ...     y = tiled(conv, x, tile=32, overlap=4)
    ...     y.shape, bool(torch.allclose(y, conv(x), atol=1e-6))
    (torch.Size([1, 2, 50, 70]), True)
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch

from vislab.core.errors import ModelError, ShapeError
from vislab.models.generate.blocks import check_ints


def _spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """``(start, keep_from, keep_to)`` of each tile along one side: the tile is ``[start, start + tile)``, it keeps
    ``[keep_from, keep_to)``; the kept spans partition ``[0, size)``."""
    if size <= tile:
        return [(0, 0, size)]
    starts = [0]
    while starts[-1] + tile < size:
        starts.append(min(starts[-1] + tile - overlap, size - tile))
    # Each pair of neighbours splits its overlap [next start, this end) at the middle.
    cuts = [0] + [(b + a + tile) // 2 for a, b in pairwise(starts)] + [size]
    return [(s, cuts[i], cuts[i + 1]) for i, s in enumerate(starts)]


def tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int = 128, overlap: int = 16,
          scale: int = 1) -> torch.Tensor:
    """``fn(x)`` computed on overlapping ``tile x tile`` windows of ``x (B, C, H, W)`` and stitched: ``(B, C', H scale,
    W scale)``. Exact (to float rounding) when ``fn``'s receptive-field radius is ``<= overlap // 2``. An image no
    bigger than a tile is one call. Gradients flow if the caller is not under ``no_grad``."""
    check_ints("tiled", tile=(tile, 1), overlap=(overlap, 0), scale=(scale, 1))
    if overlap >= tile:
        raise ModelError(f"tiled: expected overlap < tile, got overlap={overlap}, tile={tile}")
    if overlap % 2:
        raise ModelError(f"tiled: expected an even overlap (each side of a seam gives up overlap // 2), got {overlap}")
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ShapeError("tiled", "images (B, C, H, W)", tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__)
    b, _, h, w = x.shape
    rows, cols = _spans(h, tile, overlap), _spans(w, tile, overlap)
    if len(rows) == 1 and len(cols) == 1:
        return fn(x)
    th, tw = min(h, tile), min(w, tile)
    out: torch.Tensor | None = None
    for y0, ya, yb in rows:
        for x0, xa, xb in cols:
            y = fn(x[:, :, y0:y0 + th, x0:x0 + tw])
            if y.ndim != 4 or y.shape[0] != b or y.shape[2] != th * scale or y.shape[3] != tw * scale:
                raise ShapeError("tiled", f"fn to map a ({b}, C, {th}, {tw}) tile to ({b}, C', {th * scale}, {tw * scale}) "
                                 f"(scale={scale})", tuple(y.shape))
            if out is None:
                out = y.new_empty(b, y.shape[1], h * scale, w * scale)
            s = scale
            out[:, :, ya * s:yb * s, xa * s:xb * s] = y[:, :, (ya - y0) * s:(yb - y0) * s, (xa - x0) * s:(xb - x0) * s]
    assert out is not None
    return out

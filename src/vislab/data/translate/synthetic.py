"""Generated image-to-image data: a paired task (``edges2shapes``) and two unpaired domains (``warm2cool``).

* ``edges2shapes``: A is the black outline of one to three shapes on white, B the same shapes filled with the colour
  of their kind (circles red, squares green, triangles blue) on black -- a pix2pix task where the generator must
  recognise each outline's kind and fill it, like the edges -> photo datasets of the pix2pix paper.
* ``warm2cool``: domain A holds shapes in warm colours (red, orange, yellow), domain B other shapes in cool ones
  (blue, cyan, green), drawn independently (no pairs): CycleGAN must change the palette and keep every shape.

Example:
    >>> a, b = edges2shapes(4, 32, seed=0)
    >>> a.shape, b.shape, a.dtype
    ((4, 32, 32, 3), (4, 32, 32, 3), dtype('uint8'))
    >>> wa, wb = warm2cool(6, 32, seed=0)
    >>> bool(wa[..., 0].mean() > wa[..., 2].mean()), bool(wb[..., 2].mean() > wb[..., 0].mean())
    (True, True)
"""

from __future__ import annotations

import numpy as np

KIND_COLOURS = {"circle": (230, 40, 40), "square": (40, 200, 60), "triangle": (50, 80, 235)}
WARM = ((235, 60, 40), (245, 150, 30), (240, 220, 40))
COOL = ((40, 90, 235), (40, 210, 230), (40, 190, 90))


def _shape_points(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    n = {"square": 4, "triangle": 3}[kind]
    t = angle + np.arange(n) * 2 * np.pi / n
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _draw(canvas: np.ndarray, kind: str, cx: float, cy: float, r: float, angle: float, colour, fill: bool, thickness: int = 1) -> None:
    import cv2

    s = 16  # sub-pixel precision of cv2's anti-aliased drawing
    if kind == "circle":
        c = (int(cx * s), int(cy * s))
        cv2.circle(canvas, c, int(r * s), colour, -1 if fill else thickness, cv2.LINE_AA, 4)
        return
    pts = (_shape_points(kind, cx, cy, r, angle) * s).astype(np.int32).reshape(-1, 1, 2)
    if fill:
        cv2.fillPoly(canvas, [pts], colour, cv2.LINE_AA, 4)
    else:
        cv2.polylines(canvas, [pts], True, colour, thickness, cv2.LINE_AA, 4)


def _layout(rng: np.random.Generator, size: int, count: int, r_range: tuple[float, float] = (0.14, 0.26)) -> list[tuple[str, float, float, float, float]]:
    """Shapes that do not overlap: (kind, cx, cy, r, angle), radii a share ``r_range`` of the image side."""
    kinds = list(KIND_COLOURS)
    placed: list[tuple[str, float, float, float, float]] = []
    for _ in range(count * 20):
        if len(placed) == count:
            break
        r = rng.uniform(*r_range) * size
        cx, cy = rng.uniform(r + 1, size - r - 1, 2)
        if all(np.hypot(cx - p[1], cy - p[2]) > r + p[3] + 2 for p in placed):
            placed.append((kinds[rng.integers(3)], cx, cy, r, rng.uniform(0, 2 * np.pi)))
    return placed


def edges2shapes(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs ``(A outlines, B filled shapes)``, each ``(n, size, size, 3)`` uint8 (see the module docstring)."""
    rng = np.random.default_rng(seed)
    a = np.full((n, size, size, 3), 255, np.uint8)
    b = np.zeros((n, size, size, 3), np.uint8)
    thick = max(1, size // 32)
    for i in range(n):
        for kind, cx, cy, r, ang in _layout(rng, size, int(rng.integers(1, 3)), (0.18, 0.32)):
            _draw(a[i], kind, cx, cy, r, ang, (0, 0, 0), fill=False, thickness=thick)
            _draw(b[i], kind, cx, cy, r, ang, KIND_COLOURS[kind], fill=True)
    return a, b


def warm2cool(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two unpaired domains of ``n`` images each, ``(n, size, size, 3)`` uint8 (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = []
    for palette in (WARM, COOL):
        x = np.full((n, size, size, 3), 20, np.uint8)
        for i in range(n):
            for kind, cx, cy, r, ang in _layout(rng, size, int(rng.integers(1, 4))):
                jitter = rng.integers(-15, 16, 3)
                colour = tuple(int(v) for v in np.clip(np.array(palette[rng.integers(3)]) + jitter, 0, 255))
                _draw(x[i], kind, cx, cy, r, ang, colour, fill=True)
        out.append(x)
    return out[0], out[1]

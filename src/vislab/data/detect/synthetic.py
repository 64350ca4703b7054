"""Generated detection data: several shapes (:func:`shapes_detection`) or handwritten digits
(:func:`digits_detection`) per image on noisy, cluttered backgrounds, with boxes and instance masks.

Example:
    >>> ds = shapes_detection(4, classes=3, size=48, seed=0)
    >>> len(ds), ds.pixels.shape, ds.classes
    (4, (4, 3, 48, 48), ['circle', 'square', 'triangle'])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vislab.core.errors import DataError
from vislab.data.detect.core import DetDataset, DetImage
from vislab.data.synthetic.digits import digits_images
from vislab.data.synthetic.shapes import generate_shapes, masks_to_boxes


def shapes_detection(
    n: int,
    classes: Sequence[str] | int = 3,
    size: int = 64,
    seed: int | Sequence[int] = 0,
    objects: tuple[int, int] = (0, 3),
    scale: tuple[float, float] = (0.12, 0.25),
    masks: bool = True,
) -> DetDataset:
    """``n`` images ``size x size`` with ``objects`` (inclusive range; 0 allows empty images) shapes each,
    radius ``scale`` x size (varied scale; later shapes may overlap earlier ones)."""
    lo, hi = objects
    if not 0 <= lo <= hi or hi < 1:  # (0, 0) would still draw one shape per image, unannotated
        raise DataError(f"shapes_detection: expected objects (min, max) with 0 <= min <= max and max >= 1, got {tuple(objects)}")
    d = generate_shapes(n, classes, size, seed=seed, objects_per_image=(lo, hi), scale=scale)
    if lo == hi == 1:  # generate_shapes gives stacked arrays for one object per image
        d.update(boxes=d["boxes"][:, None], labels=d["labels"][:, None], masks=d["masks"][:, None])
    images = [
        DetImage(f"{i:06d}.png", size, size, d["boxes"][i], d["labels"][i], d["masks"][i] if masks else None, i + 1, f"shapes[{i}]")
        for i in range(n)
    ]
    return DetDataset(list(d["classes"]), images, source="shapes", pixels=d["images"])


def _digit_glyphs() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as float32 ``(1797, 8, 8)`` in [0, 1] and their labels (cached)."""
    global _GLYPHS
    if _GLYPHS is None:
        x, y = digits_images(8)
        _GLYPHS = (x[:, 0].numpy().astype(np.float32) / 255.0, y.numpy())
    return _GLYPHS


_GLYPHS: tuple[np.ndarray, np.ndarray] | None = None


def _noisy_background(rng: np.random.Generator, size: int, clutter: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A ``(size, size, 3)`` float32 canvas: random colour, a gentle gradient, blobs and line segments; and its base colour."""
    g = np.arange(size, dtype=np.float32) + 0.5
    X, Y = g[None, :], g[:, None]
    bg = rng.uniform(0, 255, 3).astype(np.float32)
    ang, amp = rng.uniform(0, 2 * np.pi), rng.uniform(0, 40)
    canvas = bg + (amp / size * (np.cos(ang) * (X - size / 2) + np.sin(ang) * (Y - size / 2)))[..., None]
    for _ in range(int(rng.integers(clutter[0], clutter[1] + 1))):
        x0, y0 = rng.uniform(0, size, 2)
        if rng.random() < 0.5:  # a blob
            inside = (X - x0) ** 2 + (Y - y0) ** 2 <= (rng.uniform(0.02, 0.06) * size) ** 2
        else:  # a thin line segment (strokes that are not digits)
            a, half = rng.uniform(0, 2 * np.pi), rng.uniform(0.08, 0.2) * size
            dx, dy = X - x0, Y - y0
            inside = (np.abs(dx * np.cos(a) + dy * np.sin(a)) <= half) & (np.abs(dy * np.cos(a) - dx * np.sin(a)) <= rng.uniform(0.4, 0.9))
        canvas[inside] = rng.uniform(0, 255, 3)
    return canvas, bg


def _stroke_colour(rng: np.random.Generator, bg: np.ndarray, min_dist: float = 110.0) -> np.ndarray:
    """A random colour at RGB distance >= ``min_dist`` from ``bg`` (black or white when none is found)."""
    for _ in range(20):
        col = rng.uniform(0, 255, 3).astype(np.float32)
        if np.linalg.norm(col - bg) >= min_dist:
            return col
    return np.full(3, 20.0 if bg.mean() > 127 else 235.0, np.float32)


def digits_detection(
    n: int,
    size: int = 64,
    seed: int | Sequence[int] = 0,
    objects: tuple[int, int] = (1, 3),
    scale: tuple[float, float] = (0.25, 0.5),
    masks: bool = True,
    classes: int = 10,
    *,
    noise: float = 8.0,
    clutter: tuple[int, int] = (2, 6),
    min_visible: float = 0.5,
) -> DetDataset:
    """``n`` images ``size x size`` of scikit-learn's handwritten digits pasted on noisy, cluttered backgrounds.

    Each image gets ``objects`` (inclusive range; 0 allows empty images) digits of classes ``"0"`` ..
    ``str(classes - 1)``. A digit's 8x8 glyph is resized to ``scale`` x ``size`` pixels (height; the width
    varies by -15..+10 %), coloured to contrast with the background and alpha-blended at a random place;
    later digits may overlap earlier ones, but a place is redrawn (up to 30 times) while it would hide more than
    ``1 - min_visible`` of an earlier digit's strokes. Masks are the visible stroke pixels (blend weight
    >= 0.5, minus what later digits cover); boxes are tight around them (pixel edges). Gaussian pixel noise
    (std ``noise``) is added last. Deterministic for ``seed``; the first images do not depend on ``n``.

    Example:
        >>> ds = digits_detection(3, size=48, seed=0, objects=(2, 2))
        >>> len(ds), ds.pixels.shape, ds.classes[:3], [len(im.labels) for im in ds.images]
        (3, (3, 3, 48, 48), ['0', '1', '2'], [2, 2, 2])
    """
    lo, hi = objects
    if not 0 <= lo <= hi:
        raise DataError(f"digits_detection: expected objects (lo, hi) with 0 <= lo <= hi, got {objects}")
    if not 0 < scale[0] <= scale[1] <= 1:
        raise DataError(f"digits_detection: expected scale (lo, hi) with 0 < lo <= hi <= 1, got {scale}")
    if not 1 <= classes <= 10:
        raise DataError(f"digits_detection: expected between 1 and 10 classes, got {classes}")
    if n < 0 or size < 8:
        raise DataError(f"digits_detection: expected n >= 0 and size >= 8, got n={n}, size={size}")
    glyphs, glabels = _digit_glyphs()
    by_class = [np.flatnonzero(glabels == c) for c in range(classes)]
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    pixels = np.empty((n, 3, size, size), np.uint8)
    images = []
    for i in range(n):
        canvas, bg = _noisy_background(rng, size, clutter)
        strokes: list[np.ndarray] = []  # full-size stroke masks as pasted, and what is still visible of them
        visible: list[np.ndarray] = []
        labels: list[int] = []
        for _ in range(int(rng.integers(lo, hi + 1))):
            c = int(rng.integers(classes))
            glyph = glyphs[rng.choice(by_class[c])]
            h = max(4, round(rng.uniform(*scale) * size))
            w = min(size, max(4, round(h * rng.uniform(0.85, 1.1))))
            alpha = F.interpolate(torch.from_numpy(glyph)[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
            for _try in range(30):
                full = np.zeros((size, size), np.float32)
                y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
                full[y0:y0 + h, x0:x0 + w] = alpha
                stroke = full >= 0.5
                if all((v & ~stroke).sum() >= min_visible * s.sum() for s, v in zip(strokes, visible, strict=True)):
                    break
            for v in visible:
                v &= ~stroke  # the new digit hides what lies under its strokes
            canvas = canvas * (1 - full[..., None]) + _stroke_colour(rng, bg) * full[..., None]
            strokes.append(stroke)
            visible.append(stroke.copy())
            labels.append(c)
        canvas += rng.standard_normal(canvas.shape).astype(np.float32) * noise
        pixels[i] = np.clip(canvas + 0.5, 0, 255).astype(np.uint8).transpose(2, 0, 1)
        keep = [j for j, v in enumerate(visible) if v.sum() >= 4]
        m = np.stack([visible[j] for j in keep]) if keep else np.zeros((0, size, size), bool)
        boxes = masks_to_boxes(m) if keep else np.zeros((0, 4), np.float32)
        images.append(DetImage(f"{i:06d}.png", size, size, boxes, np.array([labels[j] for j in keep], np.int64),
                               m if masks else None, i + 1, f"digits[{i}]"))
    return DetDataset([str(c) for c in range(classes)], images, source="digits", pixels=pixels)

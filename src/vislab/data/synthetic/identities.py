"""Generated identities for metric learning: each identity is a random glyph, each image a new view of it.

An identity is a seeded random binary glyph on a 5x5 grid (a "face" nobody else has), smoothed and scaled up.
Each image draws its identity's glyph in a random foreground colour on a random background colour, at a random
position and size, slightly rotated, with gaussian noise. So two images of one identity share only the glyph's
shape: their pixels differ (colour, place, scale), and a model has to learn what stays the same -- and,
tested on identities it never saw, to tell new glyphs apart (the face-verification setting).

Example:
    >>> d = generate_identities(3, per_identity=4, size=24, seed=0)
    >>> tuple(d["images"].shape), d["labels"].tolist()[:6]
    ((12, 3, 24, 24), [0, 0, 0, 0, 1, 1])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vislab.data.classify.source import DATASETS, DataConfig, ImageSource, Splits

GRID = 5  # glyph cells per side


def _glyphs(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct random glyphs ``(n, GRID, GRID)`` in {0, 1}, each with 9-16 cells set, symmetric about nothing."""
    out, seen = [], set()
    while len(out) < n:
        g = np.zeros(GRID * GRID, np.uint8)
        g[rng.choice(GRID * GRID, int(rng.integers(9, 17)), replace=False)] = 1
        key = g.tobytes()
        if key not in seen:
            seen.add(key)
            out.append(g.reshape(GRID, GRID))
    return np.stack(out)


def generate_identities(identities: int, per_identity: int = 20, size: int = 32, seed: int = 0) -> dict[str, Any]:
    """``identities * per_identity`` images ``(N, 3, size, size)`` uint8 with labels ``(N,)`` (grouped by identity)."""
    rng = np.random.default_rng(seed)
    glyphs = torch.from_numpy(_glyphs(identities, rng)).float()[:, None]  # (I, 1, 5, 5)
    n = identities * per_identity
    labels = torch.arange(identities).repeat_interleave(per_identity)
    g = glyphs[labels]  # (N, 1, 5, 5)
    # a view: scale 0.45-0.75 of the image, shift anywhere it fits, rotation +-15 degrees -- one affine grid per image
    scale = torch.from_numpy(rng.uniform(0.45, 0.75, n)).float()
    angle = torch.from_numpy(rng.uniform(-0.26, 0.26, n)).float()
    room = 1 - scale
    tx, ty = (torch.from_numpy(rng.uniform(-1, 1, n)).float() * room for _ in range(2))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, -(cos * tx - sin * ty)], 1), torch.stack([sin, cos, -(sin * tx + cos * ty)], 1)], 1)
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    smooth = F.interpolate(g, scale_factor=4, mode="bilinear", align_corners=False)  # soft cell edges
    mask = F.grid_sample(smooth, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (N, 1, S, S) in [0, 1]
    fg = torch.from_numpy(rng.uniform(0.45, 1.0, (n, 3, 1, 1))).float()
    bg = torch.from_numpy(rng.uniform(0.0, 0.35, (n, 3, 1, 1))).float()
    img = bg + (fg - bg) * mask + torch.from_numpy(rng.normal(0, 0.04, (n, 3, size, size))).float()
    images = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return {"images": images, "labels": labels, "classes": [f"id{c:03d}" for c in range(identities)]}


@DATASETS.register(task="classify")
def identities(cfg: DataConfig, root: Path | None) -> Splits:
    """Generated identities (random glyphs in random colours, places and sizes): ``--synth-classes`` identities
    (default 60) of ``--synth-count`` images in all (default 20 each), 32x32 RGB, in memory."""
    k = cfg.synth_classes or 60
    per = max(2, (cfg.synth_count or 20 * k) // k)
    d = generate_identities(k, per, cfg.img_size or 32, cfg.split_seed)
    src = ImageSource(d["classes"], d["labels"], images=d["images"], size=tuple(d["images"].shape[-2:]), channels=3,
                      name="identities", augment="none")
    return Splits(train=src)

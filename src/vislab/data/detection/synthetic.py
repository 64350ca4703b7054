"""Generated detection data: several shapes per image on noisy, cluttered backgrounds, with boxes and masks.

Example:
    >>> ds = shapes_detection(4, classes=3, size=48, seed=0)
    >>> len(ds), ds.pixels.shape, ds.classes
    (4, (4, 3, 48, 48), ['circle', 'square', 'triangle'])
"""

from __future__ import annotations

from collections.abc import Sequence

from vislab.data.detection.core import DetDataset, DetImage
from vislab.data.synthetic.shapes import generate_shapes


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
    d = generate_shapes(n, classes, size, seed=seed, objects_per_image=(lo, max(hi, 1)), scale=scale)
    if lo == hi == 1:  # generate_shapes gives stacked arrays for one object per image
        d.update(boxes=d["boxes"][:, None], labels=d["labels"][:, None], masks=d["masks"][:, None])
    images = [
        DetImage(f"{i:06d}.png", size, size, d["boxes"][i], d["labels"][i], d["masks"][i] if masks else None, i + 1, f"shapes[{i}]")
        for i in range(n)
    ]
    return DetDataset(list(d["classes"]), images, source="shapes", pixels=d["images"])

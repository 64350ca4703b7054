"""scikit-learn's bundled 8x8 handwritten digits (1797 images, offline), upscaled.

Example:
    >>> x, y = digits_images(16)
    >>> tuple(x.shape), x.dtype, int(x.max()) <= 255, sorted(set(y.tolist())) == list(range(10))
    ((1797, 1, 16, 16), torch.uint8, True, True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vislab.data.classify.source import DATASETS, DataConfig, ImageSource, Splits

DIGITS_SIZE = 32  # default size: the 8x8 originals upscaled 4x


def digits_images(size: int = DIGITS_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits as images of ``size`` x ``size``.

    Values 0..16 are scaled to 0..255, then upscaled bilinearly (``align_corners=False``).

    Returns:
        Images ``(1797, 1, size, size)`` uint8 and labels ``(1797,)`` int64.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.asarray(d.images, dtype=np.float32) * (255.0 / 16.0)).unsqueeze(1)  # (N, 1, 8, 8)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < 8)
    x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x, torch.from_numpy(np.asarray(d.target, dtype=np.int64))


@DATASETS.register(task="classify")
def digits(cfg: DataConfig, root: Path | None) -> Splits:
    """scikit-learn's 8x8 digits upscaled to 32x32 (or --img-size): 1797 gray images, 10 classes, in memory."""
    size = cfg.img_size or DIGITS_SIZE
    x, y = digits_images(size)
    src = ImageSource([str(i) for i in range(10)], y, images=x, size=(size, size), channels=1, name="digits", augment="light")
    return Splits(train=src)

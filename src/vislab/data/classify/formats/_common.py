"""Helpers shared by the in-memory dataset builders: resizing whole tensors, checking roots.

Example:
    >>> import torch
    >>> x = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    >>> resize_images(x, (16, 16)).shape
    torch.Size([2, 1, 16, 16])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vislab.core.errors import DataError


def target_size(img_size: int, native: tuple[int, int]) -> tuple[int, int]:
    """``(img_size, img_size)`` when ``img_size > 0``, else ``native`` ``(H, W)``."""
    return (img_size, img_size) if img_size > 0 else native


def resize_images(images: torch.Tensor | np.ndarray, size: tuple[int, int], chunk: int = 1024) -> torch.Tensor:
    """Resize a stack of uint8 images bilinearly, in chunks to bound peak memory.

    Downscaling uses antialiasing; upscaling is plain bilinear (``align_corners=False``).

    Args:
        images: ``(N, C, H, W)`` uint8.
        size: target ``(H', W')``.
        chunk: images resized at once.

    Returns:
        ``(N, C, H', W')`` uint8 (the input itself when the size already matches).
    """
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.dtype != torch.uint8:
        raise DataError(f"resize_images: expected (N, C, H, W) uint8, got {tuple(x.shape)} {x.dtype}")
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    out = torch.empty((x.shape[0], x.shape[1], *size), dtype=torch.uint8)
    for i in range(0, x.shape[0], chunk):
        y = F.interpolate(x[i : i + chunk].float(), size=size, mode="bilinear", align_corners=False, antialias=down)
        out[i : i + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def require_root(name: str, root: Path | None) -> Path:
    """The dataset folder ``root``, or a :class:`DataError` when none was given."""
    if root is None:
        raise DataError(f"{name}: expected a dataset path (--data PATH), got none")
    return Path(root).expanduser()


def torchvision_download(name: str, root: Path) -> None:
    """Fetch ``name`` (CIFAR10, CIFAR100, MNIST, FashionMNIST) into ``root`` with torchvision.

    Only called when the user passed ``--download``; the files are then read by vislab's own readers.
    """
    import torchvision.datasets as tvd

    cls = getattr(tvd, name)
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError
        raise DataError(f"{name}: expected to download into '{root}', got {e.__class__.__name__}: {e}") from None

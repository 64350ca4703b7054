"""Readable explanation figures: every PNG has a title, a colour bar, and maps aligned on their image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vislab.core.errors import ShapeError


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_display(images: torch.Tensor, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    """(B, C, H, W) model inputs -> (B, H, W, 3) float in [0, 1] for display (undo ``(x - mean) / std``)."""
    if images.ndim != 4:
        raise ShapeError("to_display", "(B, C, H, W)", tuple(images.shape))
    x = images.detach().float().cpu()
    if mean is not None and std is not None:
        m = torch.tensor(list(mean), dtype=x.dtype).view(1, -1, 1, 1)
        s = torch.tensor(list(std), dtype=x.dtype).view(1, -1, 1, 1)
        x = x * s + m
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] != 3:
        x = x[:, :3] if x.shape[1] > 3 else torch.cat([x, x[:, -1:].repeat(1, 3 - x.shape[1], 1, 1)], 1)
    if mean is None or std is None:  # unknown normalisation: stretch each image to [0, 1]
        lo = x.amin((1, 2, 3), keepdim=True)
        hi = x.amax((1, 2, 3), keepdim=True)
        x = (x - lo) / (hi - lo).clamp_min(1e-12)
    return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def save(fig, path: str | Path) -> Path:
    from vislab.core.io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    _plt().close(fig)
    return path


def plot_maps(image: np.ndarray, maps: dict[str, np.ndarray], path: str | Path, title: str, alpha: float = 0.5) -> Path:
    """The image, then each map over it (same size, same axes), each panel with its colour bar.

    Args:
        image: (H, W, 3) in [0, 1].
        maps: panel title -> (H, W) map in [0, 1] (at the image's resolution).
        path: PNG to write.
        title: figure title (what was explained, for which class).
    """
    plt = _plt()
    n = 1 + len(maps)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 0.4, 3.6), squeeze=False, constrained_layout=True)
    axes = axes[0]
    axes[0].imshow(image, interpolation="nearest")
    axes[0].set_title("input", fontsize=9)
    for ax, (name, m) in zip(axes[1:], maps.items()):
        if m.shape != image.shape[:2]:
            raise ShapeError("plot_maps", f"maps of the image size {image.shape[:2]}", m.shape)
        ax.imshow(image, interpolation="nearest")
        im = ax.imshow(m, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0, interpolation="bilinear")
        r, c = np.unravel_index(int(np.argmax(m)), m.shape)
        ax.plot([c], [r], marker="+", color="white", markersize=10, mew=2)
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="relevance (0-1)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def plot_grid(tiles: np.ndarray, path: str | Path, title: str, *, labels: Sequence[str] | None = None, cmap: str = "viridis",
              symmetric: bool = False, rgb: bool = False, cbar_label: str = "value", first: np.ndarray | None = None,
              first_label: str = "input") -> Path:  # fmt: skip
    """A grid of tiles sharing one colour scale and one colour bar.

    Args:
        tiles: (N, h, w) maps, or (N, h, w, 3) in [0, 1] with ``rgb=True``.
        labels: one caption per tile.
        symmetric: colour scale centred on 0 (for signed weights).
        first: an optional (H, W, 3) image drawn as the first tile (e.g. the input of feature maps).
    """
    plt = _plt()
    n = len(tiles) + (first is not None)
    cols = int(np.ceil(np.sqrt(n * 1.5)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + 1.2, 1.6 * rows + 0.8), squeeze=False, constrained_layout=True)
    flat = list(axes.ravel())
    if first is not None:
        ax = flat.pop(0)
        ax.imshow(first, interpolation="nearest")
        ax.set_title(first_label, fontsize=7)
    if rgb:
        vmin, vmax = 0.0, 1.0
    else:
        lim = float(np.abs(tiles).max()) if symmetric else None
        vmin, vmax = (-lim, lim) if symmetric else (float(tiles.min()), float(tiles.max()))
    im = None
    for i, ax in enumerate(flat):
        if i < len(tiles):
            if rgb:
                im = ax.imshow(tiles[i], interpolation="nearest", vmin=0, vmax=1)
            else:
                im = ax.imshow(tiles[i], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if labels is not None:
                ax.set_title(labels[i], fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images:
            ax.axis("off")
    if rgb:
        sm = plt.cm.ScalarMappable(cmap="gray", norm=plt.Normalize(0, 1))
        fig.colorbar(sm, ax=axes.ravel().tolist(), fraction=0.03, label=cbar_label)
    elif im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03, label=cbar_label)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)

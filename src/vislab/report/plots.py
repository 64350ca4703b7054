"""Plots every task reuses: learning curves, confusion matrix, image grids with captions, PR curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from vislab.core.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    _plt().close(fig)
    return path


def plot_curves(history: Sequence[dict[str, float]], path: Path, title: str = "learning curves") -> Path:
    """Losses (left) and every other train/val metric (right) per epoch; legends beside the axes, not over the data.

    COCO's ``-1`` ("no objects of this size") is not a value: such points are left out, and a metric that is never
    defined is not drawn.
    """
    plt = _plt()
    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(12.5, 3.8))
    epochs = [r["epoch"] for r in history]
    keys = sorted({k for r in history for k in r})
    for k in keys:
        if k in ("epoch", "lr", "epoch_seconds", "images_per_second"):
            continue
        ys = np.array([r.get(k, np.nan) for r in history], dtype=float)
        if "_map" in k or "_mar" in k:
            ys[ys == -1] = np.nan
        if np.isnan(ys).all():
            continue
        ax = ax_l if "loss" in k else ax_m
        ax.plot(epochs, ys, marker="o", ms=3, label=k, linestyle="-" if k.startswith("train") else "--")
    ax_l.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_m.set(xlabel="epoch", ylabel="value", title="metrics")
    for ax in (ax_l, ax_m):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.suptitle(title)
    return _save(fig, path)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: Path, title: str = "confusion matrix") -> Path:
    """Row-normalised confusion matrix (rows: true class) with counts in the cells."""
    plt = _plt()
    cm = np.asarray(cm, dtype=np.float64)
    k = len(classes)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = min(14, 2.5 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    return _save(fig, path)


def image_grid(
    images: Sequence[np.ndarray], captions: Sequence[str], path: Path, colors: Sequence[str] | None = None,
    title: str = "", cols: int = 8,
) -> Path:
    """A grid of ``(H, W, C)`` uint8 images with a caption under each (caption colour per image)."""
    plt = _plt()
    n = max(1, len(images))
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (img, cap) in enumerate(zip(images, captions, strict=False)):
        ax = axes.flat[i]
        ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                  vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(cap, fontsize=7, color=(colors[i] if colors else "black"))
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_pr_curves(result: dict[str, Any], classes: list[str], path, title: str = "precision-recall (IoU 0.5)"):
    """One PR curve per class at IoU 0.5 (all areas, 100 detections) of a COCO result
    (:func:`vislab.metrics.detection.coco_evaluate`) to a PNG."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    rec = result["recall_thresholds"]
    for i, name in enumerate(classes):
        p = result["precision"][0, :, i, 0, -1]
        if (p > -1).any():
            ap = float(p[p > -1].mean())
            ax.plot(rec, np.clip(p, 0, 1), label=f"{name} (AP50 {ap:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    return _save(fig, path)

"""Convolution filters as an image grid (first layer by default, or any named conv layer).

Example:
    >>> from vislab.models import create_model
    >>> name, w = conv_weights(create_model("small_cnn", num_classes=3, width=8))
    >>> name, tuple(w.shape)
    ('features.0.0', (8, 3, 3, 3))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vislab.core.errors import ModelError, did_you_mean
from vislab.explain.plots import plot_grid


def conv_weights(model: nn.Module, layer: str | None = None) -> tuple[str, torch.Tensor]:
    """(name, weight (O, I/groups, kh, kw)) of conv ``layer``, or of the first ``Conv2d`` (ViT: the patch embedding)."""
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if not convs:
        raise ModelError(f"{type(model).__name__}: expected at least one Conv2d to show filters of, got none")
    if layer is None:
        layer = next(iter(convs))
    if layer not in convs:
        raise ModelError(f"filters: expected a Conv2d layer name{did_you_mean(layer, convs)}, got '{layer}'")
    return layer, convs[layer].weight.detach().float().cpu()


def plot_filters(model: nn.Module, path: str | Path, layer: str | None = None, max_filters: int = 64, title: str = "") -> Path:
    """Write a grid of conv filters.

    RGB filters (3 input channels) are shown in colour, each scaled to its own min..max; others as the
    mean over input channels on a shared, zero-centred colour scale.
    """
    name, w = conv_weights(model, layer)
    w = w[:max_filters]
    o, i, kh, kw = w.shape
    head = title or f"{type(model).__name__}: filters of '{name}' ({o} shown, {i}x{kh}x{kw} each)"
    if i == 3:
        flat = w.reshape(o, -1)
        lo, hi = flat.min(1).values.view(o, 1, 1, 1), flat.max(1).values.view(o, 1, 1, 1)
        rgb = ((w - lo) / (hi - lo).clamp_min(1e-12)).permute(0, 2, 3, 1).numpy()
        return plot_grid(rgb, path, head, labels=[str(k) for k in range(o)], rgb=True, cbar_label="weight, each filter scaled min -> max")
    tiles = w.mean(1).numpy().astype(np.float32)
    return plot_grid(tiles, path, head, labels=[str(k) for k in range(o)], cmap="RdBu_r", symmetric=True, cbar_label="weight (mean over input channels)")

"""Feature maps (activations) of any named layer, captured with a forward hook.

Example:
    >>> import torch
    >>> from vislab.models import create_model
    >>> m = create_model("resnet18", num_classes=3, stem="cifar").eval()
    >>> feature_maps(m, torch.zeros(1, 3, 32, 32), "layer2").shape
    torch.Size([1, 128, 16, 16])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vislab.core.errors import ShapeError
from vislab.explain.cam import resolve_layer
from vislab.explain.plots import plot_grid, to_display


def feature_maps(model: nn.Module, images: torch.Tensor, layer: str | None = None) -> torch.Tensor:
    """Output of ``layer`` (default: the CAM layer) for ``images``: (B, C, h, w); ViT tokens become maps."""
    choice = resolve_layer(model, layer)
    box: list[torch.Tensor] = []
    handle = choice.module.register_forward_hook(lambda _m, _i, out: box.append(out[0] if isinstance(out, tuple) else out))
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    out = box[-1]
    if out.ndim == 3 and choice.reshape is not None:
        out = choice.reshape(out)
    if out.ndim != 4:
        raise ShapeError(f"feature maps of '{choice.name}'", "a (B, C, h, w) output", tuple(out.shape))
    return out.detach().float().cpu()


def plot_feature_maps(model: nn.Module, images: torch.Tensor, path_for: Callable[[int], Path], layer: str | None = None, max_maps: int = 32,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      names: Sequence[str] | None = None) -> list[Path]:  # fmt: skip
    """One PNG per image: the input, then the ``max_maps`` most active channels of ``layer`` (shared colour scale).

    Args:
        path_for: ``i -> Path`` of the PNG for image ``i``.
    """
    choice = resolve_layer(model, layer)
    maps = feature_maps(model, images, choice.name)  # (B, C, h, w)
    shown = to_display(images, mean, std)
    paths = []
    for i in range(maps.shape[0]):
        act = maps[i]
        order = act.mean((1, 2)).argsort(descending=True)[:max_maps]
        tiles = act[order].numpy().astype(np.float32)
        label = names[i] if names else f"image {i}"
        title = f"feature maps of '{choice.name}' ({act.shape[0]}x{act.shape[1]}x{act.shape[2]}), {label}: top {len(order)} channels by mean activation"
        paths.append(plot_grid(tiles, path_for(i), title, labels=[f"ch {int(c)}" for c in order], cbar_label="activation", first=shown[i]))
    return paths

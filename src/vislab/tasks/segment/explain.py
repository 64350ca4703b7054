"""``vislab segment explain``: class activation maps of one class over the region the model predicts for it.

What is explained is :class:`vislab.explain.cam.SegmentationTarget`: the sum of class ``c``'s logits
over the pixels predicted as ``c`` (the pytorch-grad-cam recipe for segmentation). Any CAM method of
:mod:`vislab.explain.cam` works (Grad-CAM, Grad-CAM++, Score-CAM, Eigen-CAM, Layer-CAM) and so do the
captum attributions (saliency, Integrated Gradients). The layer is the model's ``cam_layer`` (U-Nets:
the last decoder block) unless ``--layer`` names another.

Per image it writes ``<stem>_cam.png`` (input | predicted region | one panel per method, through
:func:`vislab.explain.plots.plot_maps`) and, for all images, ``explain.json`` with the class, the region
size and, per method, the share of the map's mass inside the region (``inside``) and the mean map
value inside vs outside.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vislab.core.errors import ConfigError, did_you_mean
from vislab.core.io import atomic_write_text, read_image
from vislab.core.progress import track
from vislab.tasks.segment.config import SegExplainConfig
from vislab.tasks.shared.inputs import expand_inputs, image_batch
from vislab.tasks.shared.model import load_for_inference


def resolve_class(target: str | int | None, classes: list[str]) -> int | None:
    """``None`` (choose per image), a class name or an index -> class index.

    Example:
        >>> resolve_class("dog", ["background", "cat", "dog"]), resolve_class("1", ["background", "cat"])
        (2, 1)
    """
    if target is None or target == "":
        return None
    if isinstance(target, int) or str(target).isdigit():
        i = int(target)
        if not 0 <= i < len(classes):
            raise ConfigError(f"--target-class: expected an index in [0, {len(classes) - 1}], got {i}")
        return i
    if target not in classes:
        raise ConfigError(f"--target-class '{target}'{did_you_mean(str(target), classes)}: expected one of {classes}")
    return classes.index(str(target))


def default_class(pred: torch.Tensor, k: int, background: bool = True) -> int:
    """The class with the most predicted pixels in ``pred`` ``(H, W)``, leaving class 0 out when it is the background."""
    counts = torch.bincount(pred.flatten(), minlength=k)
    if background and k > 1 and int(counts[1:].sum()) > 0:
        counts[0] = -1
    return int(counts.argmax())


def class_region_maps(model: nn.Module, x: torch.Tensor, methods: list[str], class_index: int | None = None,
                      layer: str | None = None, background: bool = True) -> tuple[dict[str, np.ndarray], list[int], torch.Tensor]:
    """CAMs of one class summed over its predicted region, per image.

    Args:
        model: a segmentation network, ``(B, C, H, W) -> (B, K, H, W)`` logits.
        x: ``(B, C, H, W)`` normalised images.
        methods: methods of :data:`vislab.explain.cam.METHODS`.
        class_index: the class (``None``: per image, :func:`default_class`).
        layer: CAM layer (``None``: :func:`vislab.explain.cam.resolve_layer`'s choice).
        background: class 0 is the background (not chosen by default).

    Returns:
        method -> maps ``(B, H, W)`` in [0, 1]; the class of each image; the regions ``(B, H, W)`` bool
        (a class predicted nowhere in an image is explained over the whole image).
    """
    from vislab.explain.cam import SegmentationTarget, check_method, compute_maps

    model.eval()
    with torch.no_grad():
        logits = model(x).float()  # (B, K, H, W)
    pred, k = logits.argmax(1), logits.shape[1]  # (B, H, W)
    classes = [class_index if class_index is not None else default_class(p, k, background) for p in pred]
    regions = torch.stack([p == c for p, c in zip(pred, classes, strict=True)])
    masks = [r.float() if bool(r.any()) else torch.ones_like(r, dtype=torch.float32) for r in regions]
    targets = [SegmentationTarget(c, m) for c, m in zip(classes, masks, strict=True)]
    maps = {}
    for m in methods:
        m = check_method(m)
        with torch.enable_grad():
            maps[m] = compute_maps(model, x, m, targets=targets, layer=layer)[0]
    return maps, classes, regions


def region_stats(cam: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """Share of the map's mass inside ``region`` and its mean inside vs outside.

    Example:
        >>> cam = np.array([[1.0, 0.0], [0.5, 0.0]]); reg = np.array([[True, False], [True, False]])
        >>> region_stats(cam, reg)
        {'inside': 1.0, 'mean_in': 0.75, 'mean_out': 0.0, 'region_fraction': 0.5}
    """
    total = float(cam.sum())
    mi = float(cam[region].mean()) if region.any() else float("nan")
    mo = float(cam[~region].mean()) if (~region).any() else float("nan")
    return {"inside": round(float(cam[region].sum()) / total, 4) if total > 0 else float("nan"), "mean_in": round(mi, 4),
            "mean_out": round(mo, 4), "region_fraction": round(float(region.mean()), 4)}


def explain(cfg: SegExplainConfig) -> dict[str, Any]:
    """Write ``<stem>_cam.png`` per image and ``explain.json`` (see the module docstring)."""
    from vislab.explain.cam import TITLES, check_method, resolve_layer
    from vislab.explain.plots import plot_maps, to_display

    methods = [check_method(m) for m in cfg.methods if m.strip()]
    if not methods:
        raise ConfigError("--methods: expected at least one CAM or attribution method, got none")
    model, state, device, _ = load_for_inference(cfg.checkpoint, "segment", cfg.device, "fp32")
    model = model.float()
    classes = list(state["classes"])
    cls = resolve_class(cfg.target_class, classes)
    files = expand_inputs(cfg.inputs)
    layer = resolve_layer(model, cfg.layer or None).name
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "explain"
    out.mkdir(parents=True, exist_ok=True)
    mean, std = state["mean"], state["std"]
    background = classes[0].lower() in ("background", "bg", "_background_")
    rows = []
    for f in track(files, "explain"):
        img = read_image(f, "L" if state["channels"] == 1 else "RGB")
        x = image_batch(img, mean, std).to(device)
        maps, chosen, regions = class_region_maps(model, x, methods, cls, layer, background)
        c, region = chosen[0], regions[0].cpu().numpy()
        panels = {f"predicted '{classes[c]}' ({int(region.sum())} px)": region.astype(np.float32)}
        stats = {}
        for m in methods:
            st = region_stats(maps[m][0], region)
            stats[m] = st
            panels[f"{TITLES[m]} (in region {st['inside']:.0%})"] = maps[m][0]
        where = "its predicted region" if region.any() else "the whole image (class predicted nowhere)"
        title = f"{state['model']} — class '{classes[c]}' summed over {where}; CAM layer '{layer}'"
        path = plot_maps(to_display(x.cpu(), mean, std)[0], panels, out / f"{f.stem}_cam.png", title)
        rows.append({"path": str(f), "png": str(path), "class": classes[c], "region_pixels": int(region.sum()), "methods": stats})
    atomic_write_text(out / "explain.json", json.dumps({"checkpoint": state["path"], "layer": layer, "images": rows}, indent=1))
    return {"out": str(out), "layer": layer, "rows": rows}

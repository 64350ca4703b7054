"""``explain(model, images, ...)``: every explanation of a batch of images, written as readable PNGs.

Example:
    >>> import tempfile, torch
    >>> from vislab.models import create_model
    >>> model = create_model("small_cnn", num_classes=2, width=8)
    >>> out = tempfile.mkdtemp()
    >>> paths = explain(model, torch.rand(1, 3, 16, 16), methods=("gradcam", "saliency", "filters"), out_dir=out,
    ...                 class_names=["cat", "dog"])
    >>> sorted(p.name for p in paths)
    ['filters.png', 'image0_maps.png']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from vislab.core.errors import ConfigError, ShapeError, did_you_mean
from vislab.explain.cam import CLASS_AGNOSTIC, METHODS, TITLES, ClassTarget, check_method, compute_maps, predict, resolve_layer
from vislab.explain.feature_maps import plot_feature_maps
from vislab.explain.filters import plot_filters
from vislab.explain.plots import plot_maps, to_display

EXTRA = ("filters", "feature_maps")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "x"


def _class_index(target_class: int | str | None, class_names: Sequence[str] | None, num_classes: int) -> int | None:
    if target_class is None:
        return None
    if isinstance(target_class, str) and not target_class.isdigit():
        names = list(class_names or [])
        if target_class not in names:
            raise ConfigError(f"target class '{target_class}'{did_you_mean(target_class, names)}: expected one of {names or 'the class indices'}")
        return names.index(target_class)
    idx = int(target_class)
    if not 0 <= idx < num_classes:
        raise ConfigError(f"target class: expected an index in [0, {num_classes - 1}], got {idx}")
    return idx


def explain(
    model: nn.Module,
    images: torch.Tensor,
    *,
    methods: Sequence[str] = ("gradcam",),
    layers: Sequence[str] | None = None,
    target_class: int | str | None = None,
    out_dir: str | Path = "explain",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    image_names: Sequence[str] | None = None,
) -> list[Path]:
    """Explain a classifier's decisions on ``images`` and write PNGs to ``out_dir``.

    Args:
        model: any registry classifier (CNN or ViT) or classifier-like module.
        images: (B, C, H, W) model inputs, normalised as the model expects.
        methods: any of ``gradcam``, ``gradcam++``, ``scorecam``, ``eigencam``, ``layercam``,
            ``saliency``, ``integrated_gradients`` (maps, one figure per image), ``filters`` (the
            first conv's filters, or ``layers[0]`` if it is a conv), ``feature_maps`` (of each of ``layers``).
        layers: module names; the first is the CAM layer (default: chosen per family, see
            :func:`vislab.explain.cam.resolve_layer`), all are drawn by ``feature_maps``.
        target_class: class to explain (index or name); default: each image's predicted class.
        out_dir: folder for the PNGs.
        mean, std: the normalisation of ``images`` (to show them in their true colours).
        class_names: names for titles and for ``target_class`` given by name.
        image_names: file stems for the outputs (default ``image0``, ``image1``, ...).

    Returns:
        The written PNG paths: ``filters.png``, ``<image>_maps.png``, ``<image>_features_<layer>.png``.
    """
    if images.ndim != 4:
        raise ShapeError("explain", "images (B, C, H, W)", tuple(images.shape))
    chosen = [m.lower().replace("-", "_") if m.lower().replace("-", "_") in EXTRA else check_method(m) for m in methods]
    if not chosen:
        raise ConfigError(f"explain: expected at least one method of {', '.join(METHODS + EXTRA)}, got none")
    out_dir = Path(out_dir)
    model.eval()
    b = images.shape[0]
    stems = [_safe(n) for n in image_names] if image_names else [f"image{i}" for i in range(b)]
    if len(stems) != b:
        raise ConfigError(f"explain: expected {b} image names, got {len(stems)}")
    layers = list(layers or [])
    cam_layer = resolve_layer(model, layers[0] if layers else None)
    predicted, probs = predict(model, images)
    idx = _class_index(target_class, class_names, probs.shape[1])
    targets_idx = [int(c) for c in predicted] if idx is None else [idx] * b
    names = list(class_names) if class_names else [str(k) for k in range(probs.shape[1])]
    targets = [ClassTarget(k, names[k] if k < len(names) else str(k)) for k in targets_idx]
    shown = to_display(images, mean, std)
    paths: list[Path] = []

    if "filters" in chosen:
        conv = layers[0] if layers and isinstance(dict(model.named_modules()).get(layers[0]), nn.Conv2d) else None
        paths.append(plot_filters(model, out_dir / "filters.png", conv))

    map_methods = [m for m in chosen if m in METHODS]
    if map_methods:
        from vislab.core.progress import track

        per_method = {m: compute_maps(model, images, m, targets=targets, layer=cam_layer.name)[0] for m in track(map_methods, "explain", "methods")}
        for i in range(b):
            pred = int(predicted[i])
            what = "predicted" if idx is None else "requested"
            title = (f"{type(model).__name__} — {what} class '{targets[i].label}' "
                     f"(prediction '{names[pred] if pred < len(names) else pred}', p={float(probs[i, pred]):.2f}); CAM layer '{cam_layer.name}'")  # fmt: skip
            panels = {
                f"{TITLES[m]}" + (" (class-agnostic)" if m in CLASS_AGNOSTIC else ""): per_method[m][i] for m in map_methods
            }
            paths.append(plot_maps(shown[i], panels, out_dir / f"{stems[i]}_maps.png", title))

    if "feature_maps" in chosen:
        for layer in layers or [cam_layer.name]:
            paths += plot_feature_maps(
                model, images, lambda i, layer=layer: out_dir / f"{stems[i]}_features_{_safe(layer)}.png",
                layer=layer, mean=mean, std=std, names=stems,
            )  # fmt: skip
    return paths

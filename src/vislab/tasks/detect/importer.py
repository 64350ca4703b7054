"""``vislab detect import``: turn a detector's weights file (torchvision's COCO weights, a fine-tuned state dict)
into a vislab detection run, so ``predict``, ``eval``, ``export`` and ``train --weights`` work on it.

Nothing is downloaded: the file must be on disk (torchvision keeps its downloads in
``~/.cache/torch/hub/checkpoints``, e.g. ``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth``). The weights must fit the
model exactly -- every tensor present and of the same shape -- otherwise one line says how many did not and
names the first few. ``--classes coco`` gives torchvision's 91 COCO names (ids with gaps are ``N/A``); models
that predict a background class (Faster / Mask R-CNN, SSD) then get 90 classes, the others (RetinaNet, FCOS) 91.

The run gets ``checkpoints/best.safetensors`` (with the class names, mean/std and image size in its state) and
``import.json`` (what was loaded).

Example (the weights file made up on the spot):
    >>> import tempfile, torch
    >>> from torchvision.models import detection as tvd
    >>> d = tempfile.mkdtemp()
    >>> tv = tvd.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3)
    >>> torch.save(tv.state_dict(), f"{d}/ssdlite.pth")
    >>> run = import_weights(DetImportConfig(weights=f"{d}/ssdlite.pth", model="ssdlite320_mobilenet", classes="cat,dog", img_size=320, out=f"{d}/run"))
    >>> sorted(p.name for p in (run / "checkpoints").iterdir())
    ['best.json', 'best.safetensors']
"""

from __future__ import annotations

import json
from pathlib import Path

from vislab.core import config as C
from vislab.core.errors import CheckpointError, ConfigError
from vislab.core.io import atomic_write_text
from vislab.tasks.detect.config import DetectConfig, DetImportConfig
from vislab.tasks.detect.task import TASK
from vislab.tasks.shared.model import build_registered


def class_names(spec: str) -> list[str]:
    """``coco`` -> torchvision's 91 COCO names; ``a,b,c`` -> those; a path -> its non-empty lines."""
    from torchvision.models._meta import _COCO_CATEGORIES

    if spec == "coco":
        return list(_COCO_CATEGORIES)
    p = Path(spec)
    if p.is_file():
        names = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--classes: expected coco, a comma-separated list or a file of names, got {spec!r}")
    return names


def import_weights(cfg: DetImportConfig) -> Path:
    """Build ``cfg.model``, load ``cfg.weights`` into it exactly, write the run; returns the run folder."""
    from vislab.engine import checkpoint as ckpt
    from vislab.tasks.shared.weights import load_into, read_weights

    if cfg.img_size < 32:
        raise ConfigError(f"--img-size: expected >= 32, got {cfg.img_size}")
    names = class_names(cfg.classes)
    # min_size (torchvision's own resize): the image reaches the model at --img-size, no second resize inside
    wanted = {"score_thresh": cfg.score_thresh, "nms_iou": cfg.nms_iou, "max_det": cfg.max_det, "img_size": cfg.img_size, "min_size": cfg.img_size}
    if cfg.classes == "coco":  # index 0 is torchvision's background: not a class of models that add one themselves
        names = names[1:]
    model, args = build_registered(cfg.model, TASK, {"num_classes": len(names), **wanted})
    if cfg.classes == "coco" and getattr(model, "offset", 0) != 1:  # RetinaNet, FCOS (no background index): all 91 outputs
        names = class_names("coco")
        model, args = build_registered(cfg.model, TASK, {"num_classes": len(names), **wanted})
    weights = read_weights(cfg.weights)
    report = load_into(model, weights)
    bad = report.missing + report.reshaped
    if bad:
        raise CheckpointError(f"weights '{cfg.weights}': expected every tensor of {cfg.model} with {len(names)} classes, "
                              f"got {len(report.missing)} missing and {len(report.reshaped)} of another shape (e.g. {'; '.join(bad[:3])})")
    run = Path(cfg.out) if cfg.out else Path("runs") / TASK / f"{cfg.model}-imported"
    run.mkdir(parents=True, exist_ok=True)
    mean = list(weights.mean) if getattr(weights, "mean", None) else list(cfg.mean)
    std = list(weights.std) if getattr(weights, "std", None) else list(cfg.std)
    config = C.from_dict(DetectConfig, {"model": cfg.model, "img_size": cfg.img_size, "score_thresh": cfg.score_thresh,
                                        "nms_iou": cfg.nms_iou, "max_det": cfg.max_det, "data": str(cfg.weights)})
    state = {"task": TASK, "model": cfg.model, "model_args": args, "num_classes": len(names),
             "classes": names, "mean": mean, "std": std, "img_size": [cfg.img_size] * 2, "channels": 3, "config": C.to_dict(config),
             "imported_from": str(cfg.weights)}
    ckpt.save(run / "checkpoints" / "best.safetensors", model, state)
    atomic_write_text(run / "import.json", json.dumps({"weights": str(cfg.weights), "model": cfg.model, "classes": len(names),
                                                       "loaded": len(report.loaded), "unexpected": report.unexpected}, indent=1))
    return run

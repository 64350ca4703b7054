"""Why did the detector find this box? Eigen-CAM / Grad-CAM (pytorch-grad-cam, via :mod:`vislab.explain.cam`)
for one chosen detection of ``yolo_tiny``.

The chosen box is traced back to the dense location that produced it (the location of its class with the
highest score among those whose decoded box overlaps it by IoU >= 0.5); Grad-CAM explains that location's
score through the neck level the location belongs to; Eigen-CAM (class-agnostic) shows that level's first
principal component.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.ops import box_iou

from vislab.core.errors import ConfigError, ModelError
from vislab.core.progress import track
from vislab.explain.cam import Target
from vislab.tasks.detect.config import DetExplainConfig
from vislab.tasks.detect.task import TASK
from vislab.tasks.shared.inputs import expand_inputs
from vislab.tasks.shared.model import load_for_inference


class DenseScores(nn.Module):
    """``x (B, C, H, W) -> (B, L * K)`` dense class scores of a detector with ``forward_raw``."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.detector.forward_raw(x)[1].flatten(1)


@dataclass
class DenseTarget(Target):
    """Score of one (location, class) entry of :class:`DenseScores`' output."""

    index: int
    name: str = "box"

    @property
    def label(self) -> str:  # type: ignore[override]
        return self.name

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output[self.index]


def trace_box(detector: nn.Module, x: torch.Tensor, box: torch.Tensor, label: int) -> tuple[int, int]:
    """``(flat index into DenseScores' output, pyramid level)`` of the location behind ``box (4,)`` of class ``label``."""
    with torch.no_grad():
        boxes, scores = detector.forward_raw(x)  # (1, L, 4), (1, L, K)
    k = scores.shape[-1]
    iou = box_iou(box[None].float(), boxes[0].float())[0]  # (L,)
    s = torch.where(iou >= 0.5, scores[0, :, label], torch.tensor(-1.0))
    loc = int(s.argmax())
    h, w = x.shape[-2:]
    sizes = [((h + st - 1) // st) * ((w + st - 1) // st) for st in detector.strides]
    level = int(np.searchsorted(np.cumsum(sizes), loc, side="right"))
    return loc * k + label, min(level, len(sizes) - 1)


def explain(cfg: DetExplainConfig) -> dict[str, Any]:
    """One PNG per input: the image with the chosen box, and each CAM over it."""
    from vislab.core.io import read_image
    from vislab.explain.cam import compute_maps
    from vislab.explain.plots import plot_maps
    from vislab.tasks.detect.infer import draw_boxes, prepare

    model, state, device, _ = load_for_inference(cfg.checkpoint, TASK, cfg.device, "fp32")
    if not (hasattr(model, "forward_raw") and hasattr(model, "strides")):  # CAMs are taken on the level that found the box
        raise ModelError(f"explain: expected a detector with dense outputs on a feature pyramid (yolo_tiny), got {state['model']}")
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "explain"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in track(expand_inputs(cfg.inputs), "explain"):
        img = read_image(f, "RGB")
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float()
        x = torch.nn.functional.interpolate(x, size=tuple(state["img_size"]), mode="bilinear", antialias=True, align_corners=False).clamp(0, 255)
        xin = prepare(x, state["mean"], state["std"], device)
        with torch.no_grad():
            det = model(xin)[0]
        keep = det["scores"] >= cfg.score_thresh
        if int(keep.sum()) <= cfg.box:
            raise ConfigError(f"--box {cfg.box}: expected fewer than the {int(keep.sum())} detection(s) scoring >= {cfg.score_thresh} in '{f}'")
        box, label, score = det["boxes"][cfg.box], int(det["labels"][cfg.box]), float(det["scores"][cfg.box])
        index, level = trace_box(model, xin, box, label)
        name = f"{state['classes'][label]} {score:.2f}"
        maps = {}
        for method in cfg.methods:
            m, _ = compute_maps(DenseScores(model), xin, method, [DenseTarget(index, name)], layer=f"detector.smooth.{level}")
            maps[f"{method} ({name})"] = m[0]
        shown = x[0].permute(1, 2, 0).byte().numpy()
        boxed = draw_boxes(shown, box[None].cpu().numpy(), [label], [score], state["classes"]).astype(np.float32) / 255
        paths.append(str(plot_maps(boxed, maps, out / f"{f.stem}_explain.png", title=f"{f.name}: box {cfg.box} ({name})")))
    return {"out": str(out), "paths": paths}

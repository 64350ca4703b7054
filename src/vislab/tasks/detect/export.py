"""``vislab detect export``: ONNX of a detector with its post-processing in the graph, checked against eager.

By default the graph goes from pixels to detections::

    images (B, 3, H, W) float in [0, 1]
      -> normalise (the checkpoint's mean/std) -> the detector's dense boxes (B, L, 4) and class scores (B, L, K)
      -> ONNX NonMaxSuppression (per image and class: score > --score-thresh, IoU > the model's nms_iou suppressed,
         at most max_det per class)
      -> detections (M, 7): image index, x1, y1, x2, y2, score, class (0-based), ordered by image, class, score

The torchvision detectors (Faster / Mask R-CNN, RetinaNet, FCOS, SSD) export the same way with their own
post-processing in the graph (torchvision's ONNX support), one image per run (batch 1; mask outputs are left
out). ``--no-postprocess`` exports the dense outputs of ``yolo_tiny`` only (normalised input, ``boxes``,
``scores``), for runtimes that bring their own NMS. Either way the file is run with onnxruntime on random input and compared with the eager
model; the exporter is torch's TorchScript-based one (the NMS node is written by :class:`_NMS`'s symbolic).

Example:
    >>> from vislab.models.detect.yolo import yolo_tiny
    >>> g = EndToEnd(yolo_tiny(num_classes=2, width=8).eval(), [0.5] * 3, [0.25] * 3, score_thresh=0.0)
    >>> g(torch.rand(2, 3, 32, 32)).shape[1]
    7
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.ops import nms

from vislab.tasks.detect.config import DetExportConfig
from vislab.tasks.detect.task import TASK


class _NMS(torch.autograd.Function):
    """Batched per-class NMS with ONNX ``NonMaxSuppression`` semantics: ``boxes (B, N, 4)``, ``scores (B, K, N)`` ->
    ``selected (M, 3)`` rows of (image, class, box index), by image, class, then falling score."""

    @staticmethod
    def forward(ctx, boxes: torch.Tensor, scores: torch.Tensor, max_per_class: torch.Tensor, iou: torch.Tensor, score_thresh: torch.Tensor):
        rows = []
        for b in range(boxes.shape[0]):
            for c in range(scores.shape[1]):
                s = scores[b, c]
                cand = torch.nonzero(s > score_thresh).squeeze(1)
                keep = cand[nms(boxes[b, cand], s[cand], float(iou))][: int(max_per_class)]
                rows.append(torch.stack([torch.full_like(keep, b), torch.full_like(keep, c), keep], 1))
        return torch.cat(rows) if rows else torch.zeros(0, 3, dtype=torch.long)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou, score_thresh):
        return g.op("NonMaxSuppression", boxes, scores, max_per_class, iou, score_thresh)


class EndToEnd(nn.Module):
    """Pixels ``(B, 3, H, W)`` in [0, 1] -> detections ``(M, 7)`` (see the module docstring) for a model with
    ``forward_raw`` (dense boxes and class scores)."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float], score_thresh: float = 0.05):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.register_buffer("max_per_class", torch.tensor([int(getattr(model, "max_det", 100))]))
        self.register_buffer("iou", torch.tensor([float(getattr(model, "nms_iou", 0.6))]))
        self.register_buffer("score_thresh", torch.tensor([float(score_thresh)]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        boxes, scores = self.model.forward_raw(x)
        h, w = images.shape[-2:]
        boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h), boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], -1)
        sel = _NMS.apply(boxes, scores.transpose(1, 2), self.max_per_class, self.iou, self.score_thresh)
        img, cls, idx = sel[:, 0], sel[:, 1], sel[:, 2]
        picked = boxes[img, idx]
        score = scores[img, idx, cls]
        return torch.cat([img[:, None].to(picked.dtype), picked, score[:, None], cls[:, None].to(picked.dtype)], 1)


class TorchvisionEndToEnd(nn.Module):
    """One image ``(1, 3, H, W)`` in [0, 1] -> detections ``(M, 7)`` for a
    :class:`~vislab.models.detect.torchvision_models.TorchvisionDetector` (its own score threshold and NMS, then ``score_thresh``)."""

    def __init__(self, det: nn.Module, mean: list[float], std: list[float], score_thresh: float = 0.05):
        super().__init__()
        self.net, self.offset, self.score_thresh = det.net, det.offset, score_thresh
        self.register_buffer("mean", torch.tensor(mean).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(-1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        o = self.net([(images[0] - self.mean) / self.std])[0]
        keep = o["scores"] > self.score_thresh
        boxes, scores, labels = o["boxes"][keep], o["scores"][keep], (o["labels"][keep] - self.offset).to(o["boxes"].dtype)
        return torch.cat([torch.zeros_like(scores)[:, None], boxes, scores[:, None], labels[:, None]], 1)


class _Dense(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_raw(x)


def compare_detections(got: np.ndarray, ref: np.ndarray) -> float:
    """Largest difference between two ``(M, 7)`` detection tables as sets of rows (NMS may order equal scores
    differently); inf when they do not select the same boxes."""
    if got.shape != ref.shape:
        return float("inf")
    if not len(got):
        return 0.0

    def rows(a: np.ndarray) -> np.ndarray:  # sort by image, class, then the box rounded to 0.01 px
        key = np.concatenate([a[:, [0, 6]], a[:, 1:5].round(2)], 1)
        return a[np.lexsort(key.T[::-1])]

    g, r = rows(got), rows(ref)
    if not np.array_equal(g[:, [0, 6]], r[:, [0, 6]]):
        return float("inf")
    return float(np.abs(g - r).max())


def export(cfg: DetExportConfig) -> dict[str, Any]:
    """Write the ONNX file of ``cfg.checkpoint`` and check it against eager with onnxruntime."""
    import onnxruntime as ort

    from vislab.core.errors import ModelError
    from vislab.engine.checkpoint import load_model
    from vislab.models.detect.torchvision_models import TorchvisionDetector

    model, state = load_model(cfg.checkpoint, task=TASK)
    dense = hasattr(model, "forward_raw")
    if not dense and not isinstance(model, TorchvisionDetector):
        raise ModelError(f"export: expected yolo_tiny or a torchvision detector, got {state['model']}")
    if not dense and not cfg.postprocess:
        raise ModelError(f"export --no-postprocess: expected a model with dense outputs (yolo_tiny), got {state['model']}")
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "model.onnx"
    h, w = state["img_size"]
    gen = torch.Generator().manual_seed(0)
    batch = 2 if dense else 1  # torchvision's detectors export for one image at a time
    if cfg.postprocess:
        make = EndToEnd if dense else TorchvisionEndToEnd
        graph = make(model, state["mean"], state["std"], cfg.score_thresh).eval()
        x = torch.rand(batch, 3, h, w, generator=gen)
        names, outputs = ["detections"], {"detections": {0: "detections"}, **({"images": {0: "batch"}} if dense else {})}
    else:
        graph = _Dense(model).eval()  # export restores the wrapper's mode on every submodule: eval it
        x = torch.randn(2, 3, h, w, generator=gen)
        names, outputs = ["boxes", "scores"], {"images": {0: "batch"}, "boxes": {0: "batch"}, "scores": {0: "batch"}}
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice and its advanced-indexing note
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning, torch.jit.TracerWarning))
        torch.onnx.export(graph, (x,), str(out), input_names=["images"], output_names=names, opset_version=cfg.opset,
                          dynamic_axes=outputs, dynamo=False)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    n = 3 if dense else 1  # another batch size where the graph allows it
    x = torch.rand(n, 3, h, w, generator=gen) if cfg.postprocess else torch.randn(n, 3, h, w, generator=gen)
    got = sess.run(None, {"images": x.numpy()})
    with torch.no_grad():
        ref = graph(x)
    if cfg.postprocess:
        diff = compare_detections(got[0], ref.numpy())
        if not np.isfinite(diff):
            raise ModelError(f"export: expected onnxruntime to select the eager model's {len(ref)} detections, got {len(got[0])} different ones")
        return {"path": str(out), "max_abs_diff": diff, "outputs": names, "n_detections": len(ref)}
    diff = max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref, strict=True))
    return {"path": str(out), "max_abs_diff": diff, "outputs": names}

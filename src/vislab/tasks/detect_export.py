"""``vislab detect export``: ONNX of a detector, checked against eager with onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vislab.core.config import opt
from vislab.tasks.detect import TASK


@dataclass
class DetExportConfig:
    """``vislab detect export``: ONNX with the dense outputs (boxes, class scores), checked against eager."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    out: str = opt("", "output file (default: <run>/model.onnx)")
    opset: int = opt(17, "ONNX opset")


class _Dense(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_raw(x)


def export(cfg: DetExportConfig) -> dict[str, Any]:
    """ONNX of the dense outputs ``boxes (B, L, 4)``, ``scores (B, L, K)`` (post-processing stays outside,
    see :func:`vislab.models.det_post.postprocess`); checked against eager with onnxruntime."""
    from vislab.core.errors import ModelError
    from vislab.engine.checkpoint import load_model

    model, state = load_model(cfg.checkpoint, task=TASK)
    if not hasattr(model, "forward_raw"):
        raise ModelError(f"export: expected a model with dense outputs (yolo_tiny), got {state['model']}")
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "model.onnx"
    x = torch.randn(1, 3, *state["img_size"])
    wrapped = _Dense(model).eval()  # export restores the wrapper's mode on every submodule: eval it
    torch.onnx.export(wrapped, (x,), str(out), input_names=["images"], output_names=["boxes", "scores"], opset_version=cfg.opset,
                      dynamic_axes={"images": {0: "batch"}, "boxes": {0: "batch"}, "scores": {0: "batch"}}, dynamo=False)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": x.numpy()})
    with torch.no_grad():
        ref = wrapped(x)
    diff = max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref, strict=True))
    return {"path": str(out), "max_abs_diff": diff}

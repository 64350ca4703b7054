"""``vislab classify explain``: filters, feature maps, CAMs and attributions of a checkpoint for images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.core.io import read_image
from vislab.tasks.classify.config import ExplainConfig
from vislab.tasks.classify.task import TASK
from vislab.tasks.shared.inputs import expand_inputs, preprocess
from vislab.tasks.shared.model import load_for_inference


def explain(cfg: ExplainConfig) -> dict[str, Any]:
    """Write explanation PNGs for the input images (see :func:`vislab.explain.explain`)."""
    from vislab.explain import explain as run_explain

    model, state, device, _ = load_for_inference(cfg.checkpoint, TASK, cfg.device, "fp32")
    files = expand_inputs(cfg.inputs)[: cfg.max_images]
    mode = "L" if state["channels"] == 1 else "RGB"
    arrays = [read_image(f, mode) for f in files]
    x = preprocess(arrays, tuple(state["img_size"]), state["mean"], state["std"]).to(device)
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "explain"
    paths = run_explain(model.float(), x, methods=cfg.methods, layers=cfg.layers or None,
                        target_class=cfg.target_class or None, out_dir=out, mean=state["mean"], std=state["std"],
                        class_names=state["classes"], image_names=[f.stem for f in files])
    return {"out": str(out), "paths": [str(p) for p in paths]}

"""Object detection: ``vislab detect train | eval | predict | explain | export | import | lr-find``.

Python API: ``train(cfg)`` (a :class:`DetectConfig`), ``evaluate``, ``predict``, ``explain``, ``export``,
``import_weights`` (each with its config); ``SPEC`` is the task's :class:`~vislab.tasks.base.TaskSpec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.tasks import base
from vislab.tasks.detect.config import (
    DetectConfig,
    DetEvalConfig,
    DetExplainConfig,
    DetExportConfig,
    DetImportConfig,
    DetModelConfig,
    DetPredictConfig,
)
from vislab.tasks.detect.explain import explain
from vislab.tasks.detect.export import export
from vislab.tasks.detect.importer import import_weights
from vislab.tasks.detect.infer import evaluate, predict
from vislab.tasks.detect.task import DetectTask, build_model, setup, validate


def train(cfg: DetectConfig, callbacks: list | None = None, folder: str | None = None) -> Path:
    """Train a detector; returns the run folder (see :func:`vislab.tasks.base.train`)."""
    return base.train(SPEC, cfg, callbacks, folder)


def fmt(d: dict, keys=("map", "map50", "map75", "map_small", "mar_100", "mask_map", "mask_map50")) -> str:
    """``map 0.6123  map50 0.9011 ...``: the COCO numbers of ``d`` that it has."""
    return "  ".join(f"{k} {d[k]:.4f}" for k in keys if k in d)


def _summary(s: dict[str, Any]) -> str:
    final = {k.removeprefix("final_val_"): v for k, v in s.items() if k.startswith("final_val_")}
    return f"done: val {fmt(final)} in {s.get('total_seconds', 0):.1f}s" if final else "done"


def _show_eval(cfg: DetEvalConfig, r: dict[str, Any]) -> list[str]:
    return [f"{cfg.split}: {r['n']} images  {fmt(r)}", *(f"  {c}: AP {v:.4f}" for c, v in r["per_class"].items()), f"written: {r['out']}"]


def _show_predict(cfg: DetPredictConfig, r: dict[str, Any]) -> list[str]:
    return [f"{len(r['detections'])} detection(s); written: {r['out']}/detections.json"
            + (f" and {len(r['written'])} picture(s)/video(s)" if r["written"] else "")]


def _show_export(cfg: DetExportConfig, r: dict[str, Any]) -> list[str]:
    return [f"onnx: {r['path']}  (outputs {', '.join(r['outputs'])}; max |diff| vs eager {r['max_abs_diff']:.2e})"]


def _show_import(cfg: DetImportConfig, run: Path) -> list[str]:
    return [f"imported {cfg.weights} as {cfg.model} -> {run}"]


def _show_explain(cfg: DetExplainConfig, r: dict[str, Any]) -> list[str]:
    return [f"  {p}" for p in r["paths"]]


SPEC = base.TaskSpec(
    name="detect",
    config=DetectConfig,
    setup=setup,
    validate=validate,
    help="Object detection: train a detector, evaluate it (COCO AP), predict on images and videos, export it.",
    train_help="""Train a detector; results go to runs/detect/<name>/.

    \b
    Examples:
      vislab detect train                                        # yolo_tiny on generated shapes
      vislab detect train --data ./coco/annotations.json --img-size 320 --epochs 30
      vislab detect train --model yolo_tiny --backbone resnet18 --nms soft
      vislab detect train --resume runs/detect/exp
    """,
    monitor="val_map",
    summary=_summary,
    report_files=("report.html", "curves.png", "val_metrics.json", "val_pr_curves.png", "val_confusion_matrix.png", "samples.png",
                  "checkpoints/best.safetensors"),
    modes=(
        base.Mode("eval", DetEvalConfig, evaluate, _show_eval,
                  "COCO metrics of CHECKPOINT (AP@[.5:.95], AP50, AP75, AP by size, AR, per-class AP, PR curves)."),
        base.Mode("predict", DetPredictConfig, predict, _show_predict,
                  "Detect objects in INPUTS (images, folders, video files) with CHECKPOINT; boxes drawn, detections.json out."),
        base.Mode("explain", DetExplainConfig, explain, _show_explain, "Eigen-CAM / Grad-CAM for one detection (--box, by score rank) in each of INPUTS."),
        base.Mode("export", DetExportConfig, export, _show_export,
                  "Export CHECKPOINT to ONNX -- pixels in, detections (M, 7) out, NMS in the graph (--no-postprocess: dense "
                  "boxes and scores) -- and check it against the eager model with onnxruntime."),
        base.Mode("import", DetImportConfig, import_weights, _show_import, """Make a vislab detection run from a WEIGHTS file (e.g. torchvision's COCO weights, from disk; nothing is
    downloaded), for predict / eval / export / train --weights.

    \b
    Example:
      vislab detect import ~/.cache/torch/hub/checkpoints/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth \\
          --model fasterrcnn_resnet50_fpn --classes coco --img-size 512 --out runs/detect/frcnn-coco
      vislab detect predict runs/detect/frcnn-coco street.jpg --score-thresh 0.5
    """),
    ),
)

__all__ = ["SPEC", "DetEvalConfig", "DetExplainConfig", "DetExportConfig", "DetImportConfig", "DetModelConfig", "DetPredictConfig",
           "DetectConfig", "DetectTask", "build_model", "evaluate", "explain", "export", "import_weights", "predict", "train"]

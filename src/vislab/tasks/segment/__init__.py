"""Semantic segmentation: ``vislab segment train | eval | predict | explain | export | lr-find``.

Python API: ``train(cfg)`` (a :class:`SegmentConfig`), ``evaluate``, ``predict``, ``explain``, ``export`` (each with
its config); ``SPEC`` is the task's :class:`~vislab.tasks.base.TaskSpec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.tasks import base
from vislab.tasks.segment.config import SegEvalConfig, SegExplainConfig, SegmentConfig, SegModelConfig, SegPredictConfig
from vislab.tasks.segment.explain import explain
from vislab.tasks.segment.infer import evaluate, export, predict
from vislab.tasks.segment.task import SegmentTask, setup, validate
from vislab.tasks.shared.export import ExportConfig, export_lines


def train(cfg: SegmentConfig, callbacks: list | None = None, folder: str | None = None) -> Path:
    """Train a segmentation model; returns the run folder (see :func:`vislab.tasks.base.train`)."""
    return base.train(SPEC, cfg, callbacks, folder)


def _summary(s: dict[str, Any]) -> str:
    miou = s.get("test_miou", s.get("val_miou"))
    return f"done: {'test' if 'test_miou' in s else 'val'} mIoU {miou:.4f} in {s.get('total_seconds', 0):.1f}s" if miou is not None else "done"


def _show_eval(cfg: SegEvalConfig, r: dict[str, Any]) -> list[str]:
    return [f"{cfg.split}: {r['n']} images  mIoU {r['miou']:.4f}  dice {r['dice']:.4f}  pixel acc {r['pixel_acc']:.4f}  loss {r['loss']:.4f}",
            f"written: {r['out']}/metrics.json, per_class.csv, confusion_matrix.png"]


def _show_predict(cfg: SegPredictConfig, r: dict[str, Any]) -> list[str]:
    lines = [f"{row['path']}: {row['mask']}" + (f"  mIoU {row['miou']:.4f}" if "miou" in row else "") for row in r["rows"][:10]]
    return [*lines, f"written: {len(r['rows'])} mask(s) in {r['out']}"]


def _show_explain(cfg: SegExplainConfig, r: dict[str, Any]) -> list[str]:
    lines = []
    for row in r["rows"][:10]:
        inside = "  ".join(f"{m} {s['inside']:.0%} in region" for m, s in row["methods"].items())
        lines.append(f"{row['path']}: class '{row['class']}' ({row['region_pixels']} px)  {inside}")
    return [*lines, f"written: {len(r['rows'])} PNG(s) and explain.json in {r['out']} (CAM layer '{r['layer']}')"]


SPEC = base.TaskSpec(
    name="segment",
    config=SegmentConfig,
    setup=setup,
    validate=validate,
    help="Semantic segmentation: train a model on masks, evaluate mIoU, predict masks, export, explain.",
    train_help="""Train a segmentation model; results go to runs/segment/<name>/.

    \b
    Examples:
      vislab segment train                                   # U-Net on generated shapes with masks
      vislab segment train --model deeplabv3plus --encoder resnet18 --loss ce+dice
      vislab segment train --data ./my_masks --img-size 128 --model attention_unet --attention cbam
    """,
    monitor="val_miou",
    summary=_summary,
    report_files=("report.html", "curves.png", "confusion_matrix.png", "samples.png", "per_class.csv", "checkpoints/best.safetensors"),
    modes=(
        base.Mode("eval", SegEvalConfig, evaluate, _show_eval,
                  "Evaluate CHECKPOINT on a split: mIoU, per-class IoU, Dice, pixel accuracy, confusion matrix."),
        base.Mode("predict", SegPredictConfig, predict, _show_predict,
                  "Predict masks of INPUTS (images, folders, globs): index PNG + colour overlay per image."),
        base.Mode("explain", SegExplainConfig, explain, _show_explain, """CAMs (Grad-CAM, Eigen-CAM, ...) of a class summed over its predicted region, one PNG per image.

    \b
    Examples:
      vislab segment explain runs/segment/demo photo.png                      # most-predicted class, Grad-CAM
      vislab segment explain runs/segment/demo imgs/ --methods gradcam,eigencam --target-class person
    """),
        base.Mode("export", ExportConfig, export, export_lines, "Export CHECKPOINT to ONNX and/or TorchScript, each checked against the eager model."),
    ),
)

__all__ = ["SPEC", "ExportConfig", "SegEvalConfig", "SegExplainConfig", "SegModelConfig", "SegPredictConfig", "SegmentConfig", "SegmentTask",
           "evaluate", "explain", "export", "predict", "train"]

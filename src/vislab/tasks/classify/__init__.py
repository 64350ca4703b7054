"""Image classification: ``vislab classify train | eval | predict | explain | export | lr-find``.

Python API: ``train(cfg)`` (a :class:`ClassifyConfig`), ``evaluate``, ``predict``, ``explain``, ``export`` (each
with its config); ``SPEC`` is the task's :class:`~vislab.tasks.base.TaskSpec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.tasks import base
from vislab.tasks.classify.config import ClassifyConfig, EvalConfig, ExplainConfig, ModelConfig, PredictConfig
from vislab.tasks.classify.explain import explain
from vislab.tasks.classify.infer import evaluate, export, predict
from vislab.tasks.classify.task import ClassifyTask, setup, validate
from vislab.tasks.shared.export import ExportConfig, export_lines


def train(cfg: ClassifyConfig, callbacks: list | None = None, folder: str | None = None) -> Path:
    """Train a classifier; returns the run folder (see :func:`vislab.tasks.base.train`)."""
    return base.train(SPEC, cfg, callbacks, folder)


def _summary(s: dict[str, Any]) -> str:
    acc = s.get("test_acc", s.get("val_acc"))
    which = "test" if "test_acc" in s else "val"
    return f"done: {which} accuracy {acc:.4f} in {s.get('total_seconds', 0):.1f}s" if acc is not None else "done"


def _show_eval(cfg: EvalConfig, r: dict[str, Any]) -> list[str]:
    top5 = r.get("top5", r.get("top" + str(min(5, len(r["per_class"]["f1"])))) or 0)
    return [f"{cfg.split}: {r['n']} images  acc {r['acc']:.4f}  top5 {top5:.4f}  loss {r['loss']:.4f}  macro-F1 {r['macro_f1']:.4f}",
            f"written: {r['out']}/metrics.json, per_class.csv, confusion_matrix.png"]


def _show_predict(cfg: PredictConfig, r: dict[str, Any]) -> list[str]:
    lines = [f"{row['path']}: {row['label']} ({row['prob']:.3f})" for row in r["rows"][:10]]
    if len(r["rows"]) > 10:
        lines.append(f"... {len(r['rows']) - 10} more")
    lines.append(f"written: {r['out']}" + (f" (skipped {len(r['skipped'])} unreadable)" if r["skipped"] else ""))
    if cfg.annotate:
        lines.append(f"annotated images: {Path(r['out']).parent / 'annotated'}")
    return lines


def _show_explain(cfg: ExplainConfig, r: dict[str, Any]) -> list[str]:
    return [*(f"  {p}" for p in r["paths"]), f"written: {len(r['paths'])} picture(s) in {r['out']}"]


SPEC = base.TaskSpec(
    name="classify",
    config=ClassifyConfig,
    setup=setup,
    validate=validate,
    help="Image classification: train a model, evaluate it, predict on images, explain and export it.",
    train_help="""Train a classifier; results go to runs/classify/<name>/.

    \b
    Examples:
      vislab classify train                                  # small CNN on the bundled digits
      vislab classify train --data shapes --model resnet18 --epochs 5
      vislab classify train --data ./cifar10 --model resnet18 --nproc 2
      vislab classify train --config run.yaml --lr 0.1       # options override the file
      vislab classify train --resume runs/classify/exp       # continue a killed run
    """,
    monitor="val_acc",
    summary=_summary,
    report_files=("report.html", "curves.png", "confusion_matrix.png", "samples.png", "checkpoints/best.safetensors"),
    modes=(
        base.Mode("eval", EvalConfig, evaluate, _show_eval,
                  "Evaluate CHECKPOINT (a file or run folder) on a split: accuracy, top-5, per-class P/R/F1, confusion matrix."),
        base.Mode("predict", PredictConfig, predict, _show_predict,
                  "Predict classes of INPUTS (images, folders, globs) with CHECKPOINT; writes CSV or JSON."),
        base.Mode("explain", ExplainConfig, explain, _show_explain, """What does the network see? Filters, feature maps, Grad-CAM & co. and attributions for INPUTS.

    \b
    Examples:
      vislab classify explain runs/classify/exp cat.png
      vislab classify explain runs/classify/exp photos/ --methods gradcam,gradcam++,eigencam,layercam --target-class dog
      vislab classify explain runs/classify/exp a.png --methods feature_maps --layers features.1,features.3
    """),
        base.Mode("export", ExportConfig, export, export_lines, "Export CHECKPOINT to ONNX and/or TorchScript, each checked against the eager model."),
    ),
)

__all__ = ["SPEC", "ClassifyConfig", "ClassifyTask", "EvalConfig", "ExplainConfig", "ExportConfig", "ModelConfig", "PredictConfig",
           "evaluate", "explain", "export", "predict", "train"]

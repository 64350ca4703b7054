"""Pictures and ``report.html`` of a detection run: learning curves, and for the best checkpoint on the validation
split (from :func:`vislab.tasks.detect.infer.write_eval`) the COCO numbers, per-class AP, PR curves, the class
confusion at IoU 0.5 and sample predictions (``samples.png``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from vislab.report import html as H
from vislab.report.plots import plot_curves


def write_training_report(run_dir: Path, result: Any, final: dict[str, Any]) -> Path:
    curves = plot_curves(result.history, run_dir / "curves.png", title=f"{run_dir.name}: losses and COCO AP") if result.history else None
    sections = [("Learning curves", H.picture(curves))]
    metrics = run_dir / "val_metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        scalars = {k: v for k, v in m.items() if isinstance(v, int | float) and v != -1}  # -1: no objects of that size
        per = [{"class": c, "AP": v, **({"mask AP": m["mask_per_class"][c]} if "mask_per_class" in m else {})} for c, v in m["per_class"].items()]
        if (run_dir / "val_predictions.png").is_file():
            shutil.copyfile(run_dir / "val_predictions.png", run_dir / "samples.png")
        sections += [("Best checkpoint on the validation split (COCO)", H.kv_table(scalars)),
                     ("Per-class AP", H.table(per)),
                     ("Precision-recall curves (IoU 0.5)", H.picture(run_dir / "val_pr_curves.png")),
                     ("Detections by class (IoU >= 0.5, score >= 0.25; last row / column: background)", H.picture(run_dir / "val_confusion_matrix.png")),
                     ("Sample predictions (score >= 0.3)", H.picture(run_dir / "samples.png"))]
    return H.run_report(run_dir, f"vislab detect - {run_dir.name}", result, sections)

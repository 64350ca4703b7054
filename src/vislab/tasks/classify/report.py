"""The classification run's pictures and ``report.html``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vislab.data.classify.source import ImageSource
from vislab.engine.trainer import FitResult
from vislab.report import html as H
from vislab.report.plots import image_grid, plot_confusion, plot_curves


@torch.no_grad()
def sample_predictions(model: nn.Module, src: ImageSource, mean, std, device, precision, classes, n: int = 24, seed: int = 0):
    """Predict ``n`` evenly spread images of ``src``; returns (images HWC uint8, captions, colours)."""
    idx = torch.linspace(0, len(src) - 1, min(n, len(src))).round().long().unique()
    raw = torch.stack([src.get(int(i)) for i in idx])  # (n, C, H, W) uint8
    x = (raw.float() / 255 - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    x = x.to(device)
    if precision.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    model.eval()
    with precision.autocast():
        prob = model(x).float().softmax(1).cpu()
    conf, pred = prob.max(1)
    truth = src.labels[idx]
    caps = [f"{classes[p]} {c:.2f}\n(true {classes[t]})" for p, c, t in zip(pred.tolist(), conf.tolist(), truth.tolist(), strict=True)]
    cols = ["green" if p == t else "red" for p, t in zip(pred.tolist(), truth.tolist(), strict=True)]
    return [im.permute(1, 2, 0).numpy() for im in raw], caps, cols


def write_training_report(
    run_dir: Path, result: FitResult, test: dict[str, float], confmat: np.ndarray | None, sample_src: ImageSource | None, *,
    model: nn.Module, mean, std, device, precision, classes: list[str], per_class: dict[str, list[float]] | None,
) -> Path:
    """curves.png, confusion_matrix.png, samples.png and a self-contained report.html."""
    curves = plot_curves(result.history, run_dir / "curves.png", title=f"{run_dir.name}: learning curves")
    cm_png = plot_confusion(confmat, classes, run_dir / "confusion_matrix.png",
                            title=f"test confusion matrix (acc {test.get('test_acc', 0):.3f})") if confmat is not None else None
    samples = None
    if sample_src is not None and len(sample_src):
        imgs, caps, cols = sample_predictions(model, sample_src, mean, std, device, precision, classes)
        samples = image_grid(imgs, caps, run_dir / "samples.png", cols, title="sample predictions (green: right, red: wrong)")
    per_rows = []
    if per_class:
        per_rows = [{"class": c, "precision": p, "recall": r, "f1": f, "support": int(s)} for c, p, r, f, s in
                    zip(classes, per_class["precision"], per_class["recall"], per_class["f1"], per_class["support"], strict=True)]
    sections = [
        ("Learning curves", H.picture(curves)),
        ("Test confusion matrix", H.picture(cm_png)),
        ("Per-class metrics (test)", H.table(per_rows)),
        ("Sample predictions", H.picture(samples)),
    ]
    return H.run_report(run_dir, f"vislab classify - {run_dir.name}", result, sections)

"""The video run's pictures and ``report.html``: curves, confusion matrices (videos), per-class table, and a GIF of
sample test clips with their predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vislab.data.video.source import VideoSource
from vislab.data.video.stream import VideoStream
from vislab.engine.trainer import FitResult
from vislab.report import html as H
from vislab.report.plots import plot_confusion, plot_curves
from vislab.tasks.video.task import forward


@torch.no_grad()
def sample_clips_gif(model: nn.Module, src: VideoSource, stream_kw: dict[str, Any], classes: list[str], path: Path, n: int = 8,
                     device: Any = "cpu", precision: Any = None) -> Path:
    """A GIF of ``n`` test clips side by side, each captioned with its prediction (green: right, red: wrong)."""
    from PIL import Image, ImageDraw

    from vislab.data.video.io import write_gif

    idx = np.unique(np.linspace(0, len(src) - 1, min(n, len(src))).round().astype(int))
    sub = src.subset(idx)
    kw = {**stream_kw, "device": device, "rank": 0, "world": 1, "workers": 0}
    stream = VideoStream(sub, len(sub), train=False, eval_clips=1, **kw)
    batch = next(iter(stream.epoch(0)))
    model.eval()
    ctx = precision.autocast() if precision is not None else torch.autocast("cpu", enabled=False)
    with ctx:
        prob = forward(model, batch).float().softmax(1).cpu()
    conf, pred = prob.max(1)
    tiles = []
    for j, v in enumerate(idx.tolist()):
        ids = stream.indices(j, 0, 0)
        clip = np.asarray(sub.frames(j)[ids])
        clip = np.repeat(clip, 3, -1) if clip.shape[-1] == 1 else clip
        scale = max(1, 96 // clip.shape[1])
        ok = int(pred[j]) == int(sub.labels[j])
        frames = []
        for f in clip:
            im = Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
            canvas = Image.new("RGB", (im.width, im.height + 24), (0, 0, 0))
            canvas.paste(im, (0, 24))
            d = ImageDraw.Draw(canvas)
            d.text((2, 0), f"{classes[int(pred[j])]} {float(conf[j]):.2f}", fill=(0, 220, 0) if ok else (255, 60, 60))
            d.text((2, 11), f"true {classes[int(sub.labels[j])]}", fill=(200, 200, 200))
            frames.append(np.asarray(canvas))
        tiles.append(np.stack(frames))
    T = min(len(t) for t in tiles)
    grid = np.concatenate([t[:T] for t in tiles], axis=2)  # (T, h, sum w, 3)
    return write_gif(path, grid, fps=4)


def write_training_report(run_dir: Path, result: FitResult, final: dict[str, float], metrics: Any, src: VideoSource | None, *,
                          model: nn.Module, stream_kw: dict[str, Any], device: Any, precision: Any, classes: list[str]) -> Path:
    """curves.png, confusion_matrix.png (test videos), samples.gif and a self-contained report.html."""
    curves = plot_curves(result.history, run_dir / "curves.png", title=f"{run_dir.name}: learning curves")
    cm_png = per_rows = None
    if metrics is not None:
        cm_png = plot_confusion(metrics.video_confmat().numpy(), classes, run_dir / "confusion_matrix.png",
                                title=f"test videos (video acc {final.get('test_video_acc', 0):.3f}, clip acc {final.get('test_acc', 0):.3f})")
        per = metrics.per_class()
        per_rows = [{"class": c, "precision": p, "recall": r, "f1": f, "support": int(s)} for c, p, r, f, s in
                    zip(classes, per["precision"], per["recall"], per["f1"], per["support"], strict=True)]
    gif = sample_clips_gif(model, src, stream_kw, classes, run_dir / "samples.gif", device=device, precision=precision) if src is not None and len(src) else None
    sections = [("Learning curves", H.picture(curves)), ("Test confusion matrix (videos)", H.picture(cm_png)),
                ("Per-class metrics (test videos)", H.table(per_rows or [])), ("Sample test clips", H.picture(gif))]
    return H.run_report(run_dir, f"vislab video - {run_dir.name}", result, sections)

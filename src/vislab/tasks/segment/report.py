"""Pictures of a segmentation run: learning curves, pixel confusion matrix, image | truth | prediction overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.metrics.segmentation import SegmentationMetrics


def colorize(mask: np.ndarray, palette: list[tuple[int, int, int]] | list[list[int]], ignore_index: int = 255) -> np.ndarray:
    """``(H, W)`` class indices -> ``(H, W, 3)`` uint8 colours (ignored pixels white).

    Example:
        >>> colorize(np.array([[0, 1]]), [(0, 0, 0), (255, 0, 0)]).tolist()
        [[[0, 0, 0], [255, 0, 0]]]
    """
    lut = np.full((256, 3), 255, dtype=np.uint8)
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:256]
    lut[: len(pal)] = pal
    lut[ignore_index] = 255
    return lut[np.asarray(mask, dtype=np.uint8)]


def overlay(image: np.ndarray, mask: np.ndarray, palette, alpha: float = 0.5, ignore_index: int = 255) -> np.ndarray:
    """Blend ``(H, W, 3)`` uint8 ``image`` with the colours of ``mask`` (class 0 = background left clear)."""
    col = colorize(mask, palette, ignore_index).astype(np.float32)
    img = image.astype(np.float32)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, -1)
    a = np.where((np.asarray(mask) > 0)[..., None], alpha, 0.0)
    return (img * (1 - a) + col * a).round().clip(0, 255).astype(np.uint8)


@torch.no_grad()
def write_training_report(run_dir: Path, result: Any, metrics: SegmentationMetrics | None, src: Any,
                          model: torch.nn.Module, mean, std, device, n: int = 8) -> list[Path]:
    """curves.png, confusion_matrix.png + per_class.csv (when tested), samples.png (image, truth, prediction), report.html."""
    from vislab.core.io import atomic_write_text
    from vislab.report import html as H
    from vislab.report.plots import image_grid, plot_confusion, plot_curves

    written = [plot_curves(result.history, run_dir / "curves.png", title="segmentation: loss and mIoU")]
    per_rows: list[dict[str, Any]] = []
    if metrics is not None:
        s = metrics.compute()
        written.append(plot_confusion(metrics.confmat.numpy(), src.classes, run_dir / "confusion_matrix.png",
                                      title=f"pixel confusion matrix (test mIoU {s['miou']:.3f})"))
        per = metrics.per_class()
        rows = ["class,iou,dice,pixels"] + [f"{c},{i:.4f},{d:.4f},{int(p)}" for c, i, d, p in zip(src.classes, per["iou"], per["dice"], per["support"], strict=True)]
        atomic_write_text(run_dir / "per_class.csv", "\n".join(rows) + "\n")
        per_rows = [{"class": c, "iou": i, "dice": d, "pixels": int(p)} for c, i, d, p in zip(src.classes, per["iou"], per["dice"], per["support"], strict=True)]
    k = min(n, len(src))
    x = src.images[:k].float().div(255.0)
    xn = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    was = model.training
    model.eval()
    pred = model(xn.to(device)).float().argmax(1).cpu().numpy()
    model.train(was)
    imgs, caps = [], []
    for i in range(k):
        im = src.images[i].permute(1, 2, 0).numpy()
        im = np.repeat(im, 3, -1) if im.shape[-1] == 1 else im
        gt = src.masks[i].numpy()
        imgs += [im, overlay(im, gt, src.palette, 0.6, src.ignore_index), overlay(im, pred[i], src.palette, 0.6, src.ignore_index)]
        caps += [src.names[i][:14], "truth", "prediction"]
    written.append(image_grid(imgs, caps, run_dir / "samples.png", title="image | truth | prediction", cols=6))
    sections = [("Learning curves", H.picture(written[0])),
                ("Pixel confusion matrix (test)", H.picture(run_dir / "confusion_matrix.png" if metrics is not None else None)),
                ("Per-class IoU and Dice (test)", H.table(per_rows)),
                ("Samples: image | truth | prediction", H.picture(written[-1]))]
    written.append(H.run_report(run_dir, f"vislab segment - {run_dir.name}", result, sections))
    return written

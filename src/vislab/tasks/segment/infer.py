"""Segmentation inference: ``eval`` (mIoU and friends of a checkpoint on a split), ``predict`` (whole-image /
sliding-window prediction, flip TTA, CRF / superpixel refinement) and ``export``.

``predict`` writes, per input image, ``<stem>.png`` (palettised index PNG: pixel = class) and
``<stem>_overlay.png`` (colours blended on the image); with ``--masks DIR`` (ground-truth masks named
like the images) also ``per_image_iou.csv``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vislab.core import config as C
from vislab.core.errors import ConfigError, DataError
from vislab.core.io import atomic_write_text, read_image
from vislab.data.segment import SegBatchStream, SegDataConfig, SegSource, load_segmentation
from vislab.engine.evaluate import run_eval
from vislab.core.progress import Tracker, track
from vislab.ops.refine import crf_refine, slic_refine
from vislab.tasks.segment.config import SegEvalConfig, SegPredictConfig
from vislab.tasks.segment.task import TASK, SegmentTask
from vislab.tasks.shared.export import ExportConfig, export_checkpoint
from vislab.tasks.shared.inputs import expand_inputs, image_batch
from vislab.tasks.shared.model import load_for_inference


def data_config_of(state: dict[str, Any], data: str = "") -> SegDataConfig:
    """The data section a checkpoint was trained with (``data``: another dataset), at the checkpoint's image size."""
    dcfg = C.from_dict(SegDataConfig, state["config"]["data"])
    if data:
        dcfg = dataclasses.replace(dcfg, data=data, format="auto")
    return dataclasses.replace(dcfg, img_size=state["img_size"][0] if state["img_size"][0] == state["img_size"][1] else dcfg.img_size)


def check_compatible(src: SegSource, state: dict[str, Any]) -> None:
    if len(src.classes) != state["num_classes"]:
        raise DataError(f"dataset {src.name}: expected the checkpoint's {state['num_classes']} classes {state['classes']}, got {len(src.classes)} {src.classes}")
    if src.channels != state["channels"]:
        raise DataError(f"dataset {src.name}: expected {state['channels']}-channel images like the checkpoint, got {src.channels}")


def evaluate(cfg: SegEvalConfig) -> dict[str, Any]:
    """Evaluate a checkpoint on a split; writes metrics.json, per_class.csv and confusion_matrix.png."""
    from vislab.report.plots import plot_confusion

    model, state, device, precision = load_for_inference(cfg.checkpoint, TASK, cfg.device, cfg.precision)
    src = load_segmentation(data_config_of(state, cfg.data)).get(cfg.split)
    check_compatible(src, state)
    stream = SegBatchStream(src, cfg.batch_size, train=False, device=device, mean=state["mean"], std=state["std"],
                            channels_last=precision.channels_last)
    with Tracker(f"eval {cfg.split}", len(src)) as progress:
        metrics = run_eval(SegmentTask(state["num_classes"], "ce", None, state.get("ignore_index", 255)), model, stream, precision, progress=progress)
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / f"eval-{cfg.split}"
    out.mkdir(parents=True, exist_ok=True)
    scalars, per = metrics.compute(), metrics.per_class()
    atomic_write_text(out / "metrics.json", json.dumps({"split": cfg.split, "n": len(src), **scalars, "per_class": per}, indent=1))
    rows = ["class,iou,dice,precision,recall,pixels"] + [
        f"{c},{i:.4f},{d:.4f},{p:.4f},{r:.4f},{int(s)}"
        for c, i, d, p, r, s in zip(state["classes"], per["iou"], per["dice"], per["precision"], per["recall"], per["support"], strict=True)]
    atomic_write_text(out / "per_class.csv", "\n".join(rows) + "\n")
    plot_confusion(metrics.confmat.numpy(), state["classes"], out / "confusion_matrix.png", title=f"pixel confusion matrix ({cfg.split}, mIoU {scalars['miou']:.3f})")
    return {"out": str(out), "n": len(src), **scalars, "per_class": per}


def _windows(n: int, win: int, stride: int) -> list[int]:
    starts = list(range(0, max(n - win, 0) + 1, stride))
    if starts[-1] + win < n:
        starts.append(n - win)
    return starts


@torch.no_grad()
def predict_probs(model: torch.nn.Module, x: torch.Tensor, mode: str = "whole", window: tuple[int, int] | None = None,
                  overlap: float = 0.5, tta: bool = False) -> torch.Tensor:
    """Class probabilities ``(B, K, H, W)`` of normalised images ``x`` ``(B, C, H, W)``.

    ``sliding``: windows of ``window`` (clipped to the image) with ``overlap``; overlapping windows'
    probabilities are averaged. A window that covers the image gives the whole-image result.
    ``resize``: the image is resized to ``window`` and the probabilities back. ``tta``: mean with the
    flipped image's (flipped back) probabilities.
    """
    if tta:
        return 0.5 * (predict_probs(model, x, mode, window, overlap) + predict_probs(model, x.flip(-1), mode, window, overlap).flip(-1))
    h, w = x.shape[-2:]
    if mode == "whole" or window is None:
        return model(x).float().softmax(1)
    if mode == "resize":
        p = model(F.interpolate(x, size=window, mode="bilinear", align_corners=False)).float().softmax(1)
        return F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
    if not 0 <= overlap < 1:
        raise ConfigError(f"--overlap: expected a fraction in [0, 1), got {overlap}")
    wh, ww = min(window[0], h), min(window[1], w)
    sh, sw = max(1, round(wh * (1 - overlap))), max(1, round(ww * (1 - overlap)))
    acc = count = None
    for top in _windows(h, wh, sh):
        for left in _windows(w, ww, sw):
            p = model(x[..., top:top + wh, left:left + ww]).float().softmax(1)
            if acc is None:
                acc = x.new_zeros((x.shape[0], p.shape[1], h, w), dtype=torch.float32)
                count = x.new_zeros((1, 1, h, w), dtype=torch.float32)
            acc[..., top:top + wh, left:left + ww] += p
            count[..., top:top + wh, left:left + ww] += 1  # type: ignore[index]
    return acc / count  # type: ignore[operator]


def per_image_iou(pred: np.ndarray, gt: np.ndarray, k: int, ignore_index: int = 255) -> tuple[float, list[float]]:
    """mIoU and per-class IoU (NaN where a class is absent from both) of one image."""
    from vislab.metrics.segmentation import confusion_matrix, scores_from_confmat

    cm = confusion_matrix(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64)), k, ignore_index)
    iou = scores_from_confmat(cm)["iou"]
    return float(iou.nanmean()), iou.tolist()


def predict(cfg: SegPredictConfig) -> dict[str, Any]:
    """Masks for every input image: index PNG + overlay (+ per-image IoU CSV with ``--masks``)."""
    from PIL import Image

    from vislab.data.segment.folder import decode_mask, write_index_png
    from vislab.tasks.segment.report import overlay

    model, state, device, _ = load_for_inference(cfg.checkpoint, TASK, cfg.device, "fp32")
    model = model.float()
    files = expand_inputs(cfg.inputs)
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    k, palette, ign = state["num_classes"], [tuple(c) for c in state["palette"]], state.get("ignore_index", 255)
    win = (cfg.window, cfg.window) if cfg.window else tuple(state["img_size"])
    rows, csv = [], ["image,miou," + ",".join(f"iou_{c}" for c in state["classes"])]
    for f in track(files, "predict"):
        img = read_image(f, "L" if state["channels"] == 1 else "RGB")
        x = image_batch(img, state["mean"], state["std"])
        probs = predict_probs(model, x.to(device), cfg.mode, win, cfg.overlap, cfg.tta)[0].cpu().numpy()
        rgb = np.repeat(img, 3, -1) if img.shape[-1] == 1 else img
        if cfg.refine == "crf":
            probs = crf_refine(rgb, probs)
        elif cfg.refine == "slic":
            probs = slic_refine(rgb, probs)
        pred = probs.argmax(0).astype(np.uint8)
        write_index_png(pred, out / f"{f.stem}.png", palette)
        Image.fromarray(overlay(rgb, pred, palette, cfg.alpha, ign)).save(out / f"{f.stem}_overlay.png")
        row: dict[str, Any] = {"path": str(f), "mask": str(out / f"{f.stem}.png"),
                               "classes": {state["classes"][c]: int((pred == c).sum()) for c in np.unique(pred)}}
        if cfg.masks:
            cands = [p for p in Path(cfg.masks).glob(f"{f.stem}.*")]
            if not cands:
                raise DataError(f"image '{f}': expected a ground-truth mask '{Path(cfg.masks) / (f.stem + '.png')}', got none")
            gt = decode_mask(cands[0], "auto", k, None, ign)
            if gt.shape != pred.shape:
                raise DataError(f"mask '{cands[0]}': expected the size of its image {pred.shape[0]}x{pred.shape[1]}, got {gt.shape[0]}x{gt.shape[1]}")
            miou, ious = per_image_iou(pred, gt, k, ign)
            row["miou"] = miou
            csv.append(f"{f.name},{miou:.4f}," + ",".join("" if v != v else f"{v:.4f}" for v in ious))
        rows.append(row)
    if cfg.masks:
        atomic_write_text(out / "per_image_iou.csv", "\n".join(csv) + "\n")
    atomic_write_text(out / "predictions.json", json.dumps(rows, indent=1))
    return {"out": str(out), "rows": rows}


def export(cfg: ExportConfig) -> dict[str, Any]:
    """Write ONNX and/or TorchScript of a segmentation checkpoint and check each against the eager model."""
    return export_checkpoint(cfg, task=TASK, output_name="logits (B, K, H, W)", extra_meta=("palette",))

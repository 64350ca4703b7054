"""Segmentation inference: whole-image / sliding-window prediction, flip TTA, CRF / superpixel refinement, export.

``predict`` writes, per input image, ``<stem>.png`` (palettised index PNG: pixel = class) and
``<stem>_overlay.png`` (colours blended on the image); with ``--masks DIR`` (ground-truth masks named
like the images) also ``per_image_iou.csv``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vislab.core.config import opt
from vislab.core.device import resolve_device
from vislab.core.errors import ConfigError, DataError
from vislab.core.io import atomic_write_text, read_image
from vislab.tasks.classify_infer import ExportConfig


@dataclass
class SegPredictConfig:
    """``vislab segment predict``: masks for images."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "image files, folders or glob patterns", cli=False)
    out: str = opt("", "output folder (default: <run>/predict)")
    mode: str = opt("whole", "whole: the image at its size (fully convolutional); resize: at the training size; sliding: overlapping windows", choices=("whole", "resize", "sliding"))
    window: int = opt(0, "sliding-window size (0: the training image size)")
    overlap: float = opt(0.5, "sliding-window overlap fraction in [0, 1)")
    tta: bool = opt(False, "average with the horizontally flipped prediction")
    refine: str = opt("none", "post-processing: crf (mean-field dense CRF in torch) or slic (superpixel majority vote)", choices=("none", "crf", "slic"))
    masks: str = opt("", "folder of ground-truth masks (same stems) for per_image_iou.csv")
    alpha: float = opt(0.5, "overlay opacity")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))


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


def crf_refine(image: np.ndarray, probs: np.ndarray, iters: int = 5, theta_alpha: float = 6.0, theta_beta: float = 20.0,
               theta_gamma: float = 2.0, w_bilateral: float = 4.0, w_gaussian: float = 2.0, radius: int = 4) -> np.ndarray:
    """Mean-field inference of a dense CRF (Krähenbühl & Koltun, 2011), with the pairwise kernels cut at ``radius``.

    Unary: ``-log probs``; pairwise: Potts compatibility with an appearance kernel
    ``w_b exp(-|p_i-p_j|²/2θα² - |I_i-I_j|²/2θβ²)`` and a smoothness kernel ``w_g exp(-|p_i-p_j|²/2θγ²)``.
    Message passing is done exactly inside a ``(2r+1)²`` window (unfold), which keeps it in plain torch.

    Args:
        image: ``(H, W, 3)`` uint8.
        probs: ``(K, H, W)`` class probabilities.

    Returns:
        ``(K, H, W)`` refined probabilities.
    """
    img = torch.from_numpy(np.array(image, dtype=np.float32)).float().permute(2, 0, 1)[None]  # (1, 3, H, W)
    q = torch.from_numpy(np.array(probs, dtype=np.float32))[None]  # (1, K, H, W)
    unary = -q.clamp_min(1e-8).log()
    k, h, w = probs.shape
    d = 2 * radius + 1
    dy, dx = torch.meshgrid(torch.arange(-radius, radius + 1.0), torch.arange(-radius, radius + 1.0), indexing="ij")
    pos2 = (dy ** 2 + dx ** 2).reshape(1, d * d, 1)  # (1, D, 1)
    col = F.unfold(F.pad(img, [radius] * 4, mode="replicate"), d).view(1, 3, d * d, h * w)  # (1, 3, D, HW)
    diff2 = ((col - img.view(1, 3, 1, h * w)) ** 2).sum(1)  # (1, D, HW)
    kern = w_bilateral * torch.exp(-pos2 / (2 * theta_alpha**2) - diff2 / (2 * theta_beta**2)) + w_gaussian * torch.exp(-pos2 / (2 * theta_gamma**2))
    kern[:, d * d // 2] = 0  # no message to itself
    valid = F.unfold(F.pad(torch.ones(1, 1, h, w), [radius] * 4), d).view(1, d * d, h * w)
    kern = kern * valid
    for _ in range(iters):
        nb = F.unfold(F.pad(q, [radius] * 4), d).view(1, k, d * d, h * w)  # (1, K, D, HW)
        msg = (nb * kern[:, None]).sum(2).view(1, k, h, w)  # sum_j k(i, j) Q_j(l)
        pair = msg.sum(1, keepdim=True) - msg  # Potts: penalty from neighbours with another label
        q = (-unary - pair).softmax(1)
    return q[0].numpy()


def slic_refine(image: np.ndarray, probs: np.ndarray, n_segments: int = 0, compactness: float = 10.0) -> np.ndarray:
    """Superpixel voting: every SLIC superpixel takes the class of its mean probability.

    Args:
        image: ``(H, W, 3)`` uint8.
        probs: ``(K, H, W)``.
        n_segments: superpixels (0: one per ~30 pixels).

    Returns:
        ``(K, H, W)`` probabilities, constant inside each superpixel.
    """
    from skimage.segmentation import slic

    k, h, w = probs.shape
    seg = slic(image, n_segments=n_segments or max(4, h * w // 30), compactness=compactness, start_label=0)
    flat = seg.reshape(-1)
    n = int(flat.max()) + 1
    sums = np.zeros((n, k))
    np.add.at(sums, flat, probs.reshape(k, -1).T)
    mean = sums / np.maximum(np.bincount(flat, minlength=n), 1)[:, None]
    return mean[flat].T.reshape(k, h, w)


def per_image_iou(pred: np.ndarray, gt: np.ndarray, k: int, ignore_index: int = 255) -> tuple[float, list[float]]:
    """mIoU and per-class IoU (NaN where a class is absent from both) of one image."""
    from vislab.metrics.segmentation import confusion_matrix, scores_from_confmat

    cm = confusion_matrix(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64)), k, ignore_index)
    iou = scores_from_confmat(cm)["iou"]
    return float(iou.nanmean()), iou.tolist()


def predict(cfg: SegPredictConfig) -> dict[str, Any]:
    """Masks for every input image: index PNG + overlay (+ per-image IoU CSV with ``--masks``)."""
    from vislab.data.segmentation_formats import decode_mask, write_index_png
    from vislab.engine.checkpoint import load_model
    from vislab.tasks.classify_infer import expand_inputs
    from vislab.tasks.segment_report import overlay

    model, state = load_model(cfg.checkpoint, task="segment")
    files = expand_inputs(cfg.inputs)
    device = resolve_device(cfg.device)
    model = model.to(device).float()
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    k, palette, ign = state["num_classes"], [tuple(c) for c in state["palette"]], state.get("ignore_index", 255)
    mean = torch.tensor(state["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(state["std"]).view(1, -1, 1, 1)
    win = (cfg.window, cfg.window) if cfg.window else tuple(state["img_size"])
    rows, csv = [], ["image,miou," + ",".join(f"iou_{c}" for c in state["classes"])]
    for f in files:
        img = read_image(f, "L" if state["channels"] == 1 else "RGB")
        x = (torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float() / 255.0 - mean) / std
        probs = predict_probs(model, x.to(device), cfg.mode, win, cfg.overlap, cfg.tta)[0].cpu().numpy()
        rgb = np.repeat(img, 3, -1) if img.shape[-1] == 1 else img
        if cfg.refine == "crf":
            probs = crf_refine(rgb, probs)
        elif cfg.refine == "slic":
            probs = slic_refine(rgb, probs)
        pred = probs.argmax(0).astype(np.uint8)
        write_index_png(pred, out / f"{f.stem}.png", palette)
        from PIL import Image

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
    from vislab.tasks.classify_infer import export_checkpoint

    return export_checkpoint(cfg, task="segment", output_name="logits (B, K, H, W)", extra_meta=("palette",))

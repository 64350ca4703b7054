"""Detection: evaluate a checkpoint, predict on images / folders / videos (boxes drawn, COCO-JSON out).

Mask models (``maskrcnn_*``) are evaluated on the split's instance masks too (``mask_map``, ``mask_map50``, ...
beside the box metrics) and predict masks: drawn semi-transparent, one colour per instance, under the boxes,
and written to ``detections.json`` as COCO RLE ``segmentation``.

Export lives in :mod:`vislab.tasks.detect.export`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vislab.core import config as C
from vislab.core.errors import DataError
from vislab.core.io import IMAGE_EXTENSIONS, atomic_write_text
from vislab.data.detect import DetDataConfig, DetSplit, DetStream, load_splits
from vislab.engine.evaluate import run_eval
from vislab.core.progress import Tracker
from vislab.metrics.detection import MASK_STAT_NAMES, STAT_NAMES
from vislab.report.plots import plot_confusion, plot_pr_curves
from vislab.tasks.detect.config import DetEvalConfig, DetPredictConfig
from vislab.tasks.detect.task import TASK, DetectTask
from vislab.tasks.shared.inputs import VIDEO_SUFFIXES, expand_inputs, normalize
from vislab.tasks.shared.model import load_for_inference


def prepare(x: torch.Tensor, mean, std, device) -> torch.Tensor:
    """``(B, 3, S, S)`` pixels in [0, 255] (uint8 or float) -> normalised float on ``device``."""
    return normalize(x.to(device).float() / 255, mean, std)


def evaluate_split(model: nn.Module, split: DetSplit, device, mean, std, batch_size: int = 64, rank: int = 0, world: int = 1,
                   progress: Tracker | None = None) -> dict[str, Any]:
    """Full COCO result (see :func:`~vislab.metrics.detection.coco_evaluate`) of ``model`` on ``split``; with several
    processes each evaluates its share of the images and the detections are gathered."""
    stream = DetStream(split, batch_size, train=False, device=device, mean=mean, std=std, rank=rank, world=world)
    return run_eval(DetectTask(split.classes), model, stream, progress=progress).compute_full()


PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60)]


def draw_boxes(img: np.ndarray, boxes, labels, scores, classes: list[str], scale: int = 1, masks=None, alpha: float = 0.45) -> np.ndarray:
    """``img (H, W, 3)`` uint8 with boxes and "class score" captions drawn (upscaled by ``scale``); ``masks``
    ``(N, H, W)`` (binary, or probabilities cut at 0.5) are blended in first, one colour per instance.

    Example:
        >>> img = np.zeros((8, 8, 3), np.uint8); m = np.zeros((1, 8, 8), bool); m[0, 2:4, 2:4] = True
        >>> out = draw_boxes(img, [[1, 1, 6, 6]], [0], [0.9], ["a"], masks=m)
        >>> out[3, 3].tolist() != [0, 0, 0], out[7, 7].tolist()
        (True, [0, 0, 0])
    """
    import cv2

    out = np.ascontiguousarray(cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else img.copy())
    palette = PALETTE
    for k, m in enumerate(np.asarray(masks) if masks is not None else []):
        m = (m >= 0.5) if m.dtype.kind == "f" else m.astype(bool)
        if scale > 1:
            m = m.repeat(scale, 0).repeat(scale, 1)
        col = np.array(palette[(k + 3) % len(palette)], np.float32)
        out[m] = (out[m] * (1 - alpha) + col * alpha).round().astype(np.uint8)
    for b, c, s in zip(np.asarray(boxes).tolist(), np.asarray(labels).tolist(), np.asarray(scores).tolist(), strict=True):
        col = palette[int(c) % len(palette)]
        p0, p1 = (int(b[0] * scale), int(b[1] * scale)), (int(b[2] * scale), int(b[3] * scale))
        cv2.rectangle(out, p0, p1, col, max(1, scale // 2))
        name = classes[int(c)] if 0 <= c < len(classes) else str(c)
        cv2.putText(out, f"{name} {s:.2f}", (p0[0], max(8, p0[1] - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.3 + 0.05 * scale, col, 1, cv2.LINE_AA)
    return out


def write_eval(out: Path, full: dict[str, Any], split: DetSplit, model: nn.Module, device, mean, std, prefix: str = "val") -> dict[str, float]:
    """metrics.json, per_class.csv, pr_curves.png, confusion_matrix.png and predictions.png (first 8 images) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    scalars = {n: full[n] for n in STAT_NAMES + MASK_STAT_NAMES if n in full}
    extra = {"mask_per_class": full["mask"]["per_class"]} if "mask" in full else {}
    atomic_write_text(out / f"{prefix}_metrics.json", json.dumps({"split": prefix, "n_images": len(split), **scalars, "per_class": full["per_class"], **extra}, indent=1))
    atomic_write_text(out / f"{prefix}_per_class.csv", "class,ap\n" + "".join(f"{c},{v:.4f}\n" for c, v in full["per_class"].items()))
    plot_pr_curves(full, split.classes, out / f"{prefix}_pr_curves.png")
    if "confusion" in full:
        plot_confusion(full["confusion"], [*split.classes, "background"], out / f"{prefix}_confusion_matrix.png",
                       title=f"{prefix}: detections by class (IoU >= 0.5, score >= 0.25)")
    with torch.no_grad():
        preds = model.eval()(prepare(split.images[:8], mean, std, device))
    tiles = []
    for i, p in enumerate(preds):
        k = (p["scores"] > 0.3).cpu()
        tiles.append(draw_boxes(split.images[i].permute(1, 2, 0).numpy(), p["boxes"].cpu()[k], p["labels"].cpu()[k], p["scores"].cpu()[k], split.classes,
                                scale=max(1, 256 // split.images.shape[-1]), masks=p["masks"].cpu()[k].numpy() if "masks" in p else None))
    if tiles:
        from PIL import Image

        Image.fromarray(np.concatenate(tiles, 1)).save(out / f"{prefix}_predictions.png")
    return scalars


def evaluate(cfg: DetEvalConfig) -> dict[str, Any]:
    """COCO metrics of a checkpoint on a split; writes metrics, per-class AP and PR curves."""
    model, state, device, _ = load_for_inference(cfg.checkpoint, TASK, cfg.device, "fp32")
    dcfg = C.from_dict(DetDataConfig, state["config"]["data"])
    if cfg.data:
        dcfg = dataclasses.replace(dcfg, data=cfg.data, val_data="", det_format="auto")
    tr, va = load_splits(dcfg, masks=getattr(model, "needs_masks", False))
    split = tr if cfg.split == "train" else va
    if split is None:
        raise DataError(f"dataset {dcfg.data}: expected a val split, got none (use --split train or a --val-split > 0 at training)")
    if split.classes != state["classes"]:
        raise DataError(f"dataset {dcfg.data}: expected the checkpoint's classes {state['classes']}, got {split.classes}")
    with Tracker(f"eval {cfg.split}", len(split)) as progress:
        full = evaluate_split(model, split, device, state["mean"], state["std"], cfg.batch_size, progress=progress)
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / f"eval-{cfg.split}"
    scalars = write_eval(out, full, split, model, device, state["mean"], state["std"], prefix=cfg.split)
    return {"out": str(out), "n": len(split), **scalars, "per_class": full["per_class"],
            **({"mask_per_class": full["mask"]["per_class"]} if "mask" in full else {})}


def detect_array(model: nn.Module, img: np.ndarray, state: dict[str, Any], device, score_thresh: float) -> dict[str, np.ndarray]:
    """Detections on ``img (H, W, 3)`` uint8, in its own pixel coordinates (mask models: also ``masks (N, H, W)`` bool)."""
    return detect_batch(model, [img], state, device, score_thresh)[0]


@torch.no_grad()
def detect_batch(model: nn.Module, imgs, state: dict[str, Any], device, score_thresh: float) -> list[dict[str, np.ndarray]]:
    """:func:`detect_array` of each ``(H, W, 3)`` uint8 image in ``imgs`` (sizes may differ), in one forward pass."""
    s = state["img_size"]
    xs = [F.interpolate(torch.from_numpy(np.array(img, dtype=np.uint8, order="C")).permute(2, 0, 1)[None].float(), size=tuple(s),
                        mode="bilinear", antialias=True, align_corners=False).clamp(0, 255) for img in imgs]
    preds = model(prepare(torch.cat(xs), state["mean"], state["std"], device))
    outs = []
    for img, p in zip(imgs, preds, strict=True):
        h, w = img.shape[:2]
        keep = p["scores"] >= score_thresh
        scale = torch.tensor([w / s[1], h / s[0]] * 2)
        out = {"boxes": (p["boxes"][keep].cpu().float() * scale).numpy(), "scores": p["scores"][keep].cpu().float().numpy(),
               "labels": p["labels"][keep].cpu().numpy()}
        if "masks" in p:
            m = p["masks"][keep].cpu().float()[:, None]
            out["masks"] = (F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)[:, 0] >= 0.5).numpy() if len(m) else np.zeros((0, h, w), bool)
        outs.append(out)
    return outs


def predict(cfg: DetPredictConfig) -> dict[str, Any]:
    """Detect objects in images and videos (frame by frame); writes ``detections.json`` (COCO results with
    ``file_name``/``frame`` and class names; mask models: RLE ``segmentation``) and, with ``draw``, the pictures /
    videos with the boxes (and masks): H.264 ``.mp4`` at the input's frame rate (10 when it states none)."""
    import contextlib

    from vislab.core.io import read_image
    from vislab.data.video.io import FOLDER_FPS, VideoWriter, iter_frames, video_info
    from vislab.metrics.detection import detections_to_coco, encode_masks

    model, state, device, _ = load_for_inference(cfg.checkpoint, TASK, cfg.device, "fp32")
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    classes = state["classes"]
    results, written = [], []
    files = expand_inputs(cfg.inputs, IMAGE_EXTENSIONS + VIDEO_SUFFIXES, "images or videos")
    with Tracker("predict", sum(_frames(f) for f in files), unit="images / frames") as progress:
        for k, f in enumerate(files, 1):
            if f.suffix.lower() in VIDEO_SUFFIXES:
                dst = out / f"{f.stem}_boxes.mp4"
                frames = iter_frames(f)  # a bad video is a one-line DataError here, before anything is written
                drawn = VideoWriter(dst, video_info(f).fps or FOLDER_FPS) if cfg.draw else contextlib.nullcontext()
                with contextlib.closing(frames), drawn as writer:
                    for frame_no, rgb in enumerate(frames):
                        d = detect_array(model, rgb, state, device, cfg.score_thresh)
                        for r in detections_to_coco(k, d["boxes"], d["scores"], d["labels"], encode_masks(d["masks"]) if "masks" in d else None):
                            results.append({**r, "file_name": str(f), "frame": frame_no, "category": classes[r["category_id"] - 1]})
                        if writer is not None:
                            writer.write(draw_boxes(rgb, d["boxes"], d["labels"], d["scores"], classes, masks=d.get("masks")))
                        progress.advance()
                if cfg.draw:
                    written.append(str(dst))
                continue
            img = read_image(f, "RGB")
            d = detect_array(model, img, state, device, cfg.score_thresh)
            for r in detections_to_coco(k, d["boxes"], d["scores"], d["labels"], encode_masks(d["masks"]) if "masks" in d else None):
                results.append({**r, "file_name": str(f), "category": classes[r["category_id"] - 1]})
            if cfg.draw:
                from PIL import Image

                dst = out / f"{f.stem}_boxes.png"
                Image.fromarray(draw_boxes(img, d["boxes"], d["labels"], d["scores"], classes, scale=max(1, 256 // max(img.shape[:2])), masks=d.get("masks"))).save(dst)
                written.append(str(dst))
            progress.advance()
    atomic_write_text(out / "detections.json", json.dumps(results, indent=0))
    return {"out": str(out), "detections": results, "written": written}


def _frames(path: Path) -> int:
    """How many pictures ``path`` holds: 1 for an image, a video's frame count (see :func:`~vislab.data.video.io.video_info`;
    a bad video is a one-line DataError)."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        return 1
    from vislab.data.video.io import video_info

    return max(video_info(path).frames, 0)

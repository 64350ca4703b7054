"""Object detection in a training run: the trainer hooks, the detector, and the job's setup and final evaluation.

Data (generated shapes / digits, COCO, YOLO, VOC; resized splits in memory and their batches) lives in
:mod:`vislab.data.detect`; evaluation, prediction and drawing in :mod:`vislab.tasks.detect.infer`.
Instance masks are carried only for models that need them (registered with ``masks=True``: ``maskrcnn_*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vislab.core import config as C
from vislab.core.errors import DataError
from vislab.data.detect import DetBatch, DetSplit, DetStream, load_splits
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import FitResult, Trainer
from vislab.metrics.detection import DetectionMetrics
from vislab.models.registry import MODELS
from vislab.tasks.base import TrainJob, check_all
from vislab.tasks.detect.config import DetectConfig, DetModelConfig
from vislab.tasks.shared.model import build_registered

TASK = "detect"


class DetectTask:
    """Detector losses (the model computes them from targets), COCO metrics; the best checkpoint is the one with the
    highest box AP (mask AP for mask models)."""

    def __init__(self, classes: list[str], masks: bool = False):
        self.classes = classes
        self.monitor = "val_mask_map" if masks else "val_map"

    def train_step(self, model: nn.Module, batch: DetBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # The losses are means over the batch's positives; times the image count -> the sum the trainer expects.
        losses = model(batch.x, batch.y)
        return sum(v.float() for v in losses.values()) * len(batch), {}

    def new_metrics(self) -> DetectionMetrics:
        return DetectionMetrics(self.classes)

    def eval_step(self, model: nn.Module, batch: DetBatch, metrics: DetectionMetrics) -> None:
        metrics.update(model(batch.x), batch.y, batch.sizes, tuple(batch.x.shape[-2:]))  # scored at the original image sizes


def build_model(mcfg: DetModelConfig, num_classes: int, img_size: int) -> tuple[nn.Module, dict[str, Any]]:
    """The detector and the arguments that rebuild it from a checkpoint (those of these settings its builder takes:
    ``yolo_tiny`` its backbone, width and suppression; the torchvision ones their input size...)."""
    wanted = {"num_classes": num_classes, "score_thresh": mcfg.score_thresh, "nms_iou": mcfg.nms_iou, "max_det": mcfg.max_det,
              "img_size": img_size, "backbone": mcfg.backbone, "width": mcfg.width, "nms": mcfg.nms}
    return build_registered(mcfg.model, TASK, wanted)


def needs_masks(model: str) -> bool:
    """Whether the registered detector ``model`` trains on instance masks (registered with ``masks=True``).

    Example:
        >>> needs_masks("maskrcnn_tiny"), needs_masks("yolo_tiny")
        (True, False)
    """
    return bool(MODELS.get(model).meta.get("masks", False))


def validate(cfg: DetectConfig) -> None:
    """Detection's own checks (the shared ranges: :func:`vislab.tasks.base.validate_train`)."""
    d, m = cfg.data, cfg.model
    check_all([(d.img_size >= 32, "--img-size", ">= 32", d.img_size), (0 < m.nms_iou <= 1, "--nms-iou", "in (0, 1]", m.nms_iou)])


def setup(cfg: DetectConfig, ctx: WorkerContext) -> DetectJob:
    """Data, detector (with its start weights), streams and hooks of a detection run in this process."""
    tc, dist, precision = cfg.train, ctx.dist, ctx.precision
    masks = needs_masks(cfg.model.model)
    tr, va = load_splits(cfg.data, masks=masks)
    n_obj = sum(len(t["labels"]) for t in tr.targets)
    if n_obj == 0:
        raise DataError(f"dataset {tr.name or cfg.data.data}: expected annotated objects in the training images, got none in {len(tr)} images")
    weights = None
    if cfg.model.weights:
        from vislab.tasks.shared.weights import read_weights

        weights = read_weights(cfg.model.weights)
    mean, std = (list(weights.mean), list(weights.std)) if weights is not None and weights.mean and weights.std else tr.stats()
    common = {"device": ctx.device, "mean": mean, "std": std, "rank": dist.rank, "world": dist.world, "channels_last": precision.channels_last}
    train = DetStream(tr, cfg.data.batch_size, train=True, augment=cfg.data.augment, seed=tc.seed, **common)
    val = DetStream(va, cfg.data.eval_batch(), train=False, **common) if va is not None and len(va) else None
    torch.manual_seed(tc.seed)
    model, model_args = build_model(cfg.model, len(tr.classes), cfg.data.img_size)
    report = None
    if weights is not None:
        from vislab.tasks.shared.weights import load_into

        report = load_into(model, weights)
    ckpt_state = {"task": TASK, "model": cfg.model.model, "model_args": model_args, "num_classes": len(tr.classes), "classes": tr.classes,
                  "mean": list(mean), "std": list(std), "img_size": [cfg.data.img_size] * 2, "channels": 3, "config": C.to_dict(cfg)}
    if report is not None:
        ckpt_state["weights"] = report.as_dict(limit=20)
    log = [f"vislab detect: {cfg.model.model} on {tr.name} ({len(tr)} train images, {n_obj} objects, "
           f"{len(va) if va else 0} val, {len(tr.classes)} classes, {cfg.data.img_size}px) | {ctx.device} {precision.name} -> {ctx.run_dir}",
           *(report.lines() if report is not None else [])]
    return DetectJob(DetectTask(tr.classes, masks=masks), model, train, val, ckpt_state, log,
                     cfg=cfg, ctx=ctx, val_split=va, mean=list(mean), std=list(std))


@dataclass(kw_only=True)
class DetectJob(TrainJob):
    """A detection run: the full COCO evaluation of the best checkpoint on the validation split, with its pictures."""

    val_split: DetSplit | None
    mean: list[float]
    std: list[float]

    def finish(self, trainer: Trainer, model: nn.Module, result: FitResult) -> dict[str, Any]:
        from vislab.engine.checkpoint import load_best
        from vislab.tasks.detect.infer import evaluate_split, write_eval

        if self.val is None:
            return {}
        ctx = self.ctx
        best = load_best(model, ctx.run_dir).eval()
        full = evaluate_split(best, self.val_split, ctx.device, self.mean, self.std, self.cfg.data.eval_batch(), ctx.dist.rank, ctx.dist.world)
        if not ctx.dist.is_main:
            return {}
        final = write_eval(ctx.run_dir, full, self.val_split, best, ctx.device, self.mean, self.std, prefix="val")
        return {f"final_val_{k}": v for k, v in final.items()}

    def report(self, trainer: Trainer, model: nn.Module, result: FitResult, final: dict[str, Any]) -> None:
        from vislab.tasks.detect.report import write_training_report

        write_training_report(self.ctx.run_dir, result, final)

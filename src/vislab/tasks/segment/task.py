"""Semantic segmentation in a training run: the trainer hooks, the model, and the job's setup, test and report.

Evaluation, prediction (whole image, sliding window, flip TTA, CRF / superpixel refinement) and export live in
:mod:`vislab.tasks.segment.infer`; pictures in :mod:`vislab.tasks.segment.report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vislab.core import config as C
from vislab.core.errors import ConfigError
from vislab.data.segment import SegBatch, SegBatchStream, SegSplits, load_segmentation
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import FitResult, Trainer
from vislab.losses.segmentation import build_loss
from vislab.metrics.segmentation import SegmentationMetrics
from vislab.tasks.base import TrainJob, check_all
from vislab.tasks.segment.config import SegmentConfig, SegModelConfig
from vislab.tasks.shared.model import build_registered, check_input_size, resolve_stem

TASK = "segment"


class SegmentTask:
    """Per-pixel loss summed over images; confusion-matrix metrics (mIoU monitored)."""

    monitor = "val_miou"

    def __init__(self, num_classes: int, loss: str = "ce", class_weights: list[float] | None = None, ignore_index: int = 255,
                 label_smoothing: float = 0.0, focal_gamma: float = 2.0):
        if class_weights and len(class_weights) != num_classes:
            raise ConfigError(f"--class-weights: expected {num_classes} weights (one per class), got {len(class_weights)}")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.loss_fn = build_loss(loss, class_weights or None, ignore_index, label_smoothing, focal_gamma)
        self.eval_loss = build_loss(loss, class_weights or None, ignore_index, 0.0, focal_gamma)

    def train_step(self, model: nn.Module, batch: SegBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = model(batch.x)  # (b, K, H, W)
        return self.loss_fn(logits.float(), batch.y).sum(), {}

    def new_metrics(self) -> SegmentationMetrics:
        return SegmentationMetrics(self.num_classes, self.ignore_index, device="cpu")

    def eval_step(self, model: nn.Module, batch: SegBatch, metrics: SegmentationMetrics) -> None:
        logits = model(batch.x).float()
        metrics.update(logits.argmax(1).cpu(), batch.y.cpu(), self.eval_loss(logits, batch.y).sum().cpu())


def build_model(mcfg: SegModelConfig, num_classes: int, in_chans: int, size: tuple[int, int]) -> tuple[nn.Module, dict[str, Any]]:
    """The model and the arguments that rebuild it from a checkpoint (only those its builder takes)."""
    wanted = {"num_classes": num_classes, "in_chans": in_chans, "stem": resolve_stem(mcfg.stem, size), "width": mcfg.width,
              "depth": mcfg.depth, "upsample": mcfg.upsample, "attention": mcfg.attention, "drop_rate": mcfg.drop_rate}
    if mcfg.encoder:
        wanted["encoder"] = mcfg.encoder
    model, args = build_registered(mcfg.model, TASK, wanted, required=("encoder",) if mcfg.encoder else ())
    check_input_size(model, mcfg.model, in_chans, size)
    return model, args


def validate(cfg: SegmentConfig) -> None:
    """Segmentation's own checks (the shared ranges: :func:`vislab.tasks.base.validate_train`)."""
    d, m = cfg.data, cfg.model
    check_all([(0 <= d.ignore_index <= 255, "--ignore-index", "in [0, 255]", d.ignore_index),
               (m.width >= 1 and m.depth >= 1, "--width/--depth", ">= 1", (m.width, m.depth))])
    build_loss(m.loss)  # a bad --loss fails before anything is written


def setup(cfg: SegmentConfig, ctx: WorkerContext) -> SegmentJob:
    """Data, model, streams and hooks of a segmentation run in this process."""
    tc, dist, precision = cfg.train, ctx.dist, ctx.precision
    splits = load_segmentation(cfg.data)
    tr = splits.train
    mean, std = tr.stats()
    common = dict(device=ctx.device, mean=mean, std=std, rank=dist.rank, world=dist.world, channels_last=precision.channels_last)
    train = SegBatchStream(tr, cfg.data.batch_size, train=True, augment=cfg.data.augment, seed=tc.seed, **common)
    val = SegBatchStream(splits.val, cfg.data.eval_batch(), train=False, **common) if splits.val is not None and len(splits.val) else None
    torch.manual_seed(tc.seed)
    k = len(tr.classes)
    model, model_args = build_model(cfg.model, k, tr.channels, tr.size)
    ckpt_state = {"task": TASK, "model": cfg.model.model, "model_args": model_args, "num_classes": k, "classes": tr.classes,
                  "palette": [list(c) for c in tr.palette], "ignore_index": tr.ignore_index, "mean": list(mean), "std": list(std),
                  "img_size": list(tr.size), "channels": tr.channels, "config": C.to_dict(cfg)}
    hooks = SegmentTask(k, cfg.model.loss, list(cfg.model.class_weights), tr.ignore_index, tc.label_smoothing, cfg.model.focal_gamma)
    log = [f"vislab segment: {cfg.model.model} on {tr.name} ({len(tr)} train, {len(splits.val) if splits.val else 0} val, "
           f"{len(splits.test) if splits.test else 0} test, {k} classes, {tr.size[0]}x{tr.size[1]}x{tr.channels}) | "
           f"{ctx.device} {precision.name} | loss {cfg.model.loss} | {dist.world} process(es) -> {ctx.run_dir}"]
    return SegmentJob(hooks, model, train, val, ckpt_state, log, cfg=cfg, ctx=ctx, splits=splits, common=common)


@dataclass(kw_only=True)
class SegmentJob(TrainJob):
    """A segmentation run: test on the best checkpoint, pictures."""

    splits: SegSplits
    common: dict[str, Any]
    test_metrics: Any = None

    def finish(self, trainer: Trainer, model: nn.Module, result: FitResult) -> dict[str, Any]:
        test = self.splits.test
        stream = SegBatchStream(test, self.cfg.data.eval_batch(), train=False, **self.common) if test is not None and len(test) else None
        self.test_metrics, out = self.test_best(trainer, model, stream)
        return out

    def report(self, trainer: Trainer, model: nn.Module, result: FitResult, final: dict[str, Any]) -> None:
        from vislab.tasks.segment.report import write_training_report

        s = self.splits
        write_training_report(self.ctx.run_dir, result, self.test_metrics, s.test or s.val or s.train, self.best,
                              self.common["mean"], self.common["std"], self.ctx.device)

"""Semantic segmentation: configs, the task hooks the trainer calls, and train / eval.

Prediction, refinement and export live in :mod:`vislab.tasks.segment_infer`; pictures in
:mod:`vislab.tasks.segment_report`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vislab.core import config as C
from vislab.core.config import opt
from vislab.core.device import resolve_device, resolve_precision
from vislab.core.errors import ConfigError, DataError, ModelError
from vislab.models.registry import MODELS
from vislab.data.segmentation import (
    SegBatch,
    SegBatchStream,
    SegDataConfig,
    SegSource,
    image_stats,
    load_segmentation,
)
from vislab.engine import distributed as D
from vislab.engine.config import RunConfig, TrainConfig
from vislab.engine.trainer import Trainer
from vislab.metrics.segmentation import SegmentationMetrics
from vislab.models.seg_common import ATTENTION, UPSAMPLE
from vislab.tasks.seg_losses import build_loss

TASK = "segment"


@dataclass
class SegModelConfig:
    """Which network, and the loss it is trained with."""

    model: str = opt("unet", "segmentation model: unet, unet_residual, unet_dense, attention_unet, segnet, fcn8s/16s/32s, deeplabv3, deeplabv3plus, pspnet")
    encoder: str = opt("", "registry classifier used as the encoder (e.g. resnet18, small_cnn); '' = the model's default (U-Nets: their own)")
    stem: str = opt("auto", "encoder stem: cifar (small images), imagenet, or auto (cifar up to 64 px)", choices=("auto", "cifar", "imagenet"))
    width: int = opt(32, "U-Net family: channels of the first stage")
    depth: int = opt(4, "U-Net family: pooling steps of the own encoder")
    upsample: str = opt("bilinear", "U-Net family decoder upsampling", choices=UPSAMPLE)
    attention: str = opt("none", "U-Net family: channel/spatial attention after each block", choices=ATTENTION)
    drop_rate: float = opt(0.0, "dropout before the classifier")
    loss: str = opt("ce", "loss: ce, dice, focal, tversky, lovasz, or a weighted sum like ce+dice or 0.5*ce+lovasz")
    class_weights: list[float] = opt([], "per-class weights of ce / focal, comma-separated (empty: equal)")
    focal_gamma: float = opt(2.0, "focusing parameter of the focal loss")


@dataclass
class SegmentConfig:
    """``vislab segment train``: everything a training run is made of."""

    data: SegDataConfig = field(default_factory=SegDataConfig)
    model: SegModelConfig = field(default_factory=SegModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, optimizer="adamw", lr=3e-3, weight_decay=1e-4))
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class SegEvalConfig:
    """``vislab segment eval``: mIoU and friends of a checkpoint on a split."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    data: str = opt("", "dataset (default: the one the checkpoint was trained on)")
    split: str = opt("test", "split to evaluate", choices=("train", "val", "test"))
    batch_size: int = opt(64, "batch size")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    precision: str = opt("auto", "numeric precision", choices=("auto", "fp32", "bf16", "fp16"))
    out: str = opt("", "folder for metrics.json, per_class.csv, confusion_matrix.png (default: <run>/eval-<split>)")


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


def resolve_stem(stem: str, size: tuple[int, int]) -> str:
    return ("cifar" if max(size) <= 64 else "imagenet") if stem == "auto" else stem


def build_model(mcfg: SegModelConfig, num_classes: int, in_chans: int, size: tuple[int, int]) -> tuple[nn.Module, dict[str, Any]]:
    """The model and the arguments that rebuild it from a checkpoint (only those its builder takes)."""
    entry = MODELS.get(mcfg.model)
    if entry.task != TASK:
        raise ModelError(f"--model: expected a segmentation model ({', '.join(MODELS.list(task=TASK))}), got '{mcfg.model}' (task {entry.task!r})")
    wanted = {"num_classes": num_classes, "in_chans": in_chans, "stem": resolve_stem(mcfg.stem, size), "width": mcfg.width,
              "depth": mcfg.depth, "upsample": mcfg.upsample, "attention": mcfg.attention, "drop_rate": mcfg.drop_rate}
    if mcfg.encoder:
        wanted["encoder"] = mcfg.encoder
    params = inspect.signature(entry.fn).parameters
    args = {k: v for k, v in wanted.items() if k in params}
    if mcfg.encoder and "encoder" not in params:
        raise ConfigError(f"--encoder: expected a model that takes an encoder, got '{mcfg.model}' (it has its own)")
    model = MODELS.build(mcfg.model, **args)
    from vislab.tasks.classify import check_input_size

    check_input_size(model, mcfg.model, in_chans, size)
    return model, args


def resolve_config(config_path: str | None, typed: dict[str, Any]) -> SegmentConfig:
    """Defaults <- (the resumed run's config.yaml) <- --config YAML <- typed options."""
    from vislab.engine.launch import resolve_run_config

    return resolve_run_config(SegmentConfig, config_path, typed)


def validate(cfg: SegmentConfig) -> None:
    t, d = cfg.train, cfg.data
    checks = [
        (t.epochs >= 1, "--epochs", ">= 1", t.epochs),
        (t.lr > 0, "--lr", "> 0", t.lr),
        (d.batch_size >= 1, "--batch-size", ">= 1", d.batch_size),
        (0 <= d.val_split < 1, "--val-split", "in [0, 1)", d.val_split),
        (0 <= d.test_split < 1, "--test-split", "in [0, 1)", d.test_split),
        (0 <= d.ignore_index <= 255, "--ignore-index", "in [0, 255]", d.ignore_index),
        (cfg.model.width >= 1 and cfg.model.depth >= 1, "--width/--depth", ">= 1", (cfg.model.width, cfg.model.depth)),
    ]
    for ok, name, expected, got in checks:
        if not ok:
            raise ConfigError(f"{name}: expected {expected}, got {got}")
    build_loss(cfg.model.loss)  # a bad --loss fails before anything is written


def train(cfg: SegmentConfig) -> Path:
    """Train a segmentation model; returns the run folder."""
    from vislab.engine.launch import launch

    validate(cfg)
    return launch(TASK, cfg, _train_worker)


def run_metrics(task: SegmentTask, model: nn.Module, stream: SegBatchStream, precision) -> SegmentationMetrics:
    metrics = task.new_metrics()
    was = model.training
    model.eval()
    with torch.no_grad():
        for b in stream.epoch(0):
            if len(b.y):
                with precision.autocast():
                    task.eval_step(model, b, metrics)
    model.train(was)
    metrics.sync()
    return metrics


def _train_worker(cfg: SegmentConfig, run_dir_s: str | None) -> Path:
    from vislab.engine.checkpoint import load_best
    from vislab.engine.launch import start
    from vislab.engine.run import fit_summary, update_run_json

    t0 = time.perf_counter()
    tc = cfg.train
    ctx = start(TASK, cfg, run_dir_s)
    device, dist, precision, run_dir = ctx.device, ctx.dist, ctx.precision, ctx.run_dir
    try:
        splits = load_segmentation(cfg.data)
        tr = splits.train
        mean, std = image_stats(tr)
        ebs = cfg.data.eval_batch_size or 2 * cfg.data.batch_size
        common = dict(device=device, mean=mean, std=std, rank=dist.rank, world=dist.world, channels_last=precision.channels_last)
        train_stream = SegBatchStream(tr, cfg.data.batch_size, train=True, augment=cfg.data.augment, seed=tc.seed, **common)
        val_stream = SegBatchStream(splits.val, ebs, train=False, **common) if splits.val is not None and len(splits.val) else None
        torch.manual_seed(tc.seed)
        k = len(tr.classes)
        model, model_args = build_model(cfg.model, k, tr.channels, tr.size)
        ckpt_state = {"task": TASK, "model": cfg.model.model, "model_args": model_args, "num_classes": k, "classes": tr.classes,
                      "palette": [list(c) for c in tr.palette], "ignore_index": tr.ignore_index, "mean": list(mean), "std": list(std),
                      "img_size": list(tr.size), "channels": tr.channels, "config": C.to_dict(cfg)}
        task = SegmentTask(k, cfg.model.loss, list(cfg.model.class_weights), tr.ignore_index, tc.label_smoothing, cfg.model.focal_gamma)
        trainer = Trainer(tc, task, device=device, precision=precision, dist=dist, run_dir=run_dir, ckpt_state=ckpt_state,
                          progress=cfg.run.progress, tensorboard=cfg.run.tensorboard)
        model = trainer.prepare(model)
        trainer.progress.log(
            f"vislab segment: {cfg.model.model} on {tr.name} ({len(tr)} train, {len(splits.val) if splits.val else 0} val, "
            f"{len(splits.test) if splits.test else 0} test, {k} classes, {tr.size[0]}x{tr.size[1]}x{tr.channels}) | "
            f"{device} {precision.name} | loss {cfg.model.loss} | {dist.world} process(es) -> {run_dir}")
        result = trainer.fit(model, train_stream, val_stream, resume=cfg.run.resume or None)
        test_metrics: dict[str, float] = {}
        best, metrics = load_best(model, run_dir), None
        if splits.test is not None and len(splits.test):
            metrics = run_metrics(task, best, SegBatchStream(splits.test, ebs, train=False, **common), precision)
            test_metrics = {f"test_{k_}": v for k_, v in metrics.compute().items()}
            trainer.progress.log("test: " + "  ".join(f"{k_} {v:.4f}" for k_, v in test_metrics.items()))
        if dist.is_main:
            summary = fit_summary(result, test_metrics, time.perf_counter() - t0)
            update_run_json(run_dir, summary=summary)
            if cfg.run.report:
                from vislab.tasks.segment_report import write_training_report

                write_training_report(run_dir, result.history, metrics, splits.test or splits.val or tr, best, mean, std, device)
        return run_dir
    finally:
        D.shutdown()


def data_config_of(state: dict[str, Any], data: str = "") -> SegDataConfig:
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
    from vislab.core.io import atomic_write_text
    from vislab.engine.checkpoint import load_model
    from vislab.report.plots import plot_confusion

    model, state = load_model(cfg.checkpoint, task=TASK)
    src = load_segmentation(data_config_of(state, cfg.data)).get(cfg.split)
    check_compatible(src, state)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    model = model.to(device)
    stream = SegBatchStream(src, cfg.batch_size, train=False, device=device, mean=state["mean"], std=state["std"])
    task = SegmentTask(state["num_classes"], "ce", None, state.get("ignore_index", 255))
    metrics = run_metrics(task, model, stream, precision)
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

"""Object detection: configs, data in memory with the shared batching rule, the trainer hooks, train.

Evaluation, prediction, drawing and export live in :mod:`vislab.tasks.detect_infer`.

Data: ``--data shapes`` / ``digits`` generates several shapes / handwritten digits per image on noisy
backgrounds (boxes and masks; empty images included), or a path to a COCO JSON, YOLO data.yaml or VOC folder (validated first: every bad box, unknown class or
size mismatch is named by file). Images are resized to ``--img-size`` squares (boxes scaled with them)
and held in memory as uint8. Instance masks are carried only for models that need them (``maskrcnn_*``,
registered with ``masks=True``): resized with the image (nearest), flipped with it, and put in the targets as
``"masks": (n, S, S) uint8``. Batches follow the classification rule: global batches from a permutation
seeded by (seed, epoch), each process takes ``batch[rank::world]``; augmentation parameters (``--augment``, see
:mod:`vislab.data.detection.augment`) are drawn per global batch and applied to images, boxes and masks together.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vislab.core import config as C
from vislab.core.config import opt
from vislab.core.errors import ConfigError, DataError
from vislab.models.registry import MODELS
from vislab.data.detection.augment import PRESETS, JointAugment
from vislab.data.loaders import epoch_generator, global_batches
from vislab.engine import distributed as D
from vislab.engine.config import RunConfig, TrainConfig
from vislab.metrics.detection import DetectionMetrics

TASK = "detect"


@dataclass
class DetDataConfig:
    """Where the annotated images come from and how they are batched."""

    data: str = opt("shapes", "shapes or digits (generated), or a COCO .json / YOLO data.yaml / VOC folder")
    det_format: str = opt("auto", "annotation format of --data", choices=("auto", "coco", "yolo", "voc"))
    val_data: str = opt("", "validation set in any format (default: generated for shapes, else --val-split of --data)")
    img_size: int = opt(64, "images are resized to this square size")
    val_split: float = opt(0.2, "fraction held out for validation when there is no --val-data")
    split_seed: int = opt(0, "seed of the train/val split and of generated data")
    synth_count: int = opt(1000, "generated training images (shapes, digits)")
    synth_classes: int = opt(3, "generated classes (shapes: up to 8; digits: up to 10)")
    objects: list[int] = opt([0, 3], "generated objects per image: min,max (0 allows empty images)")
    batch_size: int = opt(32, "global batch size")
    eval_batch_size: int = opt(64, "batch size for evaluation")
    augment: str = opt("flip", "joint image/box/mask augmentation: none, flip, standard (flip, zoom 0.75-1.25, shift, colour), "
                               "strong (zoom 0.5-1.5), ssd (torchvision v2 SSD recipe per image, slow)", choices=PRESETS)


@dataclass
class DetModelConfig:
    """Which detector, and its post-processing."""

    model: str = opt("yolo_tiny", "detector: yolo_tiny (vislab's anchor-free one-stage), or a torchvision one (see `vislab models list --task detect`)")
    backbone: str = opt("tiny", "backbone of yolo_tiny, fasterrcnn_tiny, maskrcnn_tiny: tiny, or any registry classifier (resnet18, timm:<name>)")
    width: int = opt(16, "width of the tiny backbone")
    score_thresh: float = opt(0.05, "drop detections scoring below this")
    nms_iou: float = opt(0.6, "per-class NMS IoU threshold")
    max_det: int = opt(100, "detections kept per image")
    nms: str = opt("nms", "suppression: nms (hard) or soft (Gaussian soft-NMS)", choices=("nms", "soft"))
    weights: str = opt("", "start from these weights: a vislab detect run (e.g. from `vislab detect import`) or a state-dict file; "
                           "tensors of another shape (the class heads for new classes) stay freshly initialised; their mean/std are used")


def _train_defaults() -> TrainConfig:
    return TrainConfig(epochs=12, optimizer="adamw", lr=3e-3, weight_decay=1e-4, grad_clip=10.0, warmup_epochs=1.0)


@dataclass
class DetectConfig:
    """``vislab detect train``: everything a detection run is made of."""

    data: DetDataConfig = field(default_factory=DetDataConfig)
    model: DetModelConfig = field(default_factory=DetModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    run: RunConfig = field(default_factory=RunConfig)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
@dataclass
class DetSplit:
    """Images ``(N, 3, S, S)`` uint8 and per-image targets ``{"boxes": (n, 4) xyxy, "labels": (n,)}`` at that size
    (and ``"masks": (n, S, S) uint8`` when loaded with masks)."""

    images: torch.Tensor
    targets: list[dict[str, torch.Tensor]]
    classes: list[str]
    files: list[str]
    name: str = ""
    sizes: list[tuple[int, int]] | None = None  # each image's original (width, height); None: already S x S

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, idx: list[int]) -> DetSplit:
        sizes = [self.sizes[i] for i in idx] if self.sizes is not None else None
        return DetSplit(self.images[idx], [self.targets[i] for i in idx], self.classes, [self.files[i] for i in idx], self.name, sizes)


def from_dataset(ds, size: int, masks: bool = False) -> DetSplit:
    """Resize every image of a :class:`~vislab.data.detection.DetDataset` to ``size x size`` (boxes scaled; with
    ``masks``, the instance masks resized by nearest neighbour, and a :class:`DataError` if an image has none).

    Example:
        >>> from vislab.data.detection import shapes_detection
        >>> s = from_dataset(shapes_detection(2, size=48, objects=(1, 2)), 32, masks=True)
        >>> s.images.shape, s.targets[0]["masks"].shape[1:], s.targets[0]["masks"].dtype
        (torch.Size([2, 3, 32, 32]), torch.Size([32, 32]), torch.uint8)
    """
    from vislab.data.detection.core import load_pixels

    imgs, targets = torch.empty(len(ds), 3, size, size, dtype=torch.uint8), []
    for i, im in enumerate(ds.images):
        a = torch.from_numpy(np.array(load_pixels(ds, i))).permute(2, 0, 1)  # (3, H, W)
        if a.shape[1:] != (im.height, im.width):
            raise DataError(f"image '{ds.path(i)}': expected {im.width}x{im.height} as annotated, got {a.shape[2]}x{a.shape[1]}")
        if a.shape[1:] != (size, size):
            a = F.interpolate(a[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].round().clamp(0, 255).byte()
        imgs[i] = a
        scale = torch.tensor([size / im.width, size / im.height] * 2)
        t = {"boxes": torch.from_numpy(im.boxes).float() * scale, "labels": torch.from_numpy(im.labels).long()}
        if masks:
            if im.masks is None or len(im.masks) != len(im.labels):
                raise DataError(f"dataset {ds.source or '<memory>'}: expected instance masks for a mask model (COCO 'segmentation' "
                                f"polygons or RLE), got none for image '{im.file}'")
            m = torch.from_numpy(np.asarray(im.masks)).to(torch.uint8)
            if m.shape[1:] != (size, size) and len(m):
                m = F.interpolate(m[None].float(), size=(size, size), mode="nearest-exact")[0].to(torch.uint8)
            t["masks"] = m.reshape(-1, size, size)
        targets.append(t)
    return DetSplit(imgs, targets, list(ds.classes), [im.file for im in ds.images], ds.source, [(im.width, im.height) for im in ds.images])


def load_splits(cfg: DetDataConfig, masks: bool = False) -> tuple[DetSplit, DetSplit | None]:
    """Train and validation splits of ``cfg`` (validated, resized, in memory; with ``masks``, instance masks in the targets)."""
    from vislab.data.detection import check, digits_detection, read_any, shapes_detection

    if len(cfg.objects) != 2 or not 0 <= cfg.objects[0] <= cfg.objects[1]:
        raise ConfigError(f"--objects: expected min,max with 0 <= min <= max, got {cfg.objects}")
    if cfg.data in ("shapes", "digits"):
        if cfg.data == "digits" and not 1 <= cfg.synth_classes <= 10:
            raise ConfigError(f"--synth-classes: expected 1..10 for digits, got {cfg.synth_classes}")
        make = shapes_detection if cfg.data == "shapes" else digits_detection
        kw = {"classes": cfg.synth_classes, "size": cfg.img_size, "objects": tuple(cfg.objects), "masks": masks}
        tr = from_dataset(make(cfg.synth_count, seed=(cfg.split_seed, 1), **kw), cfg.img_size, masks)
        va = from_dataset(make(max(1, round(cfg.val_split * cfg.synth_count)), seed=(cfg.split_seed, 2), **kw), cfg.img_size, masks)
        return tr, va
    full = from_dataset(check(read_any(cfg.data, cfg.det_format, masks=masks)), cfg.img_size, masks)
    if cfg.val_data:
        va = from_dataset(check(read_any(cfg.val_data, cfg.det_format, split="val", masks=masks)), cfg.img_size, masks)
        if va.classes != full.classes:
            raise DataError(f"--val-data {cfg.val_data}: expected the classes of {cfg.data} {full.classes}, got {va.classes}")
        return full, va
    n_val = round(cfg.val_split * len(full))
    if n_val == 0:
        return full, None
    perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(cfg.split_seed)).tolist()
    return full.subset(perm[n_val:]), full.subset(perm[:n_val])


@dataclass
class DetBatch:
    """One process's share of a global batch."""

    x: torch.Tensor  # (b, 3, S, S) normalised, on device
    y: list[dict[str, torch.Tensor]]  # b target dicts on device
    n_global: int
    index: torch.Tensor
    sizes: list[tuple[int, int]] | None = None  # the images' original (width, height), for metrics at that scale

    def __len__(self) -> int:
        return len(self.x)


class DetStream:
    """Batches of a :class:`DetSplit` by the shared rule (see the module docstring)."""

    def __init__(self, split: DetSplit, batch_size: int, *, train: bool, device: torch.device, mean, std,
                 augment: str = "flip", seed: int = 0, rank: int = 0, world: int = 1, channels_last: bool = False):
        self.split, self.train, self.device, self.seed = split, train, device, seed
        self.rank, self.world, self.channels_last = rank, world, channels_last
        self.batch_size = max(world, min(batch_size, len(split))) if train else batch_size
        self.augment = JointAugment(augment if train else "none", mean=mean)
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.images = split.images.to(device)

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.train else math.ceil(n / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[DetBatch]:
        chunks = global_batches(len(self.split), self.batch_size, self.train, self.seed, epoch)
        sel = slice(self.rank, None, self.world)
        for k, gb in enumerate(chunks):
            local = gb[sel]
            x = self.images[local.to(self.device)].float().div_(255.0)
            ys = [{k: v.to(self.device) for k, v in self.split.targets[j].items()} for j in local.tolist()]
            if self.augment.preset != "none":  # parameters for the global batch, this process's share applied
                params = self.augment.sample(len(gb), epoch_generator(self.seed, epoch, salt=k + 1))[sel]
                x, ys = self.augment(x, ys, params)
            x = (x - self.mean) / self.std
            sizes = [self.split.sizes[j] for j in local.tolist()] if self.split.sizes is not None else None
            yield DetBatch(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x, ys, len(gb), local, sizes)


def pixel_stats(split: DetSplit) -> tuple[list[float], list[float]]:
    x = split.images[:2000].float() / 255
    return x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).clamp(min=1e-3).tolist()


# --------------------------------------------------------------------------------------------
# The hooks the trainer calls
# --------------------------------------------------------------------------------------------
class DetectTask:
    """Detector losses (the model computes them from targets), COCO metrics; the best checkpoint is the one with the
    highest box AP (mask AP for mask models)."""

    def __init__(self, classes: list[str], masks: bool = False):
        self.classes = classes
        self.monitor = "val_mask_map" if masks else "val_map"

    def train_step(self, model: nn.Module, batch: DetBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # The losses are means over the batch's positives; times the image count -> the sum the trainer expects.
        losses = model(batch.x, batch.y)
        return sum(v.float() for v in losses.values()) * len(batch.y), {}

    def new_metrics(self) -> DetectionMetrics:
        return DetectionMetrics(self.classes)

    def eval_step(self, model: nn.Module, batch: DetBatch, metrics: DetectionMetrics) -> None:
        metrics.update(model(batch.x), batch.y, batch.sizes, tuple(batch.x.shape[-2:]))  # scored at the original image sizes


# --------------------------------------------------------------------------------------------
# Building blocks and train
# --------------------------------------------------------------------------------------------
def build_model(mcfg: DetModelConfig, num_classes: int, img_size: int) -> tuple[nn.Module, dict[str, Any]]:
    """The detector and the arguments that rebuild it from a checkpoint."""
    import inspect

    entry = MODELS.get(mcfg.model)
    if entry.task != TASK:
        raise ConfigError(f"--model: expected a detection model ({', '.join(MODELS.list(task=TASK))}), got '{mcfg.model}' (task {entry.task!r})")
    args: dict[str, Any] = {"num_classes": num_classes, "score_thresh": mcfg.score_thresh, "nms_iou": mcfg.nms_iou, "max_det": mcfg.max_det}
    params = inspect.signature(entry.fn).parameters
    if mcfg.model == "yolo_tiny":
        args.update(backbone=mcfg.backbone, width=mcfg.width, nms=mcfg.nms)
    else:
        args.update(img_size=img_size)
        if "backbone" in params:  # fasterrcnn_tiny, maskrcnn_tiny
            args.update(backbone=mcfg.backbone, width=mcfg.width)
    return MODELS.build(mcfg.model, **args), args


def needs_masks(model: str) -> bool:
    """Whether the registered detector ``model`` trains on instance masks (registered with ``masks=True``).

    Example:
        >>> needs_masks("maskrcnn_tiny"), needs_masks("yolo_tiny")
        (True, False)
    """
    return bool(MODELS.get(model).meta.get("masks", False))


def resolve_config(config_path: str | None, typed: dict[str, Any]) -> DetectConfig:
    """Defaults <- (the resumed run's config.yaml) <- --config YAML <- typed options."""
    from vislab.engine.launch import resolve_run_config

    return resolve_run_config(DetectConfig, config_path, typed)


def validate(cfg: DetectConfig) -> None:
    t, d = cfg.train, cfg.data
    for ok, name, expected, got in [
        (t.epochs >= 1, "--epochs", ">= 1", t.epochs), (t.lr > 0, "--lr", "> 0", t.lr),
        (d.batch_size >= 1, "--batch-size", ">= 1", d.batch_size), (d.img_size >= 32, "--img-size", ">= 32", d.img_size),
        (0 <= d.val_split < 1, "--val-split", "in [0, 1)", d.val_split), (0 < cfg.model.nms_iou <= 1, "--nms-iou", "in (0, 1]", cfg.model.nms_iou),
    ]:
        if not ok:
            raise ConfigError(f"{name}: expected {expected}, got {got}")


def train(cfg: DetectConfig) -> Path:
    """Train a detector; returns the run folder."""
    from vislab.engine.launch import launch

    validate(cfg)
    return launch(TASK, cfg, _train_worker)


def _train_worker(cfg: DetectConfig, run_dir_s: str | None) -> Path:
    from vislab.engine.launch import start
    from vislab.engine.run import update_run_json
    from vislab.engine.trainer import Trainer

    t0 = time.perf_counter()
    tc = cfg.train
    ctx = start(TASK, cfg, run_dir_s)
    device, dist, precision, run_dir = ctx.device, ctx.dist, ctx.precision, ctx.run_dir
    try:
        tr, va = load_splits(cfg.data, masks=needs_masks(cfg.model.model))
        weights = None
        if cfg.model.weights:
            from vislab.engine.weights import read_weights

            weights = read_weights(cfg.model.weights)
        mean, std = (list(weights.mean), list(weights.std)) if weights is not None and weights.mean and weights.std else pixel_stats(tr)
        common = {"device": device, "mean": mean, "std": std, "rank": dist.rank, "world": dist.world, "channels_last": precision.channels_last}
        train_stream = DetStream(tr, cfg.data.batch_size, train=True, augment=cfg.data.augment, seed=tc.seed, **common)
        val_stream = DetStream(va, cfg.data.eval_batch_size, train=False, **common) if va is not None and len(va) else None
        torch.manual_seed(tc.seed)
        model, model_args = build_model(cfg.model, len(tr.classes), cfg.data.img_size)
        report = None
        if weights is not None:
            from vislab.engine.weights import load_into

            report = load_into(model, weights)
        ckpt_state = {"task": TASK, "model": cfg.model.model, "model_args": model_args, "num_classes": len(tr.classes), "classes": tr.classes,
                      "mean": mean, "std": std, "img_size": [cfg.data.img_size] * 2, "channels": 3, "config": C.to_dict(cfg)}
        if report is not None:
            ckpt_state["weights"] = report.as_dict(limit=20)
        task = DetectTask(tr.classes, masks=needs_masks(cfg.model.model))
        trainer = Trainer(tc, task, device=device, precision=precision, dist=dist, run_dir=run_dir, ckpt_state=ckpt_state,
                          progress=cfg.run.progress, tensorboard=cfg.run.tensorboard)
        model = trainer.prepare(model)
        n_obj = sum(len(t["labels"]) for t in tr.targets)
        trainer.progress.log(f"vislab detect: {cfg.model.model} on {tr.name} ({len(tr)} train images, {n_obj} objects, "
                             f"{len(va) if va else 0} val, {len(tr.classes)} classes, {cfg.data.img_size}px) | {device} {precision.name} -> {run_dir}")
        for line in report.lines() if report is not None else []:
            trainer.progress.log(line)
        result = trainer.fit(model, train_stream, val_stream, resume=cfg.run.resume or None)
        final: dict[str, Any] = {}
        if val_stream is not None:
            from vislab.engine.checkpoint import load_best
            from vislab.tasks.detect_infer import evaluate_split, write_eval

            best = load_best(model, run_dir).eval()
            full = evaluate_split(best, va, device, mean, std, cfg.data.eval_batch_size)
            if dist.is_main:
                final = write_eval(run_dir, full, va, best, device, mean, std, prefix="val")
        if dist.is_main:
            from vislab.engine.run import fit_summary

            summary = fit_summary(result, {f"final_val_{k}": v for k, v in final.items()}, time.perf_counter() - t0)
            update_run_json(run_dir, summary=summary)
            if cfg.run.report and result.history:
                from vislab.report.plots import plot_curves

                plot_curves(result.history, run_dir / "curves.png")
        return run_dir
    finally:
        D.shutdown()

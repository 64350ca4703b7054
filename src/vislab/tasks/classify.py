"""Image classification: configs, the task hooks the trainer calls, and train / eval.

Prediction and export live in :mod:`vislab.tasks.classify_infer`.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core import config as C
from vislab.core.config import opt
from vislab.core.device import resolve_device, resolve_precision
from vislab.core.errors import ConfigError
from vislab.models.registry import MODELS
from vislab.data.augment import TTA_MODES, AugDataConfig, parse_augment, with_tta
from vislab.data.base import DataConfig, ImageSource, Splits, load_dataset
from vislab.data.loaders import Batch, BatchStream, channel_stats
from vislab.engine import distributed as D
from vislab.engine.config import RunConfig, TrainConfig
from vislab.engine.finetune import choose_norm
from vislab.engine.trainer import Callback, Trainer
from vislab.metrics.classification import ClassificationMetrics

TASK = "classify"


@dataclass
class ModelConfig:
    """Which network to train."""

    model: str = opt("small_cnn", "model name (`vislab models list`), or timm:<name>")
    stem: str = opt("auto", "input stem: cifar (small images, no early downsampling), imagenet, or auto (cifar up to 64 px)", choices=("auto", "cifar", "imagenet"))
    drop_rate: float = opt(0.0, "dropout before the classifier")
    weights: str = opt("", "start from these weights: a vislab run folder or checkpoint, or a .pth/.pt/.safetensors state dict (torchvision, timm, plain); the head is replaced for the new classes")
    pretrained: str = opt("", "start from a torchvision / timm weights tag (resnet18, ResNet18_Weights.IMAGENET1K_V1, timm:resnet18.a1_in1k), read from the local cache")
    pretrained_download: bool = opt(False, "let --pretrained download weights that are not cached (needs network)")
    finetune: str = opt("auto", "what trains: scratch (random init), linear (head only), full (all), gradual (head, then one more layer group per --unfreeze-every epochs); auto: full with weights, else scratch", choices=("auto", "scratch", "linear", "full", "gradual"))
    layer_decay: float = opt(1.0, "discriminative learning rates: each layer group below the head gets lr x this (e.g. 0.5; 1: one lr)")
    freeze_bn: bool = opt(False, "keep BatchNorm layers frozen (pretrained statistics and affine parameters)")
    unfreeze_every: int = opt(1, "--finetune gradual: epochs between unfreezing one more layer group")
    norm: str = opt("auto", "normalisation statistics: the weights' (auto when they carry them, or weights) or the training data's", choices=("auto", "weights", "data"))


@dataclass
class ClassifyConfig:
    """``vislab classify train``: everything a training run is made of."""

    data: AugDataConfig = field(default_factory=AugDataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class EvalConfig:
    """``vislab classify eval``: metrics of a checkpoint on a split."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    data: str = opt("", "dataset (default: the one the checkpoint was trained on)")
    split: str = opt("test", "split to evaluate", choices=("train", "val", "test"))
    batch_size: int = opt(256, "batch size")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    precision: str = opt("auto", "numeric precision", choices=("auto", "fp32", "bf16", "fp16"))
    out: str = opt("", "folder for metrics.json, per_class.csv, confusion_matrix.png (default: <run>/eval-<split>)")
    tta: str = opt("none", "test-time augmentation: average the probabilities over the image and its mirror (flip), plus 4 corner crops (flip-crop)", choices=TTA_MODES)


# --------------------------------------------------------------------------------------------
# The hooks the trainer calls
# --------------------------------------------------------------------------------------------
class ClassifyTask:
    """Cross-entropy training, confusion-matrix metrics."""

    monitor = "val_acc"

    def __init__(self, num_classes: int, label_smoothing: float = 0.0, device: torch.device | str = "cpu"):
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.device = device

    def train_step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = model(batch.x)  # (b, K)
        loss = F.cross_entropy(logits.float(), batch.y, reduction="sum", label_smoothing=self.label_smoothing)
        if batch.y2 is not None:  # mixup / cutmix: lam * CE(y) + (1 - lam) * CE(y2)
            loss2 = F.cross_entropy(logits.float(), batch.y2, reduction="sum", label_smoothing=self.label_smoothing)
            loss = batch.lam * loss + (1 - batch.lam) * loss2
        return loss, {"acc": (logits.detach().argmax(1) == batch.y).sum()}  # summed: train_acc is its mean

    def new_metrics(self) -> ClassificationMetrics:
        return ClassificationMetrics(self.num_classes, device="cpu")

    def eval_step(self, model: nn.Module, batch: Batch, metrics: ClassificationMetrics) -> None:
        logits = model(batch.x).float()
        loss = F.cross_entropy(logits, batch.y, reduction="sum")
        metrics.update(logits.cpu(), batch.y.cpu(), loss.cpu())


# --------------------------------------------------------------------------------------------
# Building blocks shared by train / eval / predict
# --------------------------------------------------------------------------------------------
def resolve_stem(stem: str, size: tuple[int, int]) -> str:
    return ("cifar" if max(size) <= 64 else "imagenet") if stem == "auto" else stem


def build_model(mcfg: ModelConfig, num_classes: int, in_chans: int, size: tuple[int, int]) -> tuple[nn.Module, dict[str, Any]]:
    """The model and the arguments that rebuild it from a checkpoint."""
    args = {"num_classes": num_classes, "in_chans": in_chans, "stem": resolve_stem(mcfg.stem, size), "drop_rate": mcfg.drop_rate}
    if mcfg.model.startswith("timm:"):
        args.pop("stem")
    if mcfg.model not in MODELS:
        MODELS.get(mcfg.model)  # raises ModelError with a suggestion
    model = MODELS.build(mcfg.model, **args)
    check_input_size(model, mcfg.model, in_chans, size)
    return model, args


def start_weights(mcfg: ModelConfig, model: nn.Module, classes: list[str]):
    """Load ``--weights`` / ``--pretrained`` into ``model`` (seeded init first); returns ``(weights, report)`` or ``(None, None)``."""
    from vislab.engine import weights as W

    if mcfg.weights and mcfg.pretrained:
        raise ConfigError(f"--weights / --pretrained: expected one source, got both ({mcfg.weights!r}, {mcfg.pretrained!r})")
    if not (mcfg.weights or mcfg.pretrained):
        return None, None
    wts = W.resolve_pretrained(mcfg.pretrained, mcfg.pretrained_download) if mcfg.pretrained else W.read_weights(mcfg.weights)
    return wts, W.load_into(model, wts, classes)


def finetune_plan(mcfg: ModelConfig, model: nn.Module, has_weights: bool):
    """The :class:`~vislab.engine.finetune.FinetunePlan` of ``--finetune`` & co., or None for plain training."""
    from vislab.engine.finetune import FinetunePlan, resolve_strategy

    strategy = resolve_strategy(mcfg.finetune, has_weights)
    if strategy in ("scratch", "full") and mcfg.layer_decay == 1 and not mcfg.freeze_bn:
        return None  # every parameter trains at one lr: the plain optimizer groups
    return FinetunePlan(model, strategy, mcfg.layer_decay, mcfg.freeze_bn, mcfg.unfreeze_every)


def check_input_size(model: nn.Module, name: str, in_chans: int, size: tuple[int, int]) -> None:
    """A dry forward pass on zeros, so an input the model cannot take fails now, with a clear line."""
    from vislab.core.errors import ModelError

    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_chans, *size))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0][:160]
        raise ModelError(f"model {name}: expected inputs it can process, got {in_chans}x{size[0]}x{size[1]} images ({first}); try a larger --img-size") from None
    finally:
        model.train(was)


def use_fast_path(cfg: DataConfig, src: ImageSource) -> bool:
    if cfg.fast_path == "off":
        return False
    return cfg.fast_path == "on" or src.in_memory or src.nbytes() <= cfg.max_memory_mb * 2**20


def resolve_config(config_path: str | None, typed: dict[str, Any]) -> ClassifyConfig:
    """Defaults <- (the resumed run's config.yaml) <- --config YAML <- typed options."""
    from vislab.engine.launch import resolve_run_config

    return resolve_run_config(ClassifyConfig, config_path, typed)


def validate(cfg: ClassifyConfig) -> None:
    t, d = cfg.train, cfg.data
    checks = [
        (t.epochs >= 1, "--epochs", ">= 1", t.epochs),
        (t.lr > 0, "--lr", "> 0", t.lr),
        (d.batch_size >= 1, "--batch-size", ">= 1", d.batch_size),
        (t.accumulate >= 1, "--accumulate", ">= 1", t.accumulate),
        (t.nproc >= 1, "--nproc", ">= 1", t.nproc),
        (0 <= d.val_split < 1, "--val-split", "in [0, 1)", d.val_split),
        (0 <= d.test_split < 1, "--test-split", "in [0, 1)", d.test_split),
        (0 <= t.ema_decay < 1, "--ema-decay", "in [0, 1)", t.ema_decay),
        (0 <= t.label_smoothing < 1, "--label-smoothing", "in [0, 1)", t.label_smoothing),
    ]
    parse_augment(d.augment if d.augment != "auto" else "none")
    m = cfg.model
    checks += [(0 < m.layer_decay <= 1, "--layer-decay", "in (0, 1]", m.layer_decay), (m.unfreeze_every >= 1, "--unfreeze-every", ">= 1", m.unfreeze_every)]
    for ok, name, expected, got in checks:
        if not ok:
            raise ConfigError(f"{name}: expected {expected}, got {got}")
    from vislab.engine.finetune import resolve_strategy

    resolve_strategy(m.finetune, bool(m.weights or m.pretrained))


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------
def train(cfg: ClassifyConfig, callbacks: list[Callback] | None = None, folder: str = TASK) -> Path:
    """Train a classifier; returns the run folder ``<out>/<folder>/<name>``. Launches ``--nproc`` processes when asked.

    ``callbacks`` (trainer :class:`~vislab.engine.trainer.Callback` s, e.g. a tuner's pruning hook) need ``--nproc 1``.
    """
    import functools

    from vislab.engine.launch import launch

    validate(cfg)
    if callbacks and cfg.train.nproc > 1:
        raise ConfigError(f"--nproc: expected 1 when training with callbacks, got {cfg.train.nproc}")
    return launch(folder, cfg, functools.partial(_train_worker, callbacks=callbacks) if callbacks else _train_worker)


def _train_worker(cfg: ClassifyConfig, run_dir_s: str | None, callbacks: list[Callback] | None = None) -> Path:
    from vislab.engine.checkpoint import load_best
    from vislab.engine.launch import start
    from vislab.engine.run import fit_summary, update_run_json

    t0 = time.perf_counter()
    tc = cfg.train
    ctx = start(TASK, cfg, run_dir_s)
    device, dist, precision, run_dir = ctx.device, ctx.dist, ctx.precision, ctx.run_dir
    try:
        splits = load_dataset(cfg.data)
        tr = splits.train
        fast = use_fast_path(cfg.data, tr)
        if fast and not tr.in_memory:
            splits = Splits(tr.materialize(), splits.val.materialize() if splits.val else None,
                            splits.test.materialize() if splits.test else None)
            tr = splits.train
        torch.manual_seed(tc.seed)
        model, model_args = build_model(cfg.model, len(tr.classes), tr.channels, tr.size)
        start = start_weights(cfg.model, model, tr.classes)  # (weights, report) or (None, None)
        mean, std = choose_norm(cfg.model.norm, channel_stats(tr), (start[0].mean, start[0].std) if start[0] else None, tr.channels)
        augment = tr.augment if cfg.data.augment == "auto" else cfg.data.augment
        ebs = cfg.data.eval_batch_size or 2 * cfg.data.batch_size
        common = dict(device=device, mean=mean, std=std, rank=dist.rank, world=dist.world, workers=cfg.data.workers,
                      channels_last=precision.channels_last, fast_path=fast)
        train_stream = BatchStream(tr, cfg.data.batch_size, train=True, augment=augment, seed=tc.seed,
                                   mixup_alpha=cfg.data.mixup_alpha, cutmix_alpha=cfg.data.cutmix_alpha, **common)
        if train_stream.batch_size < cfg.data.batch_size:
            warnings.warn(f"--batch-size {cfg.data.batch_size} is larger than the {len(tr)} training images; using {train_stream.batch_size}", stacklevel=2)
        val_stream = BatchStream(splits.val, ebs, train=False, **common) if splits.val is not None and len(splits.val) else None

        ckpt_state = {
            "task": TASK, "model": cfg.model.model, "model_args": model_args, "num_classes": len(tr.classes),
            "classes": tr.classes, "mean": list(mean), "std": list(std), "img_size": list(tr.size),
            "channels": tr.channels, "config": C.to_dict(cfg),
        }
        if start[1] is not None:
            ckpt_state["weights"] = start[1].as_dict(limit=20)
        task = ClassifyTask(len(tr.classes), tc.label_smoothing, device)
        trainer = Trainer(tc, task, device=device, precision=precision, dist=dist, run_dir=run_dir,
                          ckpt_state=ckpt_state, progress=cfg.run.progress, tensorboard=cfg.run.tensorboard,
                          callbacks=list(callbacks or []))
        model = trainer.prepare(model)
        plan = finetune_plan(cfg.model, model, start[0] is not None)
        if plan is not None:
            trainer.param_groups, trainer.callbacks = plan.param_groups, [*trainer.callbacks, plan.callback()]
        trainer.progress.log(
            f"vislab classify: {cfg.model.model} on {tr.name} ({len(tr)} train, {len(splits.val) if splits.val else 0} val, "
            f"{len(splits.test) if splits.test else 0} test, {len(tr.classes)} classes, {tr.size[0]}x{tr.size[1]}x{tr.channels}) | "
            f"{device} {precision.name}{' channels_last' if precision.channels_last else ''} | "
            f"{'fast in-memory' if fast else 'DataLoader'} path | {dist.world} process(es) -> {run_dir}"
        )
        for line in (start[1].lines() if start[1] is not None else []) + ([plan.describe()] if plan is not None else []):
            trainer.progress.log(line)
        result = trainer.fit(model, train_stream, val_stream, resume=cfg.run.resume or None)
        test_metrics: dict[str, float] = {}
        if splits.test is not None and len(splits.test):
            best = load_best(model, run_dir)
            test_stream = BatchStream(splits.test, ebs, train=False, **common)
            metrics = task.new_metrics()
            best.eval()
            with torch.no_grad():
                for b in test_stream.epoch(0):
                    if len(b.y):
                        with precision.autocast():
                            task.eval_step(best, b, metrics)
            metrics.sync()
            test_metrics = {f"test_{k}": v for k, v in metrics.compute().items()}
            trainer.progress.log("test: " + "  ".join(f"{k} {v:.4f}" for k, v in test_metrics.items() if k in ("test_acc", "test_top5", "test_loss", "test_macro_f1")))
        if dist.is_main:
            summary = fit_summary(result, test_metrics, time.perf_counter() - t0)
            update_run_json(run_dir, summary=summary)
            if cfg.run.report:
                from vislab.tasks.classify_report import write_training_report

                cm = metrics.confmat.cpu().numpy() if test_metrics else None
                write_training_report(run_dir, result, test_metrics, cm, splits.test or splits.val, model=best if test_metrics else model,
                                      mean=mean, std=std, device=device, precision=precision, classes=tr.classes,
                                      per_class=metrics.per_class() if test_metrics else None)
        return run_dir
    finally:
        D.shutdown()


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------
def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate a checkpoint on a split; writes metrics.json, per_class.csv and confusion_matrix.png."""
    from vislab.engine.checkpoint import load_model
    from vislab.report.plots import plot_confusion

    model, state = load_model(cfg.checkpoint, task=TASK)
    dcfg = C.from_dict(AugDataConfig, state["config"]["data"])
    if cfg.data:
        dcfg = dataclasses.replace(dcfg, data=cfg.data, format="auto")
    dcfg = dataclasses.replace(dcfg, img_size=state["img_size"][0] if state["img_size"][0] == state["img_size"][1] else dcfg.img_size)
    splits = load_dataset(dcfg)
    src = splits.get(cfg.split)
    check_compatible(src, state)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    model = model.to(device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    stream = BatchStream(src, cfg.batch_size, train=False, device=device, mean=state["mean"], std=state["std"],
                         channels_last=precision.channels_last, fast_path=src.in_memory)
    task = ClassifyTask(state["num_classes"])
    model = with_tta(model, cfg.tta)
    metrics = task.new_metrics()
    with torch.no_grad():
        for b in stream.epoch(0):
            with precision.autocast():
                task.eval_step(model, b, metrics)
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / f"eval-{cfg.split}"
    out.mkdir(parents=True, exist_ok=True)
    scalars = metrics.compute()
    per = metrics.per_class()
    from vislab.core.io import atomic_write_text

    atomic_write_text(out / "metrics.json", json.dumps({"split": cfg.split, "n": len(src), **scalars}, indent=1))
    rows = ["class,precision,recall,f1,support"] + [
        f"{c},{p:.4f},{r:.4f},{f:.4f},{int(s)}" for c, p, r, f, s in zip(state["classes"], per["precision"], per["recall"], per["f1"], per["support"], strict=True)
    ]
    atomic_write_text(out / "per_class.csv", "\n".join(rows) + "\n")
    plot_confusion(metrics.confmat.numpy(), state["classes"], out / "confusion_matrix.png", title=f"confusion matrix ({cfg.split}, acc {scalars['acc']:.3f})")
    return {"out": str(out), "n": len(src), **scalars, "per_class": per}


def check_compatible(src: ImageSource, state: dict[str, Any]) -> None:
    """Data and checkpoint must agree on classes and channels."""
    from vislab.core.errors import DataError

    if list(src.classes) != list(state["classes"]):
        raise DataError(
            f"dataset {src.name}: expected the checkpoint's {len(state['classes'])} classes {state['classes'][:5]}..., got {len(src.classes)} classes {src.classes[:5]}..."
        )
    if src.channels != state["channels"]:
        raise DataError(f"dataset {src.name}: expected {state['channels']}-channel images like the checkpoint, got {src.channels}")

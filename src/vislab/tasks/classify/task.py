"""Image classification in a training run: the trainer hooks, the model, and the job's setup, test and report.

Prediction, evaluation and export live in :mod:`vislab.tasks.classify.infer`, explanations in
:mod:`vislab.tasks.classify.explain`, the report's pictures in :mod:`vislab.tasks.classify.report`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core import config as C
from vislab.core.errors import ConfigError, DataError
from vislab.data.classify.augment import parse_augment
from vislab.data.classify.source import Splits, load_dataset, use_fast_path
from vislab.data.classify.stream import Batch, BatchStream
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import FitResult, Trainer
from vislab.metrics.classification import ClassificationMetrics
from vislab.models.registry import MODELS
from vislab.tasks.base import TrainJob, check_all
from vislab.tasks.classify.config import ClassifyConfig, ModelConfig
from vislab.tasks.shared.finetune import choose_norm
from vislab.tasks.shared.model import check_input_size, resolve_stem

TASK = "classify"


class ClassifyTask:
    """Cross-entropy training, confusion-matrix metrics."""

    monitor = "val_acc"
    shown = ("val_loss", "val_acc")  # on the epoch line, beside the training stats and the monitor

    def __init__(self, num_classes: int, label_smoothing: float = 0.0):
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

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
# Building blocks shared by train / lr-find / eval
# --------------------------------------------------------------------------------------------
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
    from vislab.tasks.shared import weights as W

    if mcfg.weights and mcfg.pretrained:
        raise ConfigError(f"--weights / --pretrained: expected one source, got both ({mcfg.weights!r}, {mcfg.pretrained!r})")
    if not (mcfg.weights or mcfg.pretrained):
        return None, None
    wts = W.resolve_pretrained(mcfg.pretrained, mcfg.pretrained_download) if mcfg.pretrained else W.read_weights(mcfg.weights)
    return wts, W.load_into(model, wts, classes)


def finetune_plan(mcfg: ModelConfig, model: nn.Module, has_weights: bool):
    """The :class:`~vislab.tasks.shared.finetune.FinetunePlan` of ``--finetune`` & co., or None for plain training."""
    from vislab.tasks.shared.finetune import FinetunePlan, resolve_strategy

    strategy = resolve_strategy(mcfg.finetune, has_weights)
    if strategy in ("scratch", "full") and mcfg.layer_decay == 1 and not mcfg.freeze_bn:
        return None  # every parameter trains at one lr: the plain optimizer groups
    return FinetunePlan(model, strategy, mcfg.layer_decay, mcfg.freeze_bn, mcfg.unfreeze_every)


def validate(cfg: ClassifyConfig) -> None:
    """Classification's own checks (the shared ranges: :func:`vislab.tasks.base.validate_train`)."""
    from vislab.tasks.shared.finetune import resolve_strategy

    parse_augment(cfg.data.augment if cfg.data.augment != "auto" else "none")
    m = cfg.model
    check_all([(0 < m.layer_decay <= 1, "--layer-decay", "in (0, 1]", m.layer_decay), (m.unfreeze_every >= 1, "--unfreeze-every", ">= 1", m.unfreeze_every)])
    resolve_strategy(m.finetune, bool(m.weights or m.pretrained))


# --------------------------------------------------------------------------------------------
# The training job
# --------------------------------------------------------------------------------------------
def load_splits(cfg: ClassifyConfig) -> tuple[Splits, bool]:
    """The splits, decoded into memory when the fast path applies; and whether it does."""
    splits = load_dataset(cfg.data)
    tr = splits.train
    fast = use_fast_path(cfg.data, tr)
    if fast and not tr.in_memory:
        splits = Splits(tr.materialize(), splits.val.materialize() if splits.val else None, splits.test.materialize() if splits.test else None)
    return splits, fast


def setup(cfg: ClassifyConfig, ctx: WorkerContext) -> ClassifyJob:
    """Data, model (with its start weights), streams and hooks of a classification run in this process."""
    tc, dist, precision = cfg.train, ctx.dist, ctx.precision
    splits, fast = load_splits(cfg)
    tr = splits.train
    present = sorted({int(v) for v in tr.labels.tolist()})
    if len(present) < 2:  # accuracy 1.0 would be a lie: there is nothing to tell apart
        raise DataError(f"dataset {tr.name}: expected training images of at least 2 classes, got only class "
                        f"{tr.classes[present[0]] if present else '(none)'!r} ({len(tr)} images)")
    torch.manual_seed(tc.seed)
    model, model_args = build_model(cfg.model, len(tr.classes), tr.channels, tr.size)
    weights, report = start_weights(cfg.model, model, tr.classes)
    mean, std = choose_norm(cfg.model.norm, tr.stats(), (weights.mean, weights.std) if weights else None, tr.channels)
    augment = tr.augment if cfg.data.augment == "auto" else cfg.data.augment
    common = dict(device=ctx.device, mean=mean, std=std, rank=dist.rank, world=dist.world, workers=cfg.data.workers,
                  channels_last=precision.channels_last, fast_path=fast)
    train = BatchStream(tr, cfg.data.batch_size, train=True, augment=augment, seed=tc.seed,
                        mixup_alpha=cfg.data.mixup_alpha, cutmix_alpha=cfg.data.cutmix_alpha, **common)
    if train.batch_size < cfg.data.batch_size:
        warnings.warn(f"--batch-size {cfg.data.batch_size} is larger than the {len(tr)} training images; using {train.batch_size}", stacklevel=2)
    val = BatchStream(splits.val, cfg.data.eval_batch(), train=False, **common) if splits.val is not None and len(splits.val) else None
    ckpt_state = {"task": TASK, "model": cfg.model.model, "model_args": model_args, "num_classes": len(tr.classes),
                  "classes": tr.classes, "mean": list(mean), "std": list(std), "img_size": list(tr.size),
                  "channels": tr.channels, "config": C.to_dict(cfg)}
    if report is not None:
        ckpt_state["weights"] = report.as_dict(limit=20)
    log = [f"vislab classify: {cfg.model.model} on {tr.name} ({len(tr)} train, {len(splits.val) if splits.val else 0} val, "
           f"{len(splits.test) if splits.test else 0} test, {len(tr.classes)} classes, {tr.size[0]}x{tr.size[1]}x{tr.channels}) | "
           f"{ctx.device} {precision.name}{' channels_last' if precision.channels_last else ''} | "
           f"{'fast in-memory' if fast else 'DataLoader'} path | {dist.world} process(es) -> {ctx.run_dir}",
           *(report.lines() if report is not None else [])]
    return ClassifyJob(ClassifyTask(len(tr.classes), tc.label_smoothing), model, train, val, ckpt_state, log,
                       cfg=cfg, ctx=ctx, splits=splits, common=common, has_weights=weights is not None)


@dataclass(kw_only=True)
class ClassifyJob(TrainJob):
    """A classification run: fine-tuning plan, test on the best checkpoint, report."""

    splits: Splits
    common: dict[str, Any]
    has_weights: bool
    test_metrics: Any = None

    def configure(self, trainer: Trainer, model: nn.Module) -> None:
        plan = finetune_plan(self.cfg.model, model, self.has_weights)
        if plan is not None:
            trainer.param_groups, trainer.callbacks = plan.param_groups, [*trainer.callbacks, plan.callback()]
            trainer.progress.log(plan.describe())

    def finish(self, trainer: Trainer, model: nn.Module, result: FitResult) -> dict[str, Any]:
        test = self.splits.test
        stream = BatchStream(test, self.cfg.data.eval_batch(), train=False, **self.common) if test is not None and len(test) else None
        self.test_metrics, out = self.test_best(trainer, model, stream, shown=("test_acc", "test_top5", "test_loss", "test_macro_f1"))
        return out

    def report(self, trainer: Trainer, model: nn.Module, result: FitResult, final: dict[str, Any]) -> None:
        from vislab.tasks.classify.report import write_training_report

        m = self.test_metrics
        write_training_report(self.ctx.run_dir, result, final, m.confmat.cpu().numpy() if m is not None else None,
                              self.splits.test or self.splits.val, model=self.best if m is not None else model,
                              mean=self.common["mean"], std=self.common["std"], device=self.ctx.device, precision=self.ctx.precision,
                              classes=self.splits.train.classes, per_class=m.per_class() if m is not None else None)

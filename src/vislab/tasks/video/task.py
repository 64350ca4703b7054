"""Video classification in a training run: the trainer hooks (cross-entropy on clips, per frame for many-to-many
models, per stream for two-stream late fusion), clip + video metrics, the model and the job's setup, test and report.

Evaluation, prediction and export live in :mod:`vislab.tasks.video.infer`, explanations in
:mod:`vislab.tasks.video.explain`, the report's pictures in :mod:`vislab.tasks.video.report`.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core import config as C
from vislab.core.dist import all_reduce_sum
from vislab.core.errors import ConfigError, DataError
from vislab.data.video.sampling import frames_needed
from vislab.data.video.source import VideoSplits, check_cache_room, load_video_splits
from vislab.data.video.stream import VideoBatch, VideoStream
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import FitResult, Trainer
from vislab.metrics.classification import ClassificationMetrics
from vislab.models.registry import MODELS
from vislab.models.video.common import builder_params
from vislab.tasks.base import TrainJob, check_all
from vislab.tasks.video.config import VideoConfig, VideoModelConfig

TASK = "video"
RECURRENT = {"cnn_rnn", "cnn_gru", "cnn_lstm"}
WITH_BACKBONE = {"framewise", "two_stream", *RECURRENT}


class VideoMetrics:
    """Clip metrics (a :class:`ClassificationMetrics`) and video metrics: each video's clip probabilities summed,
    then argmax -- the usual "average the clip scores" video accuracy. All state sums over processes."""

    def __init__(self, num_classes: int, num_videos: int):
        self.clips = ClassificationMetrics(num_classes)
        self.video_scores = torch.zeros(num_videos, num_classes, dtype=torch.float64)
        self.video_labels = torch.full((num_videos,), -1, dtype=torch.float64)  # -1: not seen (summed: max over ranks)
        self.frames = torch.zeros(2, dtype=torch.float64)  # per-frame models: [frames, frames right]

    def update(self, logits: torch.Tensor, target: torch.Tensor, videos: torch.Tensor, loss_sum: Any = 0.0) -> None:
        logits = logits.float().cpu()
        self.clips.update(logits, target.cpu(), loss_sum)
        v = videos.cpu()
        self.video_scores.index_add_(0, v, logits.softmax(1).double())
        self.video_labels[v] = target.cpu().double()

    def update_frames(self, frame_logits: torch.Tensor, frame_labels: torch.Tensor) -> None:
        """Per-frame predictions ``(B, K, T)`` against per-frame labels ``(B, T)``."""
        right = (frame_logits.argmax(1) == frame_labels).sum().cpu()
        self.frames += torch.tensor([float(frame_labels.numel()), float(right)], dtype=torch.float64)

    def sync(self) -> None:
        self.clips.sync()
        all_reduce_sum(self.frames)
        all_reduce_sum(self.video_scores)
        seen = (self.video_labels >= 0).double()
        labels = torch.where(self.video_labels >= 0, self.video_labels, torch.zeros_like(self.video_labels))
        all_reduce_sum(seen), all_reduce_sum(labels)
        self.video_labels = torch.where(seen > 0, labels / seen.clamp_min(1), torch.full_like(labels, -1))

    @property
    def confmat(self) -> torch.Tensor:
        return self.clips.confmat

    def video_confmat(self) -> torch.Tensor:
        seen = self.video_labels >= 0
        k = self.video_scores.shape[1]
        t, p = self.video_labels[seen].long(), self.video_scores[seen].argmax(1)
        return torch.bincount(t * k + p, minlength=k * k).view(k, k).double()

    def compute(self) -> dict[str, float]:
        out = self.clips.compute()
        cm = self.video_confmat()
        out["video_acc"] = float(cm.diag().sum() / cm.sum().clamp_min(1))
        if self.frames[0] > 0:
            out["frame_acc"] = float(self.frames[1] / self.frames[0])
        return out

    def per_class(self) -> dict[str, list[float]]:
        """Per-class precision / recall / F1 / support of the video predictions."""
        cm = self.video_confmat()
        tp = cm.diag()
        recall, precision = tp / cm.sum(1).clamp_min(1), tp / cm.sum(0).clamp_min(1)
        f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
        return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(), "support": cm.sum(1).tolist()}


def forward(model: nn.Module, batch: VideoBatch) -> torch.Tensor:
    """Clip logits ``(b, K)`` of any video model (per-frame models: averaged over time)."""
    out = model(batch.x, batch.flow) if _needs_flow(model) else model(batch.x)
    return out.mean(2) if out.dim() == 3 else out


def _needs_flow(model: nn.Module) -> bool:
    return bool(getattr(getattr(model, "module", model), "needs_flow", False))


class VideoTask:
    """Cross-entropy on clips; per frame (many-to-many); per stream and fused (two-stream late fusion)."""

    monitor = "val_video_acc"
    shown = ("val_loss", "val_acc", "val_video_acc", "val_frame_acc")

    def __init__(self, num_classes: int, num_val_videos: int = 0, label_smoothing: float = 0.0):
        self.num_classes, self.num_val_videos, self.label_smoothing = num_classes, num_val_videos, label_smoothing

    def train_step(self, model: nn.Module, batch: VideoBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ce = lambda z, y: F.cross_entropy(z.float(), y, reduction="sum", label_smoothing=self.label_smoothing)  # noqa: E731
        raw = getattr(model, "module", model)
        if _needs_flow(model):
            # late fusion: each stream learns on its own (Simonyan & Zisserman), their scores averaged at inference;
            # mid fusion: the joint head's loss, plus half of each stream's own (deep supervision: every head trains)
            rgb, flow, logits = model(batch.x, batch.flow, streams=True)
            loss = ce(rgb, batch.y) + ce(flow, batch.y)
            if getattr(raw, "fusion", "late") == "mid":
                loss = ce(logits, batch.y) + 0.5 * loss
        else:
            out = model(batch.x, batch.flow) if _needs_flow(model) else model(batch.x)
            if out.dim() == 3:  # many-to-many: one label per frame, the loss is their mean per clip
                loss = F.cross_entropy(out.float(), batch.yf, reduction="sum", label_smoothing=self.label_smoothing) / out.shape[2]
                logits = out.detach().mean(2)
            else:
                loss, logits = ce(out, batch.y), out
        return loss, {"acc": (logits.detach().argmax(1) == batch.y).sum()}

    def new_metrics(self) -> VideoMetrics:
        return VideoMetrics(self.num_classes, self.num_val_videos)

    def eval_step(self, model: nn.Module, batch: VideoBatch, metrics: VideoMetrics) -> None:
        out = (model(batch.x, batch.flow) if _needs_flow(model) else model(batch.x)).float()
        if out.dim() == 3:  # per-frame model: frame accuracy too; its clip score is the mean over the frames
            metrics.update_frames(out, batch.yf)
            out = out.mean(2)
        metrics.update(out, batch.y, batch.index, F.cross_entropy(out, batch.y, reduction="sum"))


# --------------------------------------------------------------------------------------------
# Building blocks shared by train / eval / predict
# --------------------------------------------------------------------------------------------
def video_entry(name: str) -> Any:
    """The registry entry of video model ``name``; an unknown name (with a suggestion) or another task's model is an error."""
    entry = MODELS.get(name)  # raises ModelError with a suggestion
    if entry.task != TASK:
        raise ConfigError(f"--model: expected a video model (`vislab models list --task video`), got '{name}', a {entry.task} model")
    return entry


def model_args(mcfg: VideoModelConfig, num_classes: int, channels: int, clip_len: int, size: tuple[int, int]) -> dict[str, Any]:
    """The builder arguments of ``--model`` (only those its builder takes)."""
    name = mcfg.model
    entry = video_entry(name)
    args: dict[str, Any] = {"num_classes": num_classes, "in_chans": channels, "drop_rate": mcfg.drop_rate}
    if name in WITH_BACKBONE:
        args["backbone"] = mcfg.backbone
        bargs: dict[str, Any] = {}
        bparams = builder_params(mcfg.backbone)  # the rest (small_cnn's width 16) are the family's defaults
        if "stem" in bparams:
            bargs["stem"] = "cifar" if min(size) <= 64 else "imagenet"
        if mcfg.width and "width" in bparams:
            bargs["width"] = mcfg.width
        args["backbone_args"] = bargs
    if name in RECURRENT or name == "framewise":
        args["grid"] = mcfg.grid or (4 if min(size) <= 64 else 2)
    if name in RECURRENT:
        args.update(hidden=mcfg.hidden, num_layers=mcfg.num_layers, bidirectional=mcfg.bidirectional, many_to_many=mcfg.many_to_many)
    if name == "framewise":
        args["pool"] = mcfg.pool
    if name == "two_stream":
        args.update(clip_len=clip_len, fusion=mcfg.fusion)
    if name == "c3d":
        args["width"] = mcfg.width or (16 if min(size) <= 64 else 32)
    if name in ("r3d_18", "r2plus1d_18", "mc3_18"):
        args.pop("drop_rate")
        args["small_input"] = min(size) <= 64
    params = inspect.signature(entry.fn).parameters
    return {k: v for k, v in args.items() if k in params}


def build_model(mcfg: VideoModelConfig, num_classes: int, channels: int, clip_len: int, size: tuple[int, int]) -> tuple[nn.Module, dict[str, Any]]:
    args = model_args(mcfg, num_classes, channels, clip_len, size)
    return MODELS.build(mcfg.model, **args), args


def validate(cfg: VideoConfig) -> None:
    d, m = cfg.data, cfg.model
    check_all([(d.clip_len >= 1, "--clip-len", ">= 1", d.clip_len), (d.frame_stride >= 1, "--frame-stride", ">= 1", d.frame_stride),
               (d.eval_clips >= 1, "--eval-clips", ">= 1", d.eval_clips), (d.flow_scale > 0, "--flow-scale", "> 0", d.flow_scale),
               (d.channels in (0, 1, 3), "--channels", "0, 1 or 3", d.channels), (d.workers >= 0, "--workers", ">= 0", d.workers),
               (m.hidden >= 1, "--hidden", ">= 1", m.hidden), (m.grid >= 0, "--grid", ">= 0", m.grid), (m.num_layers >= 1, "--num-layers", ">= 1", m.num_layers)])
    if m.model == "two_stream" and d.clip_len < 2:
        raise ConfigError(f"--clip-len: expected >= 2 for two_stream (flow needs two frames), got {d.clip_len}")
    if m.many_to_many and m.model not in RECURRENT:
        raise ConfigError(f"--many-to-many: expected a CNN+RNN model ({', '.join(sorted(RECURRENT))}), got '{m.model}'")
    video_entry(m.model)


def flow_method(cfg: VideoConfig, model: nn.Module) -> str | None:
    """The flow the model needs (None: it needs none)."""
    if not getattr(model, "needs_flow", False):
        return None
    return "farneback" if cfg.data.flow == "auto" else cfg.data.flow


def streams_kwargs(cfg: VideoConfig, ctx: WorkerContext | None, mean, std, flow: str | None) -> dict[str, Any]:
    d = cfg.data
    kw = dict(clip_len=d.clip_len, stride=d.frame_stride, sampling=d.sampling, pad=d.pad, mean=mean, std=std, flow=flow,
              flow_scale=d.flow_scale, workers=d.workers, seed=cfg.train.seed)
    if ctx is not None:
        kw.update(device=ctx.device, rank=ctx.dist.rank, world=ctx.dist.world)
    return kw


# --------------------------------------------------------------------------------------------
# The training job
# --------------------------------------------------------------------------------------------
def setup(cfg: VideoConfig, ctx: WorkerContext) -> VideoJob:
    """Data, model (with its start weights), clip streams and hooks of a video run in this process."""
    tc, dist = cfg.train, ctx.dist
    splits = load_video_splits(cfg.data)
    tr = splits.train
    present = sorted({int(v) for v in tr.labels.tolist()})
    if len(present) < 2:
        raise DataError(f"dataset {tr.name}: expected training videos of at least 2 classes, got only "
                        f"{tr.classes[present[0]] if present else '(none)'!r} ({len(tr)} videos)")
    need = frames_needed(cfg.data.clip_len, cfg.data.frame_stride, cfg.data.sampling)
    for s in (tr, splits.val, splits.test):
        if s is not None:
            s.check_lengths(need, cfg.data.pad, f"--clip-len {cfg.data.clip_len} --frame-stride {cfg.data.frame_stride}")
    torch.manual_seed(tc.seed)
    model, args = build_model(cfg.model, len(tr.classes), tr.channels, cfg.data.clip_len, tr.size)
    cache_line = check_cache_room([tr, splits.val, splits.test], getattr(model, "needs_flow", False), cfg.data.cache not in ("auto", "none"))
    report = None
    if cfg.model.weights:
        from vislab.tasks.shared import weights as W

        report = W.load_into(model, W.read_weights(cfg.model.weights), tr.classes)
    mean, std = tr.stats()
    flow = flow_method(cfg, model)
    kw = streams_kwargs(cfg, ctx, mean, std, flow)
    train = VideoStream(tr, cfg.data.batch_size, train=True, augment=cfg.data.augment, **kw)
    if train.batch_size < cfg.data.batch_size:
        warnings.warn(f"--batch-size {cfg.data.batch_size} is larger than the {len(tr)} training videos; using {train.batch_size}", stacklevel=2)
    val = VideoStream(splits.val, cfg.data.eval_batch(), train=False, eval_clips=cfg.data.eval_clips, **kw) if splits.val is not None and len(splits.val) else None
    ckpt_state = {"task": TASK, "model": cfg.model.model, "model_args": args, "num_classes": len(tr.classes), "classes": tr.classes,
                  "mean": list(mean), "std": list(std), "img_size": list(tr.size), "channels": tr.channels, "clip_len": cfg.data.clip_len,
                  "frame_stride": cfg.data.frame_stride, "flow": flow, "flow_scale": cfg.data.flow_scale, "config": C.to_dict(cfg)}
    if report is not None:
        ckpt_state["weights"] = report.as_dict(limit=20)
    n_params = sum(p.numel() for p in model.parameters())
    log = [f"vislab video: {cfg.model.model} ({n_params / 1e6:.2f} M parameters) on {tr.name} ({len(tr)} train, "
           f"{len(splits.val) if splits.val else 0} val, {len(splits.test) if splits.test else 0} test videos, {len(tr.classes)} classes, "
           f"clips {cfg.data.clip_len} x {tr.size[0]}x{tr.size[1]}x{tr.channels}, stride {cfg.data.frame_stride}"
           f"{', flow ' + flow if flow else ''}) | {ctx.device} {ctx.precision.name} | {dist.world} process(es) -> {ctx.run_dir}",
           *([cache_line] if cache_line else []), *(report.lines() if report is not None else [])]
    hooks = VideoTask(len(tr.classes), len(splits.val) if splits.val is not None else 0, tc.label_smoothing)
    return VideoJob(hooks, model, train, val, ckpt_state, log, cfg=cfg, ctx=ctx, splits=splits, stream_kw=kw,
                    resume_keys=("task", "model", "num_classes", "clip_len"))


@dataclass(kw_only=True)
class VideoJob(TrainJob):
    """A video run: test on the best checkpoint (clips and videos), report."""

    splits: VideoSplits
    stream_kw: dict[str, Any]
    test_metrics: Any = None

    def finish(self, trainer: Trainer, model: nn.Module, result: FitResult) -> dict[str, Any]:
        test = self.splits.test
        stream = None
        if test is not None and len(test):
            self.hooks = VideoTask(self.hooks.num_classes, len(test), self.hooks.label_smoothing)
            stream = VideoStream(test, self.cfg.data.eval_batch(), train=False, eval_clips=self.cfg.data.eval_clips, **self.stream_kw)
        self.test_metrics, out = self.test_best(trainer, model, stream, shown=("test_acc", "test_video_acc", "test_frame_acc", "test_loss", "test_macro_f1"))
        return out

    def report(self, trainer: Trainer, model: nn.Module, result: FitResult, final: dict[str, Any]) -> None:
        from vislab.tasks.video.report import write_training_report

        m = self.test_metrics
        src = self.splits.test or self.splits.val or self.splits.train
        write_training_report(self.ctx.run_dir, result, final, m, src, model=self.best if self.best is not None else model,
                              stream_kw=self.stream_kw, device=self.ctx.device, precision=self.ctx.precision, classes=self.splits.train.classes)

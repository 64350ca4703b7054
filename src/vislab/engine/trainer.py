"""One training loop for every task.

The trainer knows no task: a task gives it a model, batch streams and three hooks --

* ``train_step(model, batch) -> (loss_sum, stats)``: forward pass and the *summed* loss over the
  process's samples (``stats``: other sums to show, e.g. ``{"correct": n}``);
* ``new_metrics() -> M`` with ``update``-style accumulation done by ``eval_step(model, batch, M)``,
  then ``M.sync()`` (sum over processes) and ``M.compute() -> {name: float}``.

The loss actually minimised is ``loss_sum * world / n_global``: the mean over the *global* batch,
whatever its split over processes -- so N processes take the same steps as one.

Everything needed to continue is in the checkpoint written after each epoch; randomness of an epoch
depends only on (seed, epoch), so a run killed mid-epoch and resumed ends where an uninterrupted run ends.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from vislab.core.device import Precision
from vislab.core.errors import CheckpointError, TrainingError
from vislab.engine import checkpoint as ckpt
from vislab.engine.config import TrainConfig
from vislab.core.dist import DistInfo, all_reduce_sum, barrier
from vislab.engine.optim import build_ema, build_optimizer, lr_factor, set_lr
from vislab.engine.progress import EpochProgress
from vislab.report.history import write_metrics_csv


class Metrics(Protocol):
    def sync(self) -> None: ...
    def compute(self) -> dict[str, float]: ...


class TaskHooks(Protocol):
    monitor: str  # default metric to monitor, e.g. "val_acc"

    def train_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...
    def new_metrics(self) -> Metrics: ...
    def eval_step(self, model: nn.Module, batch: Any, metrics: Metrics) -> None: ...


class Stream(Protocol):
    def __len__(self) -> int: ...
    def epoch(self, epoch: int) -> Any: ...


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_metric: str
    best_value: float | None
    best_epoch: int
    stopped_early: bool = False
    seconds: float = 0.0
    images_per_second: float = 0.0
    last_checkpoint: Path | None = None
    best_checkpoint: Path | None = None


@dataclass
class Callback:
    """Optional hooks; every field is a callable or None."""

    on_epoch_start: Callable[[int], None] | None = None  # before the epoch's first batch (e.g. gradual unfreezing)
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None
    on_fit_end: Callable[[FitResult], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def monitor_mode(name: str) -> str:
    return "min" if "loss" in name or "error" in name else "max"


class Trainer:
    """Fit / validate / test / predict for any task.

    Args:
        cfg: optimisation settings.
        task: the task hooks.
        device, precision, dist: where and how to compute.
        run_dir: run folder (checkpoints, metrics.csv, tb/); ``None`` keeps everything in memory.
        ckpt_state: JSON-able facts stored in every checkpoint (model name and args, classes, config...).
        progress: ``auto|on|off``.
        param_groups: ``fn(model, weight_decay) -> optimizer groups`` (e.g. per-layer ``lr_scale``);
            default: :func:`~vislab.engine.optim.param_groups`.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        task: TaskHooks,
        *,
        device: torch.device,
        precision: Precision,
        dist: DistInfo = DistInfo(),
        run_dir: Path | None = None,
        ckpt_state: dict[str, Any] | None = None,
        progress: str = "auto",
        tensorboard: bool = True,
        callbacks: list[Callback] | None = None,
        param_groups: Callable[[nn.Module, float], list[dict]] | None = None,
    ):
        self.cfg = cfg
        self.task = task
        self.device = device
        self.precision = precision
        self.dist = dist
        self.run_dir = run_dir
        self.ckpt_state = ckpt_state or {}
        self.progress = EpochProgress(progress, enabled=dist.is_main)
        self.tensorboard = tensorboard and run_dir is not None and dist.is_main
        self.callbacks = callbacks or []
        self.param_groups = param_groups
        self.monitor = task.monitor if cfg.monitor == "auto" else cfg.monitor

    # -- model preparation -------------------------------------------------------------------
    def prepare(self, model: nn.Module) -> nn.Module:
        """Move to the device and memory format; convert BatchNorm for sync; returns the raw model.

        On CPU, denormal floats are flushed to zero: tiny activations or gradients otherwise slow
        some epochs down more than tenfold (measured here: 2,000 -> 50-150 img/s for a small CNN).
        """
        if self.device.type == "cpu":
            torch.set_flush_denormal(True)
        if self.dist.enabled and self.cfg.sync_bn:
            if self.device.type != "cuda":
                from vislab.core.errors import ConfigError

                raise ConfigError(f"--sync-bn: expected CUDA devices (torch's SyncBatchNorm works only with GPU modules), got {self.device.type}")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        if self.precision.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.dist.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(model, device_ids=ids, broadcast_buffers=not self.cfg.sync_bn)

    # -- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: nn.Module, stream: Stream, epoch: int = 0) -> dict[str, float]:
        """Metrics of ``model`` over ``stream``, reduced over processes."""
        was_training = model.training
        model.eval()
        metrics = self.task.new_metrics()
        for batch in stream.epoch(epoch):
            if len(batch.y) == 0:
                continue
            with self.precision.autocast():
                self.task.eval_step(model, batch, metrics)
        metrics.sync()
        model.train(was_training)
        return metrics.compute()

    # -- training ----------------------------------------------------------------------------
    def fit(self, model: nn.Module, train: Stream, val: Stream | None = None, resume: str | Path | None = None) -> FitResult:
        """Train ``model`` (already :meth:`prepare`-d) for ``cfg.epochs``; resumes from a checkpoint when given."""
        cfg = self.cfg
        if cfg.monitor == "auto" and val is None:
            self.monitor = "train_loss"  # nothing held out: best = lowest training loss
        optimizer = build_optimizer(model, cfg, self.param_groups)
        ema = build_ema(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        scaler = torch.amp.GradScaler(self.device.type) if self.precision.scaler else None
        steps_per_epoch = max(1, math.ceil(len(train) / cfg.accumulate))
        total_steps = steps_per_epoch * cfg.epochs
        start_epoch, step, history = 0, 0, []
        mode = monitor_mode(self.monitor)
        best_value: float | None = None
        best_epoch, bad_epochs = -1, 0
        if resume:
            st = self._restore(resume, model, optimizer, ema, scaler)
            start_epoch, step, history = st["epoch"], st["step"], st["history"]
            best_value, best_epoch, bad_epochs = st.get("best_value"), st.get("best_epoch", -1), st.get("bad_epochs", 0)
            self.progress.log(f"resumed from {resume} at epoch {start_epoch}")
        ddp_model = self._wrap(model)
        writer = self._writer(start_epoch)
        result = FitResult(history, self.monitor, best_value, best_epoch)
        t_fit, seen_total = time.perf_counter(), 0
        last_path = best_path = None
        try:
            for epoch in range(start_epoch, cfg.epochs):
                if cfg.early_stop and bad_epochs >= cfg.early_stop:
                    result.stopped_early = True
                    break
                torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout etc.: a function of (seed, epoch)
                for cb in self.callbacks:
                    if cb.on_epoch_start:
                        cb.on_epoch_start(epoch)
                row, step, seen = self._train_epoch(ddp_model, model, optimizer, ema, scaler, train, epoch, step, total_steps, steps_per_epoch)
                seen_total += seen
                eval_model = ema.module if ema is not None else model
                if val is not None:
                    row.update({f"val_{k}": v for k, v in self.evaluate(eval_model, val, epoch).items()})
                history.append(row)
                value = row.get(self.monitor)
                if value is None:
                    raise TrainingError(f"--monitor: expected one of {', '.join(sorted(row))}, got '{self.monitor}'")
                improved = best_value is None or (value > best_value if mode == "max" else value < best_value)
                if improved:
                    best_value, best_epoch, bad_epochs = value, epoch, 0
                else:
                    bad_epochs += 1
                state = {"epoch": epoch + 1, "step": step, "history": history, "best_value": best_value,
                         "best_epoch": best_epoch, "bad_epochs": bad_epochs, "monitor": self.monitor,
                         "scaler": scaler.state_dict() if scaler else None, **self.ckpt_state}
                if self.dist.is_main and self.run_dir is not None:
                    last_path = ckpt.save(self.run_dir / "checkpoints" / "last.safetensors", model, state, optimizer, ema)
                    if improved:
                        best_path = ckpt.save(self.run_dir / "checkpoints" / "best.safetensors", eval_model,
                                              {k: v for k, v in state.items() if k != "scaler"})
                    write_metrics_csv(self.run_dir / "metrics.csv", history)
                    if writer is not None:
                        for k, v in row.items():
                            if k != "epoch":
                                writer.add_scalar(k.replace("_", "/", 1), v, epoch + 1)
                        writer.flush()
                barrier()
                self.progress.end_epoch(_epoch_line(row, cfg.epochs, self.monitor, improved))
                for cb in self.callbacks:
                    if cb.on_epoch_end:
                        cb.on_epoch_end(epoch, row)
        finally:
            if writer is not None:
                writer.close()
        result.history, result.best_value, result.best_epoch = history, best_value, best_epoch
        result.seconds = time.perf_counter() - t_fit
        result.images_per_second = seen_total / max(result.seconds, 1e-9)
        result.last_checkpoint, result.best_checkpoint = last_path, best_path
        if self.run_dir is not None:
            result.last_checkpoint = self.run_dir / "checkpoints" / "last.safetensors"
            result.best_checkpoint = self.run_dir / "checkpoints" / "best.safetensors"
        for cb in self.callbacks:
            if cb.on_fit_end:
                cb.on_fit_end(result)
        return result

    def _train_epoch(self, ddp_model, model, optimizer, ema, scaler, train, epoch, step, total_steps, steps_per_epoch):
        cfg, world = self.cfg, self.dist.world
        ddp_model.train()
        n_batches = len(train)
        self.progress.start_epoch(epoch, cfg.epochs, n_batches)
        sums = torch.zeros(3, dtype=torch.float64)  # global [loss sum, samples, correct]
        t0 = time.perf_counter()
        for i, batch in enumerate(train.epoch(epoch)):
            sync_now = (i + 1) % cfg.accumulate == 0 or i + 1 == n_batches
            no_sync = ddp_model.no_sync if (self.dist.enabled and not sync_now) else contextlib.nullcontext
            with no_sync():
                with self.precision.autocast():
                    loss_sum, stats = self.task.train_step(ddp_model, batch)
                loss = loss_sum.float() * (world / batch.n_global) / cfg.accumulate
                (scaler.scale(loss) if scaler else loss).backward()
            local = torch.tensor([float(loss_sum.detach()), float(len(batch.y)), float(stats.get("correct", 0))], dtype=torch.float64)
            glob = all_reduce_sum(local.clone()) if self.dist.enabled else local
            if not math.isfinite(float(glob[0])):
                last = self.run_dir / "checkpoints" / "last.safetensors" if self.run_dir else None
                kept = f"; kept the last good checkpoint {last} (epoch {epoch})" if last and last.exists() else "; no checkpoint was written yet"
                raise TrainingError(
                    f"loss became {float(glob[0])} at epoch {epoch + 1}, step {i + 1} (lr {optimizer.param_groups[0]['lr']:.3g}); "
                    f"expected a finite loss{kept}. Try a lower --lr or --grad-clip 1.0"
                )
            sums += glob
            if sync_now:
                set_lr(optimizer, cfg.lr * lr_factor(step, total_steps, steps_per_epoch, cfg))
                if cfg.grad_clip > 0:
                    if scaler:
                        scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if ema is not None:
                    ema.update_parameters(model)
            self.progress.step(int(glob[1]), float(glob[0] / max(glob[1], 1)), float(glob[2] / max(glob[1], 1)) if "correct" in stats else None)
        dt = time.perf_counter() - t0
        loss_sum, n, correct = sums.tolist()
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "train_loss": loss_sum / max(n, 1)}
        if correct:
            row["train_acc"] = correct / max(n, 1)
        row.update({"epoch_seconds": dt, "images_per_second": n / max(dt, 1e-9)})
        return row, step, int(n)

    def _restore(self, path, model, optimizer, ema, scaler) -> dict[str, Any]:
        tensors, state = ckpt.load(ckpt.resolve_path(path, prefer="last"))
        if "history" not in state or "epoch" not in state:
            raise CheckpointError(f"resume '{path}': expected a training checkpoint (last.safetensors), got an inference-only one")
        for key in ("model", "num_classes"):
            if key in self.ckpt_state and key in state and state[key] != self.ckpt_state[key]:
                raise CheckpointError(f"resume '{path}': expected a checkpoint of {key}={self.ckpt_state[key]!r}, got {state[key]!r}")
        ckpt.load_weights(model, ckpt.part(tensors, "model"), f"'{path}'")
        opt_sd = ckpt.optimizer_state(tensors, state)
        if opt_sd is not None:
            optimizer.load_state_dict(opt_sd)
        if ema is not None:
            ema_sd = ckpt.part(tensors, "ema")
            if ema_sd:
                ema.load_state_dict(ema_sd)
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        return state

    def _writer(self, start_epoch: int):
        if not self.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.run_dir / "tb"), purge_step=start_epoch + 1 if start_epoch else None)


def _epoch_line(row: dict[str, float], epochs: int, monitor: str, improved: bool) -> str:
    parts = [f"epoch {int(row['epoch'])}/{epochs}", f"loss {row['train_loss']:.4f}"]
    for k in ("train_acc", "val_loss", "val_acc"):
        if k in row:
            parts.append(f"{k} {row[k]:.4f}")
    parts.append(f"{row['images_per_second']:,.0f} img/s")
    parts.append(f"{row['epoch_seconds']:.1f}s")
    if improved:
        parts.append(f"* best {monitor}")
    return "  ".join(parts)

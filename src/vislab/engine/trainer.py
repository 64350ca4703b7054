"""One training loop for every task.

The trainer knows no task. A task gives it its model -- one module, or several by name
(``{"G": generator, "D": critic}``) -- batch streams, and hooks (:class:`TaskHooks`):

* ``train_step(model, batch) -> (loss_sum, stats)``: the default path. The forward pass and the loss *summed*
  over this process's samples; the trainer runs backward and steps the one optimizer. ``stats`` are other
  per-sample sums to log: ``{"acc": n_correct}`` becomes the column ``train_acc`` (their mean per sample);
* or ``step(ctx, batch) -> stats``: a step the task owns, for several optimizers (GANs: alternating D/G steps,
  n_critic, gradient penalty). The task calls ``ctx.backward(loss_sum, "D")`` and ``ctx.step("D")`` itself
  (see :class:`StepContext`); every returned stat is a per-sample sum, logged as ``train_<name>``;
* ``new_metrics() -> M`` and ``eval_step(model, batch, M)`` for evaluation (:func:`~vislab.engine.evaluate.run_eval`),
  or ``evaluate(model, stream, epoch) -> {name: value}`` for an evaluation of the task's own (e.g. sampling);
* optional attributes: ``monitor`` (the default metric for the best checkpoint, e.g. ``val_acc``),
  ``optimizers() -> {name: OptimizerSpec}`` (which models each optimizer trains; default: one optimizer
  ``"model"`` over everything), ``ema_models`` (the models ``--ema-decay`` averages; default: all).

The loss actually minimised is ``loss_sum * world / n_global``: the mean over the *global* batch,
whatever its split over processes -- so N processes take the same steps as one.

Everything needed to continue is in the checkpoint written after each epoch (every model, optimizer, EMA
and gradient scaler, by name); randomness of an epoch depends only on (seed, epoch), so a run killed
mid-epoch and resumed ends where an uninterrupted run ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from vislab.core.device import Precision, channels_last_for
from vislab.core.dist import DistInfo, all_reduce_sum, barrier
from vislab.core.errors import CheckpointError, ConfigError, TrainingError
from vislab.engine import checkpoint as ckpt
from vislab.engine.config import TrainConfig
from vislab.engine.evaluate import eval_mode, run_eval
from vislab.engine.optim import build_ema, build_optimizer, lr_factor, set_lr
from vislab.engine.progress import EpochProgress
from vislab.report.history import write_metrics_csv

DEFAULT = "model"  # the name of the model and of the optimizer when a task has one of each
PREVIOUS = "previous.safetensors"  # the last checkpoint but one, kept beside last.safetensors


class Metrics(Protocol):
    def sync(self) -> None: ...
    def compute(self) -> dict[str, float]: ...


class TaskHooks(Protocol):
    monitor: str  # default metric to monitor, e.g. "val_acc"

    def train_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...
    def new_metrics(self) -> Metrics: ...
    def eval_step(self, model: Any, batch: Any, metrics: Metrics) -> None: ...


class Stream(Protocol):
    """Batches by the shared rule: ``epoch(e)`` yields this process's share of each global batch; a batch has
    ``len(batch)`` (its local samples) and ``batch.n_global`` (the global batch's)."""

    def __len__(self) -> int: ...
    def epoch(self, epoch: int) -> Any: ...


@dataclass
class OptimizerSpec:
    """One optimizer of a task: the named models it trains and the settings that differ from the run's
    ``TrainConfig`` (``overrides``, e.g. ``{"lr": 2e-4, "momentum": 0.5}`` for a DCGAN's Adam)."""

    models: tuple[str, ...]
    overrides: dict[str, Any] = field(default_factory=dict)


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
    on_step_end: Callable[[int, dict[str, float]], None] | None = None  # after optimizer step n: that batch's train_* means
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None
    on_fit_end: Callable[[FitResult], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


LAST = "last"  # --monitor last: the best checkpoint is the latest (a GAN's losses do not say which epoch is best)
MINIMISED = ("loss", "error", "mmd", "swd", "fid", "kid", "lpips", "distance", "l1", "mse")  # metric names where lower is better


def monitor_mode(name: str) -> str:
    """``min`` for metrics where lower is better (by name: losses, errors, distances such as MMD / FID), else ``max``.

    Example:
        >>> monitor_mode("val_loss"), monitor_mode("val_mmd"), monitor_mode("val_acc")
        ('min', 'min', 'max')
    """
    return "min" if any(w in name for w in MINIMISED) else "max"


class StepContext:
    """What a task-owned step (``hooks.step(ctx, batch)``) works with.

    * ``ctx.module(name)``: the model to run when its *own* loss is computed (wrapped for gradient
      synchronisation under DDP);
    * ``ctx.raw(name)``: the plain model, for passes where another model's loss flows through it (a GAN's
      critic judging the generator): its gradients are then neither computed nor synchronised;
    * ``ctx.backward(loss_sum, opt)``: gradients of ``loss_sum`` (summed over this process's samples) for the
      parameters of optimizer ``opt`` only, scaled to the global-batch mean (and by the fp16 gradient scaler);
    * ``ctx.step(opt)``: clip, step and zero that optimizer (at gradient-accumulation boundaries; returns
      whether it stepped), update the EMA of its models;
    * ``ctx.step_count`` (optimizer steps of the run so far, before this batch), ``ctx.batch_index``, ``ctx.epoch``.

    With ``--accumulate k`` gradients add up over k micro-batches and ``ctx.step`` steps at the last of them, so a
    step that updates an optimizer only on some batches (every n_critic) should require ``--accumulate 1``.
    Every process must return the same stat names in the same order for a batch (they are summed across processes).

    Example (one critic update per batch, a generator update every ``n_critic`` batches)::

        def step(self, ctx, batch):
            fake = ctx.raw("G")(z)
            loss_d = critic_loss(ctx.module("D"), batch.x, fake.detach())
            ctx.backward(loss_d, "D"); ctx.step("D")
            stats = {"loss_d": loss_d.detach()}
            if ctx.batch_index % n_critic == 0:
                loss_g = -ctx.raw("D")(ctx.module("G")(z)).sum()
                ctx.backward(loss_g, "G"); ctx.step("G")
                stats["loss_g"] = loss_g.detach()
            return stats
    """

    def __init__(self, trainer: Trainer, run: _Run):
        self._t, self._run = trainer, run
        self.epoch = 0
        self.batch_index = 0
        self.step_count = 0
        self._n_global = 1
        self._sync_now = True

    def module(self, name: str) -> nn.Module:
        return self._run.wrapped[self._run.check_model(name)]

    def raw(self, name: str) -> nn.Module:
        return self._run.models[self._run.check_model(name)]

    def backward(self, loss_sum: torch.Tensor, optimizer: str) -> None:
        params = self._run.trainable(optimizer)
        with torch.autocast(self._t.device.type, enabled=False):
            torch.autograd.backward(self._run.scaled(loss_sum, self._n_global, optimizer), inputs=params)

    def step(self, optimizer: str) -> bool:
        if not self._sync_now:
            return False
        self._run.optimizer_step(optimizer, self.step_count)
        return True


class _Run:
    """The state of one fit: models, their DDP wrappers, optimizers, EMAs and gradient scalers, by name."""

    def __init__(self, trainer: Trainer, model: nn.Module | Mapping[str, nn.Module]):
        cfg = trainer.cfg
        self.single = not isinstance(model, Mapping)
        self.models: dict[str, nn.Module] = {DEFAULT: model} if self.single else dict(model)  # type: ignore[arg-type]
        hooks = trainer.task
        specs = hooks.optimizers() if hasattr(hooks, "optimizers") else {DEFAULT: OptimizerSpec(tuple(self.models))}
        if not specs:
            raise ConfigError("task optimizers: expected at least one, got none")
        for name, spec in specs.items():
            for m in spec.models:
                self.check_model(m, f"optimizer '{name}'")
        self.one_optimizer = len(specs) == 1 and DEFAULT in specs
        self.specs = specs
        self.cfgs = {n: dataclasses.replace(cfg, **s.overrides) if s.overrides else cfg for n, s in specs.items()}
        self.optimizers = {n: build_optimizer(self.group(s.models), self.cfgs[n], trainer.param_groups if self.one_optimizer else None)
                           for n, s in specs.items()}
        ema_names = tuple(getattr(hooks, "ema_models", None) or self.models)
        self.emas = {n: build_ema(self.models[n], cfg.ema_decay) for n in ema_names} if cfg.ema_decay > 0 else {}
        self.scalers = {n: torch.amp.GradScaler(trainer.device.type) for n in specs} if trainer.precision.scaler else {}
        self.wrapped = {n: trainer.wrap(m) for n, m in self.models.items()}
        self.world, self.accumulate = trainer.dist.world, cfg.accumulate

    def scaled(self, loss_sum: torch.Tensor, n_global: int, optimizer: str) -> torch.Tensor:
        """What backward runs on: ``loss_sum * world / n_global`` (the global-batch mean under DDP's averaging), divided
        over the accumulated micro-batches, times the fp16 gradient scale of ``optimizer``."""
        loss = loss_sum.float() * (self.world / n_global) / self.accumulate
        scaler = self.scalers.get(optimizer)
        return scaler.scale(loss) if scaler else loss

    def check_model(self, name: str, where: str = "step") -> str:
        if name not in self.models:
            raise ConfigError(f"{where}: expected one of the task's models {', '.join(self.models)}, got '{name}'")
        return name

    def group(self, names: tuple[str, ...]) -> nn.Module:
        return self.models[names[0]] if len(names) == 1 else nn.ModuleDict({n: self.models[n] for n in names})

    def trainable(self, optimizer: str) -> list[torch.Tensor]:
        if optimizer not in self.optimizers:
            raise ConfigError(f"step: expected one of the task's optimizers {', '.join(self.optimizers)}, got '{optimizer}'")
        return [p for g in self.optimizers[optimizer].param_groups for p in g["params"] if p.requires_grad]

    def optimizer_step(self, name: str, step: int) -> None:
        """One update of optimizer ``name`` at run step ``step``: lr from the schedule, clip, step, zero, EMA."""
        opt, cfg, scaler = self.optimizers[name], self.cfgs[name], self.scalers.get(name)
        set_lr(opt, cfg.lr * lr_factor(step, self.total_steps, self.steps_per_epoch, cfg))
        if cfg.grad_clip > 0:
            if scaler:
                scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_([p for m in self.specs[name].models for p in self.models[m].parameters()], cfg.grad_clip)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        for m in self.specs[name].models:
            if m in self.emas:
                self.emas[m].update_parameters(self.models[m])

    # -- what a checkpoint holds: one module / optimizer as before, or a dict of them by name -------------
    def container(self, modules: Mapping[str, nn.Module]) -> nn.Module:
        return modules[DEFAULT] if self.single else nn.ModuleDict(dict(modules))

    def eval_models(self) -> dict[str, nn.Module]:
        return {n: self.emas[n].module if n in self.emas else m for n, m in self.models.items()}

    def eval_view(self) -> Any:
        """What ``eval_step`` gets: the (EMA) model, or a dict of them."""
        ev = self.eval_models()
        return ev[DEFAULT] if self.single else ev

    def ckpt_optimizer(self) -> Any:
        return self.optimizers[DEFAULT] if self.one_optimizer else self.optimizers

    def ckpt_ema(self) -> nn.Module | None:
        if not self.emas:
            return None
        return self.emas[DEFAULT] if self.single and DEFAULT in self.emas else nn.ModuleDict(self.emas)

    def scaler_state(self) -> Any:
        if not self.scalers:
            return None
        return self.scalers[DEFAULT].state_dict() if self.one_optimizer else {n: s.state_dict() for n, s in self.scalers.items()}


class Trainer:
    """Fit / evaluate for any task.

    Args:
        cfg: optimisation settings.
        task: the task hooks.
        device, precision, dist: where and how to compute.
        run_dir: run folder (checkpoints, metrics.csv, tb/); ``None`` keeps everything in memory.
        ckpt_state: JSON-able facts stored in every checkpoint (model name and args, classes, config...).
        progress: ``auto|on|off``.
        param_groups: ``fn(model, weight_decay) -> optimizer groups`` (e.g. per-layer ``lr_scale``) of the one
            optimizer; default: :func:`~vislab.engine.optim.param_groups`.
        resume_keys: ``ckpt_state`` entries a resumed checkpoint must agree with (e.g. ``num_classes``).
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
        resume_keys: tuple[str, ...] = ("task", "model", "num_classes"),
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
        self.resume_keys = resume_keys
        self.monitor = getattr(task, "monitor", "train_loss") if cfg.monitor == "auto" else cfg.monitor

    # -- model preparation -------------------------------------------------------------------
    def prepare(self, model: nn.Module | Mapping[str, nn.Module]) -> Any:
        """Move to the device and memory format; convert BatchNorm for sync; returns the raw model (or dict).

        On CPU, denormal floats are flushed to zero: tiny activations or gradients otherwise slow
        some epochs down more than tenfold (measured here: 2,000 -> 50-150 img/s for a small CNN).
        """
        if isinstance(model, Mapping):
            return {n: self.prepare(m) for n, m in model.items()}
        if self.device.type == "cpu":
            torch.set_flush_denormal(True)
        if self.dist.enabled and self.cfg.sync_bn:
            if self.device.type != "cuda":
                raise ConfigError(f"--sync-bn: expected CUDA devices (torch's SyncBatchNorm works only with GPU modules), got {self.device.type}")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        if self.precision.channels_last:
            model = model.to(memory_format=channels_last_for(model))
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP around ``model`` when several processes train (and it has something to train)."""
        if not self.dist.enabled or not any(p.requires_grad for p in model.parameters()):
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(model, device_ids=ids, broadcast_buffers=not self.cfg.sync_bn)

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, model: Any, stream: Stream, epoch: int = 0) -> dict[str, float]:
        """Metrics of ``model`` (a module or a dict of them) over ``stream``, reduced over processes."""
        if not hasattr(self.task, "evaluate"):
            return run_eval(self.task, model, stream, self.precision, epoch).compute()
        with eval_mode(model), torch.no_grad(), self.precision.autocast():
            return self.task.evaluate(model, stream, epoch)  # the task's own: e.g. sampling-based

    # -- training ----------------------------------------------------------------------------
    def fit(self, model: nn.Module | Mapping[str, nn.Module], train: Stream, val: Stream | None = None,
            resume: str | Path | None = None) -> FitResult:
        """Train ``model`` (already :meth:`prepare`-d; one module or a dict by name) for ``cfg.epochs``;
        resumes from a checkpoint when given."""
        cfg = self.cfg
        if cfg.monitor == "auto" and val is None and not self.monitor.startswith("train_") and self.monitor != LAST:
            self.monitor = "train_loss"  # nothing held out: best = lowest training loss
        run = _Run(self, model)
        run.steps_per_epoch = max(1, math.ceil(len(train) / cfg.accumulate))
        run.total_steps = run.steps_per_epoch * cfg.epochs
        start_epoch, step, history = 0, 0, []
        mode = monitor_mode(self.monitor)
        best_value: float | None = None
        best_epoch, bad_epochs = -1, 0
        if resume:
            st = self._restore(resume, run)
            start_epoch, step, history = st["epoch"], st["step"], st["history"]
            best_value, best_epoch, bad_epochs = st.get("best_value"), st.get("best_epoch", -1), st.get("bad_epochs", 0)
            self.progress.log(f"resumed from {resume} at epoch {start_epoch}")
        writer = self._writer(start_epoch)
        result = FitResult(history, self.monitor, best_value, best_epoch)
        t_fit, seen_total = time.perf_counter(), 0
        try:
            for epoch in range(start_epoch, cfg.epochs):
                if cfg.early_stop and bad_epochs >= cfg.early_stop:
                    result.stopped_early = True
                    break
                torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout etc.: a function of (seed, epoch)
                for cb in self.callbacks:
                    if cb.on_epoch_start:
                        cb.on_epoch_start(epoch)
                row, step, seen = self._train_epoch(run, train, epoch, step)
                seen_total += seen
                if val is not None:
                    row.update({f"val_{k}": v for k, v in self.evaluate(run.eval_view(), val, epoch).items()})
                history.append(row)
                if self.monitor not in row and self.monitor != LAST and cfg.monitor == "auto" and val is None:  # a task-owned step may name no "loss"
                    self.monitor = next((k for k in row if k.startswith("train_") and "loss" in k), self.monitor)
                    mode = monitor_mode(self.monitor)
                    result.best_metric = self.monitor
                value = row["epoch"] if self.monitor == LAST else row.get(self.monitor)
                if value is None:
                    raise TrainingError(f"--monitor: expected one of {', '.join(sorted(row))}, got '{self.monitor}'")
                improved = best_value is None or (value > best_value if mode == "max" else value < best_value)
                if improved:
                    best_value, best_epoch, bad_epochs = value, epoch, 0
                else:
                    bad_epochs += 1
                state = {"epoch": epoch + 1, "step": step, "history": history, "best_value": best_value,
                         "best_epoch": best_epoch, "bad_epochs": bad_epochs, "monitor": self.monitor,
                         "scaler": run.scaler_state(), **self.ckpt_state}
                if self.dist.is_main and self.run_dir is not None:
                    self._save(run, state, improved)
                    if writer is not None:
                        for k, v in row.items():
                            if k != "epoch":
                                writer.add_scalar(k.replace("_", "/", 1), v, epoch + 1)
                        writer.flush()
                barrier()
                self.progress.end_epoch(_epoch_line(row, cfg.epochs, self.monitor, improved, getattr(self.task, "shown", ("val_loss",)),
                                                    best_value, best_epoch))
                for cb in self.callbacks:
                    if cb.on_epoch_end:
                        cb.on_epoch_end(epoch, row)
        finally:
            if writer is not None:
                writer.close()
        result.history, result.best_value, result.best_epoch = history, best_value, best_epoch
        result.seconds = time.perf_counter() - t_fit
        result.images_per_second = seen_total / max(result.seconds, 1e-9)
        if self.run_dir is not None:
            result.last_checkpoint = self.run_dir / "checkpoints" / "last.safetensors"
            result.best_checkpoint = self.run_dir / "checkpoints" / "best.safetensors"
        for cb in self.callbacks:
            if cb.on_fit_end:
                cb.on_fit_end(result)
        return result

    def _save(self, run: _Run, state: dict[str, Any], improved: bool) -> None:
        d = self.run_dir / "checkpoints"  # type: ignore[operator]
        ckpt.save(d / "last.safetensors", run.container(run.models), state, run.ckpt_optimizer(), run.ckpt_ema(), keep_previous=PREVIOUS)
        if improved:
            ckpt.save(d / "best.safetensors", run.container(run.eval_models()), {k: v for k, v in state.items() if k != "scaler"})
        write_metrics_csv(self.run_dir / "metrics.csv", state["history"])  # type: ignore[operator]

    def _train_epoch(self, run: _Run, train: Stream, epoch: int, step: int) -> tuple[dict[str, float], int, int]:
        cfg = self.cfg
        for m in run.wrapped.values():
            m.train()
        n_batches = len(train)
        self.progress.start_epoch(epoch, cfg.epochs, n_batches)
        sums: dict[str, float] = {}  # global per-sample sums of each stat, and the samples they cover
        counts: dict[str, float] = {}
        n_seen = 0.0
        owned = hasattr(self.task, "step")
        ctx = StepContext(self, run) if owned else None
        per_step = [cb.on_step_end for cb in self.callbacks if cb.on_step_end]
        t0 = time.perf_counter()
        for i, batch in enumerate(train.epoch(epoch)):
            sync_now = (i + 1) % cfg.accumulate == 0 or i + 1 == n_batches
            with self._no_sync(run, sync_now):
                if ctx is not None:
                    ctx.epoch, ctx.batch_index, ctx.step_count = epoch, i, step
                    ctx._n_global, ctx._sync_now = batch.n_global, sync_now
                    with self.precision.autocast():
                        stats = dict(self.task.step(ctx, batch))  # type: ignore[attr-defined]
                else:
                    with self.precision.autocast():
                        loss_sum, extra = self.task.train_step(run.wrapped[DEFAULT], batch)
                    run.scaled(loss_sum, batch.n_global, DEFAULT).backward()
                    stats = {"loss": loss_sum, **extra}
            names = list(stats)
            local = torch.tensor([float(len(batch))] + [float(stats[k].detach() if torch.is_tensor(stats[k]) else stats[k]) for k in names],
                                 dtype=torch.float64)
            glob = all_reduce_sum(local.clone()) if self.dist.enabled else local
            n = float(glob[0])
            for k, v in zip(names, glob[1:].tolist(), strict=True):
                if not math.isfinite(v):
                    raise TrainingError(self._not_finite(k, v, epoch, i, run))
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0.0) + n
            n_seen += n
            if sync_now:
                if ctx is None:
                    run.optimizer_step(DEFAULT, step)
                step += 1
                if per_step:
                    means = {f"train_{k}": v / max(n, 1) for k, v in zip(names, glob[1:].tolist(), strict=True)}
                    for fn in per_step:
                        fn(step, means)
            self.progress.step(int(n), {k: sums[k] / max(counts[k], 1) for k in names[:2]})
        dt = time.perf_counter() - t0
        first = next(iter(run.optimizers.values()))
        row: dict[str, float] = {"epoch": epoch + 1, "lr": first.param_groups[0]["lr"]}
        row.update({f"train_{k}": v / max(counts[k], 1) for k, v in sums.items()})
        row.update({"epoch_seconds": dt, "images_per_second": n_seen / max(dt, 1e-9)})
        return row, step, int(n_seen)

    def _no_sync(self, run: _Run, sync_now: bool):
        """Gradient accumulation under DDP: no all-reduce until the last micro-batch of a step."""
        stack = contextlib.ExitStack()
        if self.dist.enabled and not sync_now:
            for m in run.wrapped.values():
                if hasattr(m, "no_sync"):
                    stack.enter_context(m.no_sync())
        return stack

    def _not_finite(self, name: str, value: float, epoch: int, i: int, run: _Run) -> str:
        last = self.run_dir / "checkpoints" / "last.safetensors" if self.run_dir else None
        kept = f"; kept the last good checkpoint {last} (epoch {epoch})" if last and last.exists() else "; no checkpoint was written yet"
        lr = next(iter(run.optimizers.values())).param_groups[0]["lr"]
        owner = getattr(self.task, "stat_owners", {}).get(name)  # e.g. loss_d -> "the critic D": which network diverged
        what = f"{name} ({owner} diverged)" if owner else name
        return (f"{what} became {value} at epoch {epoch + 1}, step {i + 1} (lr {lr:.3g}); "
                f"expected a finite {name}{kept}. Try a lower --lr or --grad-clip 1.0")

    def _restore(self, path: str | Path, run: _Run) -> dict[str, Any]:
        p = ckpt.resolve_path(path, prefer="last")
        try:
            tensors, state = ckpt.load(p)
        except CheckpointError as e:  # e.g. truncated by a full disk or a copy cut short: the one before is kept for this
            prev = p.with_name(PREVIOUS)
            if p.name != "last.safetensors" or not prev.is_file():
                raise
            tensors, state = ckpt.load(prev)
            self.progress.log(f"{p} is unreadable ({str(e).split('(')[-1].rstrip(')')[:80]}); resuming from {prev} (epoch {state.get('epoch')})")
        if "history" not in state or "epoch" not in state:
            raise CheckpointError(f"resume '{path}': expected a training checkpoint (last.safetensors), got an inference-only one")
        for key in self.resume_keys:
            if key in self.ckpt_state and key in state and state[key] != self.ckpt_state[key]:
                raise CheckpointError(f"resume '{path}': expected a checkpoint of {key}={self.ckpt_state[key]!r}, got {state[key]!r}")
        ckpt.load_weights(run.container(run.models), ckpt.part(tensors, "model"), f"'{path}'")
        if run.one_optimizer:
            opt_sd = ckpt.optimizer_state(tensors, state)
            if opt_sd is not None:
                run.optimizers[DEFAULT].load_state_dict(opt_sd)
        else:
            saved_opts = ckpt.optimizer_states(tensors, state)
            for name, opt in run.optimizers.items():
                if name not in saved_opts:
                    raise CheckpointError(f"resume '{path}': expected optimizer state for '{name}', got {', '.join(saved_opts) or 'none'}")
                opt.load_state_dict(saved_opts[name])
        ema = run.ckpt_ema()
        if ema is not None:
            ema_sd = ckpt.part(tensors, "ema")
            if ema_sd:
                ema.load_state_dict(ema_sd)
        saved = state.get("scaler")
        if run.scalers and saved:
            for name, scaler in run.scalers.items():
                sd = saved if run.one_optimizer else saved.get(name)
                if sd:
                    scaler.load_state_dict(sd)
        return state

    def _writer(self, start_epoch: int):
        if not self.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.run_dir / "tb"), purge_step=start_epoch + 1 if start_epoch else None)


def _epoch_line(row: dict[str, float], epochs: int, monitor: str, improved: bool, shown: tuple[str, ...] = ("val_loss",),
                best: float | None = None, best_epoch: int = -1) -> str:
    """``epoch 3/10  loss 0.4122  train_acc 0.8701  val_loss 0.3518  val_acc 0.8950  2,914 img/s  1.2s  * best val_acc 0.8950``:
    the training loss, the other training stats, the columns the task shows (its hooks' ``shown``; default the
    validation loss), the monitored metric, and the best value so far (``best val_acc 0.9012 @ 2`` when this epoch
    did not improve on epoch 2's).

    Example:
        >>> row = {"epoch": 3, "train_loss": 0.5, "val_acc": 0.8, "images_per_second": 100.0, "epoch_seconds": 1.0}
        >>> _epoch_line(row, 10, "val_acc", False, best=0.85, best_epoch=1)
        'epoch 3/10  loss 0.5000  val_acc 0.8000  100 img/s  1.0s  best val_acc 0.8500 @ 2'
    """
    parts = [f"epoch {int(row['epoch'])}/{epochs}"]
    if "train_loss" in row:
        parts.append(f"loss {row['train_loss']:.4f}")
    keys = [k for k in row if k.startswith("train_") and k != "train_loss"] + [*shown, monitor]
    for k in dict.fromkeys(keys):
        if k in row and k != "train_loss":
            parts.append(f"{k} {row[k]:.4f}")
    parts.append(f"{row['images_per_second']:,.0f} img/s")
    parts.append(f"{row['epoch_seconds']:.1f}s")
    if improved:
        parts.append(f"* best {monitor} {row[monitor]:.4f}" if monitor in row else f"* saved as best (--monitor {monitor})")
    elif best is not None:
        parts.append(f"best {monitor} {best:.4f} @ {best_epoch + 1}")
    return "  ".join(parts)

"""Learning-rate range test (Smith 2017, "Cyclical learning rates"; the fastai ``lr_find``).

Train a *copy* of the model for ``steps`` optimizer steps while the learning rate grows exponentially
from ``start_lr`` to ``end_lr``; record the exponentially smoothed training loss; stop when it diverges
(``diverge`` x its minimum, or not finite). The suggestion is the learning rate where the smoothed loss
falls fastest per decade (steepest descent), falling back to ``min-loss lr / 10``. The model passed in,
its optimizer state and the global RNG are left as they were.

:func:`find_lr` knows no task: it takes the task's ``train_step(model, batch) -> (loss_sum, stats)``
(batches with ``len(batch)``, as the trainer's). :func:`lr_find` builds it all from any task's spec and config.

Example:
    >>> import torch
    >>> from vislab.data.classify.stream import Batch
    >>> torch.manual_seed(0) and None
    >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
    >>> class Stream:
    ...     def epoch(self, e):
    ...         return [Batch(x[i:i + 16], y[i:i + 16], 16) for i in range(0, 64, 16)]
    >>> step = lambda m, b: (torch.nn.functional.cross_entropy(m(b.x), b.y, reduction="sum"), {})
    >>> model = torch.nn.Linear(4, 2)
    >>> res = find_lr(model, step, Stream(), lambda m: torch.optim.SGD(m.parameters(), lr=1.0), steps=30, start_lr=1e-4, end_lr=10)
    >>> 1e-4 <= res.suggestion <= 10
    True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vislab.core.errors import ConfigError


@dataclass
class LRFindResult:
    lrs: list[float]  # learning rate of each step taken
    losses: list[float]  # raw training loss (mean over the batch) of each step
    smoothed: list[float]  # bias-corrected exponential moving average of ``losses``
    suggestion: float  # steepest descent of ``smoothed`` (or min-loss lr / 10)
    steepest_lr: float | None
    min_loss_lr: float
    diverged: bool
    start_lr: float
    end_lr: float
    files: dict[str, Path] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("files", "lrs", "losses", "smoothed")}


def _check(steps: int, start_lr: float, end_lr: float, beta: float, diverge: float) -> None:
    checks = [(steps >= 5, "--steps", ">= 5", steps), (start_lr > 0, "--start-lr", "> 0", start_lr),
              (end_lr > start_lr, "--end-lr", f"> --start-lr ({start_lr:g})", end_lr), (0 <= beta < 1, "smoothing", "in [0, 1)", beta),
              (diverge > 1, "diverge", "> 1", diverge)]
    for ok, name, expected, got in checks:
        if not ok:
            raise ConfigError(f"lr-find {name}: expected {expected}, got {got}")


def find_lr(
    model: nn.Module,
    train_step: Callable[[nn.Module, Any], tuple[torch.Tensor, dict]],
    stream: Any,
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    *,
    steps: int = 100,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    beta: float = 0.9,
    diverge: float = 4.0,
    autocast: Callable[[], Any] | None = None,
) -> LRFindResult:
    """Exponential learning-rate sweep on a copy of ``model``; returns the curve and a suggestion.

    Args:
        model: the network (left untouched: the sweep trains a deep copy).
        train_step: ``(model, batch) -> (loss summed over the batch, stats)``; ``len(batch)`` is its sample count.
        stream: ``stream.epoch(e)`` yields batches (epochs are chained until ``steps`` steps are done).
        make_optimizer: builds the optimizer for the copy; per-group ``lr_scale`` is respected.
        steps: optimizer steps of the sweep (fewer when the loss diverges).
        start_lr, end_lr: the sweep's range (geometric).
        beta: smoothing of the loss (exponential moving average, bias-corrected).
        diverge: stop once the smoothed loss exceeds this multiple of its minimum.
        autocast: a context-manager factory for mixed precision (default: none).
    """
    _check(steps, start_lr, end_lr, beta, diverge)
    rng_cpu = torch.get_rng_state()
    rng_cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    work = copy.deepcopy(model)
    work.train()
    opt = make_optimizer(work)
    ratio = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best, diverged = 0.0, math.inf, False
    try:
        for i, batch in enumerate(_batches(stream)):
            if i >= steps:
                break
            lr = start_lr * ratio**i
            for g in opt.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
            opt.zero_grad(set_to_none=True)
            with autocast() if autocast else _null():
                loss_sum, _ = train_step(work, batch)
            loss = loss_sum / max(1, len(batch))
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged = True
                break
            loss.backward()
            opt.step()
            avg = beta * avg + (1 - beta) * value
            s = avg / (1 - beta ** (i + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(s)
            best = min(best, s)
            if i > 5 and s > diverge * best:
                diverged = True
                break
    finally:
        del work, opt
        torch.set_rng_state(rng_cpu)
        if rng_cuda is not None:
            torch.cuda.set_rng_state_all(rng_cuda)
    if len(lrs) < 3:
        raise ConfigError(f"lr-find: expected at least 3 finite losses, got {len(lrs)} (lower --start-lr)")
    steepest, min_lr = suggest(lrs, smoothed)
    suggestion = steepest if steepest is not None else min_lr / 10
    return LRFindResult(lrs, losses, smoothed, max(start_lr, suggestion), steepest, min_lr, diverged, start_lr, end_lr)


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float]:
    """``(steepest-descent lr, min-loss lr)`` of a sweep; the first is None when the loss never falls.

    The slope is ``d smoothed / d log10(lr)`` over the part of the curve before its minimum, skipping the
    first and last 10% (the moving average's warm-up and the climb into divergence).
    """
    lr, loss = np.asarray(lrs, float), np.asarray(smoothed, float)
    i_min = int(np.argmin(loss))
    min_lr = float(lr[i_min])
    skip = max(1, len(lr) // 10)
    lo, hi = skip, min(i_min + 1, len(lr) - skip)
    if hi - lo < 3:
        return None, min_lr
    grad = np.gradient(loss[lo:hi], np.log10(lr[lo:hi]))
    k = int(np.argmin(grad))
    return (float(lr[lo + k]) if grad[k] < 0 else None), min_lr


def _batches(stream: Any) -> Iterable[Any]:
    e = 0
    while True:
        n = 0
        for b in stream.epoch(e):
            if len(b):
                n += 1
                yield b
        if n == 0:
            return
        e += 1


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def plot(res: LRFindResult, path: str | Path, title: str = "learning-rate finder") -> Path:
    """Loss against learning rate (log axis), raw and smoothed, the suggestion marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vislab.core.io import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(res.lrs, res.losses, color="tab:blue", alpha=0.3, lw=1, label="loss")
    ax.plot(res.lrs, res.smoothed, color="tab:blue", lw=2, label="smoothed")
    y = float(np.interp(np.log10(res.suggestion), np.log10(res.lrs), res.smoothed))
    ax.scatter([res.suggestion], [y], color="tab:red", s=60, zorder=5, label=f"suggestion {res.suggestion:.2e}")
    ax.axvline(res.suggestion, color="tab:red", ls="--", lw=1)
    ax.axvline(res.min_loss_lr, color="gray", ls=":", lw=1, label=f"min loss {res.min_loss_lr:.2e}")
    ax.set_xscale("log")
    top = max(res.smoothed[0], min(res.smoothed)) * 1.5
    ax.set_ylim(min(res.smoothed) * 0.9 if min(res.smoothed) > 0 else None, top)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title + (" (stopped: diverged)" if res.diverged else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    rows = ["step,lr,loss,smoothed"] + [f"{i},{a:.6g},{b:.6g},{c:.6g}" for i, (a, b, c) in enumerate(zip(res.lrs, res.losses, res.smoothed, strict=True))]
    atomic_write_text(path.with_suffix(".csv"), "\n".join(rows) + "\n")
    res.files.update(png=path, csv=path.with_suffix(".csv"))
    return path


def lr_find(spec: Any, cfg: Any, *, steps: int = 100, start_lr: float = 1e-6, end_lr: float = 10.0, out: str | Path | None = None) -> LRFindResult:
    """The range test for any task with one optimizer: ``spec``'s data, model, weights, optimizer (with a
    fine-tuning plan's groups) and augmentation from ``cfg``, its training step; writes ``lr_find.png`` and
    ``lr_find.csv`` (default: ``<out>/lr-find/<task>/lr_find.png``, outside the task's run folders).

    Raises:
        ConfigError: a task that owns its optimizer steps (several optimizers), or a bad range.
    """
    from vislab.core.device import resolve_device, resolve_precision
    from vislab.core.dist import DistInfo
    from vislab.engine.launch import WorkerContext
    from vislab.engine.optim import build_optimizer
    from vislab.engine.trainer import Trainer
    from vislab.tasks.base import validate_train

    _check(steps, start_lr, end_lr, 0.9, 4.0)
    if not spec.lr_find:
        raise ConfigError(f"lr-find: expected a task with one optimizer, got {spec.name} (its steps drive several)")
    validate_train(cfg)
    spec.validate(cfg)
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    precision = resolve_precision(tc.precision, device)
    dest = Path(out) if out else Path(cfg.run.out).expanduser() / "lr-find" / spec.name / "lr_find.png"
    state = torch.get_rng_state()
    job = spec.setup(cfg, WorkerContext(device, DistInfo(), precision, dest.parent))
    torch.set_rng_state(state)
    if hasattr(job.hooks, "step"):
        raise ConfigError(f"lr-find: expected a task with one optimizer, got {spec.name} (its steps drive several)")
    trainer = Trainer(tc, job.hooks, device=device, precision=precision, progress="off", tensorboard=False)
    model = trainer.prepare(job.model)

    def make_optimizer(work: nn.Module) -> torch.optim.Optimizer:
        trainer.param_groups = None
        job.configure(trainer, work)  # on the copy: its layer groups, its frozen parts (a plan starts at epoch 0)
        return build_optimizer(work, tc, trainer.param_groups)

    res = find_lr(model, job.hooks.train_step, job.train, make_optimizer, steps=steps, start_lr=start_lr, end_lr=end_lr,
                  autocast=precision.autocast)
    plot(res, dest, title=f"lr finder: {cfg.model.model} on {cfg.data.data}, {tc.optimizer}, batch {cfg.data.batch_size}")
    return res

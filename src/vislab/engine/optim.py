"""Optimizers, the learning-rate schedule (a pure function of the step), and weight EMA."""

from __future__ import annotations

import math

import torch
from torch import nn

from vislab.engine.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights of conv/linear layers only, not on biases and normalisation parameters."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: TrainConfig, groups_fn=None) -> torch.optim.Optimizer:
    """The optimizer of ``cfg`` over ``groups_fn(model, weight_decay)`` (default :func:`param_groups`)."""
    groups = (groups_fn or param_groups)(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=(cfg.momentum, cfg.beta2))
    if cfg.optimizer == "rmsprop":  # the original WGAN's optimizer (momentum 0 there)
        return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, cfg.beta2))


def lr_factor(step: int, total: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` of ``total`` (a pure function: resumable).

    * warmup: linear from 0 over ``warmup_epochs``;
    * cosine: half-cosine from 1 to ``min_lr_ratio``;
    * onecycle: linear up over the first 25% (or the warmup), then linear down to ``min_lr_ratio``
      (the triangular one-cycle that fast CIFAR training uses);
    * linear: 1 for the first half of the steps after the warmup, then linear down to ``min_lr_ratio`` (the ``n_epochs``
      + ``n_epochs_decay`` policy of pix2pix and CycleGAN);
    * step: times ``gamma`` every ``step_size`` epochs; constant: 1.
    """
    total = max(1, total)
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    lo = cfg.min_lr_ratio
    if cfg.scheduler == "onecycle":
        peak = warm if warm > 0 else max(1, int(0.25 * total))
        if step < peak:
            return (step + 1) / peak
        return lo + (1 - lo) * max(0.0, (total - step) / max(1, total - peak))
    if step < warm:
        return (step + 1) / warm
    if cfg.scheduler == "cosine":
        t = (step - warm) / max(1, total - warm)
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    if cfg.scheduler == "linear":
        half = warm + (total - warm) // 2
        return 1.0 if step < half else lo + (1 - lo) * max(0.0, (total - step) / max(1, total - half))
    if cfg.scheduler == "step":
        return cfg.gamma ** ((step // max(1, steps_per_epoch)) // max(1, cfg.step_size))
    return 1.0


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


def build_ema(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of the weights (and BatchNorm buffers)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

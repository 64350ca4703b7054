"""The trainer with two models and two optimizers and a step the task owns: which optimizer steps when, per-optimizer
settings, per-step hooks, gradient accumulation, checkpoints by name, and an exact resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from vislab.core.device import resolve_precision
from vislab.core.errors import ConfigError
from vislab.data.points import PointStream
from vislab.engine import checkpoint as ckpt
from vislab.engine.config import TrainConfig
from vislab.engine.trainer import Callback, OptimizerSpec, Trainer


class TwoModels:
    """A regresses x onto y; B regresses y onto x, updated every second batch with its own learning rate."""

    monitor = "train_loss_a"

    def __init__(self, every: int = 2, b_lr: float = 0.02, unknown: bool = False):
        self.every, self.b_lr, self.unknown = every, b_lr, unknown

    def optimizers(self):
        return {"A": OptimizerSpec(("A",)), "B": OptimizerSpec(("B",), {"lr": self.b_lr, "optimizer": "adam"})}

    def step(self, ctx, batch):
        x, y = batch.x[:, :1], batch.x[:, 1:]
        loss_a = (ctx.module("A")(x) - y).pow(2).sum()
        ctx.backward(loss_a, "C" if self.unknown else "A")
        ctx.step("A")
        stats = {"loss_a": loss_a.detach()}
        if ctx.batch_index % self.every == 0:
            loss_b = (ctx.module("B")(y) - ctx.raw("A")(x).detach()).pow(2).sum()
            ctx.backward(loss_b, "B")
            ctx.step("B")
            stats["loss_b"] = loss_b.detach()
        return stats


def _fit(tmp_path: Path | None, hooks, epochs: int = 2, resume=None, callbacks=None, **cfg_kw):
    torch.manual_seed(0)
    models = {"A": nn.Linear(1, 1), "B": nn.Linear(1, 1)}
    pts = torch.randn(96, 2, generator=torch.Generator().manual_seed(1))
    cfg = dataclasses.replace(TrainConfig(), epochs=epochs, lr=0.05, scheduler="constant", weight_decay=0.0, **cfg_kw)
    tr = Trainer(cfg, hooks, device=torch.device("cpu"), precision=resolve_precision("fp32", torch.device("cpu")),
                 run_dir=tmp_path, progress="off", tensorboard=False, callbacks=callbacks)
    res = tr.fit(tr.prepare(models), PointStream(pts, 16, train=True, z_dim=1), resume=resume)
    return models, res


def test_each_optimizer_steps_when_the_task_says_with_its_own_settings(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    seen = []
    models, res = _fit(tmp_path, TwoModels(), callbacks=[Callback(on_step_end=lambda step, means: seen.append((step, sorted(means))))])
    tensors, state = ckpt.load(tmp_path / "checkpoints" / "last.safetensors")
    opts = ckpt.optimizer_states(tensors, state)
    assert int(opts["A"]["state"][0]["momentum_buffer"].numel()) == 1  # SGD: the run's --optimizer
    assert float(opts["B"]["state"][0]["step"]) == 2 * 3  # Adam (its override), every second of 6 batches, 2 epochs
    assert opts["B"]["param_groups"][0]["lr"] == pytest.approx(0.02) and opts["A"]["param_groups"][0]["lr"] == pytest.approx(0.05)
    assert [s for s, _ in seen] == list(range(1, 13))  # a per-step hook after every optimizer step of the run
    assert seen[0][1] == ["train_loss_a", "train_loss_b"] and seen[1][1] == ["train_loss_a"]
    row = res.history[-1]
    assert {"train_loss_a", "train_loss_b"} <= set(row) and "train_loss" not in row  # each stat's mean over its own samples
    assert any(k.startswith("model.A.") for k in tensors) and any(k.startswith("optim.B.") for k in tensors)


def test_accumulation_steps_every_second_micro_batch(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    _fit(tmp_path, TwoModels(every=1), epochs=1, accumulate=2)
    tensors, state = ckpt.load(tmp_path / "checkpoints" / "last.safetensors")
    assert float(ckpt.optimizer_states(tensors, state)["B"]["state"][0]["step"]) == 3  # 6 micro-batches, 3 steps
    assert state["step"] == 3


def test_resume_equals_the_uninterrupted_fit(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d / "checkpoints").mkdir(parents=True)
    straight, _ = _fit(tmp_path / "a", TwoModels(), epochs=3, ema_decay=0.5)
    _fit(tmp_path / "b", TwoModels(), epochs=1, ema_decay=0.5)
    resumed, res = _fit(tmp_path / "b", TwoModels(), epochs=3, ema_decay=0.5, resume=tmp_path / "b")
    assert len(res.history) == 3
    a, _ = ckpt.load(tmp_path / "a" / "checkpoints" / "last.safetensors")
    b, _ = ckpt.load(tmp_path / "b" / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("ema.A.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_step_naming_an_unknown_optimizer_is_a_clear_error():
    with pytest.raises(ConfigError, match="expected one of the task's optimizers A, B, got 'C'"):
        _fit(None, TwoModels(unknown=True), epochs=1)


def test_a_task_may_bring_its_own_evaluation(tmp_path):
    """Hooks with ``evaluate(model, stream, epoch)`` (e.g. sampling-based) replace the eval loop, called with the models in
    eval mode and without gradients; the rows get its numbers and training goes on in train mode."""
    class OwnEval(TwoModels):
        monitor = "val_score"

        def evaluate(self, models, stream, epoch):
            assert not models["A"].training and not models["B"].training and not torch.is_grad_enabled()
            return {"score": float(epoch)}

    torch.manual_seed(0)
    models = {"A": nn.Linear(1, 1), "B": nn.Linear(1, 1)}
    pts = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    cfg = dataclasses.replace(TrainConfig(), epochs=2, lr=0.05, scheduler="constant")
    tr = Trainer(cfg, OwnEval(), device=torch.device("cpu"), precision=resolve_precision("fp32", torch.device("cpu")), progress="off")
    res = tr.fit(tr.prepare(models), PointStream(pts, 16, train=True, z_dim=1), PointStream(pts, 16, train=False, z_dim=1))
    assert [r["val_score"] for r in res.history] == [0.0, 1.0] and res.best_epoch == 1
    assert models["A"].training


def test_without_validation_the_best_is_the_lowest_training_loss_the_step_reports(tmp_path):
    """A task-owned step may report no ``loss`` stat: with no validation split the monitor becomes its first loss."""
    class NoMonitor(TwoModels):
        monitor = "val_whatever"

    (tmp_path / "checkpoints").mkdir()
    _, res = _fit(tmp_path, NoMonitor(), epochs=2)
    assert res.best_metric == "train_loss_a"
    losses = [r["train_loss_a"] for r in res.history]
    assert res.best_epoch == losses.index(min(losses))

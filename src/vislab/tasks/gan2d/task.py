"""The 2-D GAN in a training run: two models (generator ``G``, critic ``D``), two optimizers, a training step the
task owns (a critic update every batch, a generator update every ``--n-critic`` batches; non-saturating GAN,
hinge, or WGAN-GP losses), EMA of the generator only, sample snapshots every N steps (a per-step hook).

This is the smallest task with several models and optimizers: the worked example of ``docs/architecture.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vislab.core import config as C
from vislab.data.points import PointBatch, PointStream, load_points
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import Callback, FitResult, OptimizerSpec, StepContext, Trainer
from vislab.metrics.points import PointSetMetrics
from vislab.tasks.base import TrainJob, check_all
from vislab.tasks.gan2d.config import Gan2dConfig
from vislab.tasks.shared.model import build_registered

TASK = "gan2d"
MODEL = "mlp_gan"


class GanTask:
    """Hooks of the adversarial game (see the module docstring); validation compares ``G``'s samples with held-out points."""

    monitor = "val_mmd"
    ema_models = ("G",)

    def __init__(self, loss: str = "gan", n_critic: int = 1, gp_weight: float = 0.1, lr_d: float = 0.0,
                 centres: torch.Tensor | None = None, noise: float = 0.05):
        self.loss, self.n_critic, self.gp_weight, self.lr_d = loss, n_critic, gp_weight, lr_d
        self.centres, self.noise = centres, noise

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(("G",)), "D": OptimizerSpec(("D",), {"lr": self.lr_d} if self.lr_d else {})}

    def critic_loss(self, ctx: StepContext, real: torch.Tensor, fake: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample critic loss ``(b,)`` and the critic's scores on ``[real; fake]`` ``(2b,)`` (one forward pass)."""
        b = len(real)
        scores = ctx.module("D")(torch.cat([real, fake]))
        s_real, s_fake = scores[:b], scores[b:]
        if self.loss == "gan":
            return F.softplus(-s_real) + F.softplus(s_fake), scores
        if self.loss == "hinge":
            return F.relu(1 - s_real) + F.relu(1 + s_fake), scores
        # WGAN-GP (Gulrajani et al., 2017): the penalty on the critic's gradient at points between real and fake
        between = (u[:, None] * real + (1 - u[:, None]) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(ctx.raw("D")(between).sum(), between, create_graph=True)
        return s_fake - s_real + self.gp_weight * (grad.norm(dim=1) - 1).pow(2), scores

    def generator_loss(self, scores: torch.Tensor) -> torch.Tensor:
        return F.softplus(-scores) if self.loss == "gan" else -scores  # non-saturating; hinge and WGAN: -D(G(z))

    def step(self, ctx: StepContext, batch: PointBatch) -> dict[str, torch.Tensor]:
        real, b = batch.x, len(batch)
        with torch.no_grad():
            fake = ctx.raw("G")(batch.z[:, 0])
        loss_d, scores = self.critic_loss(ctx, real, fake, batch.u)
        ctx.backward(loss_d.sum(), "D")
        ctx.step("D")
        stats = {"loss_d": loss_d.sum().detach(), "score_real": scores[:b].sum().detach(), "score_fake": scores[b:].sum().detach()}
        if ctx.batch_index % self.n_critic == 0:
            loss_g = self.generator_loss(ctx.raw("D")(ctx.module("G")(batch.z[:, 1])))  # D only judges: no gradients for it
            ctx.backward(loss_g.sum(), "G")
            ctx.step("G")
            stats["loss_g"] = loss_g.sum().detach()
        return stats

    def new_metrics(self) -> PointSetMetrics:
        return PointSetMetrics(self.centres, self.noise)

    def eval_step(self, models: dict[str, nn.Module], batch: PointBatch, metrics: PointSetMetrics) -> None:
        metrics.update(models["G"](batch.z[:, 0]), batch.x)


def validate(cfg: Gan2dConfig) -> None:
    m = cfg.model
    check_all([(m.z_dim >= 1, "--z-dim", ">= 1", m.z_dim), (m.hidden >= 1, "--hidden", ">= 1", m.hidden), (m.depth >= 0, "--depth", ">= 0", m.depth),
               (m.n_critic >= 1, "--n-critic", ">= 1", m.n_critic), (m.gp_weight >= 0, "--gp-weight", ">= 0", m.gp_weight),
               (m.lr_d >= 0, "--lr-d", ">= 0", m.lr_d), (m.snapshot_every >= 0, "--snapshot-every", ">= 0", m.snapshot_every),
               (cfg.data.noise >= 0, "--noise", ">= 0", cfg.data.noise),
               # the generator updates every --n-critic batches: with accumulation its updates would fall between steps
               (cfg.train.accumulate == 1, "--accumulate", "1 (gan2d alternates its updates batch by batch)", cfg.train.accumulate)])


def build_model(cfg: Gan2dConfig) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    m = cfg.model
    gan, args = build_registered(MODEL, TASK, {"z_dim": m.z_dim, "dim": 2, "hidden": m.hidden, "depth": m.depth})
    return dict(gan), args


def setup(cfg: Gan2dConfig, ctx: WorkerContext) -> Gan2dJob:
    """Points, the two models, streams with their noise, hooks and the snapshot hook of a 2-D GAN run."""
    tc, dist, m = cfg.train, ctx.dist, cfg.model
    train_pts, val_pts, centres = load_points(cfg.data)
    torch.manual_seed(tc.seed)
    models, args = build_model(cfg)
    common = {"z_dim": m.z_dim, "seed": tc.seed, "rank": dist.rank, "world": dist.world, "device": ctx.device}
    train = PointStream(train_pts, cfg.data.batch_size, train=True, **common)
    val = PointStream(val_pts, cfg.data.eval_batch(), train=False, **common)
    ckpt_state = {"task": TASK, "model": MODEL, "model_args": args, "centres": centres.tolist() if centres is not None else None,
                  "noise": cfg.data.noise, "config": C.to_dict(cfg)}
    hooks = GanTask(m.loss, m.n_critic, m.gp_weight, m.lr_d, centres, cfg.data.noise)
    log = [f"vislab gan2d: {m.loss} MLP GAN (z {m.z_dim}, {m.depth} x {m.hidden}) on {cfg.data.data} ({len(train_pts)} train, "
           f"{len(val_pts)} val points), {m.n_critic} critic step(s) per generator step | {ctx.device} {ctx.precision.name} | "
           f"{dist.world} process(es) -> {ctx.run_dir}"]
    job = Gan2dJob(hooks, models, train, val, ckpt_state, log, cfg=cfg, ctx=ctx, train_pts=train_pts, val_pts=val_pts)
    if m.snapshot_every and dist.is_main:
        job.callbacks.append(Callback(on_step_end=job.snapshot))
    return job


@dataclass(kw_only=True)
class Gan2dJob(TrainJob):
    """A 2-D GAN run: sample snapshots during training, the best generator's numbers and pictures after."""

    train_pts: torch.Tensor
    val_pts: torch.Tensor
    models: dict[str, nn.Module] = field(default_factory=dict)

    def configure(self, trainer: Trainer, model: dict[str, nn.Module]) -> None:
        self.models = model

    def fixed_noise(self, n: int = 512) -> torch.Tensor:
        """The same noise for every snapshot and picture (its own generator: training's randomness is untouched)."""
        return torch.randn(n, self.cfg.model.z_dim, generator=torch.Generator().manual_seed(12345)).to(self.ctx.device)

    def snapshot(self, step: int, stats: dict[str, float]) -> None:
        """Every ``--snapshot-every`` steps: the generator's samples of the fixed noise to ``snapshots/step_<n>.npy``."""
        if step % self.cfg.model.snapshot_every:
            return
        from vislab.core.io import atomic_path

        with torch.no_grad():
            pts = self.models["G"](self.fixed_noise()).float().cpu().numpy()
        dest = self.ctx.run_dir / "snapshots" / f"step_{step:06d}.npy"
        dest.parent.mkdir(exist_ok=True)
        with atomic_path(dest) as tmp, open(tmp, "wb") as f:
            np.save(f, pts)

    def finish(self, trainer: Trainer, model: dict[str, nn.Module], result: FitResult) -> dict[str, Any]:
        from vislab.engine.evaluate import run_eval

        self.test_best(trainer, model, None)
        final = run_eval(self.hooks, self.best, self.val, self.ctx.precision).compute()
        trainer.progress.log("best checkpoint on val: " + "  ".join(f"{k} {v:.4f}" for k, v in final.items()))
        return {f"final_val_{k}": v for k, v in final.items()}

    def report(self, trainer: Trainer, model: dict[str, nn.Module], result: FitResult, final: dict[str, Any]) -> None:
        from vislab.tasks.gan2d.report import write_training_report

        with torch.no_grad():
            fake = self.best["G"](self.fixed_noise(max(512, len(self.val_pts)))).float().cpu()
        write_training_report(self.ctx.run_dir, result, final, self.val_pts, fake, self.hooks.centres)

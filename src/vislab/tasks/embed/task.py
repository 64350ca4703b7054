"""Metric learning in a training run: the trainer hooks, the model, and the job's setup, test and report.

The loss of a batch is computed over the *global* batch (every process's embeddings gathered, with gradients, by
:func:`vislab.core.dist.gather_global`): pair and triplet losses see every pair of the batch whatever the number of
processes, so ``--nproc N`` trains as one process does. Each process returns its share ``loss * n_global / world``
of the global loss sum (see :mod:`vislab.engine.trainer`: it then minimises exactly the global-batch loss).

Commands other than ``train`` live in :mod:`vislab.tasks.embed.infer`, the pictures in
:mod:`vislab.tasks.embed.report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vislab.core import config as C
from vislab.core.dist import active, gather_global
from vislab.core.errors import ConfigError, DataError
from vislab.data.classify.stream import Batch
from vislab.data.classify.source import use_fast_path
from vislab.data.embed import EmbedSplits, EmbedStream, load_embed_data
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import FitResult, Trainer
from vislab.metrics.embedding import EmbeddingMetrics
from vislab.models.registry import MODELS
from vislab.tasks.base import TrainJob, check_all
from vislab.tasks.embed.config import EmbedConfig, EmbedModelConfig
from vislab.tasks.shared.model import check_input_size, resolve_stem, unwrap

TASK = "embed"
EUCLIDEAN_LOSSES = ("softmax", "center", "contrastive", "triplet")  # the others compare directions (cosine)


class EmbedTask:
    """A metric loss on the gathered global batch; retrieval and verification numbers on held-out identities."""

    monitor = "val_p_at_1"
    shown = ("val_p_at_1", "val_map_at_r", "val_verif_acc")

    def __init__(self, distance: str = "cosine", n_pairs: int = 2000):
        self.distance, self.n_pairs = distance, n_pairs

    def train_step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = model(batch.x)  # (b, dim): this process's share
        zg, yg = gather_global(z, batch.n_global), gather_global(batch.y, batch.n_global)
        criterion = unwrap(model).criterion
        loss = criterion(zg, yg)
        world = torch.distributed.get_world_size() if active() else 1
        stats: dict[str, torch.Tensor] = {}
        logits = criterion.logits(z.detach())
        if logits is not None:
            stats["acc"] = (logits.argmax(1) == batch.y).sum()
        return loss * (batch.n_global / world), stats

    def new_metrics(self) -> EmbeddingMetrics:
        return EmbeddingMetrics(distance=self.distance, n_pairs=self.n_pairs)

    def eval_step(self, model: nn.Module, batch: Batch, metrics: EmbeddingMetrics) -> None:
        metrics.update(unwrap(model).embed(batch.x).cpu(), batch.y.cpu(), index=batch.index.cpu() if batch.index is not None else None)


# --------------------------------------------------------------------------------------------
# Building blocks shared by train / lr-find / the commands
# --------------------------------------------------------------------------------------------
def build_model(mcfg: EmbedModelConfig, num_classes: int, in_chans: int, size: tuple[int, int]) -> tuple[nn.Module, dict[str, Any]]:
    """The embedding model (with its loss) and the arguments that rebuild it from a checkpoint."""
    backbone_args: dict[str, Any] = {"in_chans": in_chans}
    if not mcfg.model.startswith("timm:"):
        backbone_args["stem"] = resolve_stem(mcfg.stem, size)
    if mcfg.width:
        backbone_args["width"] = mcfg.width
    if not mcfg.model.startswith("timm:") and MODELS.get(mcfg.model).task != "classify":  # an unknown name: ModelError with a suggestion
        raise ConfigError(f"--model: expected a classifier backbone (`vislab models list --task classify`), got '{mcfg.model}' (task {MODELS.get(mcfg.model).task!r})")
    loss_args = {"margin": mcfg.margin, "scale": mcfg.scale, "miner": mcfg.miner, "center_weight": mcfg.center_weight, "distance": mcfg.distance}
    args = {"backbone": mcfg.model, "backbone_args": backbone_args, "dim": mcfg.embed_dim, "bn": mcfg.bn, "dropout": mcfg.embed_dropout,
            "loss": mcfg.loss, "loss_args": loss_args, "num_classes": num_classes, "distance": mcfg.distance}
    model = MODELS.build("embedder", **args)
    check_input_size(model, mcfg.model, in_chans, size)
    return model, args


def validate(cfg: EmbedConfig) -> None:
    """Metric learning's own checks (the shared ranges: :func:`vislab.tasks.base.validate_train`)."""
    m, d = cfg.model, cfg.data
    check_all([(m.embed_dim >= 2, "--embed-dim", ">= 2", m.embed_dim), (d.m_per_class >= 2, "--m-per-class", ">= 2 (a positive pair per identity)", d.m_per_class),
               (0 <= m.embed_dropout < 1, "--embed-dropout", "in [0, 1)", m.embed_dropout), (m.center_weight >= 0, "--center-weight", ">= 0", m.center_weight),
               (d.batch_size % d.m_per_class == 0, "--batch-size", f"a multiple of --m-per-class {d.m_per_class}", d.batch_size),
               (d.batch_size // d.m_per_class >= 2, "--batch-size", f">= 2 x --m-per-class {d.m_per_class} (two identities a batch)", d.batch_size)])
    if any(op in d.augment.replace(" ", "").split(",") for op in ("mixup", "cutmix")):
        raise ConfigError(f"--augment: expected operations that keep one identity per image (no mixup / cutmix), got '{d.augment}'")
    if m.distance == "euclidean" and m.loss not in EUCLIDEAN_LOSSES:
        raise ConfigError(f"--distance euclidean: expected a loss that shapes raw distances ({', '.join(EUCLIDEAN_LOSSES)}), got --loss {m.loss} "
                          f"(it compares angles: use --distance cosine)")


# --------------------------------------------------------------------------------------------
# The training job
# --------------------------------------------------------------------------------------------
def setup(cfg: EmbedConfig, ctx: WorkerContext) -> EmbedJob:
    """Data, model, streams and hooks of a metric-learning run in this process."""
    tc, dist, precision = cfg.train, ctx.dist, ctx.precision
    splits = load_embed_data(cfg.data)
    tr = splits.train
    fast = use_fast_path(cfg.data, tr)
    if fast and not tr.in_memory:
        splits = EmbedSplits(tr.materialize(), splits.val.materialize() if splits.val else None, splits.test.materialize() if splits.test else None,
                             splits.pairs, splits.root)
        tr = splits.train
    torch.manual_seed(tc.seed)
    model, model_args = build_model(cfg.model, len(tr.classes), tr.channels, tr.size)
    if cfg.model.weights:
        from vislab.tasks.shared import weights as W

        report = W.load_into(model.backbone, W.read_weights(cfg.model.weights), None)
        weights_lines = report.lines()
    else:
        weights_lines = []
    mean, std = tr.stats()
    augment = tr.augment if cfg.data.augment == "auto" else cfg.data.augment
    common = dict(device=ctx.device, mean=mean, std=std, rank=dist.rank, world=dist.world, workers=cfg.data.workers,
                  channels_last=precision.channels_last, fast_path=fast)
    train = EmbedStream(tr, cfg.data.batch_size, train=True, augment=augment, seed=tc.seed, m_per_class=cfg.data.m_per_class, **common)
    val = EmbedStream(splits.val, cfg.data.eval_batch(), train=False, **common) if splits.val is not None and len(splits.val) else None
    ckpt_state = {"task": TASK, "model": "embedder", "model_args": model_args, "backbone": cfg.model.model, "num_classes": len(tr.classes),
                  "classes": tr.classes, "mean": list(mean), "std": list(std), "img_size": list(tr.size), "channels": tr.channels,
                  "distance": cfg.model.distance, "embed_dim": cfg.model.embed_dim, "loss": cfg.model.loss, "config": C.to_dict(cfg)}
    n_val, n_test = (len(s) if s is not None else 0 for s in (splits.val, splits.test))
    ids = f"{len(tr.classes)}/{len(splits.val.classes) if splits.val else 0}/{len(splits.test.classes) if splits.test else 0}"
    log = [f"vislab embed: {cfg.model.model} -> {cfg.model.embed_dim}-d, {cfg.model.loss} loss, on {tr.name} ({len(tr)} train, {n_val} val, {n_test} test images; "
           f"identities {ids}{' (unseen at val/test)' if cfg.data.split_by == 'identity' else ''}; {train.batch_size // cfg.data.m_per_class} x "
           f"{cfg.data.m_per_class} a batch) | {ctx.device} {precision.name} | {dist.world} process(es) -> {ctx.run_dir}", *weights_lines]
    return EmbedJob(EmbedTask(cfg.model.distance), model, train, val, ckpt_state, log, cfg=cfg, ctx=ctx, splits=splits, common=common)


@dataclass(kw_only=True)
class EmbedJob(TrainJob):
    """A metric-learning run: the threshold of verification (chosen on val), test numbers of the best checkpoint, report."""

    splits: EmbedSplits
    common: dict[str, Any]
    test_metrics: Any = None
    val_metrics: Any = None

    def finish(self, trainer: Trainer, model: nn.Module, result: FitResult) -> dict[str, Any]:
        from vislab.engine.evaluate import run_eval
        from vislab.metrics.embedding import best_threshold, pair_distance, sample_pairs

        out: dict[str, Any] = {}
        test = self.splits.test
        stream = EmbedStream(test, self.cfg.data.eval_batch(), train=False, **self.common) if test is not None and len(test) else None
        self.test_metrics, out = self.test_best(trainer, model, stream, shown=("test_p_at_1", "test_r_at_5", "test_map_at_r", "test_verif_acc", "test_roc_auc"))
        if self.val is not None:  # the verification threshold `verify` uses: the best one on the validation pairs
            self.val_metrics = run_eval(self.hooks, self.best, self.val, self.ctx.precision)
            m = self.val_metrics
            try:
                i, j, same = sample_pairs(m.labels, 4000, seed=1)
            except DataError:  # no validation identity with two images: no matched pair to choose a threshold on
                i = []
            if len(i):
                thr, acc = best_threshold(pair_distance(m.embeddings[i], m.embeddings[j], self.cfg.model.distance).numpy(), same)
                out.update(threshold=float(thr), threshold_val_acc=float(acc))
        out["split_by"] = self.cfg.data.split_by
        return {k: v for k, v in out.items() if not isinstance(v, dict | list)}

    def report(self, trainer: Trainer, model: nn.Module, result: FitResult, final: dict[str, Any]) -> None:
        from vislab.tasks.embed.report import write_training_report

        m = self.test_metrics if self.test_metrics is not None else self.val_metrics
        src = self.splits.test if self.test_metrics is not None else self.splits.val
        write_training_report(self.ctx.run_dir, result, final, m, src, self.cfg.model.distance, self.common["mean"], self.common["std"])

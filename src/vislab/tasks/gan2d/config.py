"""The 2-D GAN's configs: training (data, model, train, run) and its commands'."""

from __future__ import annotations

from dataclasses import dataclass, field

from vislab.core.config import opt
from vislab.data.points import PointsDataConfig
from vislab.engine.config import RunConfig, TrainConfig

LOSSES = ("gan", "hinge", "wgan-gp")


@dataclass
class GanModelConfig:
    """The generator and critic, and how they play."""

    z_dim: int = opt(2, "dimension of the generator's noise")
    hidden: int = opt(128, "units of each hidden layer (generator and critic)")
    depth: int = opt(3, "hidden layers of each network")
    loss: str = opt("gan", "gan (non-saturating, Goodfellow et al.), hinge, wgan-gp (Wasserstein with gradient penalty)", choices=LOSSES)
    n_critic: int = opt(1, "critic updates per generator update (5 is usual for wgan-gp)")
    gp_weight: float = opt(0.1, "wgan-gp: weight of the gradient penalty (10 in the paper, for images; 0.1 suits these 2-D scales)")
    lr_d: float = opt(0.0, "critic learning rate (0: the same as --lr)")
    snapshot_every: int = opt(50, "every this many steps, draw samples of the generator for evolution.png / .gif (0: off)")


def _train_defaults() -> TrainConfig:
    # fp32: bf16 keeps ~3 digits of a 2-D point, and tiny MLPs gain no speed from it; measured on 2026-12-02 (AMD EPYC,
    # AVX-512-BF16): with bf16 autocast the default run covered 0 of 8 modes (val MMD 1.49), with fp32 8 of 8 (MMD 0.080)
    return TrainConfig(epochs=30, optimizer="adam", lr=1e-3, momentum=0.5, weight_decay=0.0, scheduler="constant", precision="fp32")


@dataclass
class Gan2dConfig:
    """``vislab gan2d train``: everything a run of the 2-D GAN is made of."""

    data: PointsDataConfig = field(default_factory=PointsDataConfig)
    model: GanModelConfig = field(default_factory=GanModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class SampleConfig:
    """``vislab gan2d sample``: points from a trained generator."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    n: int = opt(1000, "points to draw")
    seed: int = opt(0, "seed of the noise")
    out: str = opt("", "output CSV (a PNG scatter beside it; default: <run>/samples/samples.csv)")


@dataclass
class Gan2dEvalConfig:
    """``vislab gan2d eval``: how close a checkpoint's samples are to the validation points."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    out: str = opt("", "output folder for metrics.json and samples.png (default: <run>/eval)")

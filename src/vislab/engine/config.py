"""Config sections the engine owns: optimisation (``TrainConfig``) and the run (``RunConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

from vislab.core.config import opt
from vislab.core.device import DEVICES, PRECISIONS


@dataclass
class TrainConfig:
    """How to optimise: optimizer, schedule, regularisation, precision, devices."""

    epochs: int = opt(10, "passes over the training set")
    optimizer: str = opt("sgd", "optimizer (sgd uses Nesterov momentum unless --no-nesterov)", choices=("sgd", "adam", "adamw", "rmsprop"))
    lr: float = opt(0.05, "peak learning rate")
    momentum: float = opt(0.9, "SGD momentum / Adam beta1 / RMSprop momentum")
    beta2: float = opt(0.999, "Adam / AdamW beta2 (0.9 for WGAN-GP)")
    nesterov: bool = opt(True, "Nesterov momentum for SGD")
    weight_decay: float = opt(5e-4, "weight decay (decoupled for adamw); not applied to biases and norm layers")
    scheduler: str = opt("onecycle", "learning-rate schedule over all steps (linear: constant for the first half, then linear to --min-lr-ratio, as pix2pix / CycleGAN)",
                         choices=("cosine", "onecycle", "step", "constant", "linear"))
    warmup_epochs: float = opt(0.0, "linear warmup from 0 before the schedule (epochs, fractions allowed)")
    step_size: int = opt(30, "step scheduler: epochs between decays")
    gamma: float = opt(0.1, "step scheduler: decay factor")
    min_lr_ratio: float = opt(0.0, "cosine/onecycle/linear: final lr as a fraction of --lr")
    label_smoothing: float = opt(0.0, "label smoothing of the cross-entropy target")
    grad_clip: float = opt(0.0, "clip the global gradient norm to this value (0: off)")
    accumulate: int = opt(1, "micro-batches per optimizer step (gradient accumulation)")
    ema_decay: float = opt(0.0, "keep an exponential moving average of the weights with this decay, e.g. 0.999 (0: off); evaluation uses it")
    early_stop: int = opt(0, "stop after this many epochs without improvement of --monitor (0: off)")
    monitor: str = opt("auto", "metric for best checkpoint and early stopping, e.g. val_acc or val_loss; last: the latest epoch (auto: the task's)")
    seed: int = opt(0, "random seed (weights, shuffling, augmentation)")
    deterministic: bool = opt(False, "use deterministic algorithms (slower; bitwise-repeatable on the same machine)")
    precision: str = opt("auto", "numeric precision: auto picks bf16+channels_last on CPUs with AVX-512-BF16/AMX, AMP on CUDA, else fp32", choices=PRECISIONS)
    device: str = opt("auto", "device", choices=DEVICES)
    nproc: int = opt(1, "local processes for data-parallel training (DDP; gloo on CPU, nccl on GPU); or launch with torchrun")
    sync_bn: bool = opt(False, "synchronise BatchNorm statistics across processes")
    threads: int = opt(0, "CPU threads per process (0: torch's default)")


@dataclass
class RunConfig:
    """Where results go and how progress is shown."""

    out: str = opt("runs", "root folder of runs; a run goes to OUT/<task>/<name>/")
    name: str = opt("", "run name (default: exp, exp2, ... the first free)")
    resume: str = opt("", "resume a run: its folder or a checkpoint file (continues from the last completed epoch)")
    overwrite: bool = opt(False, "allow writing into an existing run folder that is not being resumed")
    progress: str = opt("auto", "progress bar: auto (when attached to a terminal), on, off", choices=("auto", "on", "off"))
    tensorboard: bool = opt(True, "write TensorBoard event files")
    report: bool = opt(True, "write report.html and the pictures at the end of training")

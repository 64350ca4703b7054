"""Benchmark (not a test): vislab's trainer vs a minimal hand-written loop, and --precision auto vs fp32.

Run: ``.venv/bin/python bench/train_speed.py [--images 512] [--epochs 2]``

1. Overhead: the same model (small CNN), data (CIFAR-size random images in memory), batch, optimizer
   and precision, trained by vislab's Trainer (batch streams, checkpoint every epoch, metrics) and by
   a plain loop. Ratio = vislab throughput / plain throughput (goal >= 0.95x).
2. Precision: a CIFAR-stem ResNet-18 trained by vislab with ``--precision auto`` vs ``fp32``
   (goal on a CPU with AVX-512-BF16/AMX: >= 2.5x).
Throughput counts training images per second after one warm-up epoch; each measurement is repeated
(``--repeats``, interleaving vislab and the baseline) and the best of each is compared, so that load
from other processes on the machine does not decide the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import Timer, plain_train_epoch  # noqa: E402

from vislab.core.config import from_dict  # noqa: E402
from vislab.core.device import resolve_precision  # noqa: E402
from vislab.models.registry import create_model  # noqa: E402
from vislab.data.classify.source import ImageSource  # noqa: E402
from vislab.data.classify.stream import BatchStream  # noqa: E402
from vislab.engine.config import TrainConfig  # noqa: E402
from vislab.engine.optim import build_optimizer  # noqa: E402
from vislab.engine.trainer import Trainer  # noqa: E402
from vislab.tasks.classify import ClassifyTask  # noqa: E402

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def data(n: int) -> ImageSource:
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    return ImageSource([str(i) for i in range(10)], labels, images=imgs, size=(32, 32), channels=3, name="random32")


def vislab_throughput(model_name: str, src: ImageSource, precision: str, epochs: int, batch: int) -> float:
    cfg = from_dict(TrainConfig, {"epochs": epochs + 1, "precision": precision, "lr": 0.01, "scheduler": "constant"})
    dev = torch.device("cpu")
    prec = resolve_precision(precision, dev)
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_chans=3, stem="cifar")
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "checkpoints").mkdir()
        tr = Trainer(cfg, ClassifyTask(10), device=dev, precision=prec, run_dir=Path(d), progress="off", tensorboard=False)
        tr.progress.enabled = False  # no per-epoch lines in the benchmark output
        model = tr.prepare(model)
        stream = BatchStream(src, batch, train=True, device=dev, mean=MEAN, std=STD, augment="none", channels_last=prec.channels_last)
        res = tr.fit(model, stream)
    rows = res.history[1:]  # the first epoch warms up kernels
    return sum(len(src) // batch * batch for _ in rows) / sum(r["epoch_seconds"] for r in rows)


def plain_throughput(model_name: str, src: ImageSource, precision: str, epochs: int, batch: int) -> float:
    prec = resolve_precision(precision, torch.device("cpu"))
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_chans=3, stem="cifar")
    if prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, from_dict(TrainConfig, {"lr": 0.01}))
    plain_train_epoch(model, src.images, src.labels, batch, opt, MEAN, STD, channels_last=prec.channels_last, autocast=prec.dtype)
    with Timer() as t:
        seen = sum(plain_train_epoch(model, src.images, src.labels, batch, opt, MEAN, STD, channels_last=prec.channels_last,
                                     autocast=prec.dtype) for _ in range(epochs))
    return seen / t.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--resnet-images", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, auto precision here = {resolve_precision('auto', torch.device('cpu')).name}")

    src = data(args.images)
    ratios = []
    for prec in ("fp32", "auto"):
        vs, ps = [], []
        for _ in range(args.repeats):
            vs.append(vislab_throughput("small_cnn", src, prec, args.epochs, args.batch))
            ps.append(plain_throughput("small_cnn", src, prec, args.epochs, args.batch))
        v, p = max(vs), max(ps)
        ratios.append(v / p)
        print(f"[overhead] small_cnn {prec:>4}: vislab {v:8.1f} img/s | plain loop {p:8.1f} img/s | vislab/plain = {v / p:.2f}x")

    rsrc = data(args.resnet_images)
    f32s, autos = [], []
    for _ in range(args.repeats):
        f32s.append(vislab_throughput("resnet18", rsrc, "fp32", args.epochs, args.batch))
        autos.append(vislab_throughput("resnet18", rsrc, "auto", args.epochs, args.batch))
    fp32, auto = max(f32s), max(autos)
    print(f"[precision] resnet18 (CIFAR stem, 32x32): auto {auto:.1f} img/s | fp32 {fp32:.1f} img/s | auto/fp32 = {auto / fp32:.2f}x")
    print(f"summary: trainer overhead vislab/plain = {min(ratios):.2f}x (worst of fp32, auto; goal >= 0.95x); "
          f"precision auto/fp32 = {auto / fp32:.2f}x on resnet18 (goal >= 2.5x)")


if __name__ == "__main__":
    main()

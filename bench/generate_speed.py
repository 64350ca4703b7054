"""Benchmark (not a test): DCGAN training through vislab's engine vs a minimal hand-written GAN loop, and diffusion
sampling speed with DDPM vs DDIM steps.

Run: ``.venv/bin/python bench/generate_speed.py [--images 1024] [--size 32] [--repeats 3]``

1. Training: the same DCGAN (G and D), data (random gray images in memory), batch, Adam settings and precision,
   one critic and one generator update per batch with the non-saturating loss; vislab's side is the task's own
   step through the Trainer (noise per global batch, per-step dynamics, a checkpoint every epoch), the baseline
   the loop a careful user writes. Ratio = vislab images/s / plain images/s (goal >= 0.95x). Best of ``--repeats``
   interleaved measurements after a warm-up epoch.
2. Sampling: images/s of a small U-Net (28 px) with 1000-step DDPM, and DDIM with 50 and 20 steps.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vislab.core.config import from_dict
from vislab.core.device import resolve_precision
from vislab.data.classify.source import ImageSource
from vislab.data.generate import GenStream
from vislab.engine.config import TrainConfig
from vislab.engine.trainer import Trainer
from vislab.models.registry import create_model
from vislab.tasks.generate.task import GanTask


def data(n: int, size: int) -> ImageSource:
    g = torch.Generator().manual_seed(0)
    return ImageSource(["x"], torch.zeros(n, dtype=torch.long), images=torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g),
                       size=(size, size), channels=1, name="random")


def models(size: int, width: int):
    torch.manual_seed(0)
    return dict(create_model("dcgan", z_dim=64, in_chans=1, img_size=size, width=width))


def vislab_throughput(src: ImageSource, batch: int, epochs: int, precision: str, width: int) -> float:
    cfg = from_dict(TrainConfig, {"epochs": epochs + 1, "optimizer": "adam", "lr": 2e-4, "momentum": 0.5, "weight_decay": 0.0,
                                  "scheduler": "constant", "precision": precision})
    dev = torch.device("cpu")
    prec = resolve_precision(precision, dev)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "checkpoints").mkdir()
        tr = Trainer(cfg, GanTask("gan"), device=dev, precision=prec, run_dir=Path(d), progress="off", tensorboard=False)
        tr.progress.enabled = False
        m = tr.prepare(models(src.size[0], width))
        stream = GenStream(src, batch, train=True, noise={"z": ("normal", (2, 64)), "u": ("uniform", ())}, channels_last=prec.channels_last)
        res = tr.fit(m, stream)
    rows = res.history[1:]
    return sum(len(src) // batch * batch for _ in rows) / sum(r["epoch_seconds"] for r in rows)


def plain_throughput(src: ImageSource, batch: int, epochs: int, precision: str, width: int) -> float:
    prec = resolve_precision(precision, torch.device("cpu"))
    m = models(src.size[0], width)
    G, D = m["G"], m["D"]
    if prec.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    og = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def epoch() -> int:
        seen = 0
        perm = torch.randperm(len(src))
        for i in range(0, len(src) - batch + 1, batch):
            x = src.images[perm[i:i + batch]].float() / 127.5 - 1
            if prec.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            ctx = torch.autocast("cpu", dtype=prec.dtype) if prec.dtype else torch.autocast("cpu", enabled=False)
            with ctx:
                with torch.no_grad():
                    fake = G(torch.randn(batch, 64))
                loss_d = (F.softplus(-D(x).float()) + F.softplus(D(fake).float())).mean()
            od.zero_grad(set_to_none=True)
            loss_d.backward()
            od.step()
            with ctx:
                loss_g = F.softplus(-D(G(torch.randn(batch, 64))).float()).mean()
            og.zero_grad(set_to_none=True)
            loss_g.backward()  # D's gradients too (the plain way); zeroed before its next step
            og.step()
            seen += batch
        return seen

    epoch()
    t0 = time.perf_counter()
    seen = sum(epoch() for _ in range(epochs))
    return seen / (time.perf_counter() - t0)


def sampling(n: int) -> dict[str, float]:
    torch.manual_seed(0)
    net = create_model("ddpm", img_size=28, width=32, mults=[1, 2, 2]).eval()
    out = {}
    for name, kw in (("ddpm 1000 steps", {"sampler": "ddpm"}), ("ddim 50 steps", {"sampler": "ddim", "steps": 50}),
                     ("ddim 20 steps", {"sampler": "ddim", "steps": 20})):
        t0 = time.perf_counter()
        net.sample(n, generator=torch.Generator().manual_seed(0), **kw)
        out[name] = n / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=16)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, auto precision here = {resolve_precision('auto', torch.device('cpu')).name}")
    src = data(args.images, args.size)
    ratios = []
    for prec in ("fp32", "auto"):
        vs, ps = [], []
        for _ in range(args.repeats):
            vs.append(vislab_throughput(src, args.batch, args.epochs, prec, args.width))
            ps.append(plain_throughput(src, args.batch, args.epochs, prec, args.width))
        v, p = max(vs), max(ps)
        ratios.append(v / p)
        print(f"[train] dcgan {args.size}px {prec:>4}: vislab {v:8.1f} img/s | plain GAN loop {p:8.1f} img/s | vislab/plain = {v / p:.2f}x")
    s = sampling(args.samples)
    for name, rate in s.items():
        print(f"[sample] 28 px U-Net, {name}: {rate:7.2f} img/s")
    ddpm, ddim = s["ddpm 1000 steps"], s["ddim 50 steps"]
    print(f"summary: dcgan training vislab/plain = {min(ratios):.2f}x (worst of fp32, auto; goal >= 0.95x); "
          f"sampling ddim-50/ddpm-1000 = {ddim / ddpm:.1f}x ({ddim:.2f} vs {ddpm:.2f} img/s)")


if __name__ == "__main__":
    main()

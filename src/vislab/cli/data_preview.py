"""``vislab data preview``: a grid of training images as the augmentation pipeline gives them."""

from __future__ import annotations

import click

from vislab.cli.data import group
from vislab.cli.options import build_config, config_options


def _cfg_cls():
    from vislab.data.classify.source import DataConfig

    return DataConfig


@group.command(name="preview", context_settings={"max_content_width": 110})
@config_options(_cfg_cls(), skip=("batch_size", "eval_batch_size", "workers", "fast_path", "max_memory_mb"))
@click.option("--n", "n", type=int, default=16, help="images in the grid [default: 16]")
@click.option("--out", "out", default="augment_preview.png", help="PNG to write [default: augment_preview.png]")
@click.option("--seed", "seed", type=int, default=0, help="augmentation seed [default: 0]")
def preview(config_path: str | None, n: int, out: str, seed: int, **options) -> None:
    """Write a grid of N training images after --augment (top row: originals, then augmented views).

    \b
    Examples:
      vislab data preview --data shapes --augment strong
      vislab data preview --data ./pets --img-size 96 --augment flip,crop,jitter,cutmix --out pets_aug.png
    """
    from pathlib import Path

    import torch

    from vislab.data.classify.augment import BatchPipeline, parse_augment
    from vislab.data.classify.source import load_dataset
    from vislab.data.classify.stream import epoch_generator
    from vislab.report.plots import image_grid

    cfg = build_config(_cfg_cls(), config_path, options)
    ops = parse_augment(cfg.augment if cfg.augment != "auto" else "standard")
    src = load_dataset(cfg).train
    k = max(1, min(n, len(src)))
    idx = torch.linspace(0, len(src) - 1, k).round().long()
    x = torch.stack([src.get(int(i)) for i in idx])  # (k, C, H, W) uint8
    y = src.labels[idx]
    aug = BatchPipeline(ops, src.size, src.channels, cfg.mixup_alpha, cfg.cutmix_alpha)
    views, caps = [], []
    for rep in range(2):
        xa, y2, lam = aug(x, y, epoch_generator(seed, rep, salt=1), k, slice(0, None, 1))
        views.append(xa)
        for j in range(k):
            c = src.classes[int(y[j])]
            caps.append(c if y2 is None else f"{c} {float(lam):.2f}/{src.classes[int(y2[j])]}")
    imgs = [a.permute(1, 2, 0).numpy() for a in x] + [(v * 255).round().byte().permute(1, 2, 0).numpy() for xa in views for v in xa]
    caps = [f"{src.classes[int(c)]} (orig)" for c in y] + caps
    path = image_grid(imgs, caps, Path(out), title=f"{src.name}: --augment {cfg.augment} ({', '.join(ops) or 'none'})", cols=k)
    click.echo(f"written: {path}")

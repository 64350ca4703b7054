"""The fast style-transfer network in a training run (Johnson, Alahi & Fei-Fei 2016; several styles in one network
with conditional instance norm, Dumoulin et al. 2017 -- the idea MSG-Net builds on).

A ``transformer_net`` restyles content crops in one forward pass; its loss is the optimisation's (Gatys et al.) in the
features of ``--features``: ``content_weight`` x the relative content error against the crop itself + ``style_weight``
x the relative Gram error against the style image's + ``tv_weight`` x total variation, per sample. With several
styles each sample of a batch gets the style ``(image index + batch number) % n_styles``, so every image meets every
style over the epochs and the choice depends only on the data order (resumable, the same for N processes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vislab.core import config as C
from vislab.core.errors import ConfigError, DataError
from vislab.data.translate import load_translate_data
from vislab.data.translate.stream import PairStream, TBatch
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import Callback
from vislab.metrics.image_quality import ImageQuality
from vislab.tasks.base import check_all
from vislab.tasks.shared.model import build_registered, unwrap
from vislab.tasks.style.config import StyleConfig
from vislab.tasks.translate.task import TranslateJob

TASK = "style"


def read_image(path: str | Path, max_side: int = 0) -> torch.Tensor:
    """An image file as ``(1, 3, H, W)`` in [-1, 1] (gray files repeated to 3 channels), its longer side at most ``max_side``."""
    from vislab.core.io import read_image as _read
    from vislab.tasks.shared.features import resize_to

    a = _read(path, "RGB")
    x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float().contiguous() / 127.5 - 1
    if max_side and max(x.shape[-2:]) != max_side:
        f = max_side / max(x.shape[-2:])
        x = resize_to(x, (max(1, round(x.shape[-2] * f)), max(1, round(x.shape[-1] * f)))).clamp(-1, 1)
    return x


def per_sample_relative(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||a - t||^2 / ||t||^2`` per sample."""
    d = (a.float() - target.float()).pow(2).flatten(1).mean(1)
    return d / target.float().pow(2).flatten(1).mean(1).clamp_min(1e-12)


class StyleLosses:
    """The per-sample content, style and TV losses of restyled images against their content and the style Grams."""

    def __init__(self, net: nn.Module, styles: torch.Tensor | list[torch.Tensor], content_layers: list[str], style_layers: list[str]):
        from vislab.tasks.shared.features import gram

        self.net, self.c_layers, self.s_layers = net, content_layers, style_layers
        with torch.no_grad():
            grams = [{k: gram(v)[0] for k, v in net(s.to(net.device), style_layers).items()} for s in styles]
        self.grams = {k: torch.stack([g[k] for g in grams]) for k in style_layers}  # (n_styles, C, C) per layer

    def __call__(self, out: torch.Tensor, content: torch.Tensor, style_idx: torch.Tensor) -> dict[str, torch.Tensor]:
        from vislab.tasks.shared.features import gram

        f_out = self.net(out.float(), self.c_layers + self.s_layers)
        with torch.no_grad():
            f_c = self.net(content.float(), self.c_layers)
        content_l = sum(per_sample_relative(f_out[k], f_c[k]) for k in self.c_layers) / len(self.c_layers)
        style_l = sum(per_sample_relative(gram(f_out[k]), self.grams[k][style_idx]) for k in self.s_layers) / len(self.s_layers)
        x = out.float()
        tv = (x[..., 1:, :] - x[..., :-1, :]).pow(2).flatten(1).mean(1) + (x[..., :, 1:] - x[..., :, :-1]).pow(2).flatten(1).mean(1)
        return {"content": content_l, "style": style_l, "tv": tv}


def style_of(batch: TBatch, n_styles: int) -> torch.Tensor:
    return ((batch.index.to(batch.a.device) + batch.k) % n_styles).long()


class StyleTask:
    """The default training step on the weighted per-sample loss (see the module docstring)."""

    monitor = "val_loss"
    shown = ("val_loss", "val_style", "val_content")
    stat_owners = {"loss": "the transformer network", "style": "the transformer network", "content": "the transformer network"}

    def __init__(self, losses: StyleLosses, n_styles: int, weights: tuple[float, float, float]):
        self.losses, self.n_styles, self.weights = losses, n_styles, weights

    def _loss(self, model: nn.Module, batch: TBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        idx = style_of(batch, self.n_styles)
        out = model(batch.a, idx if self.n_styles > 1 else None)
        parts = self.losses(out, batch.a, idx)
        wc, ws, wt = self.weights
        return wc * parts["content"] + ws * parts["style"] + wt * parts["tv"], parts

    def train_step(self, model: nn.Module, batch: TBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, parts = self._loss(model, batch)
        return loss.sum(), {k: v.sum().detach() for k, v in parts.items()}

    def new_metrics(self) -> ImageQuality:
        return ImageQuality()

    def eval_step(self, model: nn.Module, batch: TBatch, metrics: ImageQuality) -> None:
        if len(batch) == 0:
            return
        loss, parts = self._loss(model, batch)
        metrics.update({"loss": loss, **parts})


def validate(cfg: StyleConfig) -> None:
    m, d = cfg.model, cfg.data
    check_all([(m.width >= 1, "--width", ">= 1", m.width), (m.blocks >= 0, "--blocks", ">= 0", m.blocks),
               (m.content_weight >= 0, "--content-weight", ">= 0", m.content_weight), (m.style_weight > 0, "--style-weight", "> 0", m.style_weight),
               (m.tv_weight >= 0, "--tv-weight", ">= 0", m.tv_weight), (d.style_size >= 0, "--style-size", ">= 0", d.style_size),
               (d.img_size % 4 == 0 and d.img_size >= 16, "--img-size", "a multiple of 4, >= 16 (the network halves twice)", d.img_size)])
    if not d.style:
        raise ConfigError("--style: expected one or more style images (comma-separated), got none")
    for s in d.style:
        if not Path(s).expanduser().is_file():
            raise DataError(f"--style: expected an existing image file, got '{s}' (not found)")


def _layers(net: Any, text: str, default: list[str], what: str) -> list[str]:
    if not text:
        return list(default)
    return net.check_layers([s.strip() for s in text.split(",") if s.strip()], what)


def setup(cfg: StyleConfig, ctx: WorkerContext) -> StyleJob:
    from vislab.tasks.shared.features import load_feature_net, min_size

    tc, dist, m, d = cfg.train, ctx.dist, cfg.model, cfg.data
    data = load_translate_data(d, "single", want_channels=3)
    net = load_feature_net(m.features, device=ctx.device)
    c_layers = _layers(net, m.content_layers, net.default_content, "--content-layers")
    s_layers = _layers(net, m.style_layers, net.default_style, "--style-layers")
    need = min_size(net, c_layers + s_layers)
    if d.img_size < need:
        raise DataError(f"--img-size {d.img_size}: expected crops of at least {need} x {need} pixels for layer {net.deepest(c_layers + s_layers)}, got {d.img_size}")
    styles = [read_image(s, d.style_size or 2 * d.img_size) for s in d.style]
    for s, path in zip(styles, d.style, strict=True):
        if min(s.shape[-2:]) < need:
            raise DataError(f"style image '{path}': expected at least {need} x {need} pixels for layer {net.deepest(s_layers)}, got {s.shape[-2]} x {s.shape[-1]}")
    losses = StyleLosses(net, styles, c_layers, s_layers)
    torch.manual_seed(tc.seed)
    model, args = build_registered("transformer_net", "translate", {"in_chans": 3, "width": m.width, "n_blocks": m.blocks, "num_styles": len(styles)})
    hooks = StyleTask(losses, len(styles), (m.content_weight, m.style_weight, m.tv_weight))
    patches = d.patches or (1 if data.resized else max(1, round(sum(x.shape[-1] * x.shape[-2] for x in data.train_a.images) / len(data.train_a) / d.img_size**2)))
    common = {"seed": tc.seed, "rank": dist.rank, "world": dist.world, "device": ctx.device, "channels_last": ctx.precision.channels_last}
    train = PairStream(data.train_a, None, crop=d.img_size, batch_size=d.batch_size, train=True, patches=patches, flip=d.augment != "none", **common)
    ev = d.eval_size or min(128, max(d.img_size, data.val_a.min_side() if data.val_a is not None else d.img_size))
    ev -= ev % 4
    val = PairStream(data.val_a, None, crop=d.img_size, batch_size=d.eval_batch(), train=False, eval_size=ev, **common) if data.val_a is not None else None
    ckpt_state = {"task": TASK, "model": "transformer_net", "model_args": args, "styles": [str(Path(s).resolve()) for s in d.style],
                  "style_names": [Path(s).stem for s in d.style], "num_styles": len(styles), "features": net.name, "content_layers": c_layers,
                  "style_layers": s_layers, "img_size": [d.img_size, d.img_size], "channels": 3, "dataset": data.name, "config": C.to_dict(cfg)}
    n_par = sum(p.numel() for p in model.parameters())
    log = [f"vislab style: transformer_net ({n_par:,} parameters, {len(styles)} style(s): {', '.join(Path(s).name for s in d.style)}) on {data.name} "
           f"({len(data.train_a)} content images, {d.img_size} px crops x {patches}/image) | losses in {net.name}: content {','.join(c_layers)}, "
           f"style {','.join(s_layers)} | {ctx.device} {ctx.precision.name} | {dist.world} process(es) -> {ctx.run_dir}"]
    if getattr(net, "note", ""):
        log.append(net.note)
    job = StyleJob(hooks, model, train, val, ckpt_state, log, cfg=cfg, ctx=ctx, styles=styles, resume_keys=("task", "model", "model_args", "styles"))
    if dist.is_main:
        job.snapshot_every = m.sample_every if m.sample_every else max(1, len(train) * tc.epochs // 20)
        job.callbacks.append(Callback(on_step_end=job.on_step))
    return job


def style_grid(model: nn.Module, content: torch.Tensor, styles: list[torch.Tensor], n_styles: int) -> tuple[torch.Tensor, int]:
    """A grid: the first row the style images (a blank first cell), then per content image the image and its outputs
    in each style; returns ``(images, per row)``."""
    from vislab.tasks.shared.features import resize_to

    s = content.shape[-1]
    thumbs = [resize_to(st.to(content.device), (s, s)).clamp(-1, 1) for st in styles]
    rows = [torch.cat([torch.ones_like(content[:1]), *thumbs])]
    for x in content:
        outs = [model(x[None], torch.tensor([k], device=x.device) if n_styles > 1 else None).float().clamp(-1, 1) for k in range(n_styles)]
        rows.append(torch.cat([x[None].float(), *outs]))
    return torch.cat(rows), n_styles + 1


@dataclass(kw_only=True)
class StyleJob(TranslateJob):
    """A fast-network run: translation's snapshots, per-step losses and report, with each fixed content crop shown
    in every style."""

    styles: list[torch.Tensor]

    def pictures(self, model: Any, n: int) -> tuple[torch.Tensor, int, str]:
        imgs, per_row = style_grid(unwrap(model), self.fixed.a[:4], self.styles, len(self.styles))
        return imgs, per_row, "styles (top row); each content image and its restyled versions"

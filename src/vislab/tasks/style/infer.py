"""``vislab style transfer | texture | apply``: Gatys et al.'s optimisation on two images, texture synthesis, and a
trained fast network on images and videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core.errors import ConfigError, DataError
from vislab.core.io import atomic_path, atomic_write_text
from vislab.tasks.style.config import ApplyConfig, TextureConfig, TransferConfig
from vislab.tasks.style.task import read_image

VIDEO = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def save_png(x: torch.Tensor, path: Path) -> Path:
    """``(1, C, H, W)`` in [-1, 1] as a PNG, atomically."""
    from PIL import Image

    a = ((x[0].detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(tmp, format="PNG")
    return Path(path)


def _device(name: str) -> torch.device:
    from vislab.core.device import resolve_device

    return resolve_device(name)


def _frames_recorder(n: int, steps: int):
    """A callback keeping ``n`` evenly spread frames of the optimisation, and the frames."""
    frames: list[tuple[int, np.ndarray]] = []
    every = max(1, steps // max(1, n))

    def cb(step: int, image: torch.Tensor, losses: dict[str, float]) -> None:
        if n and (step % every == 0 or step == 1):
            a = ((image[0].detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            frames.append((step, a if a.shape[2] == 3 else a.repeat(3, 2)))
    return cb, frames


def _write_outputs(out: Path, r: Any, stem: str, frames: list[tuple[int, np.ndarray]], extra: dict[str, Any]) -> dict[str, Any]:
    from vislab.report.plots import _plt, _save
    from vislab.tasks.generate.report import save_gif

    out.mkdir(parents=True, exist_ok=True)
    png = save_png(r.image, out / f"{stem}.png")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    steps = [h["step"] for h in r.history]
    for k in ("style", "content", "tv"):
        if any(h.get(k) for h in r.history):
            ax.semilogy(steps, [max(h[k], 1e-12) for h in r.history], label=k)
    ax.set(xlabel="step", ylabel="relative loss", title=f"{stem}: losses")
    ax.legend()
    curves = _save(fig, out / "losses.png")
    res = {"png": str(png), "losses_png": str(curves), "style_loss_start": r.style_loss_start, "style_loss_end": r.style_loss_end,
           "content_loss_end": r.content_loss_end, "seconds": r.seconds, "steps": len(r.history), "note": r.note, **extra, "out": str(out)}
    if frames:
        res["gif"] = str(save_gif([f for _, f in frames], out / "progress.gif", [f"step {s}" for s, _ in frames], ms=200))
    atomic_write_text(out / "result.json", json.dumps(res, indent=1))
    return res


def transfer(cfg: TransferConfig) -> dict[str, Any]:
    """Restyle CONTENT with STYLE by optimising the image (see :func:`vislab.tasks.style.gatys.transfer`)."""
    from vislab.tasks.shared.features import load_feature_net
    from vislab.tasks.style import gatys

    for p, what in ((cfg.content, "content image"), (cfg.style, "style image")):
        if not Path(p).is_file():
            raise DataError(f"{what}: expected an existing image file, got '{p}' (not found)")
    if cfg.steps < 1:
        raise ConfigError(f"--steps: expected >= 1, got {cfg.steps}")
    dev = _device(cfg.device)
    net = load_feature_net(cfg.features, device=dev)
    content = read_image(cfg.content, cfg.size)
    style = read_image(cfg.style)
    cb, frames = _frames_recorder(cfg.frames, cfg.steps)
    r = gatys.transfer(content, style, net, content_layers=cfg.content_layers or None, style_layers=cfg.style_layers or None,
                       content_weight=cfg.content_weight, style_weight=cfg.style_weight, tv_weight=cfg.tv_weight, steps=cfg.steps,
                       optimizer=cfg.optimizer, lr=cfg.lr or None, init=cfg.init, preserve_color=cfg.preserve_color, style_scale=cfg.style_scale,
                       seed=cfg.seed, style_name=Path(cfg.style).name, content_name=Path(cfg.content).name, callback=cb if cfg.frames else None)
    stem = f"{Path(cfg.content).stem}-{Path(cfg.style).stem}"
    out = Path(cfg.out) if cfg.out else Path("runs") / "style" / f"transfer-{stem}"
    return _write_outputs(out, r, stem, frames, {"features": net.name, "pretrained": bool(getattr(net, "pretrained", False))})


def texture(cfg: TextureConfig) -> dict[str, Any]:
    """A new texture from noise with STYLE's Gram statistics (see :func:`vislab.tasks.style.gatys.texture`)."""
    from vislab.tasks.shared.features import load_feature_net
    from vislab.tasks.style import gatys

    if not Path(cfg.style).is_file():
        raise DataError(f"style image: expected an existing image file, got '{cfg.style}' (not found)")
    dev = _device(cfg.device)
    net = load_feature_net(cfg.features, device=dev)
    style = read_image(cfg.style, cfg.max_style_size if cfg.max_style_size and max(read_image(cfg.style).shape[-2:]) > cfg.max_style_size else 0)
    cb, frames = _frames_recorder(cfg.frames, cfg.steps)
    r = gatys.texture(style, net, size=(cfg.size, cfg.size) if cfg.size else None, style_layers=cfg.style_layers or None, steps=cfg.steps,
                      optimizer=cfg.optimizer, lr=cfg.lr or None, seed=cfg.seed, style_name=Path(cfg.style).name, callback=cb if cfg.frames else None)
    stem = f"texture-{Path(cfg.style).stem}"
    out = Path(cfg.out) if cfg.out else Path("runs") / "style" / stem
    return _write_outputs(out, r, stem, frames, {"features": net.name, "pretrained": bool(getattr(net, "pretrained", False))})


# --------------------------------------------------------------------------------------------
# apply
# --------------------------------------------------------------------------------------------
def _styles_to_run(cfg: ApplyConfig, n: int) -> list[tuple[str, torch.Tensor | None]]:
    """``[(suffix, style argument)]``: one per style, the chosen one, or the blend."""
    if cfg.mix:
        try:
            w = [float(v) for v in cfg.mix.split(",")]
        except ValueError:
            w = []
        if len(w) != n or min(w) < 0 or sum(w) <= 0:
            raise ConfigError(f"--mix: expected {n} non-negative weights (one per style of the run), got '{cfg.mix}'")
        t = torch.tensor(w) / sum(w)
        return [("mix", t[None])]
    if cfg.style_index >= n:
        raise ConfigError(f"--style-index: expected 0..{n - 1} (the run has {n} style(s)), got {cfg.style_index}")
    ks = [cfg.style_index] if cfg.style_index >= 0 else list(range(n))
    return [(f"style{k}", torch.tensor([k]) if n > 1 else None) for k in ks]


def _run(model: torch.nn.Module, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
    """The network on ``x`` (``(1, 3, H, W)`` in [-1, 1]); sides padded (reflect) to a multiple of 4 and cropped back."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % 4, (-w) % 4
    xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if (ph or pw) else x
    s = style.to(x.device) if style is not None else None
    return model(xp, s)[..., :h, :w].clamp(-1, 1)


def apply(cfg: ApplyConfig) -> dict[str, Any]:
    """A trained fast network on images (one PNG per style) and videos (one H.264 MP4 per style, frame by frame, at
    the input's frame rate: 10 when it states none)."""
    import contextlib

    from vislab.data.video.io import FOLDER_FPS, VideoWriter, iter_frames, video_info
    from vislab.core.progress import Tracker
    from vislab.tasks.shared.features import resize_to
    from vislab.tasks.shared.inputs import expand_inputs
    from vislab.tasks.shared.model import load_for_inference
    from vislab.core.io import IMAGE_EXTENSIONS

    model, state, dev, _ = load_for_inference(cfg.checkpoint, "style", cfg.device, "fp32")
    model = model.float().eval()
    runs = _styles_to_run(cfg, state["num_styles"])
    files = expand_inputs(cfg.inputs, IMAGE_EXTENSIONS + VIDEO, "images or videos")
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "apply"
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    fps_measured: list[float] = []
    import time

    def prep(x: torch.Tensor) -> torch.Tensor:
        if cfg.size and max(x.shape[-2:]) != cfg.size:
            f = cfg.size / max(x.shape[-2:])
            x = resize_to(x, (max(4, round(x.shape[-2] * f)), max(4, round(x.shape[-1] * f)))).clamp(-1, 1)
        return x.to(dev)

    with torch.no_grad(), Tracker("apply", len(files), unit="files") as progress:
        for f in files:
            if f.suffix.lower() in VIDEO:
                frames = iter_frames(f)  # a bad video is a one-line DataError here, before anything is written
                dsts = {suffix: out / f"{f.stem}_{suffix}.mp4" for suffix, _ in runs}
                with contextlib.ExitStack() as stack:
                    stack.callback(frames.close)  # stopping at --max-frames closes the file
                    fps = video_info(f).fps or FOLDER_FPS
                    writers = {suffix: stack.enter_context(VideoWriter(dst, fps)) for suffix, dst in dsts.items()}
                    for n, rgb in enumerate(frames):
                        if cfg.max_frames and n >= cfg.max_frames:
                            break
                        x = prep(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1)
                        for suffix, s in runs:
                            t0 = time.perf_counter()
                            y = _run(model, x, s)
                            fps_measured.append(1 / max(time.perf_counter() - t0, 1e-9))
                            writers[suffix].write(((y[0].float() + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy())
                written.extend(str(d) for d in dsts.values())
            else:
                x = prep(read_image(f))
                for suffix, s in runs:
                    t0 = time.perf_counter()
                    y = _run(model, x, s)
                    fps_measured.append(1 / max(time.perf_counter() - t0, 1e-9))
                    written.append(str(save_png(y, out / f"{f.stem}_{suffix}.png")))
            progress.advance()
    return {"out": str(out), "files": written, "n": len(written), "styles": [s for s, _ in runs],
            "images_per_second": float(np.median(fps_measured)) if fps_measured else 0.0}

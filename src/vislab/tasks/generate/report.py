"""Pictures of image synthesis: sample grids (with a label strip), GIFs of snapshots and interpolations, the
training dynamics of a GAN (losses, D(x) / D(G(z)), gradient penalty, Wasserstein estimate), and ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core.io import atomic_path
from vislab.engine.trainer import FitResult
from vislab.report import html as H
from vislab.report.plots import _plt, _save, plot_curves


def grid_array(images: torch.Tensor, nrow: int = 8, pad: int = 2, upscale: int = 0) -> np.ndarray:
    """Images in [-1, 1] ``(N, C, H, W)`` as one ``(H', W', 3)`` uint8 grid, ``nrow`` per row, white gaps; small
    images are enlarged (nearest) to about 64 px so a grid of 16 px digits is readable."""
    from torchvision.utils import make_grid

    from vislab.data.generate import to_uint8

    x = to_uint8(images)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    k = upscale or max(1, 64 // x.shape[-1])
    if k > 1:
        x = x.repeat_interleave(k, 2).repeat_interleave(k, 3)
    return make_grid(x, nrow=nrow, padding=pad, pad_value=255).permute(1, 2, 0).numpy()


def _with_label(a: np.ndarray, label: str):
    from PIL import Image, ImageDraw

    im = Image.fromarray(a)
    if not label:
        return im
    out = Image.new("RGB", (im.width, im.height + 14), "white")
    out.paste(im, (0, 14))
    ImageDraw.Draw(out).text((3, 1), label, fill=(0, 0, 0))
    return out


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8, label: str = "") -> Path:
    """A grid PNG of images in [-1, 1] (with a one-line label above it), written atomically."""
    im = _with_label(grid_array(images, nrow), label)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return Path(path)


def save_gif(frames: list[np.ndarray], path: Path, labels: list[str] | None = None, ms: int = 150) -> Path:
    """An animated GIF (looping) of ``(H, W, 3)`` uint8 frames, each with its label."""
    ims = [_with_label(f, labels[i] if labels else "") for i, f in enumerate(frames)]
    with atomic_path(path) as tmp:
        ims[0].save(tmp, format="GIF", save_all=True, append_images=ims[1:], duration=ms, loop=0)
    return Path(path)


def save_images(images: torch.Tensor, folder: Path, prefix: str = "") -> list[Path]:
    """Each image in [-1, 1] as its own PNG ``<prefix>0000.png`` ... (the model's resolution, no upscaling)."""
    from PIL import Image

    from vislab.data.generate import to_uint8

    folder.mkdir(parents=True, exist_ok=True)
    x = to_uint8(images).permute(0, 2, 3, 1).numpy()
    paths = []
    for i, a in enumerate(x):
        p = folder / f"{prefix}{i:04d}.png"
        Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(p)
        paths.append(p)
    return paths


def snapshots_gif(run_dir: Path) -> Path | None:
    """``progress.gif`` of the snapshot grids (at most 40 frames, evenly spread) and ``progress.png`` of six of them."""
    from PIL import Image

    paths = sorted((run_dir / "snapshots").glob("step_*.png"))
    if not paths:
        return None
    pick = np.unique(np.linspace(0, len(paths) - 1, min(len(paths), 40)).round().astype(int))
    frames = [np.asarray(Image.open(paths[i]).convert("RGB")) for i in pick]
    h = min(f.shape[0] for f in frames)
    w = min(f.shape[1] for f in frames)
    save_gif([f[:h, :w] for f in frames], run_dir / "progress.gif", ms=250)
    six = [frames[i] for i in np.unique(np.linspace(0, len(frames) - 1, min(6, len(frames))).round().astype(int))]
    strip = np.concatenate([np.pad(f[:h, :w], ((0, 0), (0, 6), (0, 0)), constant_values=255) for f in six], 1)
    Image.fromarray(strip).save(run_dir / "progress.png")
    return run_dir / "progress.gif"


def plot_dynamics(rows: list[dict[str, float]], path: Path, title: str = "training dynamics") -> Path | None:
    """Per-step GAN numbers: the two losses; D(x) and D(G(z)); the gradient penalty and the Wasserstein estimate
    (when the loss has them). Curves are smoothed with a running mean of 1/20 of the steps."""
    if not rows:
        return None
    plt = _plt()
    panels = [("losses", ("loss_d", "loss_g")), ("critic on real / fake", ("d_real", "d_fake")), ("Wasserstein estimate", ("w_dist",)),
              ("gradient penalty", ("gp",))]
    panels = [(t, keys) for t, keys in panels if any(k in r for r in rows for k in keys)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    k = max(1, len(rows) // 20)
    for ax, (t, keys) in zip(axes[0], panels, strict=True):
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows if key in r]
            if not pts:
                continue
            s, v = map(np.asarray, zip(*pts, strict=True))
            if len(v) > k:
                v = np.convolve(v, np.ones(k) / k, mode="valid")
                s = s[k - 1:]
            ax.plot(s, v, label=key.replace("d_real", "D(x)").replace("d_fake", "D(G(z))"))
        ax.set(title=t, xlabel="step")
        ax.legend(fontsize=8)
    fig.suptitle(title, y=1.03)
    return _save(fig, path)


def write_training_report(run_dir: Path, result: FitResult, final: dict[str, Any], pictures: torch.Tensor, kind: str,
                          dynamics: list[dict[str, float]]) -> Path:
    """curves.png, samples.png (or reconstructions.png), progress.gif / .png, dynamics.png (GANs), report.html."""
    name = "reconstructions.png" if kind == "ae" else "samples.png"
    caption = {"ae": "inputs and reconstructions (alternate rows)", "vae": "inputs and reconstructions (alternate rows)",
               "gan": "samples of fixed noise", "diffusion": "samples (20 DDIM steps, fixed noise)"}[kind]
    files = {"curves": plot_curves(result.history, run_dir / "curves.png", title=f"{run_dir.name}: learning curves"),
             "pictures": save_grid(pictures, run_dir / name, label=f"best checkpoint: {caption}")}
    gif = snapshots_gif(run_dir)
    dyn = plot_dynamics(dynamics, run_dir / "dynamics.png", f"{run_dir.name}: training dynamics") if kind == "gan" else None
    sections = [("Best checkpoint", H.picture(files["pictures"])),
                ("During training (fixed noise; progress.gif)", H.picture(gif) if gif else "<p>(no snapshots)</p>"),
                ("Training dynamics", H.picture(dyn) if dyn else ""),
                ("Learning curves", H.picture(files["curves"]))]
    return H.run_report(run_dir, f"vislab generate - {run_dir.name}", result, [s for s in sections if s[1]])

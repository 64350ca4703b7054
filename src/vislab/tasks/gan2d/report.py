"""Pictures of a 2-D GAN run: real vs generated points, the generator's evolution over training (a grid and a GIF
of the snapshots), learning curves, and ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.engine.trainer import FitResult
from vislab.report import html as H
from vislab.report.plots import _plt, _save, plot_curves


def _limits(real: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = np.percentile(real, 0.5, 0), np.percentile(real, 99.5, 0)
    pad = 0.25 * (hi - lo) + 1e-3
    return lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]


def plot_points(real: np.ndarray, fake: np.ndarray, path: Path, title: str = "real vs generated", centres: np.ndarray | None = None) -> Path:
    """One scatter of real (grey) and generated (orange) points; mode centres as crosses."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(real[:, 0], real[:, 1], s=4, c="0.6", alpha=0.5, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="tab:orange", alpha=0.6, label="generated")
    if centres is not None:
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="k", s=30, label="modes")
    x0, x1, y0, y1 = _limits(real)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), aspect="equal", title=title)
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def plot_evolution(real: np.ndarray, snapshots: list[tuple[int, np.ndarray]], path: Path, cols: int = 6) -> Path:
    """A grid of the generator's samples at the snapshot steps (at most ``3 * cols``, evenly spread)."""
    plt = _plt()
    pick = np.unique(np.linspace(0, len(snapshots) - 1, min(len(snapshots), 3 * cols)).round().astype(int))
    shown = [snapshots[i] for i in pick]
    cols = min(cols, len(shown))
    rows = int(np.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    x0, x1, y0, y1 = _limits(real)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (step, pts) in zip(axes.flat, shown, strict=False):
        ax.scatter(real[:, 0], real[:, 1], s=1, c="0.75", alpha=0.4)
        ax.scatter(pts[:, 0], pts[:, 1], s=1, c="tab:orange", alpha=0.7)
        ax.set(xlim=(x0, x1), ylim=(y0, y1), aspect="equal")
        ax.set_title(f"step {step}", fontsize=8)
    fig.suptitle("generator samples during training (fixed noise)")
    return _save(fig, path)


def write_gif(real: np.ndarray, snapshots: list[tuple[int, np.ndarray]], path: Path, size: int = 200) -> Path:
    """The snapshots as an animated GIF (grey: real points, orange: generated), drawn straight into pixels."""
    from PIL import Image, ImageDraw

    x0, x1, y0, y1 = _limits(real)

    def to_px(p: np.ndarray) -> np.ndarray:
        return np.stack([(p[:, 0] - x0) / (x1 - x0) * (size - 1), (1 - (p[:, 1] - y0) / (y1 - y0)) * (size - 1)], 1)

    frames = []
    for step, pts in snapshots:
        im = Image.new("RGB", (size, size), "white")
        d = ImageDraw.Draw(im)
        for x, y in to_px(real):
            d.point((x, y), fill=(190, 190, 190))
        for x, y in to_px(pts):
            d.rectangle([x - 1, y - 1, x + 1, y + 1], fill=(255, 127, 14))
        d.text((4, 4), f"step {step}", fill=(0, 0, 0))
        frames.append(im)
    from vislab.core.io import atomic_path

    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    return path


def read_snapshots(run_dir: Path) -> list[tuple[int, np.ndarray]]:
    return [(int(p.stem.split("_")[1]), np.load(p)) for p in sorted((run_dir / "snapshots").glob("step_*.npy"))]


def write_training_report(run_dir: Path, result: FitResult, final: dict[str, Any], real: torch.Tensor, fake: torch.Tensor,
                          centres: torch.Tensor | None) -> Path:
    """curves.png, samples.png, evolution.png / .gif (when there are snapshots) and report.html."""
    real_np, fake_np = real.numpy(), fake.numpy()
    c = centres.numpy() if centres is not None else None
    mmd = final.get("final_val_mmd")
    files = {"curves": plot_curves(result.history, run_dir / "curves.png", title=f"{run_dir.name}: losses and sample quality"),
             "samples": plot_points(real_np, fake_np, run_dir / "samples.png", f"best generator (val MMD {mmd:.4f})" if mmd is not None else "best generator", c)}
    snaps = read_snapshots(run_dir)
    if snaps:
        files["evolution"] = plot_evolution(real_np, snaps, run_dir / "evolution.png")
        write_gif(real_np, snaps, run_dir / "evolution.gif")
    sections = [("Real vs generated", H.picture(files["samples"])),
                ("Evolution (evolution.gif beside this page)", H.picture(files.get("evolution"))),
                ("Learning curves", H.picture(files["curves"]))]
    return H.run_report(run_dir, f"vislab gan2d - {run_dir.name}", result, sections)

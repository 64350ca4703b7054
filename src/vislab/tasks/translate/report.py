"""Pictures of a translation run: the best checkpoint's input / output / target grid, progress.gif of the snapshots,
the per-step losses, the learning curves, and ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.engine.trainer import FitResult
from vislab.report import html as H
from vislab.report.plots import _plt, _save, plot_curves


def plot_losses(rows: list[dict[str, float]], path: Path, title: str) -> Path | None:
    """Every per-step loss (pixel, adversarial, cycle, identity, perceptual, critic) in one panel each, smoothed over 1/20 of the steps."""
    keys = [k for k in ("loss_g", "loss", "pixel", "perceptual", "adv", "cycle", "identity", "loss_d", "content", "style", "tv") if any(k in r for r in rows)]
    if not rows or not keys:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.0), squeeze=False)
    k = max(1, len(rows) // 20)
    for ax, key in zip(axes[0], keys, strict=True):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        s, v = map(np.asarray, zip(*pts, strict=True))
        if len(v) > k:
            v, s = np.convolve(v, np.ones(k) / k, mode="valid"), s[k - 1:]
        ax.plot(s, v)
        ax.set(title=key, xlabel="step")
    fig.suptitle(title, y=1.03)
    return _save(fig, path)


def write_training_report(run_dir: Path, result: FitResult, final: dict[str, Any], pictures: torch.Tensor, per_row: int, caption: str,
                          dynamics: list[dict[str, float]]) -> Path:
    """examples.png, progress.gif / .png, losses.png, curves.png and report.html."""
    from vislab.tasks.generate.report import save_grid, snapshots_gif

    files = {"examples": save_grid(pictures, run_dir / "examples.png", nrow=per_row, label=f"best checkpoint: {caption}"),
             "curves": plot_curves(result.history, run_dir / "curves.png", title=f"{run_dir.name}: learning curves") if result.history else None}
    gif = snapshots_gif(run_dir)
    losses = plot_losses(dynamics, run_dir / "losses.png", f"{run_dir.name}: training losses")
    numbers = "".join(f"<tr><td>{k[len('final_val_'):]}</td><td>{v:.4f}</td></tr>" for k, v in final.items() if isinstance(v, float))
    sections = [("Best checkpoint on validation images", H.picture(files["examples"])),
                ("Validation numbers (best checkpoint)", f"<table>{numbers}</table>" if numbers else ""),
                ("During training (fixed validation images; progress.gif)", H.picture(gif) if gif else ""),
                ("Training losses", H.picture(losses) if losses else ""),
                ("Learning curves", H.picture(files["curves"]) if files["curves"] else "")]
    return H.run_report(run_dir, f"vislab translate - {run_dir.name}", result, [s for s in sections if s[1]])

"""A GAN on 2-D points: ``vislab gan2d train | eval | sample``.

The smallest task with two models and two optimizers -- the classic picture of how a GAN learns a mixture of
Gaussians, and of mode collapse -- and the worked example of adding a task (``docs/architecture.md``).

Python API: ``train(cfg)`` (a :class:`Gan2dConfig`), ``evaluate``, ``sample``; ``SPEC`` is the task's
:class:`~vislab.tasks.base.TaskSpec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislab.tasks import base
from vislab.tasks.gan2d.config import Gan2dConfig, Gan2dEvalConfig, GanModelConfig, SampleConfig
from vislab.tasks.gan2d.infer import evaluate, sample
from vislab.tasks.gan2d.task import GanTask, setup, validate


def train(cfg: Gan2dConfig, callbacks: list | None = None, folder: str | None = None) -> Path:
    """Train the 2-D GAN; returns the run folder (see :func:`vislab.tasks.base.train`)."""
    return base.train(SPEC, cfg, callbacks, folder)


def _numbers(d: dict[str, Any], prefix: str = "") -> str:
    return "  ".join(f"{k} {d[prefix + k]:.4f}" for k in ("mmd", "swd", "modes", "high_quality") if prefix + k in d)


def _summary(s: dict[str, Any]) -> str:
    return f"done: val {_numbers(s, 'final_val_')} in {s.get('total_seconds', 0):.1f}s" if "final_val_mmd" in s else "done"


def _show_eval(cfg: Gan2dEvalConfig, r: dict[str, Any]) -> list[str]:
    return [f"val: {r['n']} points  {_numbers(r)}", f"written: {r['out']}/metrics.json, samples.png"]


def _show_sample(cfg: SampleConfig, r: dict[str, Any]) -> list[str]:
    return [f"written: {r['out']} ({r['n']} points) and {r['png']}"]


SPEC = base.TaskSpec(
    name="gan2d",
    config=Gan2dConfig,
    setup=setup,
    validate=validate,
    help="A GAN on 2-D points (ring / grid of Gaussians, moons, spiral, your CSV): train, evaluate, sample.",
    train_help="""Train an MLP GAN on 2-D points; results go to runs/gan2d/<name>/ (samples.png, evolution.png / .gif).

    \b
    Examples:
      vislab gan2d train                                         # 8 Gaussians on a ring, non-saturating GAN
      vislab gan2d train --data grid --loss wgan-gp --n-critic 5
      vislab gan2d train --data my_points.csv --epochs 50
      vislab gan2d train --resume runs/gan2d/exp
    """,
    monitor="val_mmd",
    summary=_summary,
    report_files=("report.html", "samples.png", "evolution.png", "evolution.gif", "curves.png", "checkpoints/best.safetensors"),
    lr_find=False,
    modes=(
        base.Mode("eval", Gan2dEvalConfig, evaluate, _show_eval,
                  "How close CHECKPOINT's samples are to the validation points: MMD, sliced Wasserstein, modes covered."),
        base.Mode("sample", SampleConfig, sample, _show_sample,
                  "Draw points from CHECKPOINT's generator: a CSV of x,y and a scatter PNG beside it."),
    ),
)

__all__ = ["SPEC", "Gan2dConfig", "Gan2dEvalConfig", "GanModelConfig", "GanTask", "SampleConfig", "evaluate", "sample", "train"]

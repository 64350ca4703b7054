"""2-D GAN inference: ``sample`` (points from the best generator to CSV + a scatter PNG) and ``eval`` (MMD, sliced
Wasserstein distance and mode coverage of the generator's samples against the validation points)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vislab.core import config as C
from vislab.core.io import atomic_write_text
from vislab.data.points import PointsDataConfig, PointStream, load_points
from vislab.engine.evaluate import run_eval
from vislab.core.progress import Tracker
from vislab.tasks.gan2d.config import Gan2dEvalConfig, SampleConfig
from vislab.tasks.gan2d.report import plot_points
from vislab.tasks.gan2d.task import TASK, GanTask


def _load(checkpoint: str) -> tuple[dict[str, torch.nn.Module], dict[str, Any]]:
    from vislab.engine.checkpoint import load_model

    gan, state = load_model(checkpoint, task=TASK)
    return dict(gan), state


@torch.no_grad()
def sample(cfg: SampleConfig) -> dict[str, Any]:
    """Draw ``cfg.n`` points from the checkpoint's generator; writes a CSV and a scatter PNG beside it."""
    from vislab.core.errors import ConfigError

    if cfg.n < 1:
        raise ConfigError(f"--n: expected >= 1, got {cfg.n}")
    models, state = _load(cfg.checkpoint)
    z = torch.randn(cfg.n, state["model_args"]["z_dim"], generator=torch.Generator().manual_seed(cfg.seed))
    pts = models["G"](z).float()
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "samples" / "samples.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "x,y\n" + "".join(f"{x:.6g},{y:.6g}\n" for x, y in pts.tolist()))
    real, _, centres = load_points(C.from_dict(PointsDataConfig, state["config"]["data"]))
    png = plot_points(real.numpy(), pts.numpy(), out.with_suffix(".png"), f"{cfg.n} samples", centres.numpy() if centres is not None else None)
    return {"out": str(out), "png": str(png), "n": cfg.n}


def evaluate(cfg: Gan2dEvalConfig) -> dict[str, Any]:
    """The generator's sample quality on the validation points (the same noise as at training); metrics.json + samples.png."""
    models, state = _load(cfg.checkpoint)
    dcfg = C.from_dict(PointsDataConfig, state["config"]["data"])
    _, val, centres = load_points(dcfg)
    seed = state["config"]["train"]["seed"]
    stream = PointStream(val, dcfg.eval_batch(), train=False, z_dim=state["model_args"]["z_dim"], seed=seed)
    with Tracker("eval", len(val), unit="points") as progress:
        scores = run_eval(GanTask(centres=centres, noise=state["noise"]), models, stream, progress=progress).compute()
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps({"n": len(val), **scores}, indent=1))
    with torch.no_grad():
        fake = torch.cat([models["G"](b.z[:, 0]) for b in stream.epoch(0)]).float()
    plot_points(val.numpy(), fake.numpy(), out / "samples.png", f"val: MMD {scores['mmd']:.4f}", centres.numpy() if centres is not None else None)
    return {"out": str(out), "n": len(val), **scores}

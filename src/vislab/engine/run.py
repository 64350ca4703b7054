"""The run folder: ``runs/<task>/<name>/`` with config, provenance, metrics and checkpoints.

Layout::

    config.yaml          the resolved config (defaults <- --config <- options)
    run.json             git revision, versions, command line, machine, precision, timings
    metrics.csv          one row per epoch (rewritten atomically from the history)
    tb/                  TensorBoard events
    checkpoints/         last.safetensors (+ .json) every epoch, best.safetensors (+ .json)
    curves.png, report.html, ... pictures the task writes
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from vislab.core.config import save_yaml
from vislab.core.errors import ConfigError
from vislab.core.io import atomic_write_text, git_revision


def next_free_name(root: Path, base: str = "exp") -> str:
    if not (root / base).exists():
        return base
    i = 2
    while (root / f"{base}{i}").exists():
        i += 1
    return f"{base}{i}"


def create_run_dir(out: str, task: str, name: str, overwrite: bool) -> Path:
    """A new run folder (the first free ``exp``, ``exp2``... when ``name`` is empty)."""
    root = Path(out).expanduser() / task
    root.mkdir(parents=True, exist_ok=True)
    name = name or next_free_name(root)
    d = root / name
    if (d / "checkpoints").exists() and not overwrite:
        raise ConfigError(f"run folder '{d}' already holds a run; expected a new --name, --resume {d} to continue it, or --overwrite")
    (d / "checkpoints").mkdir(parents=True, exist_ok=True)
    return d


def environment() -> dict[str, Any]:
    import torch

    import vislab

    return {
        "vislab": vislab.__version__,
        "git": git_revision(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "command": " ".join(["vislab", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("vislab") else " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_run_files(run_dir: Path, cfg: Any, extra: dict[str, Any] | None = None) -> None:
    save_yaml(cfg, run_dir / "config.yaml")
    info = environment()
    info.update(extra or {})
    atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1, default=str))


def update_run_json(run_dir: Path, **kv: Any) -> None:
    p = run_dir / "run.json"
    info = json.loads(p.read_text()) if p.exists() else {}
    info.update(kv)
    atomic_write_text(p, json.dumps(info, indent=1, default=str))


def fit_summary(result: Any, test: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The ``summary`` block of run.json: how a :class:`~vislab.engine.trainer.FitResult` went, its last epoch's
    train/val numbers, and the final ``test`` numbers."""
    last = result.history[-1] if result.history else {}
    return {
        "epochs_run": len(result.history), "best_metric": result.best_metric, "best_value": result.best_value,
        "best_epoch": result.best_epoch + 1, "stopped_early": result.stopped_early, "train_seconds": round(result.seconds, 2),
        "total_seconds": round(seconds, 2), "images_per_second": round(result.images_per_second, 1),
        **{k: v for k, v in last.items() if k.startswith(("val_", "train_"))}, **test,
    }

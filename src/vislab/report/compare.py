"""Compare runs of one task: a table (final / best metrics, time, parameters, throughput) and overlaid curves.

:func:`compare_runs` reads each run folder's ``run.json`` (summary), ``metrics.csv`` (history) and
``checkpoints/best.json`` (model, parameters) and writes ``compare.csv``, ``compare.md``, ``curves.png``
and ``compare.html`` into ``out``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vislab.core.errors import DataError
from vislab.core.io import atomic_write_text

_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
COLUMNS = ("run", "model", "finetune", "epochs", "best_metric", "best_value", "best_epoch", "final_train_loss", "final_val_acc",
           "test_acc", "test_loss", "train_seconds", "images_per_second", "params")


def _param_count(ckpt: Path) -> int | None:
    """Parameters of the checkpoint's model (tensor shapes read from the safetensors header only)."""
    if not ckpt.is_file():
        return None
    from safetensors import safe_open

    n = 0
    with safe_open(str(ckpt), "pt") as f:
        for k in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            if k.startswith("model.") and not k.endswith(_BUFFERS):
                n += int(np.prod(f.get_slice(k).get_shape()))
    return n


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """One run's facts: ``{"row": table row, "history": [epoch rows], "task": name}``.

    Raises:
        DataError: not a run folder (no ``run.json``).
    """
    from vislab.report.history import read_metrics_csv

    d = Path(run_dir).expanduser()
    info_p = d / "run.json"
    if not info_p.is_file():
        raise DataError(f"compare: expected a run folder with run.json, got '{d}'")
    try:
        info = json.loads(info_p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"compare: expected readable JSON in '{info_p}', got a broken file ({str(e).splitlines()[0]})") from None
    s = info.get("summary", {})
    hist = read_metrics_csv(d / "metrics.csv") if (d / "metrics.csv").is_file() else []
    cfg: dict[str, Any] = {}
    if (d / "config.yaml").is_file():
        import yaml

        cfg = yaml.safe_load((d / "config.yaml").read_text()) or {}
    model_cfg = cfg.get("model", {}) if isinstance(cfg.get("model"), dict) else {}
    finetune = model_cfg.get("finetune", "")
    if finetune == "auto":
        finetune = "full" if (model_cfg.get("weights") or model_cfg.get("pretrained")) else "scratch"
    last = hist[-1] if hist else {}
    row = {
        "run": d.name, "model": model_cfg.get("model", ""), "finetune": finetune, "epochs": s.get("epochs_run", len(hist)),
        "best_metric": s.get("best_metric", ""), "best_value": s.get("best_value"), "best_epoch": s.get("best_epoch"),
        "final_train_loss": last.get("train_loss", s.get("train_loss")), "final_val_acc": last.get("val_acc", s.get("val_acc")),
        "test_acc": s.get("test_acc"), "test_loss": s.get("test_loss"), "train_seconds": s.get("train_seconds"),
        "images_per_second": s.get("images_per_second"), "params": _param_count(d / "checkpoints" / "best.safetensors"),
    }
    return {"row": row, "history": hist, "task": info.get("task", ""), "path": str(d)}


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def plot_overlay(runs: list[dict[str, Any]], path: Path) -> Path:
    """Loss (left) and accuracy (right) per epoch, one colour per run (solid: train, dashed: val)."""
    from vislab.report.plots import _plt, _save

    plt = _plt()
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(11, 4))
    for i, r in enumerate(runs):
        c = f"C{i % 10}"
        h = r["history"]
        ep = [row["epoch"] for row in h]
        for key, ax, ls in (("train_loss", ax_l, "-"), ("val_loss", ax_l, "--"), ("train_acc", ax_a, "-"), ("val_acc", ax_a, "--")):
            ys = [row.get(key, np.nan) for row in h]
            if any(np.isfinite(y) for y in ys):
                ax.plot(ep, ys, ls, color=c, marker="o", ms=2.5, label=f"{r['row']['run']} {key}")
    ax_l.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_a.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(f"{len(runs)} runs")
    return _save(fig, path)


def compare_runs(run_dirs: list[str | Path], out: str | Path, sort_by: str = "") -> dict[str, Any]:
    """Compare runs of one task; writes compare.csv / compare.md / curves.png / compare.html into ``out``.

    Args:
        run_dirs: two or more run folders (one is allowed: a table of one).
        out: output folder.
        sort_by: a column to sort by (descending for accuracies, ascending for losses and seconds).

    Returns:
        ``{"rows": [...], "out": folder, "files": {...}}``.

    Raises:
        DataError: no runs, a folder that is not a run, or runs of different tasks.
    """
    if not run_dirs:
        raise DataError("compare: expected at least one run folder, got none")
    if len(run_dirs) > 1:  # a glob (runs/classify/*) may catch other files and folders: leave them out, and say so
        import warnings

        kept = [d for d in run_dirs if (Path(d).expanduser() / "run.json").is_file()]
        for d in run_dirs:
            if d not in kept:
                warnings.warn(f"compare: left out '{d}' (not a run folder: no run.json)", stacklevel=2)
        if not kept:
            raise DataError(f"compare: expected run folders with run.json, got none among {len(run_dirs)} paths")
        run_dirs = kept
    runs = [read_run(d) for d in run_dirs]
    tasks = sorted({r["task"] for r in runs})
    if len(tasks) > 1:
        raise DataError(f"compare: expected runs of one task, got tasks {tasks}")
    rows = [r["row"] for r in runs]
    names = [r["run"] for r in rows]
    if len(set(names)) < len(names):  # same run names under different roots: qualify them
        for r, run in zip(rows, runs, strict=True):
            r["run"] = str(Path(run["path"]).parent.name + "/" + r["run"])
    if sort_by:
        if sort_by not in COLUMNS:
            raise DataError(f"compare --sort: expected one of {', '.join(COLUMNS)}, got '{sort_by}'")
        desc = not any(w in sort_by for w in ("loss", "seconds", "params"))
        order = sorted(range(len(rows)), key=lambda i: (rows[i][sort_by] is None, -(rows[i][sort_by] or 0) if desc else (rows[i][sort_by] or 0)))
        rows, runs = [rows[i] for i in order], [runs[i] for i in order]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv = [",".join(COLUMNS)] + [",".join(_fmt(r[c]).replace(",", ";") for c in COLUMNS) for r in rows]
    atomic_write_text(out / "compare.csv", "\n".join(csv) + "\n")
    md = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)] + ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    atomic_write_text(out / "compare.md", "\n".join(md) + "\n")
    curves = plot_overlay(runs, out / "curves.png")
    from vislab.report.html import picture, table, write_report

    write_report(out / "compare.html", f"comparison of {len(rows)} {tasks[0] or ''} runs",
                 [("runs", table(rows, list(COLUMNS))), ("learning curves", picture(curves)),
                  ("folders", "<ul>" + "".join(f"<li><code>{r['path']}</code></li>" for r in runs) + "</ul>")])
    atomic_write_text(out / "compare.json", json.dumps(rows, indent=1))
    return {"rows": rows, "out": str(out), "task": tasks[0],
            "files": {k: str(out / v) for k, v in (("csv", "compare.csv"), ("md", "compare.md"), ("png", "curves.png"),
                                                    ("html", "compare.html"), ("json", "compare.json"))}}

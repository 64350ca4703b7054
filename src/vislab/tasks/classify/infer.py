"""Classification inference: ``eval`` (metrics of a checkpoint on a split), ``predict`` (files, folders, globs ->
CSV / JSON, annotated images) and ``export`` (ONNX / TorchScript)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core import config as C
from vislab.core.errors import DataError
from vislab.core.io import atomic_write_text, csv_cell, read_image
from vislab.data.classify.augment import with_tta
from vislab.data.classify.source import DataConfig, ImageSource, load_dataset
from vislab.data.classify.stream import BatchStream
from vislab.engine.evaluate import run_eval
from vislab.core.progress import Tracker
from vislab.tasks.classify.config import EvalConfig, PredictConfig
from vislab.tasks.classify.task import TASK, ClassifyTask
from vislab.tasks.shared.export import ExportConfig, export_checkpoint
from vislab.tasks.shared.inputs import expand_inputs, preprocess
from vislab.tasks.shared.model import load_for_inference


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate a checkpoint on a split; writes metrics.json, per_class.csv and confusion_matrix.png."""
    from vislab.report.plots import plot_confusion

    model, state, device, precision = load_for_inference(cfg.checkpoint, TASK, cfg.device, cfg.precision)
    dcfg = C.from_dict(DataConfig, state["config"]["data"])
    if cfg.data:
        dcfg = dataclasses.replace(dcfg, data=cfg.data, format="auto")
    dcfg = dataclasses.replace(dcfg, img_size=state["img_size"][0] if state["img_size"][0] == state["img_size"][1] else dcfg.img_size)
    src = load_dataset(dcfg).get(cfg.split)
    check_compatible(src, state)
    stream = BatchStream(src, cfg.batch_size, train=False, device=device, mean=state["mean"], std=state["std"],
                         channels_last=precision.channels_last, fast_path=src.in_memory)
    with Tracker(f"eval {cfg.split}", len(src)) as progress:
        metrics = run_eval(ClassifyTask(state["num_classes"]), with_tta(model, cfg.tta), stream, precision, progress=progress)
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / f"eval-{cfg.split}"
    out.mkdir(parents=True, exist_ok=True)
    scalars, per = metrics.compute(), metrics.per_class()
    atomic_write_text(out / "metrics.json", json.dumps({"split": cfg.split, "n": len(src), **scalars}, indent=1))
    rows = ["class,precision,recall,f1,support"] + [
        f"{c},{p:.4f},{r:.4f},{f:.4f},{int(s)}" for c, p, r, f, s in zip(state["classes"], per["precision"], per["recall"], per["f1"], per["support"], strict=True)
    ]
    atomic_write_text(out / "per_class.csv", "\n".join(rows) + "\n")
    plot_confusion(metrics.confmat.numpy(), state["classes"], out / "confusion_matrix.png", title=f"confusion matrix ({cfg.split}, acc {scalars['acc']:.3f})")
    return {"out": str(out), "n": len(src), **scalars, "per_class": per}


def check_compatible(src: ImageSource, state: dict[str, Any]) -> None:
    """Data and checkpoint must agree on classes and channels."""
    if list(src.classes) != list(state["classes"]):
        raise DataError(
            f"dataset {src.name}: expected the checkpoint's {len(state['classes'])} classes {state['classes'][:5]}..., got {len(src.classes)} classes {src.classes[:5]}..."
        )
    if src.channels != state["channels"]:
        raise DataError(f"dataset {src.name}: expected {state['channels']}-channel images like the checkpoint, got {src.channels}")


@torch.no_grad()
def predict(cfg: PredictConfig) -> dict[str, Any]:
    """Predict every input image; writes CSV or JSON (and annotated images); returns the rows."""
    model, state, device, precision = load_for_inference(cfg.checkpoint, TASK, cfg.device, cfg.precision)
    files = expand_inputs(cfg.inputs)
    tta_model = with_tta(model, cfg.tta)
    classes, k = state["classes"], min(cfg.topk, state["num_classes"])
    mode = "L" if state["channels"] == 1 else "RGB"
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "predict" / "predictions.csv"
    if out.suffix.lower() not in (".csv", ".json"):
        raise DataError(f"--out: expected a .csv or .json file, got '{out}'")
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    with Tracker("predict", len(files)) as progress:
        for start in range(0, len(files), cfg.batch_size):
            chunk, arrays = [], []
            for f in files[start : start + cfg.batch_size]:
                try:
                    arrays.append(read_image(f, mode))
                    chunk.append(f)
                except DataError:
                    if cfg.bad_images == "fail":
                        raise
                    skipped.append(str(f))
                    warnings.warn(f"skipped unreadable image {f}", stacklevel=2)
            if not chunk:
                progress.advance(len(files[start : start + cfg.batch_size]))
                continue
            x = preprocess(arrays, tuple(state["img_size"]), state["mean"], state["std"]).to(device)
            if precision.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with precision.autocast():
                prob = tta_model(x).float().softmax(1).cpu()
            top_p, top_i = prob.topk(k, dim=1)
            for f, a, ps, ids in zip(chunk, arrays, top_p.tolist(), top_i.tolist(), strict=True):
                rows.append({"path": str(f), "label": classes[ids[0]], "prob": ps[0],
                             "topk": [{"label": classes[i], "prob": p} for i, p in zip(ids, ps, strict=True)]})
                if cfg.annotate:
                    _annotate(a, f"{classes[ids[0]]} {ps[0]:.2f}", out.parent / "annotated" / f"{Path(f).stem}.png")
            progress.advance(len(files[start : start + cfg.batch_size]))
    if not rows:  # every input was skipped: nothing to write (an earlier result stays)
        raise DataError(f"predict: expected at least one readable image, got none of the {len(files)} input(s) ({skipped[0]} ...)")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        atomic_write_text(out, json.dumps(rows, indent=1))
    else:
        head = ["path", "label", "prob"] + [f"top{j + 1}_{c}" for j in range(k) for c in ("label", "prob")]
        lines = [",".join(head)]
        for r in rows:
            cells = [csv_cell(r["path"]), csv_cell(r["label"]), f"{r['prob']:.6f}"]
            for t in r["topk"]:
                cells += [csv_cell(t["label"]), f"{t['prob']:.6f}"]
            lines.append(",".join(cells))
        atomic_write_text(out, "\n".join(lines) + "\n")
    return {"out": str(out), "rows": rows, "skipped": skipped}


def _annotate(a: np.ndarray, text: str, path: Path) -> None:
    from PIL import Image, ImageDraw

    im = Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a).convert("RGB")
    scale = max(1, 128 // max(im.size))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, im.width, 14], fill=(0, 0, 0))
    d.text((2, 1), text, fill=(255, 255, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def export(cfg: ExportConfig) -> dict[str, Any]:
    """Write ONNX and/or TorchScript and check each against the eager model on a random batch."""
    return export_checkpoint(cfg, task=TASK, output_name="logits")

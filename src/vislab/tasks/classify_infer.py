"""Classification inference: ``predict`` (files, folders, globs -> CSV/JSON, annotated images) and ``export``."""

from __future__ import annotations

import glob
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.device import resolve_device, resolve_precision
from vislab.core.errors import DataError, VislabError
from vislab.core.io import IMAGE_EXTENSIONS, atomic_write_text, read_image


@dataclass
class PredictConfig:
    """``vislab classify predict``: labels and probabilities for images."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "image files, folders or glob patterns", cli=False)
    topk: int = opt(5, "how many classes to report per image")
    out: str = opt("", "output file, .csv or .json (default: <run>/predict/predictions.csv)")
    annotate: bool = opt(False, "also write each image with its top prediction drawn on it")
    batch_size: int = opt(64, "batch size")
    bad_images: str = opt("fail", "on an unreadable image: fail, or skip it with a warning", choices=("fail", "skip"))
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    precision: str = opt("auto", "numeric precision", choices=("auto", "fp32", "bf16", "fp16"))
    tta: str = opt("none", "test-time augmentation: average the probabilities over the image and its mirror (flip), plus 4 corner crops (flip-crop)", choices=("none", "flip", "flip-crop"))


@dataclass
class ExportConfig:
    """``vislab classify export``: ONNX / TorchScript files checked against the eager model."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    format: str = opt("all", "what to write", choices=("onnx", "torchscript", "all"))
    out: str = opt("", "output folder (default: <run>/export)")
    opset: int = opt(18, "ONNX opset")
    atol: float = opt(1e-4, "largest allowed |exported - eager| on the check batch")


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Image files from paths, folders (recursive) and glob patterns, in a stable order."""
    if not inputs:
        raise DataError("predict: expected at least one image, folder or glob, got none")
    files: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(f"predict: expected images in folder '{p}', got none")
            files += found
        elif p.is_file():
            files.append(p)
        elif any(ch in item for ch in "*?["):
            found = sorted(Path(f) for f in glob.glob(item, recursive=True) if Path(f).suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(f"predict: expected the pattern '{item}' to match images, got no match")
            files += found
        else:
            raise DataError(f"predict: expected an existing image, folder or glob, got '{item}' (not found)")
    return files


def preprocess(arrays: list[np.ndarray], size: tuple[int, int], mean, std) -> torch.Tensor:
    """``(H, W, C)`` uint8 arrays -> normalised ``(B, C, h, w)`` float (bilinear resize, antialiased)."""
    import torch.nn.functional as F

    out = []
    for a in arrays:
        x = torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1)[None].float()
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 255).round()
        out.append(x[0])
    x = torch.stack(out) / 255.0
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


@torch.no_grad()
def predict(cfg: PredictConfig) -> dict[str, Any]:
    """Predict every input image; writes CSV or JSON (and annotated images); returns the rows."""
    from vislab.engine.checkpoint import load_model

    model, state = load_model(cfg.checkpoint, task="classify")
    files = expand_inputs(cfg.inputs)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    model = model.to(device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    from vislab.data.augment import with_tta

    tta_model = with_tta(model, cfg.tta)
    classes, k = state["classes"], min(cfg.topk, state["num_classes"])
    mode = "L" if state["channels"] == 1 else "RGB"
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "predict" / "predictions.csv"
    if out.suffix.lower() not in (".csv", ".json"):
        raise DataError(f"--out: expected a .csv or .json file, got '{out}'")
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
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
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        atomic_write_text(out, json.dumps(rows, indent=1))
    else:
        head = ["path", "label", "prob"] + [f"top{j + 1}_{c}" for j in range(k) for c in ("label", "prob")]
        lines = [",".join(head)]
        for r in rows:
            cells = [_csv(r["path"]), _csv(r["label"]), f"{r['prob']:.6f}"]
            for t in r["topk"]:
                cells += [_csv(t["label"]), f"{t['prob']:.6f}"]
            lines.append(",".join(cells))
        atomic_write_text(out, "\n".join(lines) + "\n")
    return {"out": str(out), "rows": rows, "skipped": skipped}


def _csv(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s


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
    return export_checkpoint(cfg, task="classify", output_name="logits")


def export_checkpoint(cfg: ExportConfig, task: str, output_name: str, extra_meta: tuple[str, ...] = ()) -> dict[str, Any]:
    """Export a ``task`` checkpoint (a model taking ``(B, C, H, W)`` images) as ``cfg`` asks, checked
    against the eager model; ``export.json`` records classes, normalisation, size and ``extra_meta`` state keys."""
    from vislab.engine.checkpoint import load_model

    model, state = load_model(cfg.checkpoint, task=task)
    model = model.float().eval()
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "export"
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, state["channels"], *state["img_size"], generator=g)
    with torch.no_grad():
        ref = model(x)
    report: dict[str, Any] = {"checkpoint": state["path"], "input": [None, state["channels"], *state["img_size"]]}
    if cfg.format in ("onnx", "all"):
        report["onnx"] = _export_onnx(model, x, ref, out / "model.onnx", cfg)
    if cfg.format in ("torchscript", "all"):
        report["torchscript"] = _export_torchscript(model, x, ref, out / "model.ts", cfg)
    meta = {"classes": state["classes"], **{k: state[k] for k in extra_meta}, "mean": state["mean"], "std": state["std"],
            "img_size": state["img_size"], "channels": state["channels"], "model": state["model"], "input_name": "images",
            "output_name": output_name, **report}
    atomic_write_text(out / "export.json", json.dumps(meta, indent=1))
    return {"out": str(out), **report}


def _check(name: str, got: np.ndarray, ref: torch.Tensor, atol: float) -> float:
    err = float(np.abs(got - ref.numpy()).max())
    if not np.isfinite(err) or err > atol:
        raise VislabError(f"export {name}: expected outputs within {atol:g} of the eager model, got a max difference of {err:.3g}")
    return err


def _export_onnx(model, x, ref, path: Path, cfg: ExportConfig) -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise VislabError("export onnx: expected onnxruntime to be installed, got ImportError; pip install 'vislab[export]'") from None
    import contextlib
    import io
    import logging

    from vislab.core.io import atomic_path

    with atomic_path(path) as tmp, contextlib.redirect_stdout(io.StringIO()):
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        batch = torch.export.Dim("batch", min=1, max=4096)
        torch.onnx.export(model, (x,), str(tmp), input_names=["images"], output_names=["logits"], opset_version=cfg.opset,
                          dynamic_shapes={"x": {0: batch}} if _arg_name(model) == "x" else ({0: batch},),
                          external_data=False, dynamo=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    err = _check("onnx", sess.run(None, {"images": x.numpy()})[0], ref, cfg.atol)
    x3 = torch.cat([x, x[:1]])  # another batch size: the batch axis is dynamic
    with torch.no_grad():
        err = max(err, _check("onnx (batch 3)", sess.run(None, {"images": x3.numpy()})[0], model(x3), cfg.atol))
    return {"path": str(path), "max_abs_diff": err}


def _arg_name(model) -> str:
    import inspect

    return next(iter(inspect.signature(model.forward).parameters))


def _export_torchscript(model, x, ref, path: Path, cfg: ExportConfig) -> dict[str, Any]:
    import warnings as _w

    from vislab.core.io import atomic_path

    with _w.catch_warnings():
        _w.simplefilter("ignore")
        traced = torch.jit.trace(model, x, check_trace=False)
    with atomic_path(path) as tmp:
        traced.save(str(tmp))
    with _w.catch_warnings():
        _w.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export; TorchScript files still load everywhere
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        err = _check("torchscript", loaded(x).numpy(), ref, cfg.atol)
    return {"path": str(path), "max_abs_diff": err}


@dataclass
class ExplainConfig:
    """``vislab classify explain``: filters, feature maps, CAMs and attributions for images."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "image files, folders or glob patterns", cli=False)
    methods: list[str] = opt(
        ["gradcam", "saliency", "filters"],
        "comma-separated: gradcam, gradcam++, scorecam, eigencam, layercam, saliency, integrated_gradients, filters, feature_maps",
    )
    layers: list[str] = opt([], "comma-separated module names (`vislab models show NAME`); the first is the CAM layer (default: per family)")
    target_class: str = opt("", "class to explain, by name or index (default: each image's prediction)")
    out: str = opt("", "output folder (default: <run>/explain)")
    max_images: int = opt(16, "explain at most this many images")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))


def explain(cfg: ExplainConfig) -> dict[str, Any]:
    """Write explanation PNGs for the input images (see :func:`vislab.explain.explain`)."""
    from vislab.engine.checkpoint import load_model
    from vislab.explain import explain as run_explain

    model, state = load_model(cfg.checkpoint, task="classify")
    files = expand_inputs(cfg.inputs)[: cfg.max_images]
    mode = "L" if state["channels"] == 1 else "RGB"
    arrays = [read_image(f, mode) for f in files]
    device = resolve_device(cfg.device)
    x = preprocess(arrays, tuple(state["img_size"]), state["mean"], state["std"]).to(device)
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "explain"
    paths = run_explain(model.to(device).float(), x, methods=cfg.methods, layers=cfg.layers or None,
                        target_class=cfg.target_class or None, out_dir=out, mean=state["mean"], std=state["std"],
                        class_names=state["classes"], image_names=[f.stem for f in files])
    return {"out": str(out), "paths": [str(p) for p in paths]}

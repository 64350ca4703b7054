"""Export of a model that takes ``(B, C, H, W)`` images (classifiers, segmenters): ONNX (the dynamo exporter, the
batch axis dynamic) and TorchScript, each run on a random batch and compared with the eager model, and
``export.json`` beside them with what a runtime needs (classes, normalisation, image size)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.errors import VislabError
from vislab.core.io import atomic_write_text
from vislab.core.progress import track


@dataclass
class ExportConfig:
    """``vislab classify|segment|generate export``: ONNX / TorchScript files checked against the eager model."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    format: str = opt("all", "what to write", choices=("onnx", "torchscript", "all"))
    out: str = opt("", "output folder (default: <run>/export)")
    opset: int = opt(18, "ONNX opset")
    atol: float = opt(1e-4, "largest allowed |exported - eager| on the check batch")


def export_checkpoint(cfg: ExportConfig, task: str, output_name: str, extra_meta: tuple[str, ...] = (),
                      input_dims: Any = None) -> dict[str, Any]:
    """Export a ``task`` checkpoint (a model taking ``(B, C, H, W)`` images) as ``cfg`` asks, checked
    against the eager model; ``export.json`` records classes, normalisation, size and ``extra_meta`` state keys.
    ``input_dims(state) -> [C, ...]``: another input shape (video clips: ``[C, T, H, W]``)."""
    from vislab.engine.checkpoint import load_model

    model, state = load_model(cfg.checkpoint, task=task)
    model = model.float().eval()
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "export"
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    dims = list(input_dims(state)) if input_dims is not None else [state["channels"], *state["img_size"]]
    x = torch.randn(2, *dims, generator=g)
    with torch.no_grad():
        ref = model(x)
    report: dict[str, Any] = {"checkpoint": state["path"], "input": [None, *dims]}
    formats = ["onnx", "torchscript"] if cfg.format == "all" else [cfg.format]
    for name in track(formats, "export (and check)", "formats"):
        report[name] = _export_onnx(model, x, ref, out / "model.onnx", cfg) if name == "onnx" else _export_torchscript(model, x, ref, out / "model.ts", cfg)
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


def export_lines(cfg: ExportConfig, r: dict[str, Any]) -> list[str]:
    """What ``vislab <task> export`` prints for :func:`export_checkpoint`'s result."""
    return [f"{fmt}: {r[fmt]['path']}  (max |diff| vs eager {r[fmt]['max_abs_diff']:.2e})" for fmt in ("onnx", "torchscript") if fmt in r]

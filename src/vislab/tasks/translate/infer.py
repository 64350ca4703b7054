"""The commands of a trained translation model: ``eval`` (numbers against the baseline, on the run's validation
images or another folder), ``predict`` (images and folders, whole or tiled) and ``export`` (ONNX / TorchScript)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ConfigError
from vislab.core.io import atomic_path, atomic_write_text
from vislab.core.progress import track
from vislab.tasks.translate.config import TranslateEvalConfig, TranslateExportConfig, TranslatePredictConfig

TASK = "translate"


def load(checkpoint: str, device: str = "auto") -> tuple[dict[str, nn.Module], dict[str, Any], torch.device]:
    """A translate checkpoint's networks by name (fp32, eval mode), its state and the device."""
    from vislab.tasks.shared.model import load_for_inference

    model, state, dev, _ = load_for_inference(checkpoint, TASK, device, "fp32")
    return dict(model.float().eval()), state, dev


def run_folder(state: dict[str, Any]) -> Path:
    return Path(state["path"]).parent.parent


def generator(models: dict[str, nn.Module], state: dict[str, Any], direction: str = "AtoB") -> nn.Module:
    if state["pairing"] == "unpaired":
        return models["G_AB" if direction == "AtoB" else "G_BA"]
    return models["G"]


def apply(g: nn.Module, x: torch.Tensor, state: dict[str, Any], tile: int = 0, overlap: int = 32) -> torch.Tensor:
    """``g`` on ``x`` (whole, or in tiles of ``tile`` input pixels); inputs whose size the network cannot take are
    padded (reflect) to its multiple and the output cropped back."""
    from vislab.models.translate.tiling import tiled

    scale = state.get("scale", 1)
    mult = int(state.get("multiple", 1)) if state["make"] != "sr" else 1
    h, w = x.shape[-2:]
    ph, pw = (-h) % mult, (-w) % mult
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
    if tile and max(x.shape[-2:]) > tile:
        if tile % mult or overlap % 2:
            raise ConfigError(f"--tile {tile} --overlap {overlap}: expected a tile that is a multiple of {mult} and an even overlap")
        y = tiled(g, x, tile=tile, overlap=overlap, scale=scale)
    else:
        y = g(x)
    return y[..., : h * scale, : w * scale]


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------
def evaluate(cfg: TranslateEvalConfig) -> dict[str, Any]:
    """The numbers of a checkpoint on the run's validation images (or ``--data``): PSNR / SSIM (Y too for SR), L1,
    the baseline's (bicubic, the noisy input, the mean colour), cycle errors; LPIPS when its weights are on disk."""
    from vislab.core import config as C
    from vislab.data.translate import load_translate_data
    from vislab.data.translate.stream import Maker, PairStream
    from vislab.metrics.image_quality import ImageQuality, load_lpips, lpips_status
    from vislab.tasks.generate.report import save_grid
    from vislab.tasks.translate.config import TranslateConfig
    from vislab.tasks.translate.task import pair_metrics, to01, triplets, as_image

    models, state, dev = load(cfg.checkpoint, cfg.device)
    run_cfg = C.from_dict(TranslateConfig, state["config"])
    dcfg = run_cfg.data if not cfg.data else dataclasses.replace(run_cfg.data, data=cfg.data, data_b="", val_split=run_cfg.data.val_split)
    data = load_translate_data(dcfg, state["pairing"], want_channels=3 if state["make"] == "colorize" else 0)
    val_a, val_b = (data.val_a, data.val_b) if data.val_a is not None else (data.train_a, data.train_b)
    if cfg.data and state["pairing"] == "single":  # another folder: every image of it
        val_a = data.train_a if data.val_a is None else type(data.train_a)(data.train_a.name, data.train_a.images + data.val_a.images,
                                                                            data.train_a.names + data.val_a.names)
    maker = Maker(state["make"], state["degrade"] if state["make"] == "sr" else state["noise"], state["scale"], state["noise_level"]) if state["make"] != "none" else None
    size = cfg.eval_size or state["eval_size"]
    mult = state["multiple"]
    size = max(mult, size - size % mult)
    if val_a.min_side() < size:
        size = max(mult, val_a.min_side() - val_a.min_side() % mult)
    stream = PairStream(val_a, val_b, make=maker, crop=size, batch_size=cfg.batch_size, train=False, eval_size=size,
                        unpaired=state["pairing"] == "unpaired", seed=run_cfg.train.seed, device=dev)
    lp = load_lpips("alex", dev) if state["pairing"] != "unpaired" else None
    metrics, rows, first = ImageQuality(), [], None
    with torch.no_grad():
        for batch in track(stream.epoch(0), "eval", "batches", total=len(stream)):
            if state["pairing"] == "unpaired":
                from vislab.metrics.image_quality import cycle_error

                fb, fa = apply(models["G_AB"], batch.a, state, cfg.tile), apply(models["G_BA"], batch.b, state, cfg.tile)
                m = {"cycle_a": cycle_error(to01(batch.a), to01(models["G_BA"](fb))), "cycle_b": cycle_error(to01(batch.b), to01(models["G_AB"](fa)))}
            else:
                out = apply(models["G"], batch.a, state, cfg.tile)
                m = pair_metrics(batch.a, out, batch.b, state["make"], state["scale"], tuple(state["mean_ab"]) if state.get("mean_ab") else None)
                if lp is not None:
                    m["lpips"] = lp(to01(as_image(out, batch.a, state["make"])), to01(as_image(batch.b, batch.a, state["make"])))
            metrics.update(m)
            for j, i in enumerate(batch.index.tolist()):
                rows.append({"image": val_a.names[i], **{k: float(v[j]) for k, v in m.items()}})
            if first is None:
                first = batch
    r = metrics.compute()
    out_dir = Path(cfg.out) if cfg.out else run_folder(state) / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        imgs, per_row, caption = triplets(models, state, first, cfg.n)
    grid = save_grid(imgs, out_dir / "examples.png", nrow=per_row, label=caption)
    result = {"n": len(rows), "make": state["make"], "pairing": state["pairing"], "eval_size": size, "tile": cfg.tile, **r,
              "lpips_note": "" if lp is not None or state["pairing"] == "unpaired" else lpips_status("alex"),
              "out": str(out_dir), "png": str(grid), "checkpoint": state["path"]}
    atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=1))
    with atomic_path(out_dir / "per_image.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return result


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------
def _read(path: Path, channels: int) -> torch.Tensor:
    from vislab.core.io import read_image

    a = read_image(path, "L" if channels == 1 else "RGB")
    return torch.from_numpy(np.array(a, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255


def _write(x01: torch.Tensor, path: Path) -> None:
    from PIL import Image

    a = (x01[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(tmp, format="PNG")


def predict(cfg: TranslatePredictConfig) -> dict[str, Any]:
    """Every input through the generator; ``<out>/<name>.png`` each (with ``--degrade``: also the degraded input)."""
    from vislab.data.translate.stream import Maker, lab_pair, lab_to_image
    from vislab.tasks.shared.inputs import expand_inputs

    models, state, dev = load(cfg.checkpoint, cfg.device)
    g = generator(models, state, cfg.direction)
    files = expand_inputs(cfg.inputs)
    out_dir = Path(cfg.out) if cfg.out else run_folder(state) / "predict"
    out_dir.mkdir(parents=True, exist_ok=True)
    make = state["make"]
    c_in = state["channels"] if make != "colorize" else 3
    if state["pairing"] == "unpaired" and cfg.direction == "BtoA":
        c_in = state["out_chans"]
    maker = Maker(make, state["degrade"] if make == "sr" else state["noise"], state["scale"], state["noise_level"]) if make in ("sr", "denoise") else None
    written = []
    with torch.no_grad():
        for i, p in enumerate(track(files, "predict", "images")):
            x = _read(p, c_in).to(dev)
            if maker is not None and cfg.degrade:
                h, w = x.shape[-2:]
                s = state["scale"]
                x = x[..., : h - h % s, : w - w % s]
                params = maker.draw(1, tuple(x.shape[1:]), torch.Generator().manual_seed(i))
                inp = (maker(x, params)[0] + 1) / 2
                _write(inp, out_dir / f"{p.stem}_input.png")
                x = inp
            if make == "colorize":
                L, _ = lab_pair(x)
                y = (lab_to_image(L, apply(g, L, state, cfg.tile, cfg.overlap).clamp(-1, 1)) + 1) / 2
            else:
                y = (apply(g, x * 2 - 1, state, cfg.tile, cfg.overlap).clamp(-1, 1) + 1) / 2
            dest = out_dir / f"{p.stem}.png"
            _write(y, dest)
            written.append(str(dest))
    return {"n": len(written), "out": str(out_dir), "files": written}


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
class _Clamped(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).clamp(-1, 1)


def export(cfg: TranslateExportConfig) -> dict[str, Any]:
    """The generator(s) as ONNX / TorchScript (inputs and outputs in [-1, 1]; the batch axis dynamic, the size the
    training crop's), each checked against the eager model on a random batch."""
    from vislab.tasks.generate.infer import _onnx, _torchscript
    from vislab.tasks.shared.export import _check

    models, state, _ = load(cfg.checkpoint, "cpu")
    outdir = Path(cfg.out) if cfg.out else run_folder(state) / "export"
    outdir.mkdir(parents=True, exist_ok=True)
    s = state["img_size"][0] // state.get("scale", 1)
    names = ["G_AB", "G_BA"] if state["pairing"] == "unpaired" else ["G"]
    report: dict[str, Any] = {"checkpoint": state["path"], "inputs": ["images"]}
    formats = ["onnx", "torchscript"] if cfg.format == "all" else [cfg.format]
    gen = torch.Generator().manual_seed(0)
    for name in names:
        c = state["in_chans"] if name != "G_BA" else state["out_chans"]
        net = _Clamped(models[name]).eval()
        x = torch.rand(2, c, s, s, generator=gen) * 2 - 1
        with torch.no_grad():
            ref = net(x)
        stem = {"G": "generator", "G_AB": "generator_AtoB", "G_BA": "generator_BtoA"}[name]
        for fmt in formats:
            key = fmt if name in ("G", "G_AB") else f"{fmt}_BtoA"
            if fmt == "torchscript":
                report[key] = _torchscript(net, [x], ref, outdir / f"{stem}.ts", cfg, _check)
            else:
                report[key] = _onnx(net, [x], ["images"], ref, outdir / f"{stem}.onnx", cfg, _check)
    meta = {"preset": state["preset"], "make": state["make"], "scale": state.get("scale", 1), "input": [None, state["in_chans"], s, s],
            "range": "inputs and outputs in [-1, 1] (colorize: input L / 50 - 1, output ab / 110)", **report}
    atomic_write_text(outdir / "export.json", json.dumps(meta, indent=1))
    return {"out": str(outdir), **report}


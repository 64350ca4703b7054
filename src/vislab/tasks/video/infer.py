"""Video inference: ``eval`` (clip and video accuracy of a checkpoint on a split), ``predict`` (per-clip and per-frame
labels of videos, a timeline PNG, an annotated video) and ``export`` (ONNX / TorchScript of the clip model)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core import config as C
from vislab.core.errors import ConfigError, DataError
from vislab.core.io import atomic_write_text, csv_cell
from vislab.core.progress import Tracker
from vislab.data.video.io import VIDEO_EXTENSIONS, frame_files, iter_frames
from vislab.data.video.sampling import fit_length
from vislab.data.video.source import load_video_splits
from vislab.data.video.stream import VideoStream
from vislab.engine.evaluate import run_eval
from vislab.tasks.shared.export import ExportConfig, export_checkpoint
from vislab.tasks.shared.model import load_for_inference
from vislab.tasks.video.config import VideoDataConfig, VideoEvalConfig, VideoPredictConfig
from vislab.tasks.video.task import TASK, VideoTask


def _data_config(state: dict[str, Any], data: str = "") -> VideoDataConfig:
    dcfg = C.from_dict(VideoDataConfig, state["config"]["data"])
    return dataclasses.replace(dcfg, data=data) if data else dcfg


def evaluate(cfg: VideoEvalConfig) -> dict[str, Any]:
    """Clip and video accuracy, per-class P/R/F1 (of videos), confusion matrices; writes metrics.json, per_class.csv,
    confusion_matrix.png (videos) and confusion_matrix_clips.png."""
    from vislab.report.plots import plot_confusion

    model, state, device, precision = load_for_inference(cfg.checkpoint, TASK, cfg.device, cfg.precision)
    dcfg = _data_config(state, cfg.data)
    src = load_video_splits(dcfg).get(cfg.split)
    if list(src.classes) != list(state["classes"]):
        raise DataError(f"dataset {src.name}: expected the checkpoint's {len(state['classes'])} classes {state['classes'][:6]}, "
                        f"got {len(src.classes)} classes {src.classes[:6]}")
    clips = cfg.eval_clips or dcfg.eval_clips
    need = (state["clip_len"] - 1) * state["frame_stride"] + 1
    src.check_lengths(need, dcfg.pad, f"--clip-len {state['clip_len']} --frame-stride {state['frame_stride']}")
    stream = VideoStream(src, cfg.batch_size, train=False, clip_len=state["clip_len"], stride=state["frame_stride"], sampling=dcfg.sampling,
                         eval_clips=clips, pad=dcfg.pad, mean=state["mean"], std=state["std"], device=device, flow=state.get("flow"),
                         flow_scale=state.get("flow_scale", 4.0))
    with Tracker(f"eval {cfg.split}", len(stream.entries)) as progress:
        metrics = run_eval(VideoTask(state["num_classes"], len(src)), model, stream, precision, progress=progress)
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / f"eval-{cfg.split}"
    out.mkdir(parents=True, exist_ok=True)
    scalars, per = metrics.compute(), metrics.per_class()
    atomic_write_text(out / "metrics.json", json.dumps({"split": cfg.split, "videos": len(src), "clips": len(stream.entries), **scalars}, indent=1))
    rows = ["class,precision,recall,f1,support"] + [
        f"{csv_cell(c)},{p:.4f},{r:.4f},{f:.4f},{int(s)}" for c, p, r, f, s in
        zip(state["classes"], per["precision"], per["recall"], per["f1"], per["support"], strict=True)]
    atomic_write_text(out / "per_class.csv", "\n".join(rows) + "\n")
    plot_confusion(metrics.video_confmat().numpy(), state["classes"], out / "confusion_matrix.png",
                   title=f"videos ({cfg.split}, video acc {scalars['video_acc']:.3f})")
    plot_confusion(metrics.confmat.numpy(), state["classes"], out / "confusion_matrix_clips.png",
                   title=f"clips ({cfg.split}, clip acc {scalars['acc']:.3f})")
    return {"out": str(out), "videos": len(src), "clips": len(stream.entries), **scalars, "per_class": per}


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------
def expand_videos(inputs: list[str]) -> list[Path]:
    """Video files and frame folders from paths, folders (recursive) and globs, in a stable order."""
    from vislab.tasks.shared.inputs import expand_inputs

    return expand_inputs(inputs, VIDEO_EXTENSIONS, "videos or frame folders", is_item=lambda d: bool(frame_files(d)))


def clip_starts(n_frames: int, span: int, stride: int) -> list[int]:
    """Starts of clips of ``span`` frames every ``stride`` frames, the last one ending at the last frame.

    Example:
        >>> clip_starts(20, 8, 4), clip_starts(8, 8, 4), clip_starts(5, 8, 4)
        ([0, 4, 8, 12], [0], [0])
    """
    if n_frames <= span:
        return [0]
    starts = list(range(0, n_frames - span + 1, stride))
    if starts[-1] != n_frames - span:
        starts.append(n_frames - span)
    return starts


def _resize_clip(frames: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    from vislab.data.video.io import _resize

    return np.stack([_resize(f, size, channels == 1) for f in frames])


@torch.no_grad()
def predict_video(model: torch.nn.Module, state: dict[str, Any], frames: np.ndarray, device: torch.device, precision: Any,
                  stride: int = 0, pad: str = "error", batch_size: int = 16, name: str = "video") -> dict[str, Any]:
    """Scores of one video's clips and frames: ``{"starts", "clip_probs" (n, K), "frame_probs" (T, K)}``.
    ``frames``: ``(T, H, W, C)`` uint8 at any size (resized here to the checkpoint's)."""
    from vislab.data.video.flow import video_flow

    T, L, s = len(frames), state["clip_len"], state["frame_stride"]
    span = (L - 1) * s + 1
    fit_length(T, span, f"video {name}", pad, f"--clip-len {L} --frame-stride {s}")
    small = _resize_clip(frames, tuple(state["img_size"]), state["channels"])  # (T, h, w, c)
    method = state.get("flow")
    flow = video_flow(small, "farneback" if method in ("gt", None) else method) if method else None
    starts = clip_starts(T, span, stride or max(1, span // 2))
    wrap = (lambda i: i % T) if pad == "loop" else (lambda i: min(i, T - 1))
    mean = torch.tensor(state["mean"]).view(1, -1, 1, 1, 1)
    std = torch.tensor(state["std"]).view(1, -1, 1, 1, 1)
    K = state["num_classes"]
    clip_probs, frame_sum, frame_n = [], torch.zeros(T, K, dtype=torch.float64), torch.zeros(T, 1, dtype=torch.float64)
    for b in range(0, len(starts), batch_size):
        idx = np.array([[wrap(st + j * s) for j in range(L)] for st in starts[b : b + batch_size]])  # (n, L)
        x = torch.from_numpy(small[idx]).permute(0, 4, 1, 2, 3).float().div(255)
        x = ((x - mean) / std).to(device)
        with precision.autocast():
            if flow is not None:
                fl = torch.from_numpy(np.asarray(flow[np.minimum(idx[:, :-1], len(flow) - 1)], dtype=np.float32))  # (n, L-1, 2, h, w)
                out = model(x, (fl.permute(0, 2, 1, 3, 4) / state.get("flow_scale", 4.0)).to(device)).float()
            else:
                out = model(x).float()
        if out.dim() == 3:  # per-frame model: (n, K, L)
            p = out.softmax(1).cpu().double()
            for r, row in enumerate(idx):
                for j, fi in enumerate(row):
                    frame_sum[fi] += p[r, :, j]
                    frame_n[fi] += 1
            clip_probs.append(p.mean(2))
        else:
            p = out.softmax(1).cpu().double()
            for r, row in enumerate(idx):
                lo, hi = int(row.min()), int(row.max())
                frame_sum[lo : hi + 1] += p[r]
                frame_n[lo : hi + 1] += 1
            clip_probs.append(p)
    cp = torch.cat(clip_probs)
    fp = torch.where(frame_n > 0, frame_sum / frame_n.clamp_min(1), cp.mean(0, keepdim=True).expand(T, -1))
    return {"starts": starts, "span": span, "clip_probs": cp.numpy(), "frame_probs": fp.numpy(), "video_probs": cp.mean(0).numpy()}


def predict(cfg: VideoPredictConfig) -> dict[str, Any]:
    """Label every video: per clip (top-k), per frame (the mean of the clips covering it) and overall (the mean of its
    clips); writes predictions.json, clips.csv and, with ``--annotate``, ``<video>_annotated.mp4`` and ``<video>_timeline.png``."""
    model, state, device, precision = load_for_inference(cfg.checkpoint, TASK, cfg.device, cfg.precision)
    if cfg.topk < 1:
        raise ConfigError(f"--topk: expected >= 1, got {cfg.topk}")
    files = expand_videos(cfg.inputs)
    classes = state["classes"]
    pad = cfg.pad or state["config"]["data"].get("pad", "error")
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    results, csv_rows = [], ["video,clip,start,end,label,prob"]
    k = min(cfg.topk, len(classes))
    with Tracker("predict", len(files), unit="videos") as progress:
        for f in files:
            from vislab.data.video.io import video_info

            info = video_info(f)
            # one streamed pass at the model's size (the frames as training decoded them); the annotated video is a second
            # streamed pass at the video's own size: memory grows with the small frames only
            small = np.stack(list(iter_frames(f, size=tuple(state["img_size"]), gray=state["channels"] == 1)))
            r = predict_video(model, state, small, device, precision, cfg.stride, pad, cfg.batch_size, str(f))
            n_frames = len(small)
            del small
            vp, cp, fp = r["video_probs"], r["clip_probs"], r["frame_probs"]
            order = np.argsort(-vp)[:k]
            clips = []
            for j, (st, p) in enumerate(zip(r["starts"], cp, strict=True)):
                top = np.argsort(-p)[:k]
                end = min(st + r["span"], n_frames) - 1
                clips.append({"start": int(st), "end": int(end), "label": classes[top[0]], "prob": float(p[top[0]]),
                              "topk": [{"label": classes[i], "prob": float(p[i])} for i in top]})
                csv_rows.append(f"{csv_cell(str(f))},{j},{st},{end},{csv_cell(classes[top[0]])},{p[top[0]]:.6f}")
            frame_rows = [{"frame": t, "time": round(t / info.fps, 4) if info.fps else None, "label": classes[int(p.argmax())],
                           "prob": float(p.max())} for t, p in enumerate(fp)]
            row = {"path": str(f), "frames": n_frames, "fps": info.fps, "label": classes[order[0]], "prob": float(vp[order[0]]),
                   "topk": [{"label": classes[i], "prob": float(vp[i])} for i in order], "clips": clips, "per_frame": frame_rows}
            if cfg.annotate:
                stem = Path(f).stem if Path(f).is_file() else Path(f).name
                row["annotated"] = str(_annotate(f, fp, classes, out / f"{stem}_annotated.mp4", info.fps or 10))
                row["timeline"] = str(_timeline(fp, classes, out / f"{stem}_timeline.png", f"{stem}: {classes[order[0]]} {vp[order[0]]:.2f}"))
            results.append(row)
            progress.advance(1)
    atomic_write_text(out / "predictions.json", json.dumps(results, indent=1))
    atomic_write_text(out / "clips.csv", "\n".join(csv_rows) + "\n")
    return {"out": str(out), "rows": results}


def _annotate(video: Path, frame_probs: np.ndarray, classes: list[str], path: Path, fps: float) -> Path:
    """The video (streamed) with each frame's label and probability in a bar at the top (upscaled to >= 192 px)."""
    from PIL import Image, ImageDraw

    from vislab.data.video.io import VideoWriter

    with VideoWriter(path, fps=fps) as writer:
        for a, p in zip(iter_frames(video), frame_probs, strict=False):
            im = Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a).convert("RGB")
            scale = max(1, -(-192 // max(im.width, im.height)))
            if scale > 1:
                im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
            d = ImageDraw.Draw(im)
            d.rectangle([0, 0, im.width, 14], fill=(0, 0, 0))
            d.rectangle([0, 12, int(im.width * float(p.max())), 14], fill=(0, 200, 0))
            d.text((2, 0), f"{classes[int(p.argmax())]} {float(p.max()):.2f}", fill=(255, 255, 0))
            writer.write(np.asarray(im))
    return path


def _timeline(frame_probs: np.ndarray, classes: list[str], path: Path, title: str) -> Path:
    """Each class's probability over the frames, and the predicted label as a coloured band below."""
    from vislab.report.plots import _plt

    plt = _plt()
    fig, (ax, band) = plt.subplots(2, 1, figsize=(8, 3.2), sharex=True, gridspec_kw={"height_ratios": [5, 1]})
    t = np.arange(len(frame_probs))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for c, name in enumerate(classes):
        ax.plot(t, frame_probs[:, c], label=name, color=cmap(c % cmap.N))
    ax.set_ylim(0, 1.02), ax.set_ylabel("probability"), ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    band.imshow(frame_probs.argmax(1)[None], aspect="auto", cmap=cmap, vmin=0, vmax=cmap.N - 1, interpolation="nearest")
    band.set_yticks([]), band.set_xlabel("frame")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def export(cfg: ExportConfig) -> dict[str, Any]:
    """ONNX and / or TorchScript of the clip model (input ``(B, C, T, H, W)``), each checked against the eager model."""
    from vislab.engine.checkpoint import load_model

    _, state = load_model(cfg.checkpoint, task=TASK)
    if state.get("flow"):
        raise ConfigError(f"export: expected a model of clips only, got {state['model']}, which also takes optical flow computed "
                          f"by OpenCV; use `vislab video predict` for it")
    return export_checkpoint(cfg, task=TASK, output_name="logits", extra_meta=("clip_len", "frame_stride"),
                             input_dims=lambda s: [s["channels"], s["clip_len"], *s["img_size"]])

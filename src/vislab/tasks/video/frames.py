"""``vislab video frames RUN VIDEO``: a classify or detect run applied to a video frame by frame.

The run's task comes from its checkpoint's header (:func:`vislab.engine.checkpoint.read_state`, no tensors read); the
frames are then the images of that task's ``predict`` -- the same preprocessing (classify:
:func:`vislab.tasks.shared.inputs.preprocess`; detect: :func:`vislab.tasks.detect.infer.detect_batch`, boxes in the
frame's pixels), in batches. Written into ``--out`` (default ``<run>/frames/<video stem>/``):

* ``annotated.mp4`` (and ``annotated.gif`` with ``--gif``): each processed frame with the top label and its
  probability (classify) or the boxes with class, score and, with ``--track``, the track id (detect); small frames
  are upscaled (nearest) to about 256 px so the text is readable; played at the video's rate / ``--every``;
* ``frames.csv`` (or ``.json``): classify: one row per processed frame (``frame, time, label, prob, top<k>_label,
  top<k>_prob``); detect: one row per box (``frame, time, track_id, label, score, x1, y1, x2, y2``; ``track_id`` empty
  without ``--track``); ``frame`` is the index in the video, ``time`` its time in seconds (frame folders: 10 fps);
* classify: ``timeline.png``, the probability of each class over time (the 10 likeliest on average).

The whole video is classified from its frames: ``video_label`` is the class of highest mean probability.
Detect runs in fp32 (like ``vislab detect predict``); ``--precision`` applies to classify runs.

The video streams: frames are decoded one by one (:func:`vislab.data.video.io.iter_frames`), ``--batch-size`` of
them at a time are run through the model, annotated and appended to ``annotated.mp4`` (a
:class:`~vislab.data.video.io.VideoWriter`; the file appears when the last frame is written), so memory does not grow
with the video's length -- except the table's rows, the per-frame probabilities of the timeline and the GIF (a GIF
writer keeps its frames until the end).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vislab.core.config import opt
from vislab.core.errors import CheckpointError, DataError

TASKS = ("classify", "detect")


@dataclass
class FramesConfig:
    """``vislab video frames``: a classify or detect run applied to every (n-th) frame of a video."""

    checkpoint: str = opt("", "a classify or detect run folder (uses checkpoints/best.safetensors) or checkpoint file", cli=False)
    video: str = opt("", "a video file (mp4, avi, mkv, webm, mov, gif) or a folder of frames", cli=False)
    out: str = opt("", "output folder (default: <run>/frames/<video stem>)")
    every: int = opt(1, "process every n-th frame (1: all)")
    max_frames: int = opt(0, "process at most this many frames (0: all)")
    batch_size: int = opt(16, "frames per forward pass")
    topk: int = opt(5, "classify: how many classes per frame in the table")
    score_threshold: float = opt(0.3, "detect: keep boxes scoring at least this")
    track: bool = opt(False, "detect: follow the boxes across frames (IoU tracking per class) and give each track an id")
    format: str = opt("csv", "table of the results: frames.csv or frames.json", choices=("csv", "json"))
    gif: bool = opt(False, "also write annotated.gif")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    precision: str = opt("auto", "numeric precision (classify; detect runs in fp32)", choices=("auto", "fp32", "bf16", "fp16"))


def run_task(checkpoint: str) -> tuple[Path, dict[str, Any]]:
    """The checkpoint file and JSON state of a classify or detect run (header only).

    Raises:
        CheckpointError: not a vislab checkpoint, or a run of another task
            (``frames: expected a classify or detect run, got a segment run``).
    """
    from vislab.engine.checkpoint import read_state, resolve_path

    try:
        path = resolve_path(checkpoint)
        state = read_state(path)
    except CheckpointError as e:
        raise CheckpointError(f"frames: expected a classify or detect run, got a checkpoint vislab cannot read ({e})") from None
    task = state.get("task")
    if task not in TASKS:
        raise CheckpointError(f"frames: expected a classify or detect run, got a {task or 'task-less'} run ({path})")
    return path, state


def _validate(cfg: FramesConfig) -> None:
    from vislab.tasks.base import check_all

    check_all([(cfg.every >= 1, "--every", ">= 1", cfg.every), (cfg.max_frames >= 0, "--max-frames", ">= 0", cfg.max_frames),
               (cfg.batch_size >= 1, "--batch-size", ">= 1", cfg.batch_size), (cfg.topk >= 1, "--topk", ">= 1", cfg.topk),
               (0 <= cfg.score_threshold <= 1, "--score-threshold", "in [0, 1]", cfg.score_threshold),
               (cfg.format in ("csv", "json"), "--format", "csv or json", cfg.format)])


def run_frames(cfg: FramesConfig) -> dict[str, Any]:
    """Apply the run to the video's frames; writes ``annotated.mp4``, ``frames.csv`` / ``.json`` (and ``timeline.png``,
    ``annotated.gif``). Returns ``out``, ``task``, ``frames`` (processed), ``rows`` (in the table), the paths, and
    ``video_label`` / ``video_prob`` (classify) or ``tracks`` (detect with ``--track``, else 0)."""
    from vislab.core.progress import Tracker
    from vislab.data.video.io import FOLDER_FPS, video_info

    _validate(cfg)
    path, state = run_task(cfg.checkpoint)
    info = video_info(cfg.video)
    indices = range(0, info.frames, cfg.every)[: cfg.max_frames or None]
    if not indices:
        raise DataError(f"video {cfg.video}: expected at least one frame, got none")
    fps = info.fps or FOLDER_FPS
    video = Path(cfg.video)
    out = Path(cfg.out) if cfg.out else path.parent.parent / "frames" / (video.name if video.is_dir() else video.stem)
    rate = fps / cfg.every
    with Tracker("frames", len(indices), unit="frames") as progress, _writers(out, cfg.gif, rate) as writers:
        batches = _batches(video, indices, cfg.batch_size)
        if state["task"] == "classify":
            r = _classify(cfg, batches, fps, writers, progress)
        else:
            r = _detect(cfg, batches, fps, writers, progress)
    out.mkdir(parents=True, exist_ok=True)
    table = out / f"frames.{cfg.format}"
    _write_table(table, r.pop("table_rows"), r.pop("columns"), cfg.format)
    written = {"annotated": str(writers[0].path), "table": str(table)}
    if cfg.gif:
        written["gif"] = str(writers[1].path)
    classes, times = r.pop("classes"), r.pop("times")
    if "probs" in r:
        written["timeline"] = str(_timeline(out / "timeline.png", r.pop("probs"), times, classes, video.name, r["video_label"], r["video_prob"]))
    return {"out": str(out), "task": state["task"], "video": str(video), "frames": len(times), "fps": rate, **r, **written}


@contextmanager
def _writers(out: Path, gif: bool, rate: float) -> Iterator[list]:
    """``annotated.mp4`` (and ``annotated.gif``) being written a frame at a time; an exception leaves neither."""
    from vislab.data.video.io import VideoWriter

    with ExitStack() as stack:
        writers = [stack.enter_context(VideoWriter(out / "annotated.mp4", fps=rate))]
        if gif:
            writers.append(stack.enter_context(VideoWriter(out / "annotated.gif", fps=rate)))
        yield writers


def _batches(video: Path, indices: range, size: int) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """The frames ``indices`` (ascending) of the video with their indices, ``size`` at a time, decoded one by one
    (the frames in between are decoded and dropped); decoding stops after the last index.

    Raises:
        DataError: the video ends before the last index (its frame count was wrong).
    """
    from vislab.data.video.io import iter_frames

    want = iter(indices)
    nxt = next(want, None)
    if nxt is None:
        return
    idx: list[int] = []
    chunk: list[np.ndarray] = []
    decoded = 0
    frames = iter_frames(video)
    try:
        for i, f in enumerate(frames):
            decoded = i + 1
            if i != nxt:
                continue
            idx.append(i)
            chunk.append(f)
            nxt = next(want, None)
            if len(chunk) == size or nxt is None:
                yield idx, chunk
                idx, chunk = [], []
            if nxt is None:
                break
    finally:
        frames.close()
    if nxt is not None:
        what = f"frame folder {video}" if video.is_dir() else f"video {video}"
        got = f"a folder of {decoded} frames" if video.is_dir() else f"a video of {decoded} frames"
        raise DataError(f"{what}: expected frame {nxt}, got {got}")


# --------------------------------------------------------------------------------------------
# classify
# --------------------------------------------------------------------------------------------
def _classify(cfg: FramesConfig, batches: Iterator[tuple[list[int], list[np.ndarray]]], fps: float, writers: list, progress) -> dict[str, Any]:
    import cv2
    import torch

    from vislab.tasks.shared.inputs import preprocess
    from vislab.tasks.shared.model import load_for_inference

    model, state, device, precision = load_for_inference(cfg.checkpoint, "classify", cfg.device, cfg.precision)
    classes, gray = list(state["classes"]), state["channels"] == 1
    k = min(cfg.topk, len(classes))
    rows: list[dict[str, Any]] = []
    times: list[float] = []
    probs: list[np.ndarray] = []  # (batch, classes) per batch: the timeline and the video's label need them all
    scale = None
    with torch.no_grad():
        for idx, chunk in batches:
            arrays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None] if gray else f for f in chunk]
            x = preprocess(arrays, tuple(state["img_size"]), state["mean"], state["std"]).to(device)
            if precision.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with precision.autocast():
                p = model(x).float().softmax(1).cpu().numpy().astype(np.float32, copy=False)
            probs.append(p)
            top = np.argsort(-p, axis=1, kind="stable")[:, :k]
            if scale is None:
                scale = _scale(chunk[0].shape[:2])
            for j, i in enumerate(idx):
                t = i / fps
                ids = top[j].tolist()
                times.append(t)
                rows.append({"frame": i, "time": round(t, 4), "label": classes[ids[0]], "prob": float(p[j, ids[0]]),
                             "topk": [{"label": classes[c], "prob": float(p[j, c])} for c in ids]})
                img = _caption(chunk[j], f"{classes[ids[0]]} {p[j, ids[0]]:.2f}", scale)
                for w in writers:
                    w.write(img)
                progress.advance()
    all_probs = np.concatenate(probs) if probs else np.zeros((0, len(classes)), np.float32)
    mean = all_probs.mean(0)
    best = int(mean.argmax())
    columns = ["frame", "time", "label", "prob"] + [f"top{n + 1}_{c}" for n in range(k) for c in ("label", "prob")]
    return {"table_rows": rows, "columns": columns, "rows": len(rows), "probs": all_probs, "times": times,
            "classes": classes, "video_label": classes[best], "video_prob": float(mean[best])}


def _scale(hw: tuple[int, int]) -> int:
    """Nearest-neighbour upscaling that makes a small frame about 256 px on its long side (1 for larger frames)."""
    return max(1, 256 // max(int(hw[0]), int(hw[1])))


def _caption(img: np.ndarray, text: str, scale: int = 1) -> np.ndarray:
    """``img (H, W, 3)`` upscaled by ``scale`` with ``text`` in yellow on a black band at the top."""
    import cv2

    out = np.ascontiguousarray(cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else img.copy())
    fs = max(0.4, out.shape[1] / 640 * 0.6)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
    band = th + base + 6
    out[:band, : min(out.shape[1], tw + 8)] = 0
    cv2.putText(out, text, (4, band - base - 3), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def _timeline(path: Path, probs: np.ndarray, times: list[float], classes: list[str], name: str, label: str, prob: float) -> Path:
    from vislab.report.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    shown = np.argsort(-probs.mean(0), kind="stable")[:10]
    for c in shown.tolist():
        ax.plot(times, probs[:, c], marker="o" if len(times) < 40 else None, ms=3, label=classes[c])
    ax.set(xlabel="time (s)", ylabel="probability", ylim=(-0.02, 1.02),
           title=f"{name}: class probabilities over time (the video: {label}, mean {prob:.2f})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# detect
# --------------------------------------------------------------------------------------------
def _detect(cfg: FramesConfig, batches: Iterator[tuple[list[int], list[np.ndarray]]], fps: float, writers: list, progress) -> dict[str, Any]:
    import cv2

    from vislab.tasks.detect import infer as det
    from vislab.tasks.shared.model import load_for_inference
    from vislab.tasks.video.track import IoUTracker

    model, state, device, _ = load_for_inference(cfg.checkpoint, "detect", cfg.device, "fp32")
    classes = list(state["classes"])
    tracker = IoUTracker() if cfg.track else None
    rows: list[dict[str, Any]] = []
    times: list[float] = []
    scale = None
    for idx, chunk in batches:
        if scale is None:
            scale = _scale(chunk[0].shape[:2])
        for j, d in enumerate(det.detect_batch(model, list(chunk), state, device, cfg.score_threshold)):
            t = idx[j] / fps
            times.append(t)
            ids = tracker.update(d["boxes"], d["scores"], d["labels"]) if tracker is not None else None
            img = det.draw_boxes(chunk[j], d["boxes"], d["labels"], d["scores"], classes, scale=scale, masks=d.get("masks"))
            for n, (b, c, s) in enumerate(zip(d["boxes"].tolist(), d["labels"].tolist(), d["scores"].tolist(), strict=True)):
                tid = int(ids[n]) if ids is not None else None
                rows.append({"frame": idx[j], "time": round(t, 4), "track_id": tid,
                             "label": classes[int(c)] if 0 <= c < len(classes) else str(c), "score": float(s),
                             "x1": float(b[0]), "y1": float(b[1]), "x2": float(b[2]), "y2": float(b[3])})
                if tid is not None and tid >= 0:  # the id inside the box's lower-left corner, in the class colour
                    col = det.PALETTE[int(c) % len(det.PALETTE)]
                    org = (int(b[0] * scale) + 2, max(10, int(b[3] * scale) - 3))
                    cv2.putText(img, f"#{tid}", org, cv2.FONT_HERSHEY_SIMPLEX, 0.3 + 0.05 * scale, col, 1, cv2.LINE_AA)
            for w in writers:
                w.write(img)
            progress.advance()
    columns = ["frame", "time", "track_id", "label", "score", "x1", "y1", "x2", "y2"]
    return {"table_rows": rows, "columns": columns, "rows": len(rows), "times": times,
            "tracks": tracker.count if tracker is not None else 0, "classes": classes}


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------
def _cell(v: Any) -> str:
    from vislab.core.io import csv_cell

    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return csv_cell(str(v))


def _write_table(path: Path, rows: list[dict[str, Any]], columns: list[str], fmt: str) -> None:
    from vislab.core.io import atomic_write_text

    if fmt == "json":
        atomic_write_text(path, json.dumps(rows, indent=1))
        return
    lines = [",".join(columns)]
    for r in rows:
        cells = [_cell(r[c]) for c in columns if c in r]
        for t in r.get("topk", []):
            cells += [_cell(t["label"]), _cell(t["prob"])]
        lines.append(",".join(cells))
    atomic_write_text(path, "\n".join(lines) + "\n")


def show_frames(cfg: FramesConfig, r: dict[str, Any]) -> list[str]:
    """The lines ``vislab video frames`` prints."""
    name = Path(r["video"]).name
    if r["task"] == "classify":
        lines = [f"{name}: {r['frames']} frames classified; the video: {r['video_label']} (mean probability {r['video_prob']:.3f})"]
        files = ["annotated.mp4", Path(r["table"]).name, "timeline.png"]
    else:
        tracks = f" in {r['tracks']} tracks" if cfg.track else ""
        lines = [f"{name}: {r['frames']} frames, {r['rows']} boxes (score >= {cfg.score_threshold:g}){tracks}"]
        files = ["annotated.mp4", Path(r["table"]).name]
    if "gif" in r:
        files.append("annotated.gif")
    lines.append(f"written: {r['out']}/{', '.join(files)}")
    return lines

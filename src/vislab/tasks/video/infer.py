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
from vislab.data.video.io import FOLDER_FPS, VIDEO_EXTENSIONS, frame_files, iter_frames, resize_frames, video_info
from vislab.data.video.sampling import fit_length, frames_needed
from vislab.data.video.source import load_video_splits
from vislab.data.video.stream import VideoStream
from vislab.engine.evaluate import run_eval
from vislab.tasks.shared.export import ExportConfig, export_checkpoint
from vislab.tasks.base import check_all
from vislab.tasks.shared.model import load_for_inference
from vislab.tasks.video.config import VideoDataConfig, VideoEvalConfig, VideoPredictConfig
from vislab.tasks.video.task import TASK, VideoTask


def _data_config(state: dict[str, Any], data: str = "") -> VideoDataConfig:
    """The run's data config, on other videos when ``data`` is given -- read at the run's frame size and channels
    (its config may say 0, "the dataset's": another dataset must not change them)."""
    dcfg = C.from_dict(VideoDataConfig, state["config"]["data"])
    if data:
        dcfg = dataclasses.replace(dcfg, data=data)
    return dataclasses.replace(dcfg, img_size=int(state["img_size"][0]), channels=int(state["channels"]))


def evaluate(cfg: VideoEvalConfig) -> dict[str, Any]:
    """Clip and video accuracy, per-class P/R/F1 (of videos), confusion matrices; writes metrics.json, per_class.csv,
    confusion_matrix.png (videos) and confusion_matrix_clips.png."""
    from vislab.report.plots import plot_confusion

    model, state, device, precision = load_for_inference(cfg.checkpoint, TASK, cfg.device, cfg.precision)
    dcfg = _data_config(state, cfg.data)
    src = load_video_splits(dcfg).get(cfg.split)
    if list(src.classes) != list(state["classes"]) and sorted(src.classes) == sorted(state["classes"]):
        # the same classes in another order (a generated run evaluated on its written folders, sorted by name)
        to_run = np.array([state["classes"].index(c) for c in src.classes])
        src.labels, src.classes = to_run[src.labels], list(state["classes"])
        if src.frame_labels is not None:
            src.frame_labels = to_run[src.frame_labels]
    if list(src.classes) != list(state["classes"]):
        raise DataError(f"dataset {src.name}: expected the checkpoint's {len(state['classes'])} classes {state['classes'][:6]}, "
                        f"got {len(src.classes)} classes {src.classes[:6]}")
    check_all([(cfg.batch_size >= 1, "--batch-size", ">= 1", cfg.batch_size), (cfg.eval_clips >= 0, "--eval-clips", ">= 0", cfg.eval_clips)])
    clips = cfg.eval_clips or dcfg.eval_clips
    need = frames_needed(state["clip_len"], state["frame_stride"], dcfg.sampling)
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

    return expand_inputs(inputs, VIDEO_EXTENSIONS, "videos or frame folders", is_item=is_frame_folder)


def is_frame_folder(d: Path) -> bool:
    """A folder of at least two images and no videos (a folder of videos with a cover image is not a video)."""
    return len(frame_files(d)) >= 2 and not any(f.suffix.lower() in VIDEO_EXTENSIONS for f in d.iterdir())


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


def run_flow_method(state: dict[str, Any]) -> str | None:
    """The flow a run's model takes at inference: its training method; ``gt`` (only generated data has it) becomes
    Farneback, with a warning."""
    method = state.get("flow")
    if method == "gt":
        import warnings

        warnings.warn("the run was trained on the generator's true flow (--flow gt); files have none: using Farneback flow", stacklevel=2)
        return "farneback"
    return method


@torch.no_grad()
def predict_video(model: torch.nn.Module, state: dict[str, Any], frames: np.ndarray, device: torch.device, precision: Any,
                  stride: int = 0, pad: str = "error", batch_size: int = 16, name: str = "video") -> dict[str, Any]:
    """Scores of one video's clips and frames: ``{"clips" (n, L) frame indices, "clip_probs" (n, K), "frame_probs"
    (T, K), "video_probs" (K,)}``. ``frames``: ``(T, H, W, C)`` uint8 at any size (resized here to the checkpoint's).

    Clips are sampled as the run trained: dense runs slide clips every ``stride`` frames (default half a clip) over the
    video; uniform / TSN runs take their ``--eval-clips`` clips spread over the whole video. A frame's probabilities are
    the mean of those of the clips covering it (per-frame models: of the steps covering it, a step covering the frames
    up to the next sampled one)."""
    from vislab.data.video.flow import clip_flow, video_flow
    from vislab.data.video.sampling import pad_indices, sample

    T, L, s = len(frames), state["clip_len"], state["frame_stride"]
    data = state["config"]["data"]
    sampling = data.get("sampling", "dense")
    need = frames_needed(L, s, sampling)
    fit_length(T, need, f"video {name}", pad, f"--clip-len {L} --frame-stride {s}")
    small = resize_frames(frames, state["img_size"], state["channels"] == 1)  # (T, h, w, c)
    method = run_flow_method(state)
    flow = video_flow(small, method, data.get("raft_weights", "")) if method else None
    if sampling == "dense":
        starts = clip_starts(T, need, stride or max(1, need // 2))
        clips = pad_indices(np.array([[st + j * s for j in range(L)] for st in starts]), T, pad)  # (n, L)
    else:
        clips = sample(sampling, T, L, s, max(1, data.get("eval_clips", 1)), None, pad=pad)
    mean = torch.tensor(state["mean"]).view(1, -1, 1, 1, 1)
    std = torch.tensor(state["std"]).view(1, -1, 1, 1, 1)
    K = state["num_classes"]
    clip_probs, frame_sum, frame_n = [], torch.zeros(T, K, dtype=torch.float64), torch.zeros(T, 1, dtype=torch.float64)
    for b in range(0, len(clips), batch_size):
        idx = clips[b : b + batch_size]  # (n, L)
        x = torch.from_numpy(small[idx]).permute(0, 4, 1, 2, 3).float().div(255)
        x = ((x - mean) / std).to(device)
        with precision.autocast():
            if flow is not None:
                fl = torch.from_numpy(np.stack([clip_flow(flow, row) for row in idx]))  # (n, L-1, 2, h, w)
                out = model(x, (fl.permute(0, 2, 1, 3, 4) / state.get("flow_scale", 4.0)).to(device)).float()
            else:
                out = model(x).float()
        p = out.softmax(1).cpu().double()  # (n, K) or, per frame, (n, K, L)
        for r, row in enumerate(idx):
            if p.dim() == 3:  # step j covers its frame up to the next sampled one
                for j, fi in enumerate(row):
                    nxt = int(row[j + 1]) if j + 1 < len(row) and row[j + 1] > fi else int(fi) + 1
                    frame_sum[fi:nxt] += p[r, :, j]
                    frame_n[fi:nxt] += 1
            else:
                lo, hi = int(row.min()), int(row.max())
                frame_sum[lo : hi + 1] += p[r]
                frame_n[lo : hi + 1] += 1
        clip_probs.append(p.mean(2) if p.dim() == 3 else p)
    cp = torch.cat(clip_probs)
    fp = torch.where(frame_n > 0, frame_sum / frame_n.clamp_min(1), cp.mean(0, keepdim=True).expand(T, -1))
    return {"clips": clips, "clip_probs": cp.numpy(), "frame_probs": fp.numpy(), "video_probs": cp.mean(0).numpy()}


def unique_stems(files: list[Path]) -> list[str]:
    """Output names for input videos: the file stem (a frame folder's name), with its parent folders prefixed where
    two inputs would share one (``a/clip.mp4``, ``b/clip.mp4`` -> ``a_clip``, ``b_clip``).

    Example:
        >>> unique_stems([Path("a/clip.mp4"), Path("b/clip.mp4"), Path("c/other.avi")])
        ['a_clip', 'b_clip', 'other']
    """
    stems = [f.stem if f.suffix else f.name for f in files]
    out = list(stems)
    for k in range(1, 8):
        dup = {n for n in out if out.count(n) > 1}
        if not dup:
            break
        out = ["_".join([*f.parts[-1 - k : -1], st]) if o in dup else o for f, st, o in zip(files, stems, out, strict=True)]
    return out


def predict(cfg: VideoPredictConfig) -> dict[str, Any]:
    """Label every video: per clip (top-k), per frame (the mean of the clips covering it) and overall (the mean of its
    clips); writes predictions.json, clips.csv and, with ``--annotate``, ``<video>_annotated.mp4`` and ``<video>_timeline.png``."""
    model, state, device, precision = load_for_inference(cfg.checkpoint, TASK, cfg.device, cfg.precision)
    check_all([(cfg.topk >= 1, "--topk", ">= 1", cfg.topk), (cfg.stride >= 0, "--stride", ">= 0 (0: half a clip)", cfg.stride),
               (cfg.batch_size >= 1, "--batch-size", ">= 1", cfg.batch_size)])
    files = expand_videos(cfg.inputs)
    stems = unique_stems(files)
    classes = state["classes"]
    pad = cfg.pad or state["config"]["data"].get("pad", "error")
    if pad not in ("error", "loop", "repeat"):
        raise ConfigError(f"--pad: expected error, loop or repeat, got '{pad}'")
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    results, csv_rows = [], ["video,clip,start,end,label,prob"]
    k = min(cfg.topk, len(classes))
    with Tracker("predict", len(files), unit="videos") as progress:
        for f, stem in zip(files, stems, strict=True):
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
            for j, (idx, p) in enumerate(zip(r["clips"], cp, strict=True)):
                top = np.argsort(-p)[:k]
                st, end = int(idx.min()), int(idx.max())
                clips.append({"start": st, "end": end, "frames": [int(i) for i in idx], "label": classes[top[0]], "prob": float(p[top[0]]),
                              "topk": [{"label": classes[i], "prob": float(p[i])} for i in top]})
                csv_rows.append(f"{csv_cell(str(f))},{j},{st},{end},{csv_cell(classes[top[0]])},{p[top[0]]:.6f}")
            frame_rows = [{"frame": t, "time": round(t / info.fps, 4) if info.fps else None, "label": classes[int(p.argmax())],
                           "prob": float(p.max())} for t, p in enumerate(fp)]
            row = {"path": str(f), "frames": n_frames, "fps": info.fps, "label": classes[order[0]], "prob": float(vp[order[0]]),
                   "topk": [{"label": classes[i], "prob": float(vp[i])} for i in order], "clips": clips, "per_frame": frame_rows}
            if cfg.annotate:
                row["annotated"] = str(_annotate(f, fp, classes, out / f"{stem}_annotated.mp4", info.fps or FOLDER_FPS))
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
    from vislab.core.errors import CheckpointError
    from vislab.engine.checkpoint import read_state

    state = read_state(cfg.checkpoint)
    if state.get("task") != TASK:
        raise CheckpointError(f"checkpoint '{cfg.checkpoint}': expected a {TASK} checkpoint, got one of task {state.get('task')!r}")
    if state.get("flow"):
        raise ConfigError(f"export: expected a model of clips only, got {state['model']}, which also takes optical flow computed "
                          f"by OpenCV; use `vislab video predict` for it")
    return export_checkpoint(cfg, task=TASK, output_name="logits", extra_meta=("clip_len", "frame_stride"),
                             input_dims=lambda s: [s["channels"], s["clip_len"], *s["img_size"]])

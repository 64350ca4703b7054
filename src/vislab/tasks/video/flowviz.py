"""``vislab video flow VIDEO``: the optical flow of a video, frame pair by frame pair, as a video and a table.

* ``--method farneback`` (dense, :func:`vislab.ops.flow.farneback`): ``flow.mp4``, each frame beside its flow to the
  next one, colour-coded by :func:`~vislab.ops.flow.flow_to_color` (hue: direction, brightness: speed, full at the
  video's 99th-percentile speed; the colour wheel in the corner is the key) -- T - 1 frames for a video of T; and
  ``flow_magnitude.csv``, one row per pair ``t -> t+1``: ``frame`` (t), ``time``, ``mean_magnitude``,
  ``max_magnitude``, ``mean_dx``, ``mean_dy`` (pixels per frame, over the whole frame, at the computed size).
* ``--method lk`` (sparse, :func:`vislab.ops.flow.lucas_kanade`): corners (:func:`~vislab.ops.flow.good_features_to_track`)
  followed from frame to frame; a point is dropped when Lucas-Kanade loses it, it leaves the frame or tracking it
  back to the previous frame misses its start by more than a pixel (forward-backward check); when fewer than half
  of the points found at the last detection remain, new corners (away from the living ones) top them up to
  ``--max-corners`` with new ids. ``tracks.mp4`` (T frames): each point with its last ``--trail`` positions as a
  trail, one colour per track; ``tracks.csv``: ``frame, time, track_id, x, y`` for every point in every frame.

``--size`` resizes the frames first (long side, aspect kept): both the flow and the coordinates are at that size.
With ``--gif`` the video is also written as a GIF. Default folder: ``<video parent>/<video stem>-flow/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.errors import DataError

FOLDER_FPS = 10.0  # frame folders have no frame rate: times and videos assume this one
CHUNK = 8  # frame pairs per farneback call (it runs them in parallel)


@dataclass
class FlowConfig:
    """``vislab video flow``: dense (Farneback) or sparse (Lucas-Kanade) optical flow of a video."""

    video: str = opt("", "a video file (mp4, avi, mkv, webm, mov, gif) or a folder of frames", cli=False)
    method: str = opt("farneback", "farneback: dense flow, colour-coded beside each frame (flow.mp4, flow_magnitude.csv); "
                                   "lk: corners tracked by Lucas-Kanade, drawn as trails (tracks.mp4, tracks.csv)", choices=("farneback", "lk"))
    out: str = opt("", "output folder (default: <video parent>/<video stem>-flow)")
    size: int = opt(0, "resize the frames so their long side is this many pixels before computing (0: as they are)")
    max_frames: int = opt(0, "use at most this many frames from the start (0: all)")
    max_corners: int = opt(100, "lk: corners to track")
    trail: int = opt(10, "lk: frames of each track's history drawn")
    gif: bool = opt(False, "also write the video as a GIF")


def _validate(cfg: FlowConfig) -> None:
    from vislab.tasks.base import check_all

    check_all([(cfg.method in ("farneback", "lk"), "--method", "farneback or lk", cfg.method), (cfg.size >= 0, "--size", ">= 0", cfg.size),
               (cfg.max_frames >= 0, "--max-frames", ">= 0", cfg.max_frames), (cfg.max_corners >= 1, "--max-corners", ">= 1", cfg.max_corners),
               (cfg.trail >= 0, "--trail", ">= 0", cfg.trail)])


def _target_size(h: int, w: int, long_side: int) -> tuple[int, int] | None:
    """``(H, W)`` with the long side ``long_side`` and the aspect kept (None: keep the size).

    Example:
        >>> _target_size(480, 640, 320), _target_size(480, 640, 0)
        ((240, 320), None)
    """
    if not long_side or max(h, w) == long_side:
        return None
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def read_frames_for_flow(cfg: FlowConfig) -> tuple[np.ndarray, float]:
    """The video's frames ``(T, H, W, 3)`` uint8 (resized, at most ``max_frames``) and its frame rate.

    Raises:
        DataError: fewer than two frames (``flow: expected a video of at least 2 frames, got 1 (clip.mp4)``).
    """
    from vislab.data.video.io import read_video, video_info

    info = video_info(cfg.video)
    n = min(info.frames, cfg.max_frames) if cfg.max_frames else info.frames
    if n < 2:
        raise DataError(f"flow: expected a video of at least 2 frames, got {n} ({cfg.video})")
    frames = read_video(cfg.video, size=_target_size(info.height, info.width, cfg.size), indices=range(n) if cfg.max_frames else None)
    if len(frames) < 2:
        raise DataError(f"flow: expected a video of at least 2 frames, got {len(frames)} ({cfg.video})")
    return frames, info.fps or FOLDER_FPS


def run_flow(cfg: FlowConfig) -> dict[str, Any]:
    """Compute and draw the flow (see the module docstring). Returns ``out``, ``method``, ``frames``, ``pairs``, the
    paths (``video``, ``csv``, ``gif``), ``mean_magnitude`` (pixels per frame: dense over every pixel and pair; lk over
    every tracked point and pair) and, for lk, ``tracks`` (ids given out)."""
    _validate(cfg)
    frames, fps = read_frames_for_flow(cfg)
    video = Path(cfg.video)
    out = Path(cfg.out) if cfg.out else video.parent / f"{video.name if video.is_dir() else video.stem}-flow"
    out.mkdir(parents=True, exist_ok=True)
    r = _dense(frames, fps, out) if cfg.method == "farneback" else _sparse(cfg, frames, fps, out)
    from vislab.data.video.io import write_gif, write_video

    drawn = r.pop("drawn")
    name = "flow" if cfg.method == "farneback" else "tracks"
    res = {"out": str(out), "method": cfg.method, "frames": len(frames), "pairs": len(frames) - 1, "size": list(frames.shape[1:3]),
           "video": str(write_video(out / f"{name}.mp4", drawn, fps=fps)), **r}
    if cfg.gif:
        res["gif"] = str(write_gif(out / f"{name}.gif", drawn, fps=fps))
    return res


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def _wheel(n: int) -> np.ndarray:
    """An ``(n, n, 3)`` uint8 key of :func:`flow_to_color`: each direction at full speed on the rim, black outside."""
    from vislab.ops.flow import flow_to_color

    c = (n - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) - c
    f = np.stack([xx, yy], -1) / max(c, 1e-6)
    rgb = flow_to_color(f, max_magnitude=1.0)
    rgb[np.hypot(xx, yy) > c] = 0
    return rgb


def _dense(frames: np.ndarray, fps: float, out: Path) -> dict[str, Any]:
    from vislab.core.io import atomic_write_text
    from vislab.core.progress import Tracker
    from vislab.ops.flow import farneback, flow_to_color

    t, h, w = frames.shape[:3]
    flows = np.empty((t - 1, 2, h, w), np.float16)  # kept until the colour scale (the video's speeds) is known
    rows = ["frame,time,mean_magnitude,max_magnitude,mean_dx,mean_dy"]
    with Tracker("flow", t - 1, unit="frame pairs") as progress:
        for s in range(0, t - 1, CHUNK):
            x = _to_tensor(frames[s : min(t, s + CHUNK + 1)])
            f = farneback(x[:-1], x[1:])
            mag = f.norm(dim=1)
            for j in range(len(f)):
                rows.append(f"{s + j},{(s + j) / fps:.4f},{mag[j].mean():.4f},{mag[j].max():.4f},{f[j, 0].mean():.4f},{f[j, 1].mean():.4f}")
            flows[s : s + len(f)] = f.numpy()
            progress.advance(len(f))
    atomic_write_text(out / "flow_magnitude.csv", "\n".join(rows) + "\n")
    mags = np.hypot(flows[:, 0, ::2, ::2].astype(np.float32), flows[:, 1, ::2, ::2].astype(np.float32))
    top = max(float(np.percentile(mags, 99)), 1e-3)
    key = _wheel(max(9, min(h, w) // 5)) if min(h, w) >= 40 else None
    drawn = np.empty((t - 1, h, 2 * w, 3), np.uint8)
    for s in range(0, t - 1, CHUNK):
        col = flow_to_color(torch.from_numpy(flows[s : s + CHUNK].astype(np.float32)), max_magnitude=top)
        col = (col.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        if key is not None:
            k = len(key)
            corner = col[:, h - k - 2 : h - 2, w - k - 2 : w - 2]
            col[:, h - k - 2 : h - 2, w - k - 2 : w - 2] = np.where(key.any(-1, keepdims=True), key, corner)
        drawn[s : s + len(col), :, :w] = frames[s : s + len(col)]
        drawn[s : s + len(col), :, w:] = col
    mean_dx, mean_dy = float(flows[:, 0].astype(np.float32).mean()), float(flows[:, 1].astype(np.float32).mean())
    return {"drawn": drawn, "csv": str(out / "flow_magnitude.csv"), "mean_magnitude": float(np.hypot(flows[:, 0].astype(np.float32),
            flows[:, 1].astype(np.float32)).mean()), "mean_dx": mean_dx, "mean_dy": mean_dy, "color_max_magnitude": top}


def _colour(track_id: int) -> tuple[int, int, int]:
    """A bright colour per track id (golden-ratio hues)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618034) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _sparse(cfg: FlowConfig, frames: np.ndarray, fps: float, out: Path) -> dict[str, Any]:
    import cv2

    from vislab.core.io import atomic_write_text
    from vislab.core.progress import Tracker
    from vislab.ops.flow import good_features_to_track, lucas_kanade

    t, h, w = frames.shape[:3]
    gray = torch.from_numpy(np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]))[:, None].float() / 255.0
    min_distance = 5.0

    def corners(k: int, have: torch.Tensor, room: int) -> torch.Tensor:
        new = good_features_to_track(gray[k : k + 1], cfg.max_corners, 0.01, min_distance)[0]
        if len(have) and len(new):
            new = new[torch.cdist(new, have).min(1).values >= min_distance]
        return new[:room]

    pts = corners(0, torch.zeros(0, 2), cfg.max_corners)
    ids = torch.arange(1, len(pts) + 1)
    next_id, base = len(pts) + 1, len(pts)
    where: list[dict[int, tuple[float, float]]] = [dict(zip(ids.tolist(), map(tuple, pts.tolist()), strict=True))]
    steps: list[float] = []
    with Tracker("flow", t - 1, unit="frame pairs") as progress:
        for k in range(t - 1):
            if len(pts):
                f = lucas_kanade(gray[k : k + 1], gray[k + 1 : k + 2], points=pts)[0]
                back = lucas_kanade(gray[k + 1 : k + 2], gray[k : k + 1], points=f.points1)[0]
                p1 = f.points1
                inside = (p1[:, 0] >= 0) & (p1[:, 0] <= w - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= h - 1)
                ok = f.status & back.status & inside & ((back.points1 - pts).abs().amax(1) < 1.0)
                steps += (p1 - pts)[ok].norm(dim=1).tolist()
                pts, ids = p1[ok], ids[ok]
            if len(pts) < base / 2 or base == 0:
                new = corners(k + 1, pts, cfg.max_corners - len(pts))
                pts = torch.cat([pts, new])
                ids = torch.cat([ids, torch.arange(next_id, next_id + len(new))])
                next_id += len(new)
                base = len(pts)
            where.append(dict(zip(ids.tolist(), map(tuple, pts.tolist()), strict=True)))
            progress.advance()
    rows = ["frame,time,track_id,x,y"] + [f"{k},{k / fps:.4f},{i},{x:.3f},{y:.3f}" for k, d in enumerate(where) for i, (x, y) in d.items()]
    atomic_write_text(out / "tracks.csv", "\n".join(rows) + "\n")
    scale = max(1, 256 // max(h, w))
    drawn = []
    for k, d in enumerate(where):
        img = np.ascontiguousarray(cv2.resize(frames[k], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else frames[k].copy())
        for i, (x, y) in d.items():
            col = _colour(i)
            hist = [where[j][i] for j in range(max(0, k - cfg.trail), k + 1) if i in where[j]]
            if len(hist) > 1:
                line = (np.array(hist) * scale + (scale - 1) / 2).round().astype(np.int32).reshape(-1, 1, 2)
                cv2.polylines(img, [line], False, col, 1, cv2.LINE_AA)
            cv2.circle(img, (round(x * scale + (scale - 1) / 2), round(y * scale + (scale - 1) / 2)), max(1, scale), col, -1, cv2.LINE_AA)
        drawn.append(img)
    return {"drawn": np.stack(drawn), "csv": str(out / "tracks.csv"), "tracks": next_id - 1,
            "mean_magnitude": float(np.mean(steps)) if steps else 0.0, "points": len(rows) - 1}


def show_flow(cfg: FlowConfig, r: dict[str, Any]) -> list[str]:
    """The lines ``vislab video flow`` prints."""
    h, w = r["size"]
    if r["method"] == "farneback":
        lines = [f"{Path(cfg.video).name}: dense flow of {r['pairs']} frame pairs at {w}x{h}: mean speed {r['mean_magnitude']:.3f} px/frame, "
                 f"mean motion ({r['mean_dx']:+.3f}, {r['mean_dy']:+.3f})"]
    else:
        lines = [f"{Path(cfg.video).name}: {r['tracks']} corner tracks over {r['frames']} frames at {w}x{h}: mean speed {r['mean_magnitude']:.3f} px/frame"]
    files = [Path(r["video"]).name, Path(r["csv"]).name] + ([Path(r["gif"]).name] if "gif" in r else [])
    lines.append(f"written: {r['out']}/{', '.join(files)}")
    return lines

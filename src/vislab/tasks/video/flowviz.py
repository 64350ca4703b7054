"""``vislab video flow VIDEO``: the optical flow of a video, frame pair by frame pair, as a video and a table.

* ``--method farneback`` (dense, :func:`vislab.ops.flow.farneback`): ``flow.mp4``, each frame beside its flow to the
  next one, colour-coded by :func:`~vislab.ops.flow.flow_to_color` (hue: direction, brightness: speed, full at the
  99th-percentile speed of the first ``SCALE_PAIRS`` (32) pairs -- the whole video's when it is that short; the
  colour wheel in the corner is the key) -- T - 1 frames for a video of T; and
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

Both methods stream, so memory does not grow with the video's length: frames are decoded one by one
(:func:`vislab.data.video.io.iter_frames`), the video is written a frame at a time
(:class:`~vislab.data.video.io.VideoWriter`) and the CSV a row at a time (both files appear, atomically, at the end;
a GIF writer keeps its frames until then). Farneback holds ``CHUNK`` + 1 frames for one call and, at the start, the
frames and flows of the first ``SCALE_PAIRS`` pairs: the colour scale must be known before the first flow frame is
drawn, and one pass over the video (not two: the flow is the costly part) gives it from those pairs; the table's
numbers and the returned means are over every pair. Lucas-Kanade keeps the previous frame, the living points and
the last ``--trail`` positions.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.errors import DataError

CHUNK = 8  # frame pairs per farneback call (it runs them in parallel)
SCALE_PAIRS = 32  # farneback: the colour scale is the 99th-percentile speed of this many first pairs (held until then)


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


def iter_frames_for_flow(cfg: FlowConfig) -> tuple[Iterator[np.ndarray], float, int]:
    """The video's frames one by one, ``(H, W, 3)`` uint8 (resized, at most ``max_frames``), its frame rate and how
    many frames that is by :func:`~vislab.data.video.io.video_info` (the progress bar's total). The first two frames
    are decoded here: a video too short is an error before anything is written.

    Raises:
        DataError: fewer than two frames (``flow: expected a video of at least 2 frames, got 1 (clip.mp4)``).
    """
    from vislab.data.video.io import FOLDER_FPS, iter_frames, video_info

    info = video_info(cfg.video)
    n = min(info.frames, cfg.max_frames) if cfg.max_frames else info.frames
    if n < 2:
        raise DataError(f"flow: expected a video of at least 2 frames, got {n} ({cfg.video})")
    frames = _limited(iter_frames(cfg.video, size=_target_size(info.height, info.width, cfg.size)), n if cfg.max_frames else 0, cfg.video)
    first = list(islice(frames, 2))
    if len(first) < 2:
        frames.close()
        raise DataError(f"flow: expected a video of at least 2 frames, got {len(first)} ({cfg.video})")
    return _chain(first, frames), info.fps or FOLDER_FPS, n


def _limited(frames: Iterator[np.ndarray], n: int, video: str) -> Iterator[np.ndarray]:
    """The first ``n`` of ``frames`` (0: all); closes them when done.

    Raises:
        DataError: fewer than ``n`` (the video's frame count was wrong).
    """
    k = 0
    try:
        for f in frames:
            yield f
            k += 1
            if k == n:
                break
    finally:
        frames.close()  # type: ignore[attr-defined]
    if n and k < n:
        raise DataError(f"video {video}: expected frame {k}, got a video of {k} frames")


def _chain(first: list[np.ndarray], rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    try:
        yield from first
        first.clear()
        yield from rest
    finally:
        rest.close()  # type: ignore[attr-defined]


@contextmanager
def _csv(path: Path, header: str) -> Iterator[IO[str]]:
    """A CSV written a line at a time; it appears (atomically) at the end, an exception leaves none."""
    from vislab.core.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(header + "\n")
        yield fh


def run_flow(cfg: FlowConfig) -> dict[str, Any]:
    """Compute and draw the flow (see the module docstring). Returns ``out``, ``method``, ``frames``, ``pairs``, the
    paths (``video``, ``csv``, ``gif``), ``mean_magnitude`` (pixels per frame: dense over every pixel and pair; lk over
    every tracked point and pair) and, for lk, ``tracks`` (ids given out)."""
    from vislab.data.video.io import VideoWriter

    _validate(cfg)
    frames, fps, n = iter_frames_for_flow(cfg)
    video = Path(cfg.video)
    out = Path(cfg.out) if cfg.out else video.parent / f"{video.name if video.is_dir() else video.stem}-flow"
    out.mkdir(parents=True, exist_ok=True)
    name = "flow" if cfg.method == "farneback" else "tracks"
    with closing(frames), ExitStack() as stack:  # type: ignore[type-var]
        writers = [stack.enter_context(VideoWriter(out / f"{name}.mp4", fps=fps))]
        if cfg.gif:
            writers.append(stack.enter_context(VideoWriter(out / f"{name}.gif", fps=fps)))
        if cfg.method == "farneback":
            r = _dense(frames, n - 1, fps, out, writers, stack)
        else:
            r = _sparse(cfg, frames, n - 1, fps, out, writers, stack)
    count, size = r.pop("frames"), r.pop("size")
    res = {"out": str(out), "method": cfg.method, "frames": count, "pairs": count - 1, "size": size, "video": str(writers[0].path), **r}
    if cfg.gif:
        res["gif"] = str(writers[1].path)
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


def _dense(frames: Iterator[np.ndarray], pairs: int, fps: float, out: Path, writers: list, stack: ExitStack) -> dict[str, Any]:
    from vislab.core.progress import Tracker
    from vislab.ops.flow import farneback, flow_to_color

    csv = stack.enter_context(_csv(out / "flow_magnitude.csv", "frame,time,mean_magnitude,max_magnitude,mean_dx,mean_dy"))
    first = next(frames)
    h, w = first.shape[:2]
    key = _wheel(max(9, min(h, w) // 5)) if min(h, w) >= 40 else None
    held: list[tuple[list[np.ndarray], np.ndarray]] = []  # (frames, flows) of the first pairs, until the scale is known
    top: float | None = None
    sums = np.zeros(3)  # over every pixel of every pair: speed, dx, dy
    pixels = 0
    count = 1  # frames read

    def draw(chunk: list[np.ndarray], flows: np.ndarray) -> None:
        col = flow_to_color(torch.from_numpy(flows.astype(np.float32)), max_magnitude=top)
        col = (col.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        if key is not None:
            k = len(key)
            corner = col[:, h - k - 2 : h - 2, w - k - 2 : w - 2]
            col[:, h - k - 2 : h - 2, w - k - 2 : w - 2] = np.where(key.any(-1, keepdims=True), key, corner)
        for a, c in zip(chunk, col, strict=True):
            img = np.concatenate([a, c], axis=1)
            for wr in writers:
                wr.write(img)

    def step(chunk: list[np.ndarray], s: int) -> None:
        """The flows of the pairs of ``chunk`` (frames s .. s + len - 1): table rows, sums, drawn (or held)."""
        nonlocal top, pixels
        x = _to_tensor(np.stack(chunk))
        f = farneback(x[:-1], x[1:])
        mag = f.norm(dim=1)
        for j in range(len(f)):
            csv.write(f"{s + j},{(s + j) / fps:.4f},{mag[j].mean():.4f},{mag[j].max():.4f},{f[j, 0].mean():.4f},{f[j, 1].mean():.4f}\n")
        flows = f.numpy().astype(np.float16)  # (the precision the colours and the means have always been computed at)
        dx, dy = flows[:, 0].astype(np.float32), flows[:, 1].astype(np.float32)
        sums[:] += (np.hypot(dx, dy).sum(dtype=np.float64), dx.sum(dtype=np.float64), dy.sum(dtype=np.float64))
        pixels += dx.size
        if top is None:
            held.append((chunk[:-1], flows))
            if sum(len(fl) for _, fl in held) >= SCALE_PAIRS:
                release()
        else:
            draw(chunk[:-1], flows)
        progress.advance(len(f))

    def release() -> None:
        """Fix the colour scale from the held pairs and draw them."""
        nonlocal top
        fl = np.concatenate([fl for _, fl in held])
        mags = np.hypot(fl[:, 0, ::2, ::2].astype(np.float32), fl[:, 1, ::2, ::2].astype(np.float32))
        top = max(float(np.percentile(mags, 99)), 1e-3)
        for chunk, flows in held:
            draw(chunk, flows)
        held.clear()

    with Tracker("flow", pairs, unit="frame pairs") as progress:
        chunk, s = [first], 0
        for a in frames:
            chunk.append(a)
            count += 1
            if len(chunk) == CHUNK + 1:
                step(chunk, s)
                chunk, s = [a], s + CHUNK
        if len(chunk) > 1:
            step(chunk, s)
        if top is None:
            release()
    mean_magnitude, mean_dx, mean_dy = (sums / pixels).tolist()
    return {"frames": count, "size": [h, w], "csv": str(out / "flow_magnitude.csv"), "mean_magnitude": mean_magnitude,
            "mean_dx": mean_dx, "mean_dy": mean_dy, "color_max_magnitude": top}


def _colour(track_id: int) -> tuple[int, int, int]:
    """A bright colour per track id (golden-ratio hues)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618034) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _sparse(cfg: FlowConfig, frames: Iterator[np.ndarray], pairs: int, fps: float, out: Path, writers: list, stack: ExitStack) -> dict[str, Any]:
    import cv2

    from vislab.core.progress import Tracker
    from vislab.ops.flow import good_features_to_track, lucas_kanade

    csv = stack.enter_context(_csv(out / "tracks.csv", "frame,time,track_id,x,y"))
    first = next(frames)
    h, w = first.shape[:2]
    min_distance = 5.0
    scale = max(1, 256 // max(h, w))

    def to_gray(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY))[None, None].float() / 255.0

    def corners(g: torch.Tensor, have: torch.Tensor, room: int) -> torch.Tensor:
        new = good_features_to_track(g, cfg.max_corners, 0.01, min_distance)[0]
        if len(have) and len(new):
            new = new[torch.cdist(new, have).min(1).values >= min_distance]
        return new[:room]

    recent: deque[dict[int, tuple[float, float]]] = deque(maxlen=cfg.trail + 1)  # the points of the last frames
    points = 0

    def emit(k: int, a: np.ndarray, d: dict[int, tuple[float, float]]) -> None:
        """Frame ``k``'s points: table rows, and the frame drawn with them and their trails."""
        nonlocal points
        recent.append(d)
        csv.writelines(f"{k},{k / fps:.4f},{i},{x:.3f},{y:.3f}\n" for i, (x, y) in d.items())
        points += len(d)
        img = np.ascontiguousarray(cv2.resize(a, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else a.copy())
        for i, (x, y) in d.items():
            col = _colour(i)
            hist = [p[i] for p in recent if i in p]
            if len(hist) > 1:
                line = (np.array(hist) * scale + (scale - 1) / 2).round().astype(np.int32).reshape(-1, 1, 2)
                cv2.polylines(img, [line], False, col, 1, cv2.LINE_AA)
            cv2.circle(img, (round(x * scale + (scale - 1) / 2), round(y * scale + (scale - 1) / 2)), max(1, scale), col, -1, cv2.LINE_AA)
        for wr in writers:
            wr.write(img)

    prev = to_gray(first)
    pts = corners(prev, torch.zeros(0, 2), cfg.max_corners)
    ids = torch.arange(1, len(pts) + 1)
    next_id, base = len(pts) + 1, len(pts)
    emit(0, first, dict(zip(ids.tolist(), map(tuple, pts.tolist()), strict=True)))
    step_sum, steps = 0.0, 0
    k = 0
    with Tracker("flow", pairs, unit="frame pairs") as progress:
        for a in frames:
            g = to_gray(a)
            if len(pts):
                f = lucas_kanade(prev, g, points=pts)[0]
                back = lucas_kanade(g, prev, points=f.points1)[0]
                p1 = f.points1
                inside = (p1[:, 0] >= 0) & (p1[:, 0] <= w - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= h - 1)
                ok = f.status & back.status & inside & ((back.points1 - pts).abs().amax(1) < 1.0)
                moved = (p1 - pts)[ok].norm(dim=1).tolist()
                step_sum, steps = step_sum + math.fsum(moved), steps + len(moved)
                pts, ids = p1[ok], ids[ok]
            if len(pts) < base / 2 or base == 0:
                new = corners(g, pts, cfg.max_corners - len(pts))
                pts = torch.cat([pts, new])
                ids = torch.cat([ids, torch.arange(next_id, next_id + len(new))])
                next_id += len(new)
                base = len(pts)
            k += 1
            emit(k, a, dict(zip(ids.tolist(), map(tuple, pts.tolist()), strict=True)))
            prev = g
            progress.advance()
    return {"frames": k + 1, "size": [h, w], "csv": str(out / "tracks.csv"), "tracks": next_id - 1,
            "mean_magnitude": step_sum / steps if steps else 0.0, "points": points}


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

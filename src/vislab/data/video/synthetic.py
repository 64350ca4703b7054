"""Seeded generated videos of a moving object: classify the motion, track the box, estimate the flow -- offline.

Each clip is one bright object (a square, disc or triangle in a random colour) on a static background of dimmer
clutter shapes, with fresh gaussian noise on every frame. The class is how the object moves: ``left``, ``right``,
``up``, ``down`` (a straight line at 1.5-3 px per frame), ``circle`` (clockwise, random radius and phase),
``grow`` or ``shrink`` (its size changing linearly). Along with the frames come the object's box in every frame
and the ground-truth optical flow.

**No single frame tells the direction.** A left clip is a right clip played backwards: the trajectory is placed
symmetrically about a centre drawn uniformly where it fits, so the object's positions over a clip have the same
distribution for ``left`` and ``right`` (``up`` / ``down``, and its sizes for ``grow`` / ``shrink``), and the
position at frame ``t`` of one class is distributed as that at frame ``T-1-t`` of the other. A model that sees the
frames without their order cannot beat chance: it has to use time. (The position at a *known* frame index still
says something -- a left clip starts on the right more often -- since a trajectory that stays in the frame
cannot start anywhere; with an odd number of frames the middle frame says nothing.)

Example:
    >>> d = make_moving(8, classes=PRESETS["moving-lr"], frames=4, size=24, seed=0)
    >>> d.clips.shape, d.clips.dtype, d.labels.tolist().count(0), d.classes
    ((8, 4, 24, 24, 3), dtype('uint8'), 4, ['left', 'right'])
    >>> d.boxes.shape, d.flow.shape, d.frame_labels.shape
    ((8, 4, 4), (8, 3, 2, 24, 24), (8, 4))
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vislab.core.errors import DataError, did_you_mean

MOTIONS = ("left", "right", "up", "down", "circle", "grow", "shrink")
PRESETS: dict[str, tuple[str, ...]] = {"moving": ("left", "right", "up", "down"), "moving-lr": ("left", "right"), "moving-all": MOTIONS,
                                        "moving-bounce": ("left", "right", "up", "down")}
BOUNCING = ("moving-bounce",)  # presets whose objects turn back once: per-frame labels (many-to-many models)
_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
SHAPE_KINDS = ("square", "disc", "triangle")
_DIRECTION = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}  # y points down


@dataclass
class MovingVideos:
    """Generated clips with their labels, per-frame object boxes and ground-truth flow."""

    clips: np.ndarray  # (N, T, H, W, C) uint8
    labels: np.ndarray  # (N,) int64
    classes: list[str]
    boxes: np.ndarray  # (N, T, 4) float32 xyxy in pixels, the object's box in each frame
    flow: np.ndarray  # (N, T-1, 2, H, W) float32 (dx, dy) from frame t to t+1: the object's motion on its pixels, 0 elsewhere
    frame_labels: np.ndarray  # (N, T) int64: the clip's label on every frame


def resolve_motions(classes: Sequence[str] | str) -> list[str]:
    """Motion class names from a preset name (``"moving"``, ``"moving-lr"``, ``"moving-all"``) or a list of motions."""
    if isinstance(classes, str):
        if classes in PRESETS:
            return list(PRESETS[classes])
        classes = [classes]
    names = list(classes)
    for c in names:
        if c not in MOTIONS:
            raise DataError(f"moving videos: expected motions out of {', '.join(MOTIONS)} (or a preset {', '.join(PRESETS)}), "
                            f"got '{c}'{did_you_mean(c, [*MOTIONS, *PRESETS])}")
    if not names or len(set(names)) != len(names):
        raise DataError(f"moving videos: expected a non-empty list of distinct motions, got {names}")
    return names


def _inside(kind: np.ndarray, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Whether offsets ``(u, v)`` from a shape's centre are inside it; every kind spans ``[-r, r]`` on both axes, so
    its box is ``centre -+ r``. ``kind`` indexes :data:`SHAPE_KINDS`; all arguments broadcast."""
    square = np.maximum(np.abs(u), np.abs(v)) <= r
    disc = u * u + v * v <= r * r
    triangle = (v <= r) & (np.abs(u) * 2 <= v + r)  # apex (0, -r) at the top, base from (-r, r) to (r, r)
    return np.where(kind == 0, square, np.where(kind == 1, disc, triangle))


def _colours(rng: np.random.Generator, n: int, channels: int, bright: bool) -> np.ndarray:
    """``(n, C)`` colours in [0, 1]: bright (the object: its strongest channel 0.85-1) or dim (clutter: 0.1-0.5)."""
    if not bright:
        return rng.uniform(0.1, 0.5, (n, channels)).astype(np.float32)
    if channels == 1:
        return rng.uniform(0.7, 1.0, (n, 1)).astype(np.float32)
    c = rng.uniform(0.15, 1.0, (n, 3))
    return (c / c.max(1, keepdims=True) * rng.uniform(0.85, 1.0, (n, 1))).astype(np.float32)


def _trajectories(rng: np.random.Generator, motion: np.ndarray, frames: int, size: int,
                  speed: tuple[float, float], turn: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object centres ``x, y`` and radii ``r`` ``(N, T)`` in pixels for motion names ``(N,)``; ``turn`` ``(N,)``: the
    frame from which a straight line runs back the other way (bouncing clips)."""
    n, s = len(motion), float(size)
    tau = np.arange(frames) - (frames - 1) / 2  # time about the clip's middle: -3.5 .. 3.5 for 8 frames
    frac = np.arange(frames) / (frames - 1)  # 0 .. 1
    r0 = rng.uniform(s / 10, s / 6, n)  # half the object's extent: it spans size/5 .. size/3
    room = s - 2 * r0  # where the centre can be
    v = np.minimum(rng.uniform(speed[0], speed[1], n), room / (frames - 1))  # px / frame; a long clip moves slower
    ux, uy = rng.random(n), rng.random(n)  # where in the room the trajectory sits (the same draw for every motion)
    x, y = np.zeros((n, frames)), np.zeros((n, frames))
    r = np.repeat(r0[:, None], frames, 1)
    # straight lines: the centre uniform where the whole trajectory fits, the trajectory symmetric about it
    span = v * (frames - 1)
    if turn is None:
        walk, extent = np.repeat(tau[None], n, 0), span  # (N, T) steps along the motion, about the middle
    else:  # forward until `turn`, then back: a V, centred like the straight lines
        t = np.arange(frames)[None]
        steps = np.where(t <= turn[:, None], t, 2 * turn[:, None] - t).astype(np.float64)  # 0 1 2 3 2 1 ... for turn 3
        extent = v * (steps.max(1) - steps.min(1))
        walk = steps - (steps.max(1, keepdims=True) + steps.min(1, keepdims=True)) / 2
    for name, (dx, dy) in _DIRECTION.items():
        m = motion == name
        along = r0[m] + extent[m] / 2 + (ux[m] if dx else uy[m]) * (room[m] - extent[m])
        across = r0[m] + (uy[m] if dx else ux[m]) * room[m]
        cx, cy = (along, across) if dx else (across, along)
        x[m] = cx[:, None] + dx * v[m, None] * walk[m]
        y[m] = cy[:, None] + dy * v[m, None] * walk[m]
    # circle: clockwise on screen (y down: the angle grows), about a centre where the whole circle fits
    m = motion == "circle"
    radius = np.minimum(rng.uniform(s / 8, s / 4, n), room / 2)
    omega = np.minimum(v / np.maximum(radius, 1e-6), np.pi / 3)  # about `speed` px / frame along the arc
    phase = rng.uniform(0, 2 * np.pi, n)
    cx = r0 + radius + ux * (room - 2 * radius)
    cy = r0 + radius + uy * (room - 2 * radius)
    angle = phase[m, None] + omega[m, None] * np.arange(frames)
    x[m] = cx[m, None] + radius[m, None] * np.cos(angle)
    y[m] = cy[m, None] + radius[m, None] * np.sin(angle)
    # grow / shrink: the same size ranges, one the other played backwards; the centre stays
    small, big = rng.uniform(s / 16, s / 10, n), rng.uniform(s / 6, s / 4.5, n)
    for name, f in (("grow", frac), ("shrink", 1 - frac)):
        m = motion == name
        r[m] = small[m, None] + (big - small)[m, None] * f
        x[m] = (big + ux * (s - 2 * big))[m, None]
        y[m] = (big + uy * (s - 2 * big))[m, None]
    return x, y, r


def make_moving(n: int = 400, classes: Sequence[str] | str = PRESETS["moving"], frames: int = 8, size: int = 32,
                channels: int = 3, seed: int = 0, speed: tuple[float, float] = (1.5, 3.0), clutter: int = 3,
                noise: float = 0.03, bounce: bool = False) -> MovingVideos:
    """``n`` clips of ``frames`` frames of ``size`` x ``size``, the classes balanced (counts differ by at most one)
    in an order shuffled by ``seed``.

    Args:
        classes: motions out of :data:`MOTIONS`, or a preset name of :data:`PRESETS`.
        channels: 3 (RGB) or 1 (gray).
        speed: the range of the object's speed in pixels per frame (lowered for a clip too long to fit it).
        clutter: static background shapes per clip.
        noise: the standard deviation of the per-frame gaussian pixel noise, on a [0, 1] scale.
        bounce: straight-line objects turn back once, at a random frame; ``frame_labels`` then say which way the
            object moves on each frame (frame t: from t-1 to t; frame 0: as frame 1) and the clip's label is its first
            direction. Every motion must have its opposite among ``classes``. (``classes="moving-bounce"`` sets it.)
    """
    bounce = bounce or (isinstance(classes, str) and classes in BOUNCING)
    names = resolve_motions(classes)
    if n < 1 or frames < 2 or size < 8 or channels not in (1, 3):
        raise DataError(f"moving videos: expected n >= 1, frames >= 2, size >= 8 and channels 1 or 3, got n={n}, "
                        f"frames={frames}, size={size}, channels={channels}")
    if not 0 < speed[0] <= speed[1] or clutter < 0 or noise < 0:
        raise DataError(f"moving videos: expected 0 < speed[0] <= speed[1], clutter >= 0 and noise >= 0, got speed={tuple(speed)}, "
                        f"clutter={clutter}, noise={noise}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(names)).astype(np.int64)
    motion = np.array(names)[labels]
    turn = None
    frame_labels = np.repeat(labels[:, None], frames, 1)
    if bounce:
        if frames < 4 or any(_OPPOSITE.get(m) not in names for m in names):
            raise DataError(f"moving videos: expected bouncing clips of >= 4 frames with left/right/up/down and their opposites, "
                            f"got {frames} frames of {', '.join(names)}")
        turn = rng.integers(1, frames - 2, n)  # the last frame still moving forward: 1 .. T-3
        back = np.array([names.index(_OPPOSITE[m]) for m in names])[labels]
        t = np.arange(frames)[None]
        frame_labels = np.where(t <= turn[:, None], labels[:, None], back[:, None]).astype(np.int64)
        frame_labels[:, 0] = labels  # frame t is labelled by the step into it; frame 0 by the first step
    x, y, r = _trajectories(rng, motion, frames, size, speed, turn)
    kind = rng.integers(0, len(SHAPE_KINDS), n)
    colour = _colours(rng, n, channels, bright=True)

    g = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    X, Y = g[None, None, None, :], g[None, None, :, None]  # (1, 1, 1, W), (1, 1, H, 1)
    # the static background: a dark colour and `clutter` dim small shapes
    bg = np.repeat(rng.uniform(0.0, 0.2, (n, 1, 1, channels)).astype(np.float32), size, 1).repeat(size, 2)  # (N, H, W, C)
    for _ in range(clutter):
        ck, cr = rng.integers(0, len(SHAPE_KINDS), n), rng.uniform(size / 24, size / 12, n)
        cx, cy = rng.uniform(0, size, (2, n))
        inside = _inside(ck[:, None, None], X[0] - cx[:, None, None], Y[0] - cy[:, None, None], cr[:, None, None])  # (N, H, W)
        np.copyto(bg, _colours(rng, n, channels, bright=False)[:, None, None, :], where=inside[..., None])
    # the object on every frame
    xs, ys, rs = (a.astype(np.float32)[:, :, None, None] for a in (x, y, r))  # (N, T, 1, 1)
    mask = _inside(kind[:, None, None, None], X - xs, Y - ys, rs)  # (N, T, H, W)
    video = np.empty((n, frames, size, size, channels), np.float32)
    video[:] = bg[:, None]
    np.copyto(video, colour[:, None, None, None, :], where=mask[..., None])
    if noise > 0:
        grain = rng.standard_normal(video.shape, dtype=np.float32)
        grain *= np.float32(noise)
        video += grain
    np.clip(video, 0, 1, out=video)
    video *= 255
    video += 0.5
    clips = video.astype(np.uint8)  # rounded

    # flow from frame t to t+1 on the object's pixels of frame t: P -> c' + (P - c) * r' / r
    ratio = rs[:, 1:] / rs[:, :-1] - 1
    fx = (xs[:, 1:] - xs[:, :-1]) + (X - xs[:, :-1]) * ratio  # (N, T-1, 1, W)
    fy = (ys[:, 1:] - ys[:, :-1]) + (Y - ys[:, :-1]) * ratio  # (N, T-1, H, 1)
    m = mask[:, :-1]
    flow = np.stack([np.where(m, fx, 0), np.where(m, fy, 0)], 2).astype(np.float32)  # (N, T-1, 2, H, W)
    boxes = np.clip(np.stack([x - r, y - r, x + r, y + r], -1), 0, size).astype(np.float32)  # the clip: rounding only
    return MovingVideos(clips, labels, names, boxes, flow, frame_labels)


def write_moving(root: str | os.PathLike, n: int = 200, classes: Sequence[str] | str = PRESETS["moving"], frames: int = 8,
                 size: int = 32, seed: int = 0, format: str = "mp4", fps: float = 10, **kwargs) -> Path:
    """Write :func:`make_moving` clips as a class-folder dataset: ``root/<class>/<class>_NNNN.<format>`` (``format``:
    a video extension of :data:`vislab.data.video.io.WRITE_EXTENSIONS` without the dot) or, with ``format="frames"``,
    frame folders ``root/<class>/<class>_NNNN/0000.png ...``; plus ``root/boxes.json``, the object's box (xyxy,
    pixels) in every frame by video id (``"left/left_0000"``). ``kwargs`` go to :func:`make_moving`. Returns ``root``.

    Example:
        >>> import tempfile
        >>> root = write_moving(tempfile.mkdtemp(), n=4, classes="moving-lr", frames=3, size=16, format="frames")
        >>> sorted(p.name for p in root.iterdir()), len(list((root / "left" / "left_0000").iterdir()))
        (['boxes.json', 'left', 'right'], 3)
    """
    from vislab.core.io import atomic_write_text
    from vislab.data.video.io import WRITE_EXTENSIONS, write_video

    formats = ["frames", *(e[1:] for e in WRITE_EXTENSIONS)]
    if format not in formats:
        raise DataError(f"write_moving: expected a format out of {', '.join(formats)}, got '{format}'{did_you_mean(format, formats)}")
    d = make_moving(n, classes, frames, size, seed=seed, **kwargs)
    root = Path(root)
    count = [0] * len(d.classes)
    boxes: dict[str, list] = {}
    for clip, label, box in zip(d.clips, d.labels, d.boxes, strict=True):
        cls = d.classes[int(label)]
        name = f"{cls}_{count[label]:04d}"
        count[label] += 1
        if format == "frames":
            _write_frames(root / cls / name, clip)
        else:
            write_video(root / cls / f"{name}.{format}", clip, fps=fps)
        boxes[f"{cls}/{name}"] = np.round(box, 2).tolist()
    meta = {"box_format": "xyxy", "units": "pixels", "size": [size, size], "classes": d.classes, "videos": boxes}
    atomic_write_text(root / "boxes.json", json.dumps(meta))
    return root


def _write_frames(folder: Path, clip: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(clip):
        Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame).save(folder / f"{t:04d}.png")

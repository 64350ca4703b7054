"""Benchmark (not a test): clips per second out of video files with vislab's read path vs plain PyAV and OpenCV
loops, and the second epoch from :class:`vislab.data.video.cache.VideoCache` vs the first.

Run: ``.venv/bin/python bench/video_speed.py [--videos 8] [--frames 150] [--size 112] [--clip-len 16] [--repeats 5]``

Setup: ``--videos`` H.264 mp4 files of ``--frames`` frames at ``--video-size`` (160x120), moving shapes on a drifting
gradient (written by ``vislab.data.video.io.write_video``, CRF 18) in a temporary folder. One epoch = one training
clip per video: ``--clip-len`` consecutive frames at a random start (``sampling.sample("dense", ..., generator)``,
seeded, so every reader gets the same indices), resized to ``--size`` x ``--size`` RGB uint8 with ``cv2.INTER_AREA``.
Throughput is clips per second over one epoch, the median of ``--repeats`` epochs after a warm-up epoch.

1. vislab: ``VideoCache(None).clip(path, clip, size)`` = ``read_video(path, size, indices=clip)`` (decodes up to
   the clip's last frame, converts and resizes only the clip's frames; PyAV with frame threading, I420 -> RGB by
   OpenCV). For reference also ``VideoCache(None).frames(path, size)[clip]``, which decodes and resizes every frame.
2. Baseline, plain PyAV: ``av.open``, ``decode`` up to the clip's last frame, ``to_ndarray(format="rgb24")`` and
   ``cv2.resize`` of the clip's frames; PyAV's defaults otherwise (no threading set). Also the same loop tuned with
   ``to_ndarray(..., threads=1)``: PyAV >= 17 threads swscale by default, and on small frames waking those threads
   costs more than the conversion (milliseconds a frame on a busy machine), which is much of what vislab gains.
3. Second reference, OpenCV: ``cv2.VideoCapture``, ``grab()`` up to the clip, ``read()`` of its frames,
   ``cvtColor(BGR2RGB)`` and ``cv2.resize``.
4. The cache: ``VideoCache(tmp).clip(path, clip, size)`` (a copy out of ``frames(path, size)``); the first epoch decodes each whole video
   (resizing every frame) and writes ``<key>.npy``, the second slices the memory-mapped files. The files were just
   written, so the second epoch reads the OS page cache, as a real second epoch does when the cache fits in memory.
   Each measured first epoch starts from an empty cache folder.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from vislab.data.video.cache import VideoCache
from vislab.data.video.io import read_video, write_video
from vislab.data.video.sampling import sample


def moving_shapes(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """``(n, h, w, 3)`` uint8: two shapes moving at their own speeds over a drifting colour gradient."""
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    (vx1, vy1), (vx2, vy2) = g.uniform(-2, 2, (2, 2))
    c1, c2 = g.integers(40, 255, 3), g.integers(40, 255, 3)
    out = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        a = np.empty((h, w, 3), np.float32)
        a[..., 0] = 110 + 50 * np.sin((x + t) / 17)
        a[..., 1] = 110 + 50 * np.cos((y - t) / 13)
        a[..., 2] = 90
        cx, cy = (w / 3 + vx1 * t) % w, (h / 2 + vy1 * t) % h
        a[(x - cx) ** 2 + (y - cy) ** 2 < (h / 8) ** 2] = c1
        rx, ry = int((2 * w / 3 + vx2 * t) % w), int((h / 3 + vy2 * t) % h)
        a[max(0, ry - h // 10) : ry + h // 10, max(0, rx - w // 10) : rx + w // 10] = c2
        out[t] = np.clip(a, 0, 255).astype(np.uint8)
    return out


def resize(a: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA if size < a.shape[0] else cv2.INTER_LINEAR)


def pyav_clip(path: Path, clip: np.ndarray, size: int, **convert) -> np.ndarray:
    """What a careful user writes with PyAV: decode up to the clip's last frame, convert and resize its frames."""
    want, last, got = set(clip.tolist()), int(clip.max()), {}
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i in want:
                got[i] = resize(fr.to_ndarray(format="rgb24", **convert), size)
            if i >= last:
                break
    return np.stack([got[int(i)] for i in clip])


def opencv_clip(path: Path, clip: np.ndarray, size: int) -> np.ndarray:
    """The same with OpenCV's reader: grab (no conversion) the frames before the clip, read the clip's."""
    cap = cv2.VideoCapture(str(path))
    got, first, last = {}, int(clip.min()), int(clip.max())
    for i in range(last + 1):
        if i < first:
            cap.grab()
            continue
        ok, bgr = cap.read()
        if not ok:
            break
        got[i] = resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)
    cap.release()
    return np.stack([got[int(i)] for i in clip])


def epoch_seconds(epochs: dict[str, Callable[[], object]], repeats: int,
                  before: dict[str, Callable[[], object]] | None = None) -> dict[str, float]:
    """Median seconds of one epoch of each reader over ``repeats`` rounds after a warm-up round; the readers take
    turns within a round, so a load that comes and goes on the machine hits them alike. ``before[name]()``: untimed
    set-up before each of that reader's epochs."""
    times: dict[str, list[float]] = {k: [] for k in epochs}
    for r in range(repeats + 1):
        for name, fn in epochs.items():
            if before and name in before:
                before[name]()
            t0 = time.perf_counter()
            fn()
            if r:  # round 0 warms up (codec set-up, the OS cache of the video files)
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--frames", type=int, default=150, help="frames per video")
    ap.add_argument("--size", type=int, default=112, help="clips are resized to this square size")
    ap.add_argument("--video-size", default="160x120", help="WxH of the generated videos")
    ap.add_argument("--clip-len", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    w, h = (int(v) for v in args.video_size.lower().split("x"))
    print(f"PyAV {av.__version__} (FFmpeg {getattr(av, 'ffmpeg_version_info', '?')}), "
          f"opencv {cv2.__version__} ({cv2.getNumThreads()} threads), numpy {np.__version__}")

    tmp = Path(tempfile.mkdtemp(prefix="vislab-video-bench-"))
    try:
        videos = [write_video(tmp / f"v{i}.mp4", moving_shapes(args.frames, h, w, args.seed + i), fps=25) for i in range(args.videos)]
        mb = sum(p.stat().st_size for p in videos) / 1e6
        g = np.random.default_rng(args.seed)
        clips = [sample("dense", args.frames, args.clip_len, generator=g)[0] for _ in videos]  # one training clip a video
        decoded = sum(int(c.max()) + 1 for c in clips)
        n = len(videos)
        print(f"{n} mp4 videos x {args.frames} frames {w}x{h} ({mb:.2f} MB), one {args.clip_len}-frame dense clip each "
              f"(random start), resized to {args.size}x{args.size}; {decoded} frames decoded an epoch; median of {args.repeats}")

        # the three readers agree (the same frames: only their colour conversions differ slightly)
        ref = [pyav_clip(p, c, args.size) for p, c in zip(videos, clips, strict=True)]
        ours = [read_video(p, size=args.size, indices=c) for p, c in zip(videos, clips, strict=True)]
        whole = [VideoCache(None).frames(p, args.size)[c] for p, c in zip(videos, clips, strict=True)]
        assert all(np.array_equal(a, b) for a, b in zip(ours, whole, strict=True))  # the same frames, however read
        ocv = [opencv_clip(p, c, args.size) for p, c in zip(videos, clips, strict=True)]
        diff = max(float(np.abs(a.astype(np.int16) - b).mean()) for a, b in zip(ours, ref, strict=True))
        diff_cv = max(float(np.abs(a.astype(np.int16) - b).mean()) for a, b in zip(ocv, ref, strict=True))
        assert all(a.shape == (args.clip_len, args.size, args.size, 3) for a in ours + ref + ocv)
        print(f"check: mean |vislab - pyav| = {diff:.2f}, |opencv - pyav| = {diff_cv:.2f} (0..255, per clip, worst)")

        def vislab_epoch():
            cache = VideoCache(None)
            for p, c in zip(videos, clips, strict=True):
                cache.clip(p, c, args.size)

        def pyav_epoch():
            for p, c in zip(videos, clips, strict=True):
                pyav_clip(p, c, args.size)

        def pyav1_epoch():
            for p, c in zip(videos, clips, strict=True):
                pyav_clip(p, c, args.size, threads=1)

        def opencv_epoch():
            for p, c in zip(videos, clips, strict=True):
                opencv_clip(p, c, args.size)

        cache_root = tmp / "cache"

        def cached_epoch():
            cache = VideoCache(cache_root)
            for p, c in zip(videos, clips, strict=True):
                cache.clip(p, c, args.size)
            return cache

        def empty_cache():
            shutil.rmtree(cache_root, ignore_errors=True)

        def whole_epoch():
            cache = VideoCache(None)
            for p, c in zip(videos, clips, strict=True):
                np.ascontiguousarray(cache.frames(p, (args.size, args.size), False)[c])

        t = epoch_seconds({"vislab": vislab_epoch, "pyav": pyav_epoch, "pyav1": pyav1_epoch, "opencv": opencv_epoch, "whole": whole_epoch,
                           "first": cached_epoch}, args.repeats, before={"first": empty_cache})
        cached_epoch()  # fill the cache (each timed first epoch started empty)
        t["second"] = epoch_seconds({"second": cached_epoch}, args.repeats)["second"]
        st = cached_epoch().stats()
        assert st["hits"] == n and st["misses"] == 0, st
        cache_mb = sum(f.stat().st_size for f in cache_root.glob("*.npy")) / 1e6
        cps = {k: n / v for k, v in t.items()}
        fps = decoded / t["vislab"]
        print(f"[pyav]    plain loop (rgb24, no threads):   {cps['pyav']:8.1f} clips/s ({decoded / t['pyav']:7.0f} decoded frames/s)")
        print(f"[pyav]    tuned (to_ndarray threads=1):  {cps['pyav1']:8.1f} clips/s ({decoded / t['pyav1']:7.0f} decoded frames/s)")
        print(f"[opencv]  cv2.VideoCapture grab/read:      {cps['opencv']:8.1f} clips/s ({decoded / t['opencv']:7.0f} decoded frames/s)")
        print(f"[vislab]  VideoCache(None).clip:           {cps['vislab']:8.1f} clips/s ({fps:7.0f} decoded frames/s); "
              f"vislab/pyav = {cps['vislab'] / cps['pyav']:.2f}x, vislab/opencv = {cps['vislab'] / cps['opencv']:.2f}x, "
              f"vislab/tuned pyav = {cps['vislab'] / cps['pyav1']:.2f}x")
        print(f"[vislab]  VideoCache(None).frames()[clip]: {cps['whole']:8.1f} clips/s (decodes and resizes all {args.frames} frames); "
              f"frames/clip = {cps['whole'] / cps['vislab']:.2f}x")
        print(f"[cache]   first epoch (decode + write):    {cps['first']:8.1f} clips/s; {cache_mb:.1f} MB of .npy written")
        print(f"[cache]   second epoch (memory-mapped):    {cps['second']:8.1f} clips/s; cached/first = {cps['second'] / cps['first']:.1f}x, "
              f"cached/uncached clip = {cps['second'] / cps['vislab']:.1f}x")
        print(f"summary: {args.clip_len}-frame clips at {args.size}px from {w}x{h} mp4: vislab/pyav = {cps['vislab'] / cps['pyav']:.2f}x "
              f"({cps['vislab']:.0f} vs {cps['pyav']:.0f} clips/s; {cps['vislab'] / cps['pyav1']:.2f}x of tuned pyav), "
              f"vislab/opencv = {cps['vislab'] / cps['opencv']:.2f}x; "
              f"cache: cached/first = {cps['second'] / cps['first']:.0f}x ({cps['second']:.0f} vs {cps['first']:.0f} clips/s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark (not a test): super-resolution inference throughput of vislab's models vs OpenCV bicubic upscaling.

Run: ``.venv/bin/python bench/sr_speed.py [--size 256] [--scale 2] [--repeats 3] [--threads N]``

Throughput is megapixels per second of *output* pixels, upscaling one RGB image (scikit-image's astronaut, resized
to ``--size`` x ``--size`` with ``cv2.INTER_AREA``) by ``--scale``:

1. Baseline: ``cv2.resize(..., interpolation=cv2.INTER_CUBIC)`` on the uint8 image.
2. vislab's ``edsr`` (EDSR-baseline, width 64, 16 blocks, global skip), a small ``edsr`` (width 32, 4 blocks) and
   ``srcnn``, built from the registry with random weights (speed does not depend on them), in eval mode under
   ``torch.no_grad`` on a prepared float tensor in [-1, 1] (the uint8 -> float conversion is not timed), each
   (a) as the plain fp32 forward, (b) with vislab's precision policy (``resolve_precision("auto")``: bf16 autocast
   and channels_last for model and input on a CPU with AVX-512-BF16/AMX, else fp32 -- then (b) *is* (a) and is not
   measured twice), (c) in fp32 through ``vislab.models.translate.tiling.tiled`` (``--tile`` 128, ``--overlap`` 16),
   whose overlapping tiles recompute part of the image (the work factor is printed).
Each timing is the median of ``--repeats`` measurements with ``time.perf_counter`` after one warm-up run (two for
runs under a second); a fast function is called several times per measurement so that one lasts >= 0.2 s.
The default size is 256 px: at 512 px EDSR-64x16 alone takes about 7 s a forward on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch
from skimage import data as skdata

from vislab.core.device import resolve_precision
from vislab.models.registry import MODELS
from vislab.models.translate.tiling import _spans, tiled

CONFIGS = (  # label, registry name, kwargs (in_chans and scale added)
    ("edsr-64x16", "edsr", {"width": 64, "n_blocks": 16, "global_skip": True}),
    ("edsr-32x4", "edsr", {"width": 32, "n_blocks": 4, "global_skip": True}),
    ("srcnn", "srcnn", {}),
)


def seconds_per_call(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of one ``fn()`` call over ``repeats`` measurements, after one or two warm-up calls."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first < 1.0:
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
    calls = max(1, int(0.2 / max(first, 1e-6)))  # calls per measurement
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def ratio(r: float) -> str:
    return f"{r:.3g}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="input side in pixels (the astronaut is resized to it)")
    ap.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads (default: their own defaults)")
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--overlap", type=int, default=16)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    dev = torch.device("cpu")
    prec = resolve_precision("auto", dev)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; opencv {cv2.__version__}, {cv2.getNumThreads()} threads; "
          f"auto precision here = {prec.name} (autocast {prec.dtype}, channels_last {prec.channels_last})")

    s, n = args.scale, args.size
    img = skdata.astronaut()  # (512, 512, 3) uint8 RGB
    if img.shape[:2] != (n, n):
        img = cv2.resize(img, (n, n), interpolation=cv2.INTER_AREA if n < img.shape[0] else cv2.INTER_CUBIC)
    img = np.ascontiguousarray(img)
    out_mp = (n * s) ** 2 / 1e6
    rows, cols = _spans(n, args.tile, args.overlap), _spans(n, args.tile, args.overlap)
    th, tw = min(n, args.tile), min(n, args.tile)
    work = len(rows) * len(cols) * th * tw / (n * n)
    print(f"input {n}x{n} RGB -> output {n * s}x{n * s} (x{s}, {out_mp:.3f} MP); tiled: {len(rows) * len(cols)} tiles of "
          f"{th}x{tw} px (overlap {args.overlap}), {work:.2f}x the input pixels")

    cv_s = seconds_per_call(lambda: cv2.resize(img, (n * s, n * s), interpolation=cv2.INTER_CUBIC), args.repeats)
    cv_mps = out_mp / cv_s
    print(f"[opencv] bicubic uint8: {cv_mps:10.2f} MP/s ({cv_s * 1e3:.2f} ms)")

    x32 = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).float().div(127.5).sub(1).contiguous()
    results = {}
    for label, name, kw in CONFIGS:
        torch.manual_seed(0)
        model = MODELS.build(name, in_chans=3, scale=s, **kw).eval()
        with torch.no_grad():
            fp32_s = seconds_per_call(lambda m=model: m(x32), args.repeats)
            tiled_s = seconds_per_call(lambda m=model: tiled(m, x32, tile=args.tile, overlap=args.overlap, scale=s), args.repeats)
            if prec.dtype is None:
                pol_s = fp32_s  # the policy is fp32 here: the same run
            else:
                mp = model.to(memory_format=torch.channels_last) if prec.channels_last else model
                xp = x32.contiguous(memory_format=torch.channels_last) if prec.channels_last else x32

                def policy_forward(mp=mp, xp=xp):
                    with torch.autocast(device_type="cpu", dtype=prec.dtype):
                        return mp(xp)

                pol_s = seconds_per_call(policy_forward, args.repeats)
        f, p, t = out_mp / fp32_s, out_mp / pol_s, out_mp / tiled_s
        results[label] = (f, p, t)
        same = " (= fp32: no bf16 on this CPU)" if prec.dtype is None else ""
        print(f"[{label}] fp32 {f:8.3f} MP/s ({fp32_s:.3f} s) | policy {prec.name} {p:8.3f} MP/s{same} | "
              f"tiled fp32 {t:8.3f} MP/s ({tiled_s:.3f} s)")
        pol_vs_cv = f"{label} {prec.name} / opencv bicubic = {ratio(p / cv_mps)}; " if prec.dtype is not None else ""
        print(f"[{label}]   {label} fp32 / opencv bicubic = {ratio(f / cv_mps)}; {pol_vs_cv}policy/fp32 = {p / f:.2f}x; "
              f"tiled/whole = {t / f:.2f}x")

    f, p, t = results["edsr-64x16"]
    pol = f"{prec.name} {p / f:.2f}x of fp32" if prec.dtype is not None else "policy = fp32 here, no bf16 CPU"
    print(f"summary: x{s} {n}px: opencv bicubic {cv_mps:.0f} MP/s; edsr-64x16 fp32 {f:.3g} MP/s = {ratio(f / cv_mps)} of opencv "
          f"({pol}), tiled {t / f:.2f}x of whole ({work:.2f}x pixels); edsr-32x4 {results['edsr-32x4'][0]:.3g} MP/s, "
          f"srcnn {results['srcnn'][0]:.3g} MP/s")


if __name__ == "__main__":
    main()

"""COCO bbox evaluation time: vislab (faster-coco-eval) vs pycocotools on the same detections.

Usage: ``python bench/eval_speed.py [--images 2000]``. Prints both times, the ratio, and that the
twelve COCO numbers agree (max |difference|).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "detect"))


def main() -> None:
    from test_det_metrics import fixed_detections

    from vislab.metrics.detection import STAT_NAMES, coco_evaluate

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    gt, dets = fixed_detections(a.images, a.classes, seed=1)
    times, res = {}, {}
    for backend in ("pycocotools", "faster"):
        best = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            res[backend] = coco_evaluate(gt, dets, backend=backend)
            best = min(best, time.perf_counter() - t)
        times[backend] = best
    diff = max(abs(res["faster"][n] - res["pycocotools"][n]) for n in STAT_NAMES)
    print(f"COCO bbox eval on {a.images} images, {len(gt['annotations'])} objects, {len(dets)} detections, {a.classes} classes "
          f"(best of {a.repeat}):")
    print(f"  pycocotools            {times['pycocotools']:.3f} s")
    print(f"  vislab (faster-coco-eval) {times['faster']:.3f} s")
    print(f"  speed-up {times['pycocotools'] / times['faster']:.1f}x; max |AP difference| {diff:.1e}; mAP {res['faster']['map']:.4f}")


if __name__ == "__main__":
    main()

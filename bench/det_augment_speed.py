"""Joint detection augmentation (images + boxes + masks): vislab's batched warp vs torchvision v2 per image.

Usage: ``python bench/det_augment_speed.py [--images 256 --size 64]``. Both sides do the same kind of work on the
same generated batch: horizontal flip, zoom 0.5-1.5 about the centre, shift, brightness/contrast/saturation, boxes
and instance masks moved with the image and sanitised (torchvision: ``RandomHorizontalFlip``, ``RandomAffine``,
``ColorJitter``, ``SanitizeBoundingBoxes``, one call per image -- how a torchvision v2 pipeline is used in a
Dataset). The SSD recipe (``--augment ssd``, per image, with ``RandomIoUCrop``) is timed too. Last line: the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    from torchvision import tv_tensors as tvt
    from torchvision.transforms import v2

    from vislab.data.detect import shapes_detection
    from vislab.data.detect.augment import JointAugment

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = shapes_detection(a.images, size=a.size, objects=(1, 3), seed=0)
    x = torch.from_numpy(ds.pixels).float() / 255
    targets = [{"boxes": torch.from_numpy(im.boxes), "labels": torch.from_numpy(im.labels), "masks": torch.from_numpy(im.masks)} for im in ds.images]
    tv = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomAffine(degrees=0, translate=(0.2, 0.2), scale=(0.5, 1.5)),
                     v2.ColorJitter(0.4, 0.4, 0.4), v2.SanitizeBoundingBoxes(min_size=2)])
    s = a.size

    def torchvision_per_image():
        for i, t in enumerate(targets):
            tv({"image": tvt.Image(x[i]), "boxes": tvt.BoundingBoxes(t["boxes"], format="XYXY", canvas_size=(s, s)),
                "masks": tvt.Mask(t["masks"]), "labels": t["labels"]})

    ours, ssd = JointAugment("strong"), JointAugment("ssd")
    p = ours.sample(len(targets), torch.Generator().manual_seed(0))

    def best(fn) -> float:
        out = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            fn()
            out = min(out, time.perf_counter() - t0)
        return out

    t_tv = best(torchvision_per_image)
    t_ours = best(lambda: ours(x, targets, p))
    t_ssd = best(lambda: ssd(x, targets, p))
    n = len(targets)
    print(f"{n} images {s}x{s}, {sum(len(t['boxes']) for t in targets)} boxes with masks, {a.threads} thread(s), best of {a.repeat}:")
    print(f"  torchvision v2, per image (flip, affine, jitter, sanitize) {t_tv * 1e3 / n:8.3f} ms/image")
    print(f"  vislab --augment strong (batched warp)                    {t_ours * 1e3 / n:8.3f} ms/image")
    print(f"  vislab --augment ssd (torchvision v2 SSD recipe per image) {t_ssd * 1e3 / n:8.3f} ms/image")
    print(f"vislab batched / torchvision per-image = {t_tv / t_ours:.1f}x faster")


if __name__ == "__main__":
    main()

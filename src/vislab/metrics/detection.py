"""COCO detection metrics through faster-coco-eval (same numbers as pycocotools, several times faster).

:func:`coco_evaluate` scores detections (COCO results: ``image_id, category_id, bbox [x, y, w, h], score``)
against a COCO ground-truth dict: AP@[.50:.95], AP50, AP75, AP small/medium/large, AR@1/10/100,
AR small/medium/large, per-class AP and the precision-recall curves; ``iou_type="segm"`` scores instance
masks (COCO RLE ``segmentation``, see :func:`encode_masks`) the same way. ``backend="pycocotools"`` runs
the reference implementation on the same input (used by the parity tests and ``bench/eval_speed.py``).
:class:`DetectionMetrics` is the trainer-facing accumulator (``update`` / ``sync`` / ``compute``); when the
predictions and targets carry masks it reports mask AP beside box AP (``mask_map``, ``mask_map50``, ...).

Example:
    >>> gt = {"images": [{"id": 1, "width": 10, "height": 10}], "categories": [{"id": 1, "name": "a"}],
    ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0}]}
    >>> r = coco_evaluate(gt, [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.9}])
    >>> round(r["map"], 6), round(r["map50"], 6)
    (1.0, 1.0)
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch

STAT_NAMES = ("map", "map50", "map75", "map_small", "map_medium", "map_large",
              "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large")  # fmt: skip


def coco_evaluate(gt: dict, dets: list[dict], backend: str = "faster", iou_type: str = "bbox") -> dict[str, Any]:
    """COCO metrics of ``dets`` against ``gt``.

    Returns:
        ``{name: float}`` for :data:`STAT_NAMES` (``-1`` where a size range has no objects, as COCO does),
        ``per_class`` ``{class name: AP@[.50:.95]}``, ``precision`` ``(T=10, R=101, K, A=4, M=3)`` and
        ``recall_thresholds`` ``(101,)``.
    """
    if backend == "faster":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    elif backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval
    else:
        raise ValueError(f"coco_evaluate: expected backend 'faster' or 'pycocotools', got {backend!r}")
    cats = gt["categories"]
    k = len(cats)
    if not dets or not gt["annotations"]:
        empty = {n: (0.0 if gt["annotations"] else -1.0) for n in STAT_NAMES}
        return {**empty, "per_class": {c["name"]: empty["map"] for c in cats}, "precision": np.full((10, 101, k, 4, 3), -1.0),
                "recall_thresholds": np.linspace(0, 1, 101)}
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = {"info": {}, **gt}
        cg.createIndex()
        cd = cg.loadRes([dict(d) for d in dets])
        ev = Eval(cg, cd, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [float(s) for s in ev.stats[:12]]
    prec = np.asarray(ev.eval["precision"], dtype=np.float64)  # (T, R, K, A, M)
    per_class = {}
    for i, c in enumerate(sorted(cats, key=lambda c: c["id"])):
        p = prec[:, :, i, 0, -1]
        per_class[c["name"]] = float(p[p > -1].mean()) if (p > -1).any() else -1.0
    return {**dict(zip(STAT_NAMES, stats, strict=True)), "per_class": per_class, "precision": prec,
            "recall_thresholds": np.asarray(ev.params.recThrs)}


MASK_STAT_NAMES = tuple(f"mask_{n}" for n in STAT_NAMES)


def encode_masks(masks: np.ndarray | torch.Tensor, thresh: float = 0.5) -> list[dict]:
    """COCO RLEs (``{"size": [H, W], "counts": str}``, pycocotools' encoding) of ``masks (N, H, W)``: binary,
    or probabilities binarised at ``thresh``.

    Example:
        >>> m = np.zeros((1, 4, 5), np.uint8); m[0, 1:3, 2:4] = 1
        >>> encode_masks(m)
        [{'size': [4, 5], 'counts': '92203'}]
    """
    from faster_coco_eval.core.mask import encode

    m = masks.detach().float().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    if m.dtype.kind == "f":
        m = m >= thresh
    if len(m) == 0:
        return []
    rles = encode(np.asfortranarray(m.astype(np.uint8).transpose(1, 2, 0)))
    return [{"size": [int(v) for v in r["size"]], "counts": r["counts"].decode() if isinstance(r["counts"], bytes) else r["counts"]} for r in rles]


def mask_area(rle: dict) -> float:
    """Pixel count of a COCO RLE."""
    from faster_coco_eval.core.mask import area

    return float(area({**rle, "counts": rle["counts"].encode() if isinstance(rle["counts"], str) else rle["counts"]}))


def detections_to_coco(image_id: int, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, masks: list[dict] | None = None) -> list[dict]:
    """COCO results of one image from ``boxes (N, 4) xyxy``, ``scores (N,)``, ``labels (N,)`` (0-based; ids are label+1)
    and optionally ``masks``, one RLE per detection (:func:`encode_masks`), as ``segmentation``."""
    out = [{"image_id": int(image_id), "category_id": int(c) + 1, "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
            "score": float(s)} for b, s, c in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True)]
    if masks is not None:
        for r, m in zip(out, masks, strict=True):
            r["segmentation"] = m
    return out


class DetectionMetrics:
    """Accumulates predictions and targets per image; COCO metrics over all processes.

    ``update(preds, targets)`` takes lists (one per image) of dicts with ``boxes (N, 4)`` xyxy,
    ``labels (N,)`` and, for predictions, ``scores (N,)``. When both carry ``masks (N, H, W)`` (targets
    binary, predictions binary or probabilities, binarised at 0.5), they are kept as RLEs and scored too.
    """

    def __init__(self, classes: list[str]):
        self.classes = list(classes)
        # per image: gt boxes, gt labels, pred boxes, pred scores, pred labels, (gt RLEs, pred RLEs) or None
        self.items: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[list[dict], list[dict]] | None]] = []

    def update(self, preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]],
               sizes: list[tuple[int, int]] | None = None, image_size: tuple[int, int] | None = None) -> None:
        """Add a batch. When the batch holds resized copies of ``image_size (H, W)``, ``sizes`` gives each image's
        original ``(width, height)``: boxes are scaled and masks resized back to it, so AP small / medium / large
        are judged on the original areas, as COCO defines them."""
        if sizes is not None and image_size is None:
            raise ValueError("DetectionMetrics.update: expected image_size (H, W) of the batch together with sizes")
        for k, (p, t) in enumerate(zip(preds, targets, strict=True)):
            gb, pb = t["boxes"].detach().float().cpu(), p["boxes"].detach().float().cpu()
            gm, pm = (t["masks"], p["masks"]) if "masks" in p and "masks" in t else (None, None)
            if sizes is not None and tuple(sizes[k]) != (image_size[1], image_size[0]):
                ow, oh = sizes[k]
                scale = torch.tensor([ow / image_size[1], oh / image_size[0]] * 2)
                gb, pb = gb * scale, pb * scale
                if gm is not None:
                    gm, pm = _resize_masks(gm, (oh, ow), nearest=True), _resize_masks(pm, (oh, ow), nearest=False)
            masks = (encode_masks(gm), encode_masks(pm)) if gm is not None else None
            self.items.append((gb.numpy(), t["labels"].cpu().numpy(), pb.numpy(), p["scores"].detach().float().cpu().numpy(),
                               p["labels"].cpu().numpy(), masks))

    @property
    def has_masks(self) -> bool:
        return bool(self.items) and all(it[5] is not None for it in self.items)

    def sync(self) -> None:
        from vislab.core.dist import all_gather_list

        self.items = all_gather_list(self.items)

    def coco(self, iou_type: str = "bbox") -> tuple[dict, list[dict]]:
        """The ground truth as a COCO dict and the predictions as COCO results (``iou_type="segm"``: with the
        masks as RLE ``segmentation`` and the ground truth's ``area`` the mask's, as COCO has it)."""
        segm = iou_type == "segm"
        images, anns, dets = [], [], []
        for i, (gb, gl, pb, ps, pl, masks) in enumerate(self.items, 1):
            gm, pm = masks if segm and masks is not None else (None, None)
            h, w = (gm[0] if gm else pm[0] if pm else {"size": [0, 0]})["size"]
            images.append({"id": i, "width": w, "height": h})
            for j, (b, c) in enumerate(zip(gb.tolist(), gl.tolist(), strict=True)):
                bw, bh = b[2] - b[0], b[3] - b[1]
                a = {"id": len(anns) + 1, "image_id": i, "category_id": int(c) + 1, "bbox": [b[0], b[1], bw, bh], "area": bw * bh, "iscrowd": 0}
                if segm:
                    a.update(segmentation=gm[j], area=mask_area(gm[j]))
                anns.append(a)
            for d in detections_to_coco(i, pb, ps, pl, pm if segm else None):
                if segm:  # COCO segm results: the box and the area (which decides the size range) come from the mask
                    del d["bbox"]
                dets.append(d)
        cats = [{"id": k + 1, "name": n} for k, n in enumerate(self.classes)]
        return {"images": images, "annotations": anns, "categories": cats}, dets

    def confusion(self, iou: float = 0.5, score: float = 0.25) -> np.ndarray:
        """Class confusion of the detections ``(K + 1, K + 1)``: rows are the true class, columns the predicted one, the
        last row and column "background". Per image, predictions scoring ``>= score`` are matched to ground-truth
        boxes greedily by falling IoU (``>= iou``, any class); a matched pair counts at ``[true, predicted]``, a missed
        object at ``[true, K]``, a detection of nothing at ``[K, predicted]``.

        Example:
            >>> m = DetectionMetrics(["a", "b"])
            >>> box = torch.tensor([[0.0, 0, 10, 10]])
            >>> m.update([{"boxes": torch.cat([box, box + 20]), "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 1])}],
            ...          [{"boxes": box, "labels": torch.tensor([0])}])
            >>> m.confusion().tolist()  # the "a" was called "b"; a "b" was found where there was nothing
            [[0, 1, 0], [0, 0, 0], [0, 1, 0]]
        """
        from torchvision.ops import box_iou

        k = len(self.classes)
        cm = np.zeros((k + 1, k + 1), dtype=np.int64)
        for gb, gl, pb, ps, pl, _ in self.items:
            keep = ps >= score
            pb, pl = pb[keep], pl[keep]
            matched_g, matched_p = set(), set()
            if len(gb) and len(pb):
                ious = box_iou(torch.as_tensor(gb, dtype=torch.float32), torch.as_tensor(pb, dtype=torch.float32)).numpy()
                for flat in np.argsort(-ious, axis=None):
                    g, q = np.unravel_index(flat, ious.shape)
                    if ious[g, q] < iou:
                        break
                    if g not in matched_g and q not in matched_p:
                        matched_g.add(g)
                        matched_p.add(q)
                        cm[int(gl[g]), int(pl[q])] += 1
            for g in range(len(gb)):
                if g not in matched_g:
                    cm[int(gl[g]), k] += 1
            for q in range(len(pb)):
                if q not in matched_p:
                    cm[k, int(pl[q])] += 1
        return cm

    def compute_full(self) -> dict[str, Any]:
        """Box metrics (:func:`coco_evaluate`) and the class confusion (``confusion``, :meth:`confusion`); with masks, also
        ``mask``: the same for the masks, and ``mask_*`` scalars."""
        r = coco_evaluate(*self.coco())
        r["confusion"] = self.confusion()
        if self.has_masks:
            m = coco_evaluate(*self.coco("segm"), iou_type="segm")
            r.update({f"mask_{n}": m[n] for n in STAT_NAMES}, mask=m)
        return r

    def compute(self) -> dict[str, float]:
        r = self.compute_full()
        return {n: r[n] for n in STAT_NAMES + MASK_STAT_NAMES if n in r}


def _resize_masks(m: torch.Tensor, size: tuple[int, int], nearest: bool) -> torch.Tensor:
    """Masks ``(n, h, w)`` to ``size (H, W)``: nearest for binary masks, bilinear for probabilities."""
    if len(m) == 0:
        return torch.zeros(0, *size)
    mode = {"mode": "nearest"} if nearest else {"mode": "bilinear", "align_corners": False}
    return torch.nn.functional.interpolate(m.detach().float().cpu()[:, None], size=size, **mode)[:, 0]

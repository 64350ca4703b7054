"""Detection post-processing shared by vislab's detectors: score threshold, per-class NMS or soft-NMS, max detections.

Example:
    >>> b = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    >>> s = torch.tensor([[0.9], [0.8], [0.7]])  # (N, K=1)
    >>> out = postprocess(b, s, score_thresh=0.05, iou_thresh=0.5)
    >>> out["boxes"].shape, out["labels"].tolist()
    (torch.Size([2, 4]), [0, 0])
"""

from __future__ import annotations

import torch
from torchvision.ops import batched_nms, box_iou


def soft_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, sigma: float = 0.5, score_thresh: float = 0.001) -> torch.Tensor:
    """Gaussian soft-NMS (Bodla et al. 2017), per class: overlapping boxes have their score decayed by
    ``exp(-iou^2 / sigma)`` instead of being removed. Returns the kept indices, by decayed score; ``scores`` is updated in place.

    Args:
        boxes: ``(N, 4)`` xyxy. scores: ``(N,)``. labels: ``(N,)``.
    """
    keep: list[int] = []
    s = scores.clone()
    iou = box_iou(boxes, boxes)
    same = labels[:, None] == labels[None, :]
    alive = torch.ones(len(s), dtype=torch.bool)
    while bool(alive.any()):
        i = int(torch.where(alive, s, torch.tensor(-1.0)).argmax())
        alive[i] = False
        if s[i] < score_thresh:
            break
        keep.append(i)
        decay = torch.exp(-(iou[i] ** 2) / sigma)
        s = torch.where(alive & same[i], s * decay, s)
    scores.copy_(s)
    k = torch.tensor(keep, dtype=torch.long)
    return k[scores[k].argsort(descending=True)] if len(k) else k


def postprocess(boxes: torch.Tensor, scores: torch.Tensor, score_thresh: float = 0.05, iou_thresh: float = 0.6, max_det: int = 100,
                pre_nms: int = 1000, method: str = "nms") -> dict[str, torch.Tensor]:
    """Detections of one image from candidate ``boxes (N, 4)`` xyxy and class ``scores (N, K)`` in [0, 1].

    Returns:
        ``{"boxes": (M, 4), "scores": (M,), "labels": (M,)}``, ``M <= max_det``, sorted by score.
    """
    k = scores.shape[1]
    flat = scores.reshape(-1)
    cand = torch.nonzero(flat > score_thresh).squeeze(1)
    if len(cand) > pre_nms:
        cand = cand[flat[cand].topk(pre_nms).indices]
    sc, idx, lab = flat[cand], cand // k, cand % k
    bx = boxes[idx]
    if method == "soft":
        sc = sc.clone()
        keep = soft_nms(bx.float(), sc, lab, score_thresh=score_thresh)
    else:
        keep = batched_nms(bx.float(), sc.float(), lab, iou_thresh)
    keep = keep[:max_det]
    return {"boxes": bx[keep], "scores": sc[keep], "labels": lab[keep]}

"""vislab's compact anchor-free one-stage detector ("YOLO-style", FCOS-like assignment).

Readable and fast on a CPU::

    image (B, C, H, W)
      -> backbone: multi-scale features, the built-in tiny CNN (strides 4, 8, 16; the last 3 levels used) or any
         registry classifier's ``feature_pyramid`` (``backbone="resnet18"``, ``"timm:..."``)
      -> neck: FPN-lite (1x1 laterals, top-down nearest upsampling + add, 3x3 smoothing)  -> (B, C_n, H_l, W_l)
      -> head, shared over levels (GroupNorm, as in FCOS): class logits (K), box distances l, t, r, b (softplus x stride), centerness
    per location: box = (x - l, y - t, x + r, y + b), score = sqrt(sigmoid(cls) * sigmoid(centerness))

Training targets (FCOS): a location is positive for a box when it lies inside the box, within
``center_radius`` strides of its centre, and its largest distance to the box sides fits the level's range;
several candidates -> the smallest box; a box that gets no location takes the nearest one. Losses: sigmoid
focal loss (classes), GIoU loss weighted by centerness (boxes), BCE (centerness), each normalised by the
number of positives of the batch. ``forward(x, targets)`` returns the losses; ``forward(x)`` the detections
(score threshold, per-class NMS or soft-NMS, max detections); ``forward_raw(x)`` the dense boxes and scores.

Example:
    >>> m = yolo_tiny(num_classes=3, width=8).eval()
    >>> dets = m(torch.zeros(2, 3, 64, 48))
    >>> len(dets), sorted(dets[0])
    (2, ['boxes', 'labels', 'scores'])
    >>> boxes, scores = m.forward_raw(torch.zeros(1, 3, 64, 48))
    >>> boxes.shape[-1], scores.shape[-1]
    (4, 3)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from vislab.models.registry import MODELS, register_model
from vislab.models.detect.post import postprocess


def _cba(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU(inplace=True))


def _cgn(c: int) -> nn.Sequential:
    """Conv-GroupNorm-SiLU for the head shared over pyramid levels: BatchNorm there would normalise each level with
    its own batch statistics in training but with running statistics blended over all levels in evaluation --
    measured: boxes 1.5-2 px too large per side at test time (AP75 0.03-0.08), unbiased in training mode."""
    return nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.GroupNorm(math.gcd(c, 8), c), nn.SiLU(inplace=True))


class _Res(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.f = nn.Sequential(_cba(c, c // 2, 1), _cba(c // 2, c, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class TinyBackbone(nn.Module):
    """Conv-BN-SiLU stages with residual blocks; features at strides 4, 8, 16 with ``2w, 4w, 8w`` channels
    (fine strides: the generated and small images this detector is for have objects of 8-40 px)."""

    def __init__(self, in_chans: int = 3, width: int = 16):
        super().__init__()
        w = width
        self.stem = _cba(in_chans, w, 3, 2)  # stride 2
        self.stages = nn.ModuleList([
            nn.Sequential(_cba(w, 2 * w, 3, 2), _Res(2 * w)),  # stride 4
            nn.Sequential(_cba(2 * w, 4 * w, 3, 2), _Res(4 * w)),  # stride 8
            nn.Sequential(_cba(4 * w, 8 * w, 3, 2), _Res(8 * w)),  # stride 16
        ])

    def feature_pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for s in self.stages:
            x = s(x)
            out.append(x)
        return out


class YoloDetector(nn.Module):
    """See the module docstring. ``num_classes`` excludes the background."""

    def __init__(self, num_classes: int, backbone: nn.Module, in_chans: int = 3, neck_width: int = 64, levels: int = 3,
                 center_radius: float = 1.5, score_thresh: float = 0.05, nms_iou: float = 0.6, max_det: int = 100, nms: str = "nms"):
        super().__init__()
        self.num_classes, self.center_radius = num_classes, center_radius
        self.score_thresh, self.nms_iou, self.max_det, self.nms = score_thresh, nms_iou, max_det, nms
        self.backbone = backbone
        with torch.no_grad():  # channels and strides of the levels used, from a dry run
            was = backbone.training
            backbone.eval()
            feats = backbone.feature_pyramid(torch.zeros(1, in_chans, 128, 128))[-levels:]
            backbone.train(was)
        self.strides = [128 // f.shape[-1] for f in feats]
        self.lateral = nn.ModuleList([nn.Conv2d(f.shape[1], neck_width, 1) for f in feats])
        self.smooth = nn.ModuleList([_cba(neck_width, neck_width) for _ in feats])
        self.tower = nn.Sequential(_cgn(neck_width), _cgn(neck_width))  # shared by the levels: GroupNorm, not BatchNorm
        self.cls = nn.Conv2d(neck_width, num_classes, 3, padding=1)
        self.reg = nn.Conv2d(neck_width, 4, 3, padding=1)
        self.ctr = nn.Conv2d(neck_width, 1, 3, padding=1)
        nn.init.constant_(self.cls.bias, -math.log(99.0))  # prior 0.01: focal-loss start
        nn.init.zeros_(self.reg.bias)

    # -- dense outputs -------------------------------------------------------------------------
    def _levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.backbone.feature_pyramid(x)[-len(self.lateral):]
        lat = [m(f) for m, f in zip(self.lateral, feats, strict=True)]
        for i in range(len(lat) - 2, -1, -1):  # top-down
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[-2:], mode="nearest")
        return [s(f) for s, f in zip(self.smooth, lat, strict=True)]

    def dense(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per location over all levels: points ``(L, 2)``, strides ``(L,)``, boxes ``(B, L, 4)``, class logits ``(B, L, K)``, centerness logits ``(B, L)``."""
        pts, strides, boxes, cls, ctr = [], [], [], [], []
        for f, s in zip(self._levels(x), self.strides, strict=True):
            b, _, h, w = f.shape
            t = self.tower(f)
            ys, xs = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
            p = (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * s  # (h*w, 2) cell centres, pixels
            d = F.softplus(self.reg(t).float()).permute(0, 2, 3, 1).reshape(b, -1, 4) * s  # (b, hw, 4) l t r b
            boxes.append(torch.cat([p - d[..., :2], p + d[..., 2:]], -1))
            cls.append(self.cls(t).float().permute(0, 2, 3, 1).reshape(b, -1, self.num_classes))
            ctr.append(self.ctr(t).float().reshape(b, -1))
            pts.append(p)
            strides.append(torch.full((h * w,), float(s), device=x.device))
        return torch.cat(pts), torch.cat(strides), torch.cat(boxes, 1), torch.cat(cls, 1), torch.cat(ctr, 1)

    def forward_raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense boxes ``(B, L, 4)`` xyxy and class scores ``(B, L, K)`` in [0, 1], before post-processing."""
        _, _, boxes, cls, ctr = self.dense(x)
        return boxes, torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr)[..., None])

    def forward(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None):
        """Losses ``{"cls", "box", "ctr"}`` with ``targets`` (list of ``{"boxes": (N, 4), "labels": (N,)}``), else detections."""
        if targets is not None:
            return self.loss(*self.dense(x), targets)
        boxes, scores = self.forward_raw(x)
        h, w = x.shape[-2:]
        boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h), boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], -1)
        return [postprocess(b, s, self.score_thresh, self.nms_iou, self.max_det, method=self.nms) for b, s in zip(boxes, scores, strict=True)]

    # -- training targets and losses ----------------------------------------------------------------
    @torch.no_grad()
    def assign(self, pts: torch.Tensor, strides: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """Index of the box each location learns ``(L,)`` (-1: background), for boxes ``gt (G, 4)``."""
        n = len(pts)
        if len(gt) == 0:
            return torch.full((n,), -1, dtype=torch.long, device=pts.device)
        x, y = pts[:, 0:1], pts[:, 1:2]  # (L, 1)
        ltrb = torch.stack([x - gt[:, 0], y - gt[:, 1], gt[:, 2] - x, gt[:, 3] - y], -1)  # (L, G, 4)
        inside = ltrb.min(-1).values > 0
        c = (gt[:, :2] + gt[:, 2:]) / 2
        r = self.center_radius * strides[:, None]
        near = ((x - c[:, 0]).abs() < r) & ((y - c[:, 1]).abs() < r)
        m = ltrb.max(-1).values
        lo = torch.tensor([0.0] + [4.0 * s for s in self.strides[:-1]], device=pts.device)  # level ranges (lo, hi]
        hi = torch.tensor([4.0 * s for s in self.strides[:-1]] + [float("inf")], device=pts.device)
        lvl = torch.searchsorted(torch.tensor(self.strides, device=pts.device, dtype=torch.float32), strides)
        fits = (m > lo[lvl, None]) & (m <= hi[lvl, None])
        area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None].expand(n, -1).clone()
        area[~(inside & near & fits)] = float("inf")
        best, idx = area.min(1)
        idx[torch.isinf(best)] = -1
        missing = torch.ones(len(gt), dtype=torch.bool, device=pts.device)
        missing[idx[idx >= 0]] = False
        for g in torch.nonzero(missing).flatten().tolist():  # tiny or odd boxes: the nearest free location
            d = ((pts - c[g]) / strides[:, None]).norm(dim=1) + (idx >= 0) * 1e6
            idx[d.argmin()] = g
        return idx

    def loss(self, pts, strides, boxes, cls, ctr, targets) -> dict[str, torch.Tensor]:
        cls_t = torch.zeros_like(cls)
        pos_pred, pos_gt, pos_pts = [], [], []
        pos_mask = torch.zeros(cls.shape[:2], dtype=torch.bool, device=cls.device)
        for i, t in enumerate(targets):
            gt = t["boxes"].float()
            idx = self.assign(pts, strides, gt)
            pos = idx >= 0
            pos_mask[i] = pos
            cls_t[i, pos, t["labels"][idx[pos]]] = 1.0
            pos_pred.append(boxes[i, pos])
            pos_gt.append(gt[idx[pos]])
            pos_pts.append(pts[pos])
        n_pos = max(1.0, float(pos_mask.sum()))
        l_cls = sigmoid_focal_loss(cls, cls_t, reduction="sum") / n_pos
        if pos_mask.any():
            pb, gb, pp = torch.cat(pos_pred), torch.cat(pos_gt), torch.cat(pos_pts)
            lr = torch.stack([pp[:, 0] - gb[:, 0], gb[:, 2] - pp[:, 0]], 1).clamp(min=1e-3)
            tb = torch.stack([pp[:, 1] - gb[:, 1], gb[:, 3] - pp[:, 1]], 1).clamp(min=1e-3)
            ctr_t = torch.sqrt((lr.min(1).values / lr.max(1).values) * (tb.min(1).values / tb.max(1).values))
            l_box = (generalized_box_iou_loss(pb, gb, reduction="none") * ctr_t).sum() / ctr_t.sum().clamp(min=1e-6)
            l_ctr = F.binary_cross_entropy_with_logits(ctr[pos_mask], ctr_t, reduction="sum") / n_pos
        else:  # images without objects still train the classifier; keep the graph connected
            l_box = l_ctr = (boxes.sum() + ctr.sum()) * 0.0
        return {"cls": l_cls, "box": 2.0 * l_box, "ctr": l_ctr}


def _backbone(name: str, in_chans: int, width: int) -> nn.Module:
    if name == "tiny":
        return TinyBackbone(in_chans, width)
    net = MODELS.build(name, num_classes=1, in_chans=in_chans, **({} if name.startswith("timm:") else {"stem": "imagenet"}))
    if not hasattr(net, "feature_pyramid"):
        from vislab.core.errors import ModelError

        raise ModelError(f"detector backbone '{name}': expected a classifier with feature_pyramid(x), got {type(net).__name__}")
    if hasattr(net, "reset_classifier"):
        net.reset_classifier(0)
    return net


@register_model(task="detect", input_size=(3, 64, 64))
def yolo_tiny(num_classes: int = 80, in_chans: int = 3, backbone: str = "tiny", width: int = 16, neck_width: int = 48,
              score_thresh: float = 0.05, nms_iou: float = 0.6, max_det: int = 100, nms: str = "nms", **kw) -> YoloDetector:
    """Compact anchor-free one-stage detector (tiny CNN or any registry backbone, FPN-lite, FCOS-style head)."""
    return YoloDetector(num_classes, _backbone(backbone, in_chans, width), in_chans, neck_width, score_thresh=score_thresh,
                        nms_iou=nms_iou, max_det=max_det, nms=nms, **kw)

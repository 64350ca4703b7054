"""R-CNN (Girshick et al. 2014): a CNN that classifies warped selective-search proposals. Small and readable.

The pipeline, for every image::

    1. proposals   selective search (vislab.ops.proposals, "fast" mode), at most ``max_proposals`` boxes;
                   the search runs on the CPU, so its boxes are cached by image content (see below)
    2. labels      (training) each region takes the class of the ground-truth box it overlaps most when
                   IoU >= 0.5, background when IoU < 0.3, and is ignored in between; the ground-truth boxes
                   themselves (and ``jitter`` randomly shifted copies of each) are added as positives;
                   ``rois_per_image`` regions are sampled, at most ``pos_fraction`` of them positive
    3. warp        every region is cut out of the *image* and resized to ``crop x crop`` pixels (roi_align)
    4. CNN         a small CNN (or any registry classifier) scores K + 1 classes (0 = background) and
                   regresses box deltas (dx, dy, dw, dh) from the region to its ground-truth box
    5. inference   softmax scores of the K classes, proposals moved by the deltas, per-class NMS,
                   ``max_det`` detections (:func:`vislab.models.detect.post.postprocess`)

Losses: cross-entropy over the sampled regions, smooth-L1 on the deltas of the positive ones. Departures from the
paper, for brevity: one network with both heads trained end to end (the paper fine-tunes the CNN, then fits
per-class linear SVMs and per-class box regressors in separate stages; the regression here is class-agnostic);
no 16-pixel context padding around the warped regions. What it keeps, and what makes it slow, is that every
region goes through the whole CNN: Fast R-CNN computes one feature map per image and crops *features* instead.

Selective search on a 64x64 image gives ~10-20 regions that cover the generated objects well (recall at IoU 0.5:
0.99 on generated shapes). The cache maps a hash of the image's bytes to its boxes, and also stores the boxes
mirrored under the hash of the mirrored image (horizontal flips are the training augmentation), so each training
image is searched once per run.

Example:
    >>> m = rcnn(num_classes=2).eval()
    >>> dets = m(torch.rand(2, 3, 64, 64))
    >>> len(dets), sorted(dets[0]), dets[0]["boxes"].shape[1]
    (2, ['boxes', 'labels', 'scores'], 4)
    >>> t = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 30.0]]), "labels": torch.tensor([1])}] * 2
    >>> sorted(m.train()(torch.rand(2, 3, 64, 64), t))
    ['box', 'cls']
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou, roi_align

from vislab.models.registry import register_model
from vislab.models.detect.localize import build_backbone, feature_channels
from vislab.models.detect.post import postprocess
from vislab.ops.proposals import selective_search

DELTA_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # Fast R-CNN's scaling of (dx, dy, dw, dh)
_MAX_LOG_SCALE = math.log(1000.0 / 16)


def encode_deltas(ref: torch.Tensor, gt: torch.Tensor, weights: tuple[float, ...] = DELTA_WEIGHTS) -> torch.Tensor:
    """Deltas ``(N, 4)`` that move boxes ``ref`` onto ``gt`` (both ``(N, 4)`` xyxy): centre shifts in units of the
    region's size and log size ratios (R-CNN's parametrisation), times ``weights``.

    Example:
        >>> ref = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
        >>> decode_deltas(ref, encode_deltas(ref, torch.tensor([[2.0, 1.0, 14.0, 9.0]]))).round().tolist()
        [[2.0, 1.0, 14.0, 9.0]]
    """
    pw, ph = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    px, py = ref[:, 0] + 0.5 * pw, ref[:, 1] + 0.5 * ph
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    wx, wy, ww, wh = weights
    return torch.stack([wx * (gx - px) / pw, wy * (gy - py) / ph, ww * torch.log(gw / pw), wh * torch.log(gh / ph)], 1)


def decode_deltas(ref: torch.Tensor, deltas: torch.Tensor, weights: tuple[float, ...] = DELTA_WEIGHTS) -> torch.Tensor:
    """Boxes ``(N, 4)`` xyxy: ``ref`` moved by ``deltas`` (the inverse of :func:`encode_deltas`)."""
    pw, ph = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    px, py = ref[:, 0] + 0.5 * pw, ref[:, 1] + 0.5 * ph
    wx, wy, ww, wh = weights
    cx, cy = px + deltas[:, 0] / wx * pw, py + deltas[:, 1] / wy * ph
    w = pw * torch.exp((deltas[:, 2] / ww).clamp(max=_MAX_LOG_SCALE))
    h = ph * torch.exp((deltas[:, 3] / wh).clamp(max=_MAX_LOG_SCALE))
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], 1)


def _as_image(x: torch.Tensor) -> torch.Tensor:
    """Normalised images ``(B, C, H, W)`` back to [0, 1] for the search: per image and channel, min-max rescaled
    (the mean/std normalisation is an affine map per channel, so this undoes it up to contrast)."""
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    return ((x - lo) / (hi - lo).clamp(min=1e-6)).float()


class RCNN(nn.Module):
    """See the module docstring. ``num_classes`` excludes the background (class 0 of the classifier)."""

    def __init__(self, num_classes: int, backbone: nn.Module, feat_channels: int, crop: int = 32, hidden: int = 256,
                 mode: str = "fast", max_proposals: int = 100, rois_per_image: int = 24, pos_fraction: float = 0.25,
                 jitter: int = 4, fg_iou: float = 0.5, bg_iou: float = 0.3, score_thresh: float = 0.05, nms_iou: float = 0.5,
                 max_det: int = 100, cache_size: int = 50_000):
        super().__init__()
        self.num_classes, self.crop, self.mode, self.max_proposals = num_classes, crop, mode, max_proposals
        self.rois_per_image, self.pos_fraction, self.jitter, self.fg_iou, self.bg_iou = rois_per_image, pos_fraction, jitter, fg_iou, bg_iou
        self.score_thresh, self.nms_iou, self.max_det, self.cache_size = score_thresh, nms_iou, max_det, cache_size
        self.backbone = backbone
        self.neck = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * feat_channels, hidden), nn.ReLU(inplace=True))
        self.cls = nn.Linear(hidden, num_classes + 1)
        self.box = nn.Linear(hidden, 4)
        nn.init.normal_(self.box.weight, std=0.001)
        nn.init.zeros_(self.box.bias)
        self._cache: dict[bytes, torch.Tensor] = {}  # image hash -> proposals (not part of the state dict)
        self.search_seconds, self.searched = 0.0, 0  # selective-search time and image count (cache misses)

    # -- 1. proposals -------------------------------------------------------------------------------
    def proposals(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Selective-search boxes ``(P, 4)`` per image of the normalised batch ``x`` (cached by content)."""
        import time

        img = _as_image(x.detach()).cpu()
        u8 = (img * 255).round().to(torch.uint8)
        keys = [hashlib.blake2b(u.numpy().tobytes(), digest_size=16).digest() for u in u8]
        miss = [i for i, k in enumerate(keys) if k not in self._cache]
        if miss:
            t0 = time.perf_counter()
            found = selective_search(img[miss], self.mode, max_boxes=self.max_proposals, min_size=2)
            self.search_seconds += time.perf_counter() - t0
            self.searched += len(miss)
            if len(self._cache) + 2 * len(miss) > self.cache_size:
                self._cache.clear()
            w = x.shape[-1]
            for i, b in zip(miss, found, strict=True):
                self._cache[keys[i]] = b
                mirror = hashlib.blake2b(u8[i].flip(-1).numpy().tobytes(), digest_size=16).digest()
                self._cache.setdefault(mirror, torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1))
        return [self._cache[k].to(x.device) for k in keys]

    # -- 3 + 4. warp and classify -------------------------------------------------------------------
    def score_regions(self, x: torch.Tensor, regions: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits ``(R, K + 1)`` and deltas ``(R, 4)`` of every region (a list of ``(n_i, 4)`` per image)."""
        crops = roi_align(x, [r.to(x.dtype) for r in regions], output_size=self.crop, spatial_scale=1.0, sampling_ratio=2, aligned=True)
        h = self.neck(self.backbone(crops))
        return self.cls(h).float(), self.box(h).float()

    def forward(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None):
        """Losses ``{"cls", "box"}`` with ``targets``, else detections ``{"boxes", "scores", "labels"}`` per image."""
        props = self.proposals(x)
        if targets is not None:
            return self.loss(x, props, targets)
        h, w = x.shape[-2:]
        logits, deltas = self.score_regions(x, props)
        out = []
        for p, lg, d in zip(props, logits.split([len(p) for p in props]), deltas.split([len(p) for p in props]), strict=True):
            b = decode_deltas(p.float(), d)
            b = torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1)
            out.append(postprocess(b, lg.softmax(1)[:, 1:], self.score_thresh, self.nms_iou, self.max_det))
        return out

    # -- 2. training regions and losses ------------------------------------------------------------
    def _jittered(self, gt: torch.Tensor, w: int, h: int) -> torch.Tensor:
        """``jitter`` randomly shifted and rescaled copies of each box (positives with something to regress)."""
        g = gt.repeat_interleave(self.jitter, 0)
        bw, bh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
        shift = (torch.rand(len(g), 2, device=g.device) - 0.5) * 0.3 * torch.stack([bw, bh], 1)
        scale = torch.exp((torch.rand(len(g), 2, device=g.device) - 0.5) * 0.4)
        c = (g[:, :2] + g[:, 2:]) / 2 + shift
        half = torch.stack([bw, bh], 1) * scale / 2
        b = torch.cat([c - half, c + half], 1)
        return torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1)

    def sample(self, props: torch.Tensor, gt: torch.Tensor, gt_labels: torch.Tensor, w: int, h: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training regions ``(n, 4)``, their classes ``(n,)`` (0 = background) and matched boxes ``(n, 4)``."""
        regions = torch.cat([props.float(), gt, self._jittered(gt, w, h)]) if len(gt) else props.float()
        regions = regions[(regions[:, 2] - regions[:, 0] >= 1) & (regions[:, 3] - regions[:, 1] >= 1)]
        if len(gt):
            best, idx = box_iou(regions, gt).max(1)
            labels = torch.where(best >= self.fg_iou, gt_labels[idx] + 1, torch.where(best < self.bg_iou, 0, -1))
            matched = gt[idx]
        else:
            labels, matched = torch.zeros(len(regions), dtype=torch.long, device=regions.device), regions
        pos, neg = torch.nonzero(labels > 0).flatten(), torch.nonzero(labels == 0).flatten()
        n_pos = min(len(pos), round(self.rois_per_image * self.pos_fraction))
        n_neg = min(len(neg), self.rois_per_image - n_pos)
        keep = torch.cat([pos[torch.randperm(len(pos), device=pos.device)[:n_pos]], neg[torch.randperm(len(neg), device=neg.device)[:n_neg]]])
        return regions[keep], labels[keep], matched[keep]

    def loss(self, x: torch.Tensor, props: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        regions, labels, matched = zip(*(self.sample(p, t["boxes"].float(), t["labels"].long(), w, h) for p, t in zip(props, targets, strict=True)), strict=True)
        labels_t, matched_t, regions_t = torch.cat(labels), torch.cat(matched), torch.cat(regions)
        logits, deltas = self.score_regions(x, list(regions))
        l_cls = F.cross_entropy(logits, labels_t)
        pos = labels_t > 0
        if pos.any():
            l_box = F.smooth_l1_loss(deltas[pos], encode_deltas(regions_t[pos], matched_t[pos]), beta=1 / 9)
        else:  # no object in the batch: keep the graph connected
            l_box = deltas.sum() * 0.0
        return {"cls": l_cls, "box": l_box}


@register_model(task="detect", input_size=(3, 64, 64))
def rcnn(num_classes: int = 3, in_chans: int = 3, backbone: str = "tiny", width: int = 16, stem: str = "cifar", crop: int = 32,
         hidden: int = 256, mode: str = "fast", max_proposals: int = 100, rois_per_image: int = 24, pos_fraction: float = 0.25,
         jitter: int = 4, score_thresh: float = 0.05, nms_iou: float = 0.5, max_det: int = 100, img_size: int = 64) -> RCNN:
    """R-CNN on selective-search proposals: warped regions -> a small CNN (or ``backbone``) -> K + 1 classes + box deltas.

    ``img_size`` (every detector is built with it) is accepted and ignored: regions are warped to ``crop`` pixels.
    """
    net = build_backbone(backbone, in_chans, stem, width)
    return RCNN(num_classes, net, feature_channels(net, in_chans, crop), crop, hidden, mode, max_proposals, rois_per_image,
                pos_fraction, jitter, score_thresh=score_thresh, nms_iou=nms_iou, max_det=max_det)

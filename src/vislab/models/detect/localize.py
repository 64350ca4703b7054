"""Single-object classification + localization: the course's first "detector".

One image holds exactly one object; the network answers two questions at once, *what* (a class) and *where*
(one box)::

    image (B, C, H, W)
      -> backbone: a small CNN (``backbone="tiny"``, yolo_tiny's: conv-BN-SiLU + residual stages, stride 16) or
         any registry classifier's ``forward_features`` (``backbone="resnet18"``, ``"timm:<name>"``)
      -> class head ("what"): global max + average pooling, linear -> K logits        -> cross-entropy
      -> box head ("where"): adaptive average pooling to a ``grid x grid`` map, flattened, FC + ReLU, linear
         -> 4 numbers, sigmoid -> (cx, cy, w, h) as fractions of the image side
                                                       -> L1 on (cx, cy, w, h) + GIoU loss on the pixel box

The two heads pool differently on purpose: the class should not depend on where the object is (global pooling
is translation-invariant; a class head on the flattened map has to learn every class at every position, and on
1,000 small images it barely beats chance), while the box is all about where (a global pool would throw the
position away).

It is the "classification + localization" setting of ImageNet 2012-2014 (OverFeat, the VGG paper): regression
of one box is easy, but the model cannot say "two objects" or "none", which is why detectors need proposals
(:mod:`vislab.models.detect.rcnn`) or dense predictions (:mod:`vislab.models.detect.yolo`).

The detector interface: ``forward(x, targets)`` returns the losses ``{"cls", "l1", "giou"}`` (means over the
batch) for targets ``[{"boxes": (1, 4) xyxy pixels, "labels": (1,)}, ...]``; ``forward(x)`` returns one
detection per image, ``{"boxes": (1, 4), "scores": (1,), "labels": (1,)}`` (score = the class probability);
``forward_raw(x)`` the same as dense outputs with one location (boxes ``(B, 1, 4)``, scores ``(B, 1, K)``), so ONNX
export and detector CAMs work as for yolo_tiny.

Example:
    >>> m = localizer(num_classes=3).eval()
    >>> dets = m(torch.zeros(2, 3, 64, 64))
    >>> len(dets), dets[0]["boxes"].shape, dets[0]["scores"].shape
    (2, torch.Size([1, 4]), torch.Size([1]))
    >>> t = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 30.0]]), "labels": torch.tensor([2])}] * 2
    >>> sorted(m.train()(torch.zeros(2, 3, 64, 64), t))
    ['cls', 'giou', 'l1']
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_convert, generalized_box_iou_loss

from vislab.core.errors import DataError, ModelError
from vislab.models.registry import MODELS, register_model
from vislab.models.detect.yolo import TinyBackbone


class TinyFeatures(nn.Module):
    """The last (stride 16) map of :class:`~vislab.models.detect.yolo.TinyBackbone`: ``8 * width`` channels."""

    def __init__(self, in_chans: int = 3, width: int = 16):
        super().__init__()
        self.net = TinyBackbone(in_chans, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.feature_pyramid(x)[-1]


class _Features(nn.Module):
    """``forward_features`` of a registry classifier as a module (its classifier head dropped)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


def build_backbone(name: str, in_chans: int = 3, stem: str = "imagenet", width: int = 16) -> nn.Module:
    """``tiny`` (:class:`TinyFeatures`, yolo_tiny's CNN) or a registry classifier's ``forward_features``
    (``resnet18``, ``timm:<name>``; ``stem`` as for classifiers)."""
    if name == "tiny":
        return TinyFeatures(in_chans, width)
    net = MODELS.build(name, num_classes=1, in_chans=in_chans, **({} if name.startswith("timm:") else {"stem": stem}))
    if not hasattr(net, "forward_features"):
        raise ModelError(f"backbone '{name}': expected a classifier with forward_features(x), got {type(net).__name__}")
    if hasattr(net, "reset_classifier"):
        net.reset_classifier(0)
    return _Features(net)


def feature_channels(backbone: nn.Module, in_chans: int, size: int) -> int:
    """Channels of ``backbone``'s output, from a dry run on zeros (in eval mode)."""
    was = backbone.training
    backbone.eval()
    with torch.no_grad():
        c = backbone(torch.zeros(1, in_chans, size, size)).shape[1]
    backbone.train(was)
    return int(c)


class Localizer(nn.Module):
    """See the module docstring. ``num_classes`` excludes any background (every image has its one object)."""

    def __init__(self, num_classes: int, backbone: nn.Module, feat_channels: int, grid: int = 4, hidden: int = 256,
                 drop_rate: float = 0.1, box_weights: tuple[float, float] = (5.0, 2.0)):
        super().__init__()
        self.num_classes, self.box_weights = num_classes, box_weights
        self.backbone = backbone
        self.cls = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(2 * feat_channels, num_classes))
        self.box = nn.Sequential(nn.AdaptiveAvgPool2d(grid), nn.Flatten(), nn.Linear(feat_channels * grid * grid, hidden),
                                 nn.ReLU(inplace=True), nn.Dropout(drop_rate), nn.Linear(hidden, 4))
        nn.init.zeros_(self.box[-1].weight)
        nn.init.zeros_(self.box[-1].bias)  # start at a centred box of half the image side

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits ``(B, K)`` and boxes ``(B, 4)`` as normalised ``(cx, cy, w, h)`` in [0, 1]."""
        f = self.backbone(x)
        pooled = torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], 1)
        return self.cls(pooled).float(), torch.sigmoid(self.box(f).float())

    @staticmethod
    def _to_pixels(cxcywh: torch.Tensor, w: int, h: int) -> torch.Tensor:
        return box_convert(cxcywh, "cxcywh", "xyxy") * cxcywh.new_tensor([w, h, w, h])

    def forward_raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense outputs as the other detectors have them (one location): boxes ``(B, 1, 4)`` xyxy pixels inside the
        image, class probabilities ``(B, 1, K)``."""
        logits, cxcywh = self.heads(x)
        h, w = x.shape[-2:]
        b = self._to_pixels(cxcywh, w, h)
        b = torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1)
        return b[:, None], logits.softmax(1)[:, None]

    def forward(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None):
        """Losses with ``targets`` (one box per image), else one detection per image."""
        if targets is not None:
            h, w = x.shape[-2:]
            return self.loss(*self.heads(x), targets, w, h)
        boxes, probs = self.forward_raw(x)
        scores, labels = probs[:, 0].max(1)
        return [{"boxes": boxes[i], "scores": scores[i:i + 1], "labels": labels[i:i + 1]} for i in range(len(x))]

    def loss(self, logits: torch.Tensor, cxcywh: torch.Tensor, targets: list[dict[str, torch.Tensor]], w: int, h: int) -> dict[str, torch.Tensor]:
        for t in targets:
            if len(t["labels"]) != 1:
                raise DataError(f"localizer: expected exactly one object per image, got {len(t['labels'])} "
                                "(use --objects 1,1 or a multi-object detector)")
        gt = torch.cat([t["boxes"] for t in targets]).float()  # (B, 4) xyxy pixels
        labels = torch.cat([t["labels"] for t in targets]).long()
        scale = gt.new_tensor([w, h, w, h])
        l1 = F.l1_loss(cxcywh, box_convert(gt / scale, "xyxy", "cxcywh"))
        giou = generalized_box_iou_loss(self._to_pixels(cxcywh, w, h), gt, reduction="mean")
        return {"cls": F.cross_entropy(logits, labels), "l1": self.box_weights[0] * l1, "giou": self.box_weights[1] * giou}


@register_model(task="detect", input_size=(3, 64, 64))
def localizer(num_classes: int = 10, in_chans: int = 3, backbone: str = "tiny", width: int = 16, stem: str = "imagenet", grid: int = 4,
              hidden: int = 256, drop_rate: float = 0.1, img_size: int = 64, score_thresh: float = 0.0, nms_iou: float = 1.0,
              max_det: int = 1) -> Localizer:
    """Single-object classification + localization: a CNN backbone, a class head and a box head (CE + L1 + GIoU).

    ``score_thresh``, ``nms_iou`` and ``max_det`` (every detector is built with them) are accepted and ignored:
    there is always exactly one detection per image.
    """
    net = build_backbone(backbone, in_chans, stem, width)
    return Localizer(num_classes, net, feature_channels(net, in_chans, max(32, img_size)), grid, hidden, drop_rate)

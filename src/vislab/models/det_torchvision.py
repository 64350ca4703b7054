"""torchvision's detectors on vislab's data and trainer: Faster R-CNN (MobileNet-v3-FPN, ResNet-50-FPN), RetinaNet,
SSD300, SSDlite, FCOS -- always built from scratch (``weights=None, weights_backbone=None``; nothing is downloaded).

:class:`TorchvisionDetector` adapts them to vislab's detector interface: ``forward(x, targets)`` returns the
loss dict, ``forward(x)`` the detections, with 0-based labels (the background index some of them use is
added and removed here). The batch ``x`` arrives normalised by vislab, so torchvision's own normalisation is
the identity; images are resized internally to ``min_size`` (small images are upsampled: the backbones
downsample by 16-32 and their anchors start at 16-32 px, so ``min_size`` defaults to 4x the data's size, at least 128).

Example:
    >>> m = fasterrcnn_mobilenet(num_classes=2, img_size=64).eval()
    >>> sorted(m(torch.zeros(1, 3, 64, 64))[0])
    ['boxes', 'labels', 'scores']
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import detection as tvd
from torchvision.models.detection.anchor_utils import AnchorGenerator

from vislab.core.registry import register_model


class TorchvisionDetector(nn.Module):
    """A torchvision detector with vislab's interface (see the module docstring)."""

    def __init__(self, net: nn.Module, background: bool):
        super().__init__()
        self.net = net
        self.offset = 1 if background else 0

    def forward(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None):
        images = [im.float() for im in x]
        if targets is not None:
            t = [{"boxes": d["boxes"].float(), "labels": d["labels"] + self.offset} for d in targets]
            return self.net(images, t)
        out = self.net(images)
        return [{"boxes": o["boxes"], "scores": o["scores"], "labels": o["labels"] - self.offset} for o in out]


def _common(img_size: int, min_size: int, score_thresh: float) -> dict:
    size = min_size or max(128, 4 * img_size)
    return {"min_size": size, "max_size": size, "image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}


@register_model(task="detect", input_size=(3, 64, 64))
def fasterrcnn_mobilenet(num_classes: int = 80, img_size: int = 64, min_size: int = 0, score_thresh: float = 0.05, nms_iou: float = 0.5,
                         max_det: int = 100, **kw) -> TorchvisionDetector:
    """Faster R-CNN, MobileNet-v3-Large FPN backbone (torchvision, from scratch), anchors 16-128 px."""
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor

    backbone = _mobilenet_extractor(mobilenet_v3_large(weights=None), True, 6)  # FPN over the last 2 stages, all layers trainable
    anchors = AnchorGenerator(((16, 32, 64, 128),) * 3, ((0.5, 1.0, 2.0),) * 3)
    net = tvd.FasterRCNN(backbone, num_classes=num_classes + 1, rpn_anchor_generator=anchors,
                                                box_score_thresh=score_thresh, box_nms_thresh=nms_iou, box_detections_per_img=max_det,
                                                **_common(img_size, min_size, score_thresh), **kw)
    return TorchvisionDetector(net, background=True)


@register_model(task="detect", input_size=(3, 224, 224))
def fasterrcnn_resnet50_fpn(num_classes: int = 80, img_size: int = 224, min_size: int = 0, score_thresh: float = 0.05, nms_iou: float = 0.5,
                            max_det: int = 100, **kw) -> TorchvisionDetector:
    """Faster R-CNN, ResNet-50 FPN backbone (torchvision, from scratch)."""
    net = tvd.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes + 1, box_score_thresh=score_thresh,
                                      box_nms_thresh=nms_iou, box_detections_per_img=max_det, **_common(img_size, min_size, score_thresh), **kw)
    return TorchvisionDetector(net, background=True)


@register_model(task="detect", input_size=(3, 224, 224))
def retinanet_resnet50_fpn(num_classes: int = 80, img_size: int = 224, min_size: int = 0, score_thresh: float = 0.05, nms_iou: float = 0.5,
                           max_det: int = 100, **kw) -> TorchvisionDetector:
    """RetinaNet, ResNet-50 FPN (torchvision, from scratch): focal loss, one stage."""
    net = tvd.retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes, score_thresh=score_thresh,
                                     nms_thresh=nms_iou, detections_per_img=max_det, **_common(img_size, min_size, score_thresh), **kw)
    return TorchvisionDetector(net, background=False)


@register_model(task="detect", input_size=(3, 224, 224))
def fcos_resnet50_fpn(num_classes: int = 80, img_size: int = 224, min_size: int = 0, score_thresh: float = 0.05, nms_iou: float = 0.6,
                      max_det: int = 100, **kw) -> TorchvisionDetector:
    """FCOS, ResNet-50 FPN (torchvision, from scratch): anchor-free, GIoU + focal losses."""
    net = tvd.fcos_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes, score_thresh=score_thresh,
                                nms_thresh=nms_iou, detections_per_img=max_det, **_common(img_size, min_size, score_thresh), **kw)
    return TorchvisionDetector(net, background=False)


@register_model(task="detect", input_size=(3, 300, 300))
def ssd300_vgg16(num_classes: int = 80, img_size: int = 300, min_size: int = 0, score_thresh: float = 0.05, nms_iou: float = 0.5,
                 max_det: int = 100, **kw) -> TorchvisionDetector:
    """SSD300, VGG-16 backbone (torchvision, from scratch); images resized to 300x300."""
    net = tvd.ssd300_vgg16(weights=None, weights_backbone=None, num_classes=num_classes + 1, score_thresh=score_thresh, nms_thresh=nms_iou,
                           detections_per_img=max_det, image_mean=[0.0] * 3, image_std=[1.0] * 3, **kw)
    return TorchvisionDetector(net, background=True)


@register_model(task="detect", input_size=(3, 320, 320))
def ssdlite320_mobilenet(num_classes: int = 80, img_size: int = 320, min_size: int = 0, score_thresh: float = 0.05, nms_iou: float = 0.5,
                         max_det: int = 100, **kw) -> TorchvisionDetector:
    """SSDlite320, MobileNet-v3-Large backbone (torchvision, from scratch); images resized to 320x320."""
    net = tvd.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes + 1, score_thresh=score_thresh,
                                            nms_thresh=nms_iou, detections_per_img=max_det, image_mean=[0.0] * 3, image_std=[1.0] * 3, **kw)
    return TorchvisionDetector(net, background=True)

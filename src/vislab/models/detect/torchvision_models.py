"""torchvision's detectors on vislab's data and trainer -- always built from scratch (``weights=None,
weights_backbone=None``; nothing is downloaded).

- ``fasterrcnn_tiny`` / ``maskrcnn_tiny``: Faster / Mask R-CNN at the data's own image size on a small backbone
  (vislab's tiny CNN, strides 4/8/16, or any registry classifier's ``feature_pyramid``) with torchvision's
  ``FeaturePyramidNetwork``, anchors of 2 and 3 strides per level (8-48 px at 64 px: the generated shapes'
  sizes), few proposals and small RoI heads. Fast enough to learn on a CPU in about a minute.
- ``fasterrcnn_mobilenet`` (MobileNet-v3-Large FPN), ``fasterrcnn_resnet50_fpn``, ``maskrcnn_resnet50_fpn``,
  ``retinanet_resnet50_fpn``, ``fcos_resnet50_fpn``, ``ssd300_vgg16``, ``ssdlite320_mobilenet``: torchvision's
  own configurations (made for large images: small images are upsampled, see ``min_size``).

:class:`TorchvisionDetector` adapts them to vislab's detector interface: ``forward(x, targets)`` returns the
loss dict, ``forward(x)`` the detections ``{"boxes", "scores", "labels"}`` with 0-based labels (the background
index some of them use is added and removed here). Mask models (registered with ``masks=True``; the
attribute ``needs_masks``) take ``"masks": (n, H, W) uint8`` in the targets and return ``"masks": (n, H, W)``
float probabilities in ``[0, 1]`` at the batch's image size (threshold at 0.5 for a binary mask). The batch
``x`` arrives normalised by vislab, so torchvision's own normalisation is the identity.

Example:
    >>> m = fasterrcnn_tiny(num_classes=2, img_size=64).eval()
    >>> sorted(m(torch.zeros(1, 3, 64, 64))[0])
    ['boxes', 'labels', 'scores']
    >>> m = maskrcnn_tiny(num_classes=2, img_size=64)
    >>> t = [{"boxes": torch.tensor([[4.0, 4, 30, 30]]), "labels": torch.tensor([1]), "masks": torch.ones(1, 64, 64, dtype=torch.uint8)}]
    >>> sorted(m(torch.zeros(1, 3, 64, 64), t))
    ['loss_box_reg', 'loss_classifier', 'loss_mask', 'loss_objectness', 'loss_rpn_box_reg']
    >>> m.needs_masks, sorted(m.eval()(torch.zeros(1, 3, 64, 64))[0])
    (True, ['boxes', 'labels', 'masks', 'scores'])
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models import detection as tvd
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign

from vislab.models.registry import register_model


class TorchvisionDetector(nn.Module):
    """A torchvision detector with vislab's interface (see the module docstring)."""

    def __init__(self, net: nn.Module, background: bool):
        super().__init__()
        self.net = net
        self.offset = 1 if background else 0
        self.needs_masks = isinstance(net, tvd.MaskRCNN)

    def forward(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None):
        images = [im.float() for im in x]
        if targets is not None:
            t = [{"boxes": d["boxes"].float(), "labels": d["labels"] + self.offset} for d in targets]
            if self.needs_masks:
                for d, src in zip(t, targets, strict=True):
                    d["masks"] = src["masks"]
            return self.net(images, t)
        out = []
        for o in self.net(images):
            d = {"boxes": o["boxes"], "scores": o["scores"], "labels": o["labels"] - self.offset}
            if "masks" in o:
                d["masks"] = o["masks"][:, 0]  # (n, 1, H, W) -> (n, H, W) probabilities
            out.append(d)
        return out


class PyramidBackbone(nn.Module):
    """``body.feature_pyramid(x)`` (its last ``levels`` maps) -> torchvision's ``FeaturePyramidNetwork``:
    the ``OrderedDict`` of equal-width maps ``"0", "1", ...`` (fine to coarse) that torchvision's R-CNNs take.

    Example:
        >>> from vislab.models.detect.yolo import TinyBackbone
        >>> b = PyramidBackbone(TinyBackbone(width=8), out_channels=32)
        >>> [tuple(f.shape) for f in b(torch.zeros(1, 3, 64, 64)).values()], b.strides
        ([(1, 32, 16, 16), (1, 32, 8, 8), (1, 32, 4, 4)], [4, 8, 16])
    """

    def __init__(self, body: nn.Module, out_channels: int = 64, levels: int = 3):
        super().__init__()
        self.body, self.levels, self.out_channels = body, levels, out_channels
        with torch.no_grad():  # channels and strides of the levels, from a dry run
            was = body.training
            feats = body.eval().feature_pyramid(torch.zeros(1, 3, 128, 128))[-levels:]
            body.train(was)
        self.strides = [128 // f.shape[-1] for f in feats]
        self.fpn = FeaturePyramidNetwork([f.shape[1] for f in feats], out_channels)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self.body.feature_pyramid(x)[-self.levels:]
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


def _tiny_rcnn_kwargs(backbone: str, width: int, fpn_width: int, img_size: int, num_classes: int, representation: int,
                      sampling_ratio: int = 1) -> dict:
    """Backbone, anchors, RoI pooling and box head of the ``*_tiny`` R-CNNs, sized for small images and objects."""
    from vislab.models.detect.yolo import _backbone

    bb = PyramidBackbone(_backbone(backbone, 3, width), fpn_width)
    names = [str(i) for i in range(bb.levels)]
    # anchors of 2 and 3 strides per level (8-48 px on strides 4/8/16); a RoI is pooled from the level where it spans 4-8 cells
    anchors = AnchorGenerator(tuple((2 * s, 3 * s) for s in bb.strides), ((0.5, 1.0, 2.0),) * bb.levels)
    pool = MultiScaleRoIAlign(names, 7, sampling_ratio, canonical_scale=4 * bb.strides[-1], canonical_level=bb.strides[-1].bit_length() - 1)
    return {"backbone": bb, "num_classes": None, "rpn_anchor_generator": anchors, "box_roi_pool": pool,
            "box_head": TwoMLPHead(fpn_width * 49, representation), "box_predictor": FastRCNNPredictor(representation, num_classes + 1),
            "min_size": img_size, "max_size": img_size, "image_mean": [0.0] * 3, "image_std": [1.0] * 3,
            "rpn_pre_nms_top_n_train": 300, "rpn_pre_nms_top_n_test": 150, "rpn_post_nms_top_n_train": 100, "rpn_post_nms_top_n_test": 50,
            "rpn_batch_size_per_image": 64, "box_batch_size_per_image": 32}


@register_model(task="detect", input_size=(3, 64, 64))
def fasterrcnn_tiny(num_classes: int = 80, img_size: int = 64, backbone: str = "tiny", width: int = 16, fpn_width: int = 32,
                    representation: int = 128, sampling_ratio: int = 1, score_thresh: float = 0.05, nms_iou: float = 0.5, max_det: int = 100, **kw) -> TorchvisionDetector:
    """Faster R-CNN at the image's own size on a small backbone (tiny CNN or registry classifier) + torchvision FPN."""
    args = _tiny_rcnn_kwargs(backbone, width, fpn_width, img_size, num_classes, representation, sampling_ratio)
    net = tvd.FasterRCNN(**{**args, **kw}, box_score_thresh=score_thresh, box_nms_thresh=nms_iou, box_detections_per_img=max_det)
    return TorchvisionDetector(net, background=True)


@register_model(task="detect", input_size=(3, 64, 64), masks=True)
def maskrcnn_tiny(num_classes: int = 80, img_size: int = 64, backbone: str = "tiny", width: int = 16, fpn_width: int = 32,
                  representation: int = 128, sampling_ratio: int = 1, mask_width: int = 32, score_thresh: float = 0.05, nms_iou: float = 0.5, max_det: int = 100,
                  **kw) -> TorchvisionDetector:
    """Mask R-CNN at the image's own size on a small backbone + torchvision FPN; masks predicted at 28x28 per RoI."""
    args = _tiny_rcnn_kwargs(backbone, width, fpn_width, img_size, num_classes, representation, sampling_ratio)
    pool = args["box_roi_pool"]
    mask_pool = MultiScaleRoIAlign(pool.featmap_names, 14, pool.sampling_ratio, canonical_scale=pool.canonical_scale, canonical_level=pool.canonical_level)
    net = tvd.MaskRCNN(**{**args, **kw}, mask_roi_pool=mask_pool, mask_head=MaskRCNNHeads(fpn_width, (mask_width, mask_width), 1),
                       mask_predictor=MaskRCNNPredictor(mask_width, mask_width, num_classes + 1),
                       box_score_thresh=score_thresh, box_nms_thresh=nms_iou, box_detections_per_img=max_det)
    return TorchvisionDetector(net, background=True)


def _common(img_size: int, min_size: int, score_thresh: float) -> dict:
    size = min_size or max(img_size, min(4 * img_size, 320))  # small images upsampled (anchors start at 16-32 px), large ones kept
    return {"min_size": size, "max_size": size, "image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}


@register_model(task="detect", input_size=(3, 64, 64))
def fasterrcnn_mobilenet(num_classes: int = 80, img_size: int = 64, min_size: int = 0, score_thresh: float = 0.05, nms_iou: float = 0.5,
                         max_det: int = 100, **kw) -> TorchvisionDetector:
    """Faster R-CNN, MobileNet-v3-Large FPN (torchvision's ``fasterrcnn_mobilenet_v3_large_fpn``, from scratch; its COCO
    weights load with ``vislab detect import``)."""
    net = tvd.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=num_classes + 1, box_score_thresh=score_thresh,
                                                box_nms_thresh=nms_iou, box_detections_per_img=max_det, **_common(img_size, min_size, score_thresh), **kw)
    return TorchvisionDetector(net, background=True)


@register_model(task="detect", input_size=(3, 224, 224))
def fasterrcnn_resnet50_fpn(num_classes: int = 80, img_size: int = 224, min_size: int = 0, score_thresh: float = 0.05, nms_iou: float = 0.5,
                            max_det: int = 100, **kw) -> TorchvisionDetector:
    """Faster R-CNN, ResNet-50 FPN backbone (torchvision, from scratch)."""
    net = tvd.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes + 1, box_score_thresh=score_thresh,
                                      box_nms_thresh=nms_iou, box_detections_per_img=max_det, **_common(img_size, min_size, score_thresh), **kw)
    return TorchvisionDetector(net, background=True)


@register_model(task="detect", input_size=(3, 224, 224), masks=True)
def maskrcnn_resnet50_fpn(num_classes: int = 80, img_size: int = 224, min_size: int = 0, score_thresh: float = 0.05, nms_iou: float = 0.5,
                          max_det: int = 100, **kw) -> TorchvisionDetector:
    """Mask R-CNN, ResNet-50 FPN backbone (torchvision, from scratch): boxes and instance masks."""
    net = tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes + 1, box_score_thresh=score_thresh,
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

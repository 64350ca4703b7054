"""Object detection's configs: training (data, model, train, run) and each command's."""

from __future__ import annotations

from dataclasses import dataclass, field

from vislab.core.config import opt
from vislab.data.detect.split import DetDataConfig
from vislab.engine.config import RunConfig, TrainConfig

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@dataclass
class DetModelConfig:
    """Which detector, and its post-processing."""

    model: str = opt("yolo_tiny", "detector: yolo_tiny (vislab's anchor-free one-stage), or a torchvision one (see `vislab models list --task detect`)")
    backbone: str = opt("tiny", "backbone of yolo_tiny, fasterrcnn_tiny, maskrcnn_tiny: tiny, or any registry classifier (resnet18, timm:<name>)")
    width: int = opt(16, "width of the tiny backbone")
    score_thresh: float = opt(0.05, "drop detections scoring below this")
    nms_iou: float = opt(0.6, "per-class NMS IoU threshold")
    max_det: int = opt(100, "detections kept per image")
    nms: str = opt("nms", "suppression: nms (hard) or soft (Gaussian soft-NMS)", choices=("nms", "soft"))
    weights: str = opt("", "start from these weights: a vislab detect run (e.g. from `vislab detect import`) or a state-dict file; "
                           "tensors of another shape (the class heads for new classes) stay freshly initialised; their mean/std are used")


def _train_defaults() -> TrainConfig:
    return TrainConfig(epochs=12, optimizer="adamw", lr=3e-3, weight_decay=1e-4, grad_clip=10.0, warmup_epochs=1.0)


@dataclass
class DetectConfig:
    """``vislab detect train``: everything a detection run is made of."""

    data: DetDataConfig = field(default_factory=lambda: DetDataConfig(img_size=64, val_split=0.2, eval_batch_size=64))
    model: DetModelConfig = field(default_factory=DetModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class DetEvalConfig:
    """``vislab detect eval``: COCO metrics of a checkpoint."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    data: str = opt("", "dataset (default: the one the checkpoint was trained on)")
    split: str = opt("val", "split to evaluate", choices=("train", "val"))
    batch_size: int = opt(64, "batch size")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    out: str = opt("", "folder for metrics.json, per_class.csv, pr_curves.png (default: <run>/eval-<split>)")


@dataclass
class DetPredictConfig:
    """``vislab detect predict``: detections on images, folders and videos."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "images, folders or video files", cli=False)
    out: str = opt("", "output folder (default: <run>/predict)")
    score_thresh: float = opt(0.3, "keep detections scoring at least this")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    draw: bool = opt(True, "write a PNG (or video) with the boxes drawn per input")


@dataclass
class DetExportConfig:
    """``vislab detect export``: ONNX from pixels to detections (NMS in the graph), checked against eager."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    out: str = opt("", "output file (default: <run>/model.onnx)")
    postprocess: bool = opt(True, "normalisation + score threshold + per-class NMS in the graph (output detections (M, 7)); "
                                  "--no-postprocess: dense boxes and scores of a normalised input")
    score_thresh: float = opt(0.05, "with --postprocess: keep detections scoring above this")
    opset: int = opt(17, "ONNX opset")


@dataclass
class DetExplainConfig:
    """``vislab detect explain``: CAMs for one detection per image."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "images", cli=False)
    box: int = opt(0, "which detection to explain, by rank of score (0: the best)")
    methods: list[str] = opt(["eigencam", "gradcam"], "CAM methods (eigencam, gradcam, gradcam++, layercam)")
    score_thresh: float = opt(0.05, "detections considered")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    out: str = opt("", "output folder (default: <run>/explain)")


@dataclass
class DetImportConfig:
    """``vislab detect import``: a weights file -> a vislab detection run."""

    weights: str = opt("", "weights file (.pth / .pt / .bin / .safetensors state dict)", cli=False)
    model: str = opt("fasterrcnn_resnet50_fpn", "the registered detector the weights belong to (`vislab models list --task detect`)")
    classes: str = opt("coco", "class names: coco (torchvision's), a comma-separated list, or a text file with one name per line")
    img_size: int = opt(512, "images are resized to this square before the model")
    score_thresh: float = opt(0.05, "drop detections scoring below this")
    nms_iou: float = opt(0.5, "NMS IoU threshold")
    max_det: int = opt(100, "detections kept per image")
    mean: list[float] = opt(list(IMAGENET_MEAN), "normalisation mean the weights were trained with (RGB, [0, 1])")
    std: list[float] = opt(list(IMAGENET_STD), "normalisation std the weights were trained with")
    out: str = opt("", "run folder to create (default: runs/detect/<model>-imported)")

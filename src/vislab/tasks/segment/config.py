"""Semantic segmentation's configs: training (data, model, train, run) and each command's."""

from __future__ import annotations

from dataclasses import dataclass, field

from vislab.core.config import opt
from vislab.data.segment.source import SegDataConfig
from vislab.engine.config import RunConfig, TrainConfig
from vislab.models.segment.common import ATTENTION, UPSAMPLE


@dataclass
class SegModelConfig:
    """Which network, and the loss it is trained with."""

    model: str = opt("unet", "segmentation model: unet, unet_residual, unet_dense, attention_unet, segnet, fcn8s/16s/32s, deeplabv3, deeplabv3plus, pspnet")
    encoder: str = opt("", "registry classifier used as the encoder (e.g. resnet18, small_cnn); '' = the model's default (U-Nets: their own)")
    stem: str = opt("auto", "encoder stem: cifar (small images), imagenet, or auto (cifar up to 64 px)", choices=("auto", "cifar", "imagenet"))
    width: int = opt(32, "U-Net family: channels of the first stage")
    depth: int = opt(4, "U-Net family: pooling steps of the own encoder")
    upsample: str = opt("bilinear", "U-Net family decoder upsampling", choices=UPSAMPLE)
    attention: str = opt("none", "U-Net family: channel/spatial attention after each block", choices=ATTENTION)
    drop_rate: float = opt(0.0, "dropout before the classifier")
    loss: str = opt("ce", "loss: ce, dice, focal, tversky, lovasz, or a weighted sum like ce+dice or 0.5*ce+lovasz")
    class_weights: list[float] = opt([], "per-class weights of ce / focal, comma-separated (empty: equal)")
    focal_gamma: float = opt(2.0, "focusing parameter of the focal loss")


@dataclass
class SegmentConfig:
    """``vislab segment train``: everything a training run is made of."""

    data: SegDataConfig = field(default_factory=SegDataConfig)
    model: SegModelConfig = field(default_factory=SegModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, optimizer="adamw", lr=3e-3, weight_decay=1e-4))
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class SegEvalConfig:
    """``vislab segment eval``: mIoU and friends of a checkpoint on a split."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    data: str = opt("", "dataset (default: the one the checkpoint was trained on)")
    split: str = opt("test", "split to evaluate", choices=("train", "val", "test"))
    batch_size: int = opt(64, "batch size")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    precision: str = opt("auto", "numeric precision", choices=("auto", "fp32", "bf16", "fp16"))
    out: str = opt("", "folder for metrics.json, per_class.csv, confusion_matrix.png (default: <run>/eval-<split>)")


@dataclass
class SegPredictConfig:
    """``vislab segment predict``: masks for images."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "image files, folders or glob patterns", cli=False)
    out: str = opt("", "output folder (default: <run>/predict)")
    mode: str = opt("whole", "whole: the image at its size (fully convolutional); resize: at the training size; sliding: overlapping windows", choices=("whole", "resize", "sliding"))
    window: int = opt(0, "sliding-window size (0: the training image size)")
    overlap: float = opt(0.5, "sliding-window overlap fraction in [0, 1)")
    tta: bool = opt(False, "average with the horizontally flipped prediction")
    refine: str = opt("none", "post-processing: crf (mean-field dense CRF in torch) or slic (superpixel majority vote)", choices=("none", "crf", "slic"))
    masks: str = opt("", "folder of ground-truth masks (same stems) for per_image_iou.csv")
    alpha: float = opt(0.5, "overlay opacity")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))


@dataclass
class SegExplainConfig:
    """``vislab segment explain``: CAMs of a class over its predicted region."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "image files, folders or glob patterns", cli=False)
    methods: list[str] = opt(["gradcam"], "comma-separated: gradcam, gradcam++, scorecam, eigencam, layercam, saliency, integrated_gradients")
    target_class: str = opt("", "class to explain (name or index); default: each image's most-predicted non-background class")
    layer: str = opt("", "module the CAM looks at (default: the model's cam_layer, e.g. the last U-Net decoder block)")
    out: str = opt("", "output folder (default: <run>/explain)")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))

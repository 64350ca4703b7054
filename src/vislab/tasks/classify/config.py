"""Image classification's configs: training (data, model, train, run) and each command's."""

from __future__ import annotations

from dataclasses import dataclass, field

from vislab.core.config import opt
from vislab.data.classify.augment import TTA_MODES
from vislab.data.classify.source import DataConfig
from vislab.engine.config import RunConfig, TrainConfig


@dataclass
class ModelConfig:
    """Which network to train."""

    model: str = opt("small_cnn", "model name (`vislab models list`), or timm:<name>")
    stem: str = opt("auto", "input stem: cifar (small images, no early downsampling), imagenet, or auto (cifar up to 64 px)", choices=("auto", "cifar", "imagenet"))
    drop_rate: float = opt(0.0, "dropout before the classifier")
    weights: str = opt("", "start from these weights: a vislab run folder or checkpoint, or a .pth/.pt/.safetensors state dict (torchvision, timm, plain); the head is replaced for the new classes")
    pretrained: str = opt("", "start from a torchvision / timm weights tag (resnet18, ResNet18_Weights.IMAGENET1K_V1, timm:resnet18.a1_in1k), read from the local cache")
    pretrained_download: bool = opt(False, "let --pretrained download weights that are not cached (needs network)")
    finetune: str = opt("auto", "what trains: scratch (random init), linear (head only), full (all), gradual (head, then one more layer group per --unfreeze-every epochs); auto: full with weights, else scratch", choices=("auto", "scratch", "linear", "full", "gradual"))
    layer_decay: float = opt(1.0, "discriminative learning rates: each layer group below the head gets lr x this (e.g. 0.5; 1: one lr)")
    freeze_bn: bool = opt(False, "keep BatchNorm layers frozen (pretrained statistics and affine parameters)")
    unfreeze_every: int = opt(1, "--finetune gradual: epochs between unfreezing one more layer group")
    norm: str = opt("auto", "normalisation statistics: the weights' (auto when they carry them, or weights) or the training data's", choices=("auto", "weights", "data"))


@dataclass
class ClassifyConfig:
    """``vislab classify train``: everything a training run is made of."""

    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=128))
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class EvalConfig:
    """``vislab classify eval``: metrics of a checkpoint on a split."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    data: str = opt("", "dataset (default: the one the checkpoint was trained on)")
    split: str = opt("test", "split to evaluate", choices=("train", "val", "test"))
    batch_size: int = opt(256, "batch size")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    precision: str = opt("auto", "numeric precision", choices=("auto", "fp32", "bf16", "fp16"))
    out: str = opt("", "folder for metrics.json, per_class.csv, confusion_matrix.png (default: <run>/eval-<split>)")
    tta: str = opt("none", "test-time augmentation: average the probabilities over the image and its mirror (flip), plus 4 corner crops (flip-crop)", choices=TTA_MODES)


@dataclass
class PredictConfig:
    """``vislab classify predict``: labels and probabilities for images."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "image files, folders or glob patterns", cli=False)
    topk: int = opt(5, "how many classes to report per image")
    out: str = opt("", "output file, .csv or .json (default: <run>/predict/predictions.csv)")
    annotate: bool = opt(False, "also write each image with its top prediction drawn on it")
    batch_size: int = opt(64, "batch size")
    bad_images: str = opt("fail", "on an unreadable image: fail, or skip it with a warning", choices=("fail", "skip"))
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))
    precision: str = opt("auto", "numeric precision", choices=("auto", "fp32", "bf16", "fp16"))
    tta: str = opt("none", "test-time augmentation: average the probabilities over the image and its mirror (flip), plus 4 corner crops (flip-crop)", choices=TTA_MODES)


@dataclass
class ExplainConfig:
    """``vislab classify explain``: filters, feature maps, CAMs and attributions for images."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "image files, folders or glob patterns", cli=False)
    methods: list[str] = opt(
        ["gradcam", "saliency", "filters"],
        "comma-separated: gradcam, gradcam++, scorecam, eigencam, layercam, saliency, integrated_gradients, filters, feature_maps",
    )
    layers: list[str] = opt([], "comma-separated module names (`vislab models show NAME`); the first is the CAM layer (default: per family)")
    target_class: str = opt("", "class to explain, by name or index (default: each image's prediction)")
    out: str = opt("", "output folder (default: <run>/explain)")
    max_images: int = opt(16, "explain at most this many images")
    device: str = opt("auto", "device", choices=("auto", "cpu", "cuda", "mps"))

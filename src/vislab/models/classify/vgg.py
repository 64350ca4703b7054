"""VGG-11/13/16/19, with and without batch norm (Simonyan & Zisserman, 2014), torchvision's layout.

Module names and parameter counts are torchvision's (``features.*``, fc6/fc7 in ``fc``, the last
linear is ``head``). The CIFAR variant keeps the 13 (VGG-16) conv layers and five pools (32 -> 1) and
replaces the 4096-wide fully connected layers with one linear layer on the 512 pooled features, the
usual CIFAR VGG.

Example:
    >>> import torch
    >>> vgg11_bn(num_classes=10, stem="cifar")(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from torch import nn

from vislab.models.registry import register_model
from vislab.models.classify.base import ConvFCClassifier, check_stem, init_conv_fc

# Table 1 of the paper, configurations A, B, D, E ("M" is a 2x2 max pool).
CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg: list[int | str], in_chans: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """The conv stack: 3x3/1 convs (+BN) + ReLU, 2x2 max pools; (B, C, H, W) -> (B, 512, H/32, W/32)."""
    layers: list[nn.Module] = []
    c = in_chans
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers.append(nn.Conv2d(c, int(v), 3, padding=1))
            layers += [nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)] if batch_norm else [nn.ReLU(inplace=True)]
            c = int(v)
    return nn.Sequential(*layers)


def _vgg(cfg: str, bn: bool, num_classes: int, in_chans: int, stem: str, drop_rate: float) -> ConvFCClassifier:
    features = make_layers(CFGS[cfg], in_chans, bn)
    if check_stem(stem) == "imagenet":
        pool = nn.Sequential(nn.AdaptiveAvgPool2d(7), nn.Flatten(1))  # (B, 512, h, w) -> (B, 25088)
        fc = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        )  # fmt: skip
        model = ConvFCClassifier(features, pool, fc, 4096, num_classes, drop_rate)
    else:
        pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))  # (B, 512, 1, 1) -> (B, 512)
        model = ConvFCClassifier(features, pool, nn.Identity(), 512, num_classes, drop_rate)
    return init_conv_fc(model)


_META = dict(task="classify", family="vgg", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32), cifar_min_size=32)


@register_model(**_META)
def vgg11(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """VGG-11 (configuration A): 8 conv + 3 fc layers; 132.9M parameters at 1000 classes."""
    return _vgg("vgg11", False, num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def vgg11_bn(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """VGG-11 with batch norm after every conv; 132.9M parameters at 1000 classes."""
    return _vgg("vgg11", True, num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def vgg13(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """VGG-13 (configuration B): 10 conv + 3 fc layers; 133.0M parameters at 1000 classes."""
    return _vgg("vgg13", False, num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def vgg13_bn(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """VGG-13 with batch norm after every conv; 133.1M parameters at 1000 classes."""
    return _vgg("vgg13", True, num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def vgg16(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """VGG-16 (configuration D): 13 conv + 3 fc layers; 138.4M parameters at 1000 classes."""
    return _vgg("vgg16", False, num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def vgg16_bn(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """VGG-16 with batch norm after every conv; 138.4M parameters at 1000 classes."""
    return _vgg("vgg16", True, num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def vgg19(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """VGG-19 (configuration E): 16 conv + 3 fc layers; 143.7M parameters at 1000 classes."""
    return _vgg("vgg19", False, num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def vgg19_bn(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """VGG-19 with batch norm after every conv; 143.7M parameters at 1000 classes."""
    return _vgg("vgg19", True, num_classes, in_chans, stem, drop_rate)

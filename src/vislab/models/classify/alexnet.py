"""AlexNet (Krizhevsky et al., 2012) and ZFNet (Zeiler & Fergus, 2013): five convs, three fully connected layers.

``alexnet`` follows torchvision's single-tower layout (64-192-384-256-256 filters, from Krizhevsky's
"one weird trick" paper, 2014), so its 1000-class parameter count is torchvision's 61,100,840.
``zfnet`` follows Zeiler & Fergus's Figure 3: 7x7/2 first conv (instead of AlexNet's 11x11/4),
5x5/2 second conv, 96-256-384-384-256 filters, local response normalisation after the first two convs.

The CIFAR variants keep the five conv layers with their widths but use 3x3/1 convs and 2x2 pools
(32 -> 4 before the fully connected layers) and 1024-wide hidden layers.

Example:
    >>> import torch
    >>> zfnet(num_classes=10, stem="cifar")(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from torch import nn

from vislab.models.registry import register_model
from vislab.models.classify.base import ConvFCClassifier, check_stem, init_conv_fc


def _fc(in_features: int, hidden: int, dropout: float = 0.5) -> nn.Sequential:
    """fc6 + fc7 with dropout before each (torchvision's AlexNet order)."""
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
        nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
    )  # fmt: skip


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # Krizhevsky et al. 2012, Sec. 3.3


def _alexnet_features(in_chans: int, stem: str) -> nn.Sequential:
    if stem == "imagenet":  # (B, C, 224, 224) -> (B, 256, 6, 6)
        return nn.Sequential(
            nn.Conv2d(in_chans, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),  # 55 -> 27
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),  # 27 -> 13
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),  # 13 -> 6
        )  # fmt: skip
    return nn.Sequential(  # (B, C, 32, 32) -> (B, 256, 4, 4)
        nn.Conv2d(in_chans, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 32 -> 16
        nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 16 -> 8
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 8 -> 4
    )  # fmt: skip


def zfnet_features(in_chans: int, stem: str, last_pool: bool = True) -> nn.Sequential:
    """ZFNet's conv layers ("ZF-5" in the SPP-net paper); ``last_pool=False`` drops the final max pool."""
    if stem == "imagenet":  # (B, C, 224, 224) -> (B, 256, 6, 6)
        layers = [
            nn.Conv2d(in_chans, 96, 7, 2, 1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1), _lrn(),  # 110 -> 55
            nn.Conv2d(96, 256, 5, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1), _lrn(),  # 26 -> 13
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        ]  # fmt: skip
        pool = nn.MaxPool2d(3, 2)  # 13 -> 6
    else:  # (B, C, 32, 32) -> (B, 256, 4, 4)
        layers = [
            nn.Conv2d(in_chans, 96, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2), _lrn(),  # 32 -> 16
            nn.Conv2d(96, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2), _lrn(),  # 16 -> 8
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        ]  # fmt: skip
        pool = nn.MaxPool2d(2)  # 8 -> 4
    return nn.Sequential(*layers, *([pool] if last_pool else []))


def _build(features: nn.Sequential, stem: str, num_classes: int, drop_rate: float) -> ConvFCClassifier:
    side, hidden = (6, 4096) if stem == "imagenet" else (4, 1024)
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(side), nn.Flatten(1))  # (B, 256, h, w) -> (B, 256 * side^2)
    model = ConvFCClassifier(features, pool, _fc(256 * side * side, hidden), hidden, num_classes, drop_rate)
    return init_conv_fc(model)


@register_model(task="classify", family="alexnet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32), min_size=63)
def alexnet(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """AlexNet (Krizhevsky et al., 2012), torchvision's layout: 61.1M parameters at 1000 classes."""
    return _build(_alexnet_features(in_chans, check_stem(stem)), stem, num_classes, drop_rate)


@register_model(task="classify", family="alexnet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32), min_size=53)
def zfnet(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ConvFCClassifier:
    """ZFNet (Zeiler & Fergus, 2013): AlexNet with 7x7/2 first conv and wider middle convs; 62.4M parameters."""
    return _build(zfnet_features(in_chans, check_stem(stem)), stem, num_classes, drop_rate)

"""DenseNet-121/169 (Huang et al., 2017) on torchvision's modules, with ImageNet and CIFAR stems.

``features.*`` is torchvision's (names, initialisation, counts); the last linear is ``head``.
The CIFAR stem is a 3x3/1 conv without the max pool: 32 -> 32 at ``denseblock1``, 4 at ``norm5``.

Example:
    >>> import torch
    >>> densenet121(num_classes=10, stem="cifar")(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn

from vislab.models.registry import register_model
from vislab.models.classify.base import ConvFCClassifier, check_stem

_tv_densenet = importlib.import_module("torchvision.models.densenet")


class DenseNet(ConvFCClassifier):
    """torchvision's DenseNet body; ``forward_features`` ends with the final BN + ReLU."""

    feature_modules = ("features.denseblock1", "features.denseblock2", "features.denseblock3", "features.norm5")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, F, H/32, W/32)
        return F.relu(self.features(x))


def _densenet(block_config: tuple[int, int, int, int], num_classes: int, in_chans: int, stem: str, drop_rate: float) -> DenseNet:
    tv = _tv_densenet.DenseNet(32, block_config, 64, num_classes=1)
    if check_stem(stem) == "cifar":
        tv.features.conv0 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
        tv.features.pool0 = nn.Identity()
    elif in_chans != 3:
        tv.features.conv0 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
    nn.init.kaiming_normal_(tv.features.conv0.weight)  # torchvision's init for convs
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    model = DenseNet(tv.features, pool, nn.Identity(), tv.classifier.in_features, num_classes, drop_rate)
    if isinstance(model.head, nn.Linear):
        nn.init.zeros_(model.head.bias)
    return model


_META = dict(task="classify", family="densenet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))


@register_model(**_META)
def densenet121(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> DenseNet:
    """DenseNet-121 (growth 32, blocks 6-12-24-16): 8.0M parameters at 1000 classes."""
    return _densenet((6, 12, 24, 16), num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def densenet169(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> DenseNet:
    """DenseNet-169 (growth 32, blocks 6-12-32-32): 14.1M parameters at 1000 classes."""
    return _densenet((6, 12, 32, 32), num_classes, in_chans, stem, drop_rate)

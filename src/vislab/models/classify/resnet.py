"""ResNet (He et al., 2015) on torchvision's blocks, with an ImageNet and a CIFAR stem.

The body (``layer1`` ... ``layer4``) is torchvision's, so parameter names, initialisation and counts
match ``torchvision.models.resnet*`` (state dicts load, minus ``fc``). The stems:

* ``stem="imagenet"``: 7x7/2 conv + 3x3/2 max pool, as in the paper: 224 -> 56 before ``layer1``.
* ``stem="cifar"``: one 3x3/1 conv and no pooling: 32 -> 32 before ``layer1`` (He et al. 2015, Sec. 4.2
  uses the same idea for CIFAR), output stride 8 instead of 32.

The block class is a parameter, so :mod:`vislab.models.classify.senet` adds SE and CBAM blocks to the same body.

Example:
    >>> import torch
    >>> m = resnet18(num_classes=10, stem="cifar")
    >>> m(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> [f.shape[-1] for f in m.feature_pyramid(torch.zeros(1, 3, 32, 32))]
    [32, 16, 8, 4]
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.models.resnet import ResNet as _TVResNet

from vislab.models.registry import register_model
from vislab.models.classify.base import Classifier, check_stem


class ResNet(Classifier):
    """A ResNet: stem, four stages of residual blocks, global average pooling, linear head.

    Args:
        block: the residual block class (torchvision's ``BasicBlock`` / ``Bottleneck`` or a subclass).
        layers: blocks per stage, e.g. ``[2, 2, 2, 2]`` for ResNet-18.
        num_classes: classes of the head (0: no head, ``forward`` returns pooled features).
        in_chans: input channels.
        stem: ``"imagenet"`` (7x7/2 conv + max pool) or ``"cifar"`` (3x3/1 conv, no pool).
        drop_rate: dropout before the head.
    """

    feature_modules = ("layer1", "layer2", "layer3", "layer4")

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        stem: str = "imagenet",
        drop_rate: float = 0.0,
    ):
        super().__init__()
        check_stem(stem)
        tv = _TVResNet(block, layers, num_classes=1)  # builds and initialises the body the torchvision way
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        elif in_chans != 3:
            self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        else:
            self.conv1 = tv.conv1
        self.bn1, self.relu = tv.bn1, tv.relu
        self.maxpool = tv.maxpool if stem == "imagenet" else nn.Identity()
        self.layer1, self.layer2, self.layer3, self.layer4 = tv.layer1, tv.layer2, tv.layer3, tv.layer4
        self.stem = stem
        self.num_features = 512 * block.expansion
        self.drop_rate = drop_rate
        self.reset_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, F, H/32, W/32)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4); cifar: (B, 64, H, W)
        x = self.layer1(x)  # (B, 64e, H/4, W/4), e = block.expansion
        x = self.layer2(x)  # (B, 128e, H/8, W/8)
        x = self.layer3(x)  # (B, 256e, H/16, W/16)
        return self.layer4(x)  # (B, 512e, H/32, W/32); cifar: (B, 512e, H/8, W/8)


def _resnet(block, layers, num_classes: int, in_chans: int, stem: str, drop_rate: float) -> ResNet:
    return ResNet(block, layers, num_classes, in_chans, stem, drop_rate)


@register_model(task="classify", family="resnet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))
def resnet18(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """ResNet-18 (He et al., 2015): basic blocks [2, 2, 2, 2]; 11.7M parameters at 1000 classes."""
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_chans, stem, drop_rate)


@register_model(task="classify", family="resnet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))
def resnet34(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """ResNet-34 (He et al., 2015): basic blocks [3, 4, 6, 3]; 21.8M parameters at 1000 classes."""
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, in_chans, stem, drop_rate)


@register_model(task="classify", family="resnet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))
def resnet50(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """ResNet-50 (He et al., 2015): bottleneck blocks [3, 4, 6, 3]; 25.6M parameters at 1000 classes."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_chans, stem, drop_rate)


@register_model(task="classify", family="resnet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))
def resnet101(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """ResNet-101 (He et al., 2015): bottleneck blocks [3, 4, 23, 3]; 44.5M parameters at 1000 classes."""
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes, in_chans, stem, drop_rate)

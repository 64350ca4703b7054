"""SE-ResNet (Hu et al., 2018) and CBAM-ResNet (Woo et al., 2018): ResNets whose blocks reweight their
residual branch with channel (SE) or channel + spatial (CBAM) attention before the skip addition.

The body and stems are :class:`vislab.models.classify.resnet.ResNet`'s; only the block class changes.
SE uses reduction 16 (the paper's), CBAM reduction 16 and a 7x7 spatial conv (the paper's).

Example:
    >>> import torch
    >>> cbam_resnet18(num_classes=10, stem="cifar")(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from vislab.models.registry import register_model
from vislab.models.layers import CBAM, SqueezeExcite
from vislab.models.classify.resnet import ResNet


class AttnBasicBlock(BasicBlock):
    """torchvision's BasicBlock with ``attn`` applied to the residual branch: ``relu(attn(F(x)) + x)``."""

    attn_layer: Callable[[int], nn.Module] = nn.Identity

    def __init__(self, inplanes: int, planes: int, *args, **kwargs):
        super().__init__(inplanes, planes, *args, **kwargs)
        self.attn = type(self).attn_layer(planes * self.expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.attn(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


class AttnBottleneck(Bottleneck):
    """torchvision's Bottleneck with ``attn`` applied to the residual branch: ``relu(attn(F(x)) + x)``."""

    attn_layer: Callable[[int], nn.Module] = nn.Identity

    def __init__(self, inplanes: int, planes: int, *args, **kwargs):
        super().__init__(inplanes, planes, *args, **kwargs)
        self.attn = type(self).attn_layer(planes * self.expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.attn(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


class SEBasicBlock(AttnBasicBlock):
    attn_layer = SqueezeExcite


class SEBottleneck(AttnBottleneck):
    attn_layer = SqueezeExcite


class CBAMBasicBlock(AttnBasicBlock):
    attn_layer = CBAM


class CBAMBottleneck(AttnBottleneck):
    attn_layer = CBAM


_META = dict(task="classify", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))


@register_model(family="senet", **_META)
def se_resnet18(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """SE-ResNet-18: ResNet-18 with squeeze-and-excitation in every block; 11.8M parameters."""
    return ResNet(SEBasicBlock, [2, 2, 2, 2], num_classes, in_chans, stem, drop_rate)


@register_model(family="senet", **_META)
def se_resnet34(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """SE-ResNet-34: ResNet-34 with squeeze-and-excitation in every block."""
    return ResNet(SEBasicBlock, [3, 4, 6, 3], num_classes, in_chans, stem, drop_rate)


@register_model(family="senet", **_META)
def se_resnet101(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """SE-ResNet-101 (Hu et al., 2018): bottleneck blocks [3, 4, 23, 3] with squeeze-and-excitation."""
    return ResNet(SEBottleneck, [3, 4, 23, 3], num_classes, in_chans, stem, drop_rate)


@register_model(family="senet", **_META)
def se_resnet50(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """SE-ResNet-50 (Hu et al., 2018): 28.1M parameters at 1000 classes."""
    return ResNet(SEBottleneck, [3, 4, 6, 3], num_classes, in_chans, stem, drop_rate)


@register_model(family="cbam", **_META)
def cbam_resnet18(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """CBAM-ResNet-18: ResNet-18 with channel + spatial attention in every block; 11.8M parameters."""
    return ResNet(CBAMBasicBlock, [2, 2, 2, 2], num_classes, in_chans, stem, drop_rate)


@register_model(family="cbam", **_META)
def cbam_resnet34(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """CBAM-ResNet-34: ResNet-34 with channel + spatial attention in every block."""
    return ResNet(CBAMBasicBlock, [3, 4, 6, 3], num_classes, in_chans, stem, drop_rate)


@register_model(family="cbam", **_META)
def cbam_resnet50(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> ResNet:
    """CBAM-ResNet-50 (Woo et al., 2018): 28.1M parameters at 1000 classes."""
    return ResNet(CBAMBottleneck, [3, 4, 6, 3], num_classes, in_chans, stem, drop_rate)

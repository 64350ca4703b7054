"""Pre-activation ResNet (He et al., 2016, "Identity Mappings in Deep Residual Networks").

Each block computes ``x + F(x)`` with ``F = conv(relu(bn(conv(relu(bn(x))))))``: BN and ReLU come
*before* each conv, the skip path is a clean identity, and one BN + ReLU follows the last stage.
ImageNet stem: 7x7/2 conv + BN + ReLU + 3x3/2 max pool (as fb.resnet.torch's preresnet);
CIFAR stem: one 3x3/1 conv (the first block's pre-activation normalises it).

Example:
    >>> import torch
    >>> m = preact_resnet18(num_classes=10, stem="cifar")
    >>> m(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vislab.models.registry import register_model
from vislab.models.classify.base import Classifier, check_stem


class PreActBlock(nn.Module):
    """Two 3x3 convs, each preceded by BN + ReLU."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        cout = planes * self.expansion
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, H, W) -> (B, planes, H/s, W/s)
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActBottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand (x4), each preceded by BN + ReLU."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        cout = planes * self.expansion
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, H, W) -> (B, 4 planes, H/s, W/s)
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + skip


class PreActResNet(Classifier):
    """Pre-activation ResNet: stem, four stages, final BN + ReLU, global average pooling, linear head."""

    feature_modules = ("layer1", "layer2", "layer3", "post")

    def __init__(self, block: type[PreActBlock] | type[PreActBottleneck], layers: list[int], num_classes: int = 1000,
                 in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0):  # fmt: skip
        super().__init__()
        if check_stem(stem) == "imagenet":  # (B, C, H, W) -> (B, 64, H/4, W/4)
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            )
        else:  # (B, C, H, W) -> (B, 64, H, W)
            self.stem = nn.Sequential(nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False))
        cin = 64
        stages = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (j == 0 and i > 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.post = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True))
        self.num_features = cin
        self.drop_rate = drop_rate
        self.reset_classifier(num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, F, H/32, W/32)
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.post(x)


_META = dict(task="classify", family="preact_resnet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))


@register_model(**_META)
def preact_resnet18(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> PreActResNet:
    """Pre-activation ResNet-18 (He et al., 2016b): basic blocks [2, 2, 2, 2]; 11.7M parameters."""
    return PreActResNet(PreActBlock, [2, 2, 2, 2], num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def preact_resnet34(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> PreActResNet:
    """Pre-activation ResNet-34 (He et al., 2016b): basic blocks [3, 4, 6, 3]; 21.8M parameters."""
    return PreActResNet(PreActBlock, [3, 4, 6, 3], num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def preact_resnet50(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> PreActResNet:
    """Pre-activation ResNet-50 (He et al., 2016b): bottleneck blocks [3, 4, 6, 3]; 25.6M parameters."""
    return PreActResNet(PreActBottleneck, [3, 4, 6, 3], num_classes, in_chans, stem, drop_rate)


@register_model(**_META)
def preact_resnet101(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> PreActResNet:
    """Pre-activation ResNet-101 (He et al., 2016b): bottleneck blocks [3, 4, 23, 3]; 44.5M parameters."""
    return PreActResNet(PreActBottleneck, [3, 4, 23, 3], num_classes, in_chans, stem, drop_rate)

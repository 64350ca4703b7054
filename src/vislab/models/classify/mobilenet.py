"""MobileNet v1 (Howard et al., 2017; own implementation), v2 (Sandler et al., 2018) and v3
(Howard et al., 2019) on torchvision's modules.

CIFAR variants: the stem conv has stride 1 and the first stride-2 block has stride 1, so the output
stride is 8 instead of 32 (32 -> 4), the usual CIFAR MobileNet.

Example:
    >>> import torch
    >>> mobilenet_v1(num_classes=10, stem="cifar")(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import importlib

from torch import nn

from vislab.models.registry import register_model
from vislab.models.classify.base import ConvFCClassifier, check_stem, init_conv_fc
from vislab.models.layers import conv_bn_act

_tv_v2 = importlib.import_module("torchvision.models.mobilenetv2")
_tv_v3 = importlib.import_module("torchvision.models.mobilenetv3")


def depthwise_separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    """3x3 depthwise conv (one filter per channel) then 1x1 pointwise conv, each with BN + ReLU."""
    return nn.Sequential(conv_bn_act(cin, cin, 3, stride, groups=cin), conv_bn_act(cin, cout, 1, 1))


# (out channels, stride) of the 13 depthwise-separable layers, Table 1 of the MobileNet paper.
V1_CFG = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


def _to_stride1(layer: nn.Module) -> None:
    for m in layer.modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            m.stride = (1, 1)


def _cifarise(features: nn.Sequential, in_chans: int, stem: str) -> None:
    """Replace the stem conv for ``in_chans`` / stride 1, and make the first stride-2 block stride 1."""
    first = features[0][0]
    if stem == "cifar" or in_chans != first.in_channels:
        stride = 1 if stem == "cifar" else first.stride
        features[0][0] = nn.Conv2d(in_chans, first.out_channels, first.kernel_size, stride, first.padding, bias=False)
        nn.init.kaiming_normal_(features[0][0].weight, mode="fan_out")
    if stem == "cifar":
        for layer in list(features)[1:]:
            if any(isinstance(m, nn.Conv2d) and m.stride == (2, 2) for m in layer.modules()):
                _to_stride1(layer)
                break


class MobileNet(ConvFCClassifier):
    """A ``features`` stack, global average pooling, optional hidden ``fc``, linear ``head``."""


@register_model(task="classify", family="mobilenet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))
def mobilenet_v1(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0, width_mult: float = 1.0) -> MobileNet:
    """MobileNet v1 (Howard et al., 2017): 13 depthwise-separable layers; 4.2M parameters at 1000 classes."""
    check_stem(stem)

    def w(c: int) -> int:
        return max(8, int(c * width_mult))

    layers = [conv_bn_act(in_chans, w(32), 3, 2 if stem == "imagenet" else 1)]  # 224 -> 112
    c = w(32)
    for i, (cout, s) in enumerate(V1_CFG):
        layers.append(depthwise_separable(c, w(cout), 1 if (stem == "cifar" and i == 1) else s))
        c = w(cout)
    features = nn.Sequential(*layers)  # (B, C, 224, 224) -> (B, 1024, 7, 7)
    model = init_conv_fc(MobileNet(features, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)), nn.Identity(), c, num_classes, drop_rate))
    for m in model.modules():  # depthwise: fan_in = k*k; "fan_out" (C*k*k) would shrink the signal ~10x per layer
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    return model


@register_model(task="classify", family="mobilenet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))
def mobilenet_v2(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.2, width_mult: float = 1.0) -> MobileNet:
    """MobileNet v2 (Sandler et al., 2018): inverted residuals, linear bottlenecks; 3.5M parameters at 1000 classes."""
    tv = _tv_v2.MobileNetV2(num_classes=1, width_mult=width_mult)
    _cifarise(tv.features, in_chans, check_stem(stem))
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    model = MobileNet(tv.features, pool, nn.Identity(), tv.last_channel, num_classes, drop_rate)
    if isinstance(model.head, nn.Linear):
        nn.init.normal_(model.head.weight, 0, 0.01)
        nn.init.zeros_(model.head.bias)
    return model


def _v3(arch: str, num_classes: int, in_chans: int, stem: str, drop_rate: float) -> MobileNet:
    settings, last_channel = _tv_v3._mobilenet_v3_conf(arch)
    tv = _tv_v3.MobileNetV3(settings, last_channel, num_classes=1, dropout=drop_rate)
    _cifarise(tv.features, in_chans, check_stem(stem))
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    fc = nn.Sequential(*list(tv.classifier)[:3])  # Linear(576|960 -> 1024|1280), Hardswish, Dropout
    model = MobileNet(tv.features, pool, fc, last_channel, num_classes, 0.0)
    if isinstance(model.head, nn.Linear):
        nn.init.normal_(model.head.weight, 0, 0.01)
        nn.init.zeros_(model.head.bias)
    return model


@register_model(task="classify", family="mobilenet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))
def mobilenet_v3_large(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.2) -> MobileNet:
    """MobileNet v3 Large (Howard et al., 2019): SE + hard-swish, NAS-found blocks; 5.5M parameters at 1000 classes."""
    return _v3("mobilenet_v3_large", num_classes, in_chans, stem, drop_rate)


@register_model(task="classify", family="mobilenet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))
def mobilenet_v3_small(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.2) -> MobileNet:
    """MobileNet v3 Small (Howard et al., 2019): 2.5M parameters at 1000 classes."""
    return _v3("mobilenet_v3_small", num_classes, in_chans, stem, drop_rate)

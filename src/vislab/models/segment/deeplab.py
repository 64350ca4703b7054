"""FCN-32s/16s/8s, DeepLabv3 / DeepLabv3+ (ASPP) and PSPNet (pyramid pooling) on registry encoders.

All take any registry classifier as the encoder (``encoder="resnet18"``; ``stem="cifar"`` keeps small
images at high resolution) and return logits at the input size ``(B, K, H, W)``.

* FCN (Long et al., 2015): 1x1 score layers on the deepest levels; the coarse scores are upsampled
  x2 by transposed convolutions initialised to bilinear and summed with the next level's (16s: one
  skip, 8s: two); the last step is a bilinear upsampling to the input size (32s: that alone).
* DeepLabv3 (Chen et al., 2017): atrous spatial pyramid pooling on the deepest features -- a 1x1
  branch, three dilated 3x3 branches (``rates``), image pooling -- concatenated and projected.
  The encoder's strides are the classifier's own (no dilated backbone surgery), so ``rates``
  default to small values that suit small feature maps; use (6, 12, 18) on 512-px inputs.
* DeepLabv3+ (Chen et al., 2018): the ASPP output upsampled to a low-level feature (48-channel 1x1
  projection), concatenated, refined by two atrous separable convolutions.
* PSPNet (Zhao et al., 2017): pyramid pooling of the deepest features into 1, 2, 3, 6 bins, each
  reduced by a 1x1 conv, upsampled and concatenated with the features, then a 3x3 conv.

Example:
    >>> m = deeplabv3plus(num_classes=3, encoder="small_cnn")
    >>> m(torch.randn(2, 3, 17, 11)).shape
    torch.Size([2, 3, 17, 11])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ModelError
from vislab.models.registry import register_model
from vislab.models.layers import conv_bn_act
from vislab.models.segment.common import Encoder, SegmentationModel, separable_conv

DEFAULT_ENCODER = "resnet18"


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def bilinear_kernel(channels: int, k: int) -> torch.Tensor:
    """Weights ``(C, C, k, k)`` of a transposed conv that upsamples each channel bilinearly (FCN's initialisation)."""
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    og = torch.arange(k, dtype=torch.float32)
    filt = (1 - (og - c).abs() / f)
    w = torch.zeros(channels, channels, k, k)
    w[range(channels), range(channels)] = filt[:, None] * filt[None, :]
    return w


class FCN(SegmentationModel):
    """FCN with ``skips`` = 0 (32s), 1 (16s) or 2 (8s) finer levels fused into the deepest scores."""

    def __init__(self, num_classes: int, in_chans: int, encoder: str, stem: str, skips: int, drop_rate: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.encoder = Encoder(encoder, in_chans, stem)
        if len(self.encoder.channels) < skips + 1:
            raise ModelError(f"fcn: expected an encoder with >= {skips + 1} feature levels, got '{encoder}' with {len(self.encoder.channels)}")
        chans = self.encoder.channels[-(skips + 1):]  # shallow -> deep
        self.drop = nn.Dropout2d(drop_rate)
        self.scores = nn.ModuleList([nn.Conv2d(c, num_classes, 1) for c in chans])
        self.ups = nn.ModuleList()
        for _ in range(skips):
            up = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
            up.weight.data.copy_(bilinear_kernel(num_classes, 4))
            self.ups.append(up)
        self.skips = skips
        self.cam_layer = f"scores.{skips}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = self.encoder(x)[-(self.skips + 1):]
        y = self.scores[-1](self.drop(feats[-1]))
        for j in range(self.skips):
            f = feats[-2 - j]
            y = _resize(self.ups[j](y), f.shape[-2:]) + self.scores[-2 - j](f)
        return _resize(y, size)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling ``(B, cin, h, w) -> (B, cout, h, w)``; separable 3x3 branches when asked."""

    def __init__(self, cin: int, cout: int = 128, rates: tuple[int, ...] = (1, 2, 3), separable: bool = False):
        super().__init__()
        conv = (lambda r: separable_conv(cin, cout, r)) if separable else (lambda r: conv_bn_act(cin, cout, 3, dilation=r))
        self.branches = nn.ModuleList([conv_bn_act(cin, cout, 1), *[conv(r) for r in rates]])
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True))
        self.project = nn.Sequential(conv_bn_act((len(rates) + 2) * cout, cout, 1), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.image_pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, 1))


class DeepLab(SegmentationModel):
    """DeepLabv3 (``plus=False``) or DeepLabv3+ (decoder with a low-level skip, separable convs)."""

    def __init__(self, num_classes: int, in_chans: int, encoder: str, stem: str, plus: bool, rates: tuple[int, ...] = (1, 2, 3),
                 channels: int = 128, drop_rate: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.plus = plus
        self.encoder = Encoder(encoder, in_chans, stem)
        self.aspp = ASPP(self.encoder.channels[-1], channels, tuple(rates), separable=plus)
        if plus:
            strides = self.encoder.strides
            self.low_level = min(range(len(strides)), key=lambda i: abs(strides[i] - 4))  # the level nearest stride 4
            self.low_proj = conv_bn_act(self.encoder.channels[self.low_level], 48, 1)
            self.decoder = nn.Sequential(separable_conv(channels + 48, channels), separable_conv(channels, channels))
        self.drop = nn.Dropout2d(drop_rate)
        self.head = nn.Conv2d(channels, num_classes, 1)
        self.cam_layer = "decoder" if plus else "aspp"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = self.encoder(x)
        y = self.aspp(feats[-1])
        if self.plus:
            low = self.low_proj(feats[self.low_level])
            y = self.decoder(torch.cat([_resize(y, low.shape[-2:]), low], 1))
        return _resize(self.head(self.drop(y)), size)


class PSPNet(SegmentationModel):
    """PSPNet: pyramid pooling module over the deepest encoder features."""

    def __init__(self, num_classes: int, in_chans: int, encoder: str, stem: str, bins: tuple[int, ...] = (1, 2, 3, 6),
                 channels: int = 128, drop_rate: float = 0.1):
        super().__init__()
        self.num_classes = num_classes
        self.encoder = Encoder(encoder, in_chans, stem)
        c = self.encoder.channels[-1]
        red = max(c // len(bins), 8)
        self.stages = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(b), conv_bn_act(c, red, 1)) for b in bins])
        self.bottleneck = conv_bn_act(c + red * len(bins), channels, 3)
        self.drop = nn.Dropout2d(drop_rate)
        self.head = nn.Conv2d(channels, num_classes, 1)
        self.cam_layer = "bottleneck"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        f = self.encoder(x)[-1]
        pooled = [_resize(s(f), f.shape[-2:]) for s in self.stages]
        return _resize(self.head(self.drop(self.bottleneck(torch.cat([f, *pooled], 1)))), size)


@register_model(task="segment", family="fcn")
def fcn32s(num_classes: int = 2, in_chans: int = 3, encoder: str = DEFAULT_ENCODER, stem: str = "cifar", drop_rate: float = 0.0) -> FCN:
    """FCN-32s (Long et al., 2015): scores of the deepest level upsampled to the input."""
    return FCN(num_classes, in_chans, encoder, stem, 0, drop_rate)


@register_model(task="segment", family="fcn")
def fcn16s(num_classes: int = 2, in_chans: int = 3, encoder: str = DEFAULT_ENCODER, stem: str = "cifar", drop_rate: float = 0.0) -> FCN:
    """FCN-16s: deepest scores upsampled x2 (transposed conv) and fused with the next level's scores."""
    return FCN(num_classes, in_chans, encoder, stem, 1, drop_rate)


@register_model(task="segment", family="fcn")
def fcn8s(num_classes: int = 2, in_chans: int = 3, encoder: str = DEFAULT_ENCODER, stem: str = "cifar", drop_rate: float = 0.0) -> FCN:
    """FCN-8s: two x2 fusion steps (the paper's pool4 and pool3 skips)."""
    return FCN(num_classes, in_chans, encoder, stem, 2, drop_rate)


@register_model(task="segment", family="deeplab")
def deeplabv3(num_classes: int = 2, in_chans: int = 3, encoder: str = DEFAULT_ENCODER, stem: str = "cifar",
              rates: tuple[int, ...] = (1, 2, 3), channels: int = 128, drop_rate: float = 0.0) -> DeepLab:
    """DeepLabv3 (Chen et al., 2017): ASPP (1x1, three atrous 3x3, image pooling) on the deepest features."""
    return DeepLab(num_classes, in_chans, encoder, stem, False, rates, channels, drop_rate)


@register_model(task="segment", family="deeplab")
def deeplabv3plus(num_classes: int = 2, in_chans: int = 3, encoder: str = DEFAULT_ENCODER, stem: str = "cifar",
                  rates: tuple[int, ...] = (1, 2, 3), channels: int = 128, drop_rate: float = 0.0) -> DeepLab:
    """DeepLabv3+ (Chen et al., 2018): separable ASPP + a decoder fusing a stride-4 low-level feature."""
    return DeepLab(num_classes, in_chans, encoder, stem, True, rates, channels, drop_rate)


@register_model(task="segment", family="pspnet")
def pspnet(num_classes: int = 2, in_chans: int = 3, encoder: str = DEFAULT_ENCODER, stem: str = "cifar",
           bins: tuple[int, ...] = (1, 2, 3, 6), channels: int = 128, drop_rate: float = 0.1) -> PSPNet:
    """PSPNet (Zhao et al., 2017): pyramid pooling module (1, 2, 3, 6 bins) on the deepest features."""
    return PSPNet(num_classes, in_chans, encoder, stem, tuple(bins), channels, drop_rate)

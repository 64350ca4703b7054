"""torchvision's 18-layer video ResNets (Tran et al., 2018): R3D (3-D convs), MC3 (3-D then 2-D), R(2+1)D.

The model returned *is* torchvision's ``VideoResNet``, module names untouched (``stem``, ``layer1`` ... ``layer4``,
``avgpool``, ``fc``), so a Kinetics-400 state dict from torchvision loads by key (all but ``fc`` when the class
count differs). Weights are never downloaded here (``weights=None``). The changes a builder can make:

* ``in_chans != 3``: the stem's first conv takes ``in_chans`` channels (same kernel, stride, padding; new weights).
* ``small_input=True``: the stem's first conv gets spatial stride 1 (kernels kept), for 32-64 px clips: 32x32
  reaches ``layer4`` at 4x4 instead of 2x2.

Example:
    >>> import torch
    >>> m = r3d_18(num_classes=4)
    >>> m(torch.randn(1, 3, 4, 32, 32)).shape, m.cam_layer, m.per_frame, m.needs_flow
    (torch.Size([1, 4]), 'layer4', False, False)
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torchvision.models import video as tv_video
from torchvision.models.video import VideoResNet

from vislab.models.registry import register_model


def _adapt(model: VideoResNet, in_chans: int, small_input: bool) -> VideoResNet:
    """Set the video-model attributes and, where asked, swap the stem's first conv; keeps every module name."""
    first = model.stem[0]
    if in_chans != 3 or small_input:
        stride = (first.stride[0], 1, 1) if small_input else first.stride
        conv = nn.Conv3d(in_chans, first.out_channels, first.kernel_size, stride=stride, padding=first.padding, bias=False)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # torchvision's init of Conv3d
        model.stem[0] = conv
    model.per_frame = False
    model.needs_flow = False
    model.cam_layer = "layer4"
    return model


def _build(fn: Callable[..., VideoResNet], num_classes: int, in_chans: int, small_input: bool) -> VideoResNet:
    return _adapt(fn(weights=None, num_classes=num_classes), in_chans, small_input)


@register_model(task="video", family="resnet3d", input_size=(3, 16, 112, 112))
def r3d_18(num_classes: int = 6, in_chans: int = 3, small_input: bool = False) -> VideoResNet:
    """R3D-18: an 18-layer ResNet of 3x3x3 convolutions (torchvision's, no pretrained weights)."""
    return _build(tv_video.r3d_18, num_classes, in_chans, small_input)


@register_model(task="video", family="resnet3d", input_size=(3, 16, 112, 112))
def mc3_18(num_classes: int = 6, in_chans: int = 3, small_input: bool = False) -> VideoResNet:
    """MC3-18: 3-D convolutions in layer1, 2-D (1x3x3) after: mixed convolutions (torchvision's, no weights)."""
    return _build(tv_video.mc3_18, num_classes, in_chans, small_input)


@register_model(task="video", family="resnet3d", input_size=(3, 16, 112, 112))
def r2plus1d_18(num_classes: int = 6, in_chans: int = 3, small_input: bool = False) -> VideoResNet:
    """R(2+1)D-18: each 3x3x3 conv factored into a spatial 1x3x3 and a temporal 3x1x1 (torchvision's, no weights)."""
    return _build(tv_video.r2plus1d_18, num_classes, in_chans, small_input)

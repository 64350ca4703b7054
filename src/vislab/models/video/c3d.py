"""A small C3D (Tran et al., 2015): 3x3x3 convolutions over space *and* time, so motion is a feature from layer one.

Four conv-BN-ReLU stages of widths ``w, 2w, 4w, 8w``. As in the paper the first pool is 1x2x2 (do not merge
frames before the network has seen motion), the next two 2x2x2; the last stage feeds global average pooling,
dropout and the linear head. Pools round up (``ceil_mode``), so short or odd-sized clips work:
``(B, C, 8, 32, 32)`` reaches the last stage at ``2 x 4 x 4``, ``(B, C, 16, 112, 112)`` at ``4 x 14 x 14``.

Example:
    >>> import torch
    >>> m = c3d(num_classes=4, width=8)
    >>> m(torch.randn(2, 3, 8, 32, 32)).shape, m.cam_layer
    (torch.Size([2, 4]), 'features.conv4')
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from vislab.models.registry import register_model
from vislab.models.video.common import VideoClassifier, check_clip


def conv3d_bn_act(cin: int, cout: int) -> nn.Sequential:
    """3x3x3 convolution ("same" padding, no bias), BatchNorm3d, ReLU: ``(B, cin, T, H, W) -> (B, cout, T, H, W)``."""
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class C3D(VideoClassifier):
    """``(B, C, T, H, W)`` -> ``features`` ``(B, 8w, T/4, H/8, W/8)`` -> global average pool -> dropout -> linear ``(B, K)``.

    Args:
        num_classes: K.
        in_chans: C.
        width: w, the channels of the first stage (then 2w, 4w, 8w).
        drop_rate: dropout before the head.
    """

    cam_layer = "features.conv4"

    def __init__(self, num_classes: int = 6, in_chans: int = 3, width: int = 32, drop_rate: float = 0.0):
        super().__init__()
        w = width
        self.features = nn.Sequential(OrderedDict([
            ("conv1", conv3d_bn_act(in_chans, w)),
            ("pool1", nn.MaxPool3d((1, 2, 2), ceil_mode=True)),  # space only: keep every frame for conv2
            ("conv2", conv3d_bn_act(w, 2 * w)),
            ("pool2", nn.MaxPool3d(2, ceil_mode=True)),
            ("conv3", conv3d_bn_act(2 * w, 4 * w)),
            ("pool3", nn.MaxPool3d(2, ceil_mode=True)),
            ("conv4", conv3d_bn_act(4 * w, 8 * w)),
        ]))  # fmt: skip
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.num_features = 8 * w
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, 8w, T/4, H/8, W/8)
        return self.features(check_clip(x, "c3d"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, K)
        z = torch.flatten(self.pool(self.forward_features(x)), 1)  # (B, 8w)
        return self.head(self.head_drop(z))


@register_model(task="video", family="c3d", input_size=(3, 16, 112, 112))
def c3d(num_classes: int = 6, in_chans: int = 3, width: int = 32, drop_rate: float = 0.0) -> C3D:
    """Small C3D: four 3x3x3 conv-BN-ReLU stages (widths w..8w), 1x2x2 then 2x2x2 pooling."""
    return C3D(num_classes, in_chans, width, drop_rate)

"""Building blocks shared by the model families: conv-BN-ReLU, squeeze-and-excitation, CBAM, spatial pyramid pooling.

Example:
    >>> import torch
    >>> x = torch.randn(2, 32, 9, 7)
    >>> conv_bn_act(32, 16)(x).shape, conv_bn_act(32, 16, 3, stride=2)(x).shape, conv_bn_act(32, 32, 3, dilation=2, groups=32)(x).shape
    (torch.Size([2, 16, 9, 7]), torch.Size([2, 16, 5, 4]), torch.Size([2, 32, 9, 7]))
    >>> SqueezeExcite(32)(x).shape, CBAM(32)(x).shape
    (torch.Size([2, 32, 9, 7]), torch.Size([2, 32, 9, 7]))
    >>> SpatialPyramidPool((4, 2, 1))(x).shape  # 32 * (16 + 4 + 1)
    torch.Size([2, 672])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ShapeError


def conv_bn_act(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    """``k x k`` convolution (no bias, "same" padding for odd ``k``), BatchNorm, ReLU: ``(B, cin, H, W) -> (B, cout, H/s, W/s)``."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): channel weights from globally pooled features.

    ``x * sigmoid(W2 relu(W1 avgpool(x)))`` with ``W1: C -> C/r``, ``W2: C/r -> C`` (1x1 convs with bias).

    Args:
        channels: C.
        reduction: r, the bottleneck ratio (16 in the paper).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * torch.sigmoid(self.fc2(self.relu(self.fc1(s))))


class ChannelGate(nn.Module):
    """CBAM's channel attention: a shared MLP over average- and max-pooled features, summed."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        a = self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3)))  # (B, C)
        return x * torch.sigmoid(a)[:, :, None, None]


class SpatialGate(nn.Module):
    """CBAM's spatial attention: a 7x7 conv (+BN) over the channel-wise max and mean maps."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        s = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)  # (B, 2, H, W)
        return x * torch.sigmoid(self.bn(self.conv(s)))


class CBAM(nn.Module):
    """Convolutional block attention module (Woo et al., 2018): channel gate, then spatial gate."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelGate(channels, reduction)
        self.spatial = SpatialGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        return self.spatial(self.channel(x))


def spatial_pyramid_pool(x: torch.Tensor, levels: tuple[int, ...] = (6, 3, 2, 1), mode: str = "max") -> torch.Tensor:
    """Pool a feature map of any size into ``sum(n*n for n in levels)`` bins per channel (He et al., 2014).

    Args:
        x: (B, C, H, W) feature map, any H, W >= 1.
        levels: bins per side at each pyramid level (the paper's 4-level pyramid is 6, 3, 2, 1).
        mode: ``"max"`` (the paper) or ``"avg"``.

    Returns:
        (B, C * sum(n^2)) fixed-length vector, levels concatenated coarse-to-fine in the given order.
    """
    if x.ndim != 4:
        raise ShapeError("spatial_pyramid_pool", "(B, C, H, W)", tuple(x.shape))
    pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d
    return torch.cat([torch.flatten(pool(x, n), 1) for n in levels], 1)


class SpatialPyramidPool(nn.Module):
    """Module form of :func:`spatial_pyramid_pool`."""

    def __init__(self, levels: tuple[int, ...] = (6, 3, 2, 1), mode: str = "max"):
        super().__init__()
        self.levels, self.mode = tuple(levels), mode

    def bins(self) -> int:
        return sum(n * n for n in self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C * bins)
        return spatial_pyramid_pool(x, self.levels, self.mode)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, mode={self.mode!r}"

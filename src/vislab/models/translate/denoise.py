"""DnCNN (Zhang et al., 2017, "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image Denoising").

``conv 3x3 (width), ReLU`` -> ``depth - 2`` x ``[conv 3x3 (no bias), batch norm, ReLU]`` -> ``conv 3x3`` to C, all
with same padding. Residual learning: the network predicts the noise and the model returns ``x - net(x)``. DnCNN-S
(gray, depth 17, width 64): 556,097 parameters (the paper's ~0.56M). ``norm="none"`` gives the middle convs biases.

Example:
    >>> import torch
    >>> m = dncnn(in_chans=1, depth=5, width=8)
    >>> x = torch.rand(2, 1, 20, 24) * 2 - 1
    >>> m(x).shape
    torch.Size([2, 1, 20, 24])
"""

from __future__ import annotations

import torch
from torch import nn

from vislab.core.errors import ShapeError
from vislab.models.generate.blocks import check_ints, norm2d
from vislab.models.registry import register_model
from vislab.models.translate.pix2pix import check_norm


class DnCNN(nn.Module):
    """``(B, C, H, W)`` noisy -> ``(B, C, H, W)`` clean estimate ``x - net(x)``; linear output."""

    def __init__(self, in_chans: int = 1, depth: int = 17, width: int = 64, norm: str = "batch"):
        super().__init__()
        where = type(self).__name__
        check_ints(where, in_chans=(in_chans, 1), depth=(depth, 2), width=(width, 1))
        check_norm(where, norm)
        self.in_chans = in_chans
        layers: list[nn.Module] = [nn.Conv2d(in_chans, width, 3, 1, 1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, 1, 1, bias=norm == "none"), norm2d(norm, width), nn.ReLU()]
        layers.append(nn.Conv2d(width, in_chans, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.in_chans:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeError(type(self).__name__, f"images (B, {self.in_chans}, H, W)", got)
        return x - self.net(x)


@register_model(task="translate", family="denoise")
def dncnn(in_chans: int = 1, depth: int = 17, width: int = 64, norm: str = "batch") -> nn.Module:
    """DnCNN residual denoiser (DnCNN-S: gray, depth 17)."""
    return DnCNN(in_chans, depth, width, norm)

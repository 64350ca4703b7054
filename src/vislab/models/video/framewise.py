"""The frame-wise baseline: a 2-D classifier on every frame, features pooled over time, one linear head.

Pooling over time forgets the order of the frames, so the model gives the same answer for a clip played
backwards: it can tell *what* is in a clip, never *which way* it goes (open vs close, push vs pull). That is
the point of it: the gap to :mod:`~vislab.models.video.rnn` or :mod:`~vislab.models.video.c3d` on such classes
measures what motion adds.

Example:
    >>> import torch
    >>> m = framewise(num_classes=4, backbone_args={"width": 8}).eval()
    >>> x = torch.randn(2, 3, 6, 32, 32)
    >>> m(x).shape, m.cam_layer, torch.allclose(m(x), m(x.flip(2)), atol=1e-5)
    (torch.Size([2, 4]), 'backbone.features.6', True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vislab.core.errors import ModelError
from vislab.models.registry import register_model
from vislab.models.video.common import VideoClassifier, backbone_cam_layer, build_backbone, frame_features, frame_grid

POOLS = ("mean", "max")


class FrameWise(VideoClassifier):
    """``(B, C, T, H, W)`` -> per-frame features ``(B, T, F)`` -> mean / max over ``T`` -> dropout -> linear ``(B, K)``.

    Args:
        backbone: a 2-D classifier with ``forward_features`` / ``forward_head`` / ``num_features``.
        num_classes: K.
        pool: ``"mean"`` or ``"max"`` over time.
        drop_rate: dropout before the head.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, pool: str = "mean", drop_rate: float = 0.0, grid: int = 1):
        super().__init__()
        if pool not in POOLS:
            raise ModelError(f"pool: expected one of {', '.join(POOLS)}, got {pool!r}")
        self.backbone = backbone
        self.pool = pool
        self.head_drop = nn.Dropout(drop_rate)
        self.grid = frame_grid(backbone, grid)
        self.head = nn.Linear(backbone.num_features * self.grid ** 2, num_classes)
        self.cam_layer = backbone_cam_layer(backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, K)
        f = frame_features(self.backbone, x, self.grid)  # (B, T, F)
        z = f.mean(1) if self.pool == "mean" else f.amax(1)  # (B, F): the same for any order of the frames
        return self.head(self.head_drop(z))


@register_model(task="video", family="framewise", input_size=(3, 8, 32, 32))
def framewise(num_classes: int = 6, in_chans: int = 3, backbone: str = "small_cnn", backbone_args: dict[str, Any] | None = None,
              pool: str = "mean", drop_rate: float = 0.0, grid: int = 1) -> FrameWise:
    """Frame-wise 2-D backbone + temporal mean/max pooling: the order-blind baseline (``grid``: features pooled to
    grid x grid cells, as in ``cnn_rnn``)."""
    return FrameWise(build_backbone(backbone, backbone_args, in_chans), num_classes, pool, drop_rate, grid)

"""CNN + RNN (Donahue et al., 2015, "LRCN"): 2-D features of each frame, a GRU or LSTM over time, a linear head.

* many-to-one (default): the head reads the last time step -- for a bidirectional RNN the forward direction's
  last step and the backward direction's first step (each has then seen the whole clip) -> ``(B, K)``.
* many-to-many (``many_to_many=True``, ``per_frame = True``): the head reads every step -> ``(B, K, T)``,
  one prediction per frame (a unidirectional RNN's step ``t`` has seen frames ``0..t`` only).

Unlike :mod:`~vislab.models.video.framewise` the RNN sees the order of the frames.

Example:
    >>> import torch
    >>> x = torch.randn(2, 3, 6, 32, 32)
    >>> cnn_gru(num_classes=4, backbone_args={"width": 8}, hidden=16)(x).shape
    torch.Size([2, 4])
    >>> m = cnn_lstm(num_classes=4, backbone_args={"width": 8}, hidden=16, bidirectional=True, many_to_many=True)
    >>> m(x).shape, m.per_frame
    (torch.Size([2, 4, 6]), True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vislab.core.errors import ModelError
from vislab.models.registry import register_model
from vislab.models.video.common import VideoClassifier, backbone_cam_layer, build_backbone, frame_features, frame_grid

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class CNNRNN(VideoClassifier):
    """``(B, C, T, H, W)`` -> per-frame features ``(B, T, F)`` -> GRU / LSTM ``(B, T, D*hidden)`` -> dropout -> linear.

    Args:
        backbone: a 2-D classifier with ``forward_features`` / ``forward_head`` / ``num_features``.
        num_classes: K.
        cell: ``"gru"`` or ``"lstm"``.
        hidden: hidden size per direction.
        num_layers: stacked RNN layers (``drop_rate`` is also the dropout between them).
        bidirectional: run a second RNN backwards in time (D = 2).
        many_to_many: per-frame logits ``(B, K, T)`` instead of clip logits ``(B, K)``.
        drop_rate: dropout before the head.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, cell: str = "gru", hidden: int = 128, num_layers: int = 1,
                 bidirectional: bool = False, many_to_many: bool = False, drop_rate: float = 0.0, grid: int = 1):
        super().__init__()
        if cell not in CELLS:
            raise ModelError(f"cell: expected one of {', '.join(CELLS)}, got {cell!r}")
        self.backbone = backbone
        self.grid = frame_grid(backbone, grid)
        self.rnn = CELLS[cell](backbone.num_features * self.grid ** 2, hidden, num_layers, batch_first=True, bidirectional=bidirectional,
                               dropout=drop_rate if num_layers > 1 else 0.0)
        self.hidden, self.bidirectional = hidden, bidirectional
        self.per_frame = many_to_many
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)
        self.cam_layer = backbone_cam_layer(backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, K), per_frame: (B, K, T)
        out, _ = self.rnn(frame_features(self.backbone, x, self.grid))  # (B, T, D*hidden); bidirectional: [forward | backward]
        if self.per_frame:
            return self.head(self.head_drop(out)).transpose(1, 2)  # (B, T, K) -> (B, K, T)
        if self.bidirectional:  # each direction's final step: forward at t = T-1, backward at t = 0
            last = torch.cat([out[:, -1, : self.hidden], out[:, 0, self.hidden :]], 1)
        else:
            last = out[:, -1]
        return self.head(self.head_drop(last))  # (B, K)


@register_model(task="video", family="cnn_rnn", input_size=(3, 8, 32, 32))
def cnn_rnn(num_classes: int = 6, in_chans: int = 3, backbone: str = "small_cnn", backbone_args: dict[str, Any] | None = None,
            cell: str = "gru", hidden: int = 128, num_layers: int = 1, bidirectional: bool = False, many_to_many: bool = False,
            drop_rate: float = 0.0, grid: int = 1) -> CNNRNN:
    """Per-frame 2-D features + GRU/LSTM (LRCN): clip logits, or per-frame logits with many_to_many (``grid``: features
    pooled to grid x grid cells, keeping where things are)."""
    net = build_backbone(backbone, backbone_args, in_chans)
    return CNNRNN(net, num_classes, cell, hidden, num_layers, bidirectional, many_to_many, drop_rate, grid)


@register_model(task="video", family="cnn_rnn", input_size=(3, 8, 32, 32))
def cnn_gru(num_classes: int = 6, in_chans: int = 3, backbone: str = "small_cnn", backbone_args: dict[str, Any] | None = None,
            hidden: int = 128, num_layers: int = 1, bidirectional: bool = False, many_to_many: bool = False,
            drop_rate: float = 0.0, grid: int = 1) -> CNNRNN:
    """Per-frame 2-D features + a GRU: ``cnn_rnn`` with cell="gru"."""
    return cnn_rnn(num_classes, in_chans, backbone, backbone_args, "gru", hidden, num_layers, bidirectional, many_to_many, drop_rate, grid)


@register_model(task="video", family="cnn_rnn", input_size=(3, 8, 32, 32))
def cnn_lstm(num_classes: int = 6, in_chans: int = 3, backbone: str = "small_cnn", backbone_args: dict[str, Any] | None = None,
             hidden: int = 128, num_layers: int = 1, bidirectional: bool = False, many_to_many: bool = False,
             drop_rate: float = 0.0, grid: int = 1) -> CNNRNN:
    """Per-frame 2-D features + an LSTM: ``cnn_rnn`` with cell="lstm"."""
    return cnn_rnn(num_classes, in_chans, backbone, backbone_args, "lstm", hidden, num_layers, bidirectional, many_to_many, drop_rate, grid)

"""Two-stream network (Simonyan & Zisserman, 2014): appearance from one frame, motion from stacked optical flow.

* spatial stream (submodule ``backbone``): a 2-D classifier on the middle frame ``x[:, :, T // 2]``;
* temporal stream (``flow_backbone``): a second 2-D classifier of the same kind on the flow of the clip,
  ``(B, 2, T - 1, H, W)`` stacked into ``2 (T - 1)`` channels in the paper's order ``(dx_1, dy_1, dx_2, dy_2, ...)``.
  Its first layer is built for that channel count, so the model takes clips of exactly ``clip_len`` frames.

Fusion of the two:

* ``"late"`` (the paper's averaging): ``forward`` returns the mean of the two streams' log-softmax, ``(B, K)``
  log-probabilities (usable as logits: argmax and cross-entropy behave);
* ``"mid"``: the two pooled feature vectors are concatenated -> dropout -> one linear head.

:meth:`TwoStream.stream_logits` gives each stream's own logits (for ``"mid"`` from auxiliary heads), so a task can
train the streams with separate losses, as the paper does; ``forward(x, flow, streams=True)`` gives
``(rgb, flow, fused)`` from one pass.

Example:
    >>> import torch
    >>> m = two_stream(num_classes=4, clip_len=4, backbone_args={"width": 8})
    >>> x, flow = torch.randn(2, 3, 4, 32, 32), torch.randn(2, 2, 3, 32, 32)
    >>> m(x, flow).shape, [s.shape for s in m.stream_logits(x, flow)], m.needs_flow
    (torch.Size([2, 4]), [torch.Size([2, 4]), torch.Size([2, 4])], True)
    >>> m.flow_backbone.features[0][0].in_channels  # 2 * (clip_len - 1)
    6
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ModelError, ShapeError
from vislab.models.registry import register_model
from vislab.models.video.common import VideoClassifier, backbone_cam_layer, build_backbone, check_clip

FUSIONS = ("late", "mid")


def stack_flow(flow: torch.Tensor) -> torch.Tensor:
    """``(B, 2, T - 1, H, W)`` -> ``(B, 2 (T - 1), H, W)``, channels ``(dx_1, dy_1, dx_2, dy_2, ...)``."""
    b, two, n, h, w = flow.shape
    return flow.transpose(1, 2).reshape(b, n * two, h, w)


class TwoStream(VideoClassifier):
    """Spatial stream on the middle frame + temporal stream on stacked flow, fused late (scores) or mid (features).

    Args:
        rgb: 2-D classifier for the middle frame (``in_chans`` channels).
        flow: 2-D classifier for the stacked flow (``2 * (clip_len - 1)`` channels).
        num_classes: K.
        clip_len: the number of frames T of the clips (the flow has T - 1).
        fusion: ``"late"`` or ``"mid"``.
        drop_rate: dropout before every head.
    """

    needs_flow = True

    def __init__(self, rgb: nn.Module, flow: nn.Module, num_classes: int, clip_len: int, fusion: str = "late", drop_rate: float = 0.0):
        super().__init__()
        if fusion not in FUSIONS:
            raise ModelError(f"fusion: expected one of {', '.join(FUSIONS)}, got {fusion!r}")
        self.backbone, self.flow_backbone = rgb, flow
        self.clip_len, self.fusion = clip_len, fusion
        self.head_drop = nn.Dropout(drop_rate)
        self.rgb_head = nn.Linear(rgb.num_features, num_classes)  # late: the stream's classifier; mid: auxiliary
        self.flow_head = nn.Linear(flow.num_features, num_classes)
        self.head = nn.Linear(rgb.num_features + flow.num_features, num_classes) if fusion == "mid" else None
        self.cam_layer = backbone_cam_layer(rgb)

    def _check(self, x: torch.Tensor, flow: torch.Tensor) -> None:
        b, _, t = check_clip(x, "two_stream").shape[:3]
        if t != self.clip_len:
            raise ShapeError("two_stream", f"clips of clip_len={self.clip_len} frames (B, C, {self.clip_len}, H, W), "
                             f"the length it was built for", tuple(x.shape))  # fmt: skip
        if flow.ndim != 5 or tuple(flow.shape[:3]) != (b, 2, t - 1):
            raise ShapeError("two_stream", f"flow (B, 2, T - 1, H, W) = ({b}, 2, {t - 1}, H, W) for the clip {tuple(x.shape)}",
                             tuple(flow.shape))  # fmt: skip

    def stream_features(self, x: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features of each stream: ``((B, F_rgb), (B, F_flow))``."""
        self._check(x, flow)
        frame = x[:, :, x.shape[2] // 2]  # (B, C, H, W), the middle frame
        stacked = stack_flow(flow)  # (B, 2 (T - 1), H, W)
        f_rgb = self.backbone.forward_head(self.backbone.forward_features(frame), pre_logits=True)
        f_flow = self.flow_backbone.forward_head(self.flow_backbone.forward_features(stacked), pre_logits=True)
        return f_rgb, f_flow

    def stream_logits(self, x: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each stream's own logits ``(rgb (B, K), flow (B, K))``, to train the streams with one loss each."""
        f_rgb, f_flow = self.stream_features(x, flow)
        return self.rgb_head(self.head_drop(f_rgb)), self.flow_head(self.head_drop(f_flow))

    def forward(self, x: torch.Tensor, flow: torch.Tensor, streams: bool = False) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``(B, C, T, H, W), (B, 2, T - 1, H, W) -> (B, K)`` fused scores; ``streams=True``: ``(rgb, flow, fused)``
        logits from one pass (through ``forward``, so a ``DistributedDataParallel`` wrapper synchronises the gradients
        of every head a loss uses: a task trains the streams' heads too, also under mid fusion)."""
        f_rgb, f_flow = self.stream_features(x, flow)
        rgb, motion = self.rgb_head(self.head_drop(f_rgb)), self.flow_head(self.head_drop(f_flow))
        if self.head is None:  # late fusion: average the two streams' class log-probabilities
            fused = (F.log_softmax(rgb, 1) + F.log_softmax(motion, 1)) / 2
        else:
            fused = self.head(self.head_drop(torch.cat([f_rgb, f_flow], 1)))
        return (rgb, motion, fused) if streams else fused


@register_model(task="video", family="two_stream", input_size=(3, 8, 32, 32))
def two_stream(num_classes: int = 6, in_chans: int = 3, clip_len: int = 8, backbone: str = "small_cnn",
               backbone_args: dict[str, Any] | None = None, fusion: str = "late", drop_rate: float = 0.0) -> TwoStream:
    """Two-stream (Simonyan & Zisserman): middle RGB frame + stacked optical flow; forward(x, flow)."""
    if clip_len < 2:
        raise ModelError(f"clip_len: expected >= 2 frames (the flow has clip_len - 1), got {clip_len}")
    rgb = build_backbone(backbone, backbone_args, in_chans)
    flow = build_backbone(backbone, backbone_args, 2 * (clip_len - 1))
    return TwoStream(rgb, flow, num_classes, clip_len, fusion, drop_rate)

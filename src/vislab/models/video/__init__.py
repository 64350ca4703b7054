"""Video classification networks: a clip ``(B, C, T, H, W)`` (already normalised) -> logits ``(B, K)``.

The families, from blind to motion to built for it:

* :mod:`~vislab.models.video.framewise` -- a 2-D classifier per frame, features pooled over time (order-blind);
* :mod:`~vislab.models.video.rnn` -- per-frame features through a GRU / LSTM (``cnn_rnn``, ``cnn_gru``,
  ``cnn_lstm``), clip logits or, many-to-many, per-frame logits ``(B, K, T)``;
* :mod:`~vislab.models.video.c3d` -- a small C3D of 3x3x3 convolutions;
* :mod:`~vislab.models.video.resnet3d` -- torchvision's ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (no weights downloaded);
* :mod:`~vislab.models.video.two_stream` -- middle RGB frame + stacked optical flow, ``forward(x, flow)``.

Every model has ``per_frame`` (output ``(B, K, T)``), ``needs_flow`` (``forward(x, flow)``) and ``cam_layer``
(the module Grad-CAM looks at); builders take ``num_classes`` and ``in_chans`` first, then JSON-serialisable
options. The 2-D backbones come from the registry (:func:`~vislab.models.video.common.build_backbone`) and are
the submodule ``backbone``.

Example:
    >>> import torch
    >>> from vislab.models.registry import MODELS
    >>> m = MODELS.build("c3d", num_classes=5, width=8)
    >>> m(torch.zeros(2, 3, 8, 32, 32)).shape, MODELS.get("c3d").task, m.per_frame, m.needs_flow
    (torch.Size([2, 5]), 'video', False, False)
"""

from vislab.models.video.common import VideoClassifier, build_backbone, frame_features

__all__ = ["VideoClassifier", "build_backbone", "frame_features"]

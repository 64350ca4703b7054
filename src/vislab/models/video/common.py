"""What the video models share: the clip layout check, 2-D backbones from the registry, per-frame features.

A clip is ``(B, C, T, H, W)`` (torchvision's video layout). The models that look at one frame at a time
(:mod:`~vislab.models.video.framewise`, :mod:`~vislab.models.video.rnn`, :mod:`~vislab.models.video.two_stream`)
build a registry classifier with :func:`build_backbone`, keep it as the submodule ``backbone`` and run it on
the ``B * T`` frames with :func:`frame_features`.

Example:
    >>> import torch
    >>> bb = build_backbone("small_cnn", None, in_chans=3)
    >>> frame_features(bb, torch.zeros(2, 3, 5, 16, 16)).shape, bb.num_features, backbone_cam_layer(bb)
    (torch.Size([2, 5, 64]), 64, 'backbone.features.6')
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from vislab.core.errors import ModelError, ShapeError
from vislab.models.registry import MODELS

#: backbone_args used when a video model is given none, per backbone name (merged under the caller's)
DEFAULT_BACKBONE_ARGS: dict[str, dict[str, Any]] = {"small_cnn": {"stem": "cifar", "width": 16}}


class VideoClassifier(nn.Module):
    """The interface of every video model: ``forward(clip (B, C, T, H, W)) -> (B, K)`` (``per_frame``: ``(B, K, T)``).

    Attributes:
        per_frame: True when ``forward`` returns per-frame logits ``(B, K, T)`` (many-to-many).
        needs_flow: True when ``forward`` also takes the optical flow ``(B, 2, T - 1, H, W)`` (two-stream).
        cam_layer: name (as in ``named_modules()``) of the module Grad-CAM looks at: the last spatio-temporal
            block ``(B, C', T', H', W')`` of a 3-D net, or the backbone's last feature block ``(B * T, C', H', W')``.
    """

    per_frame: bool = False
    needs_flow: bool = False
    cam_layer: str = ""


def check_clip(x: torch.Tensor, where: str) -> torch.Tensor:
    """``x`` unchanged if it is a clip ``(B, C, T, H, W)``; raises :class:`ShapeError` otherwise."""
    if x.ndim != 5:
        raise ShapeError(where, "a clip (B, C, T, H, W)", tuple(x.shape))
    return x


def build_backbone(backbone: str, backbone_args: dict[str, Any] | None, in_chans: int) -> nn.Module:
    """A registry classifier without its head (``num_classes=0``) taking ``in_chans`` channels, for single frames.

    ``backbone_args`` are merged over the defaults: :data:`DEFAULT_BACKBONE_ARGS` for the backbone's name, else
    ``stem="cifar"`` when its builder takes a ``stem`` (video frames are small). ``in_chans`` and ``num_classes``
    belong to the video model, not to ``backbone_args``.

    Raises:
        ModelError: the backbone is unknown, has no ``forward_features`` / ``num_features``, or ``backbone_args``
            sets ``in_chans`` / ``num_classes``.
    """
    args = dict(backbone_args or {})
    reserved = sorted({"in_chans", "num_classes"} & set(args))
    if reserved:
        raise ModelError(f"backbone_args: expected the backbone's own options, got {reserved} (set them on the video model)")
    defaults = DEFAULT_BACKBONE_ARGS.get(backbone)
    if defaults is None:
        defaults = {"stem": "cifar"} if "stem" in builder_params(backbone) else {}
    net = MODELS.build(backbone, **{**defaults, **args, "num_classes": 0, "in_chans": in_chans})
    if not hasattr(net, "num_features") or not hasattr(net, "forward_features"):
        raise ModelError(f"backbone: expected a classifier with features (`vislab models list --task classify`), got '{backbone}'")
    return net


def builder_params(name: str) -> set[str]:
    """Keyword arguments of a registered builder (none for ``timm:<name>`` and unknown names)."""
    if ":" in name or name not in MODELS:
        return set()
    return set(inspect.signature(MODELS.get(name).fn).parameters)


def frame_features(backbone: nn.Module, x: torch.Tensor, grid: int = 1) -> torch.Tensor:
    """Pooled 2-D features of every frame: ``(B, C, T, H, W) -> (B, T, F)``, ``F = backbone.num_features * grid**2``.

    The frames go through the backbone as one batch of ``B * T`` images (``forward_features`` then
    ``forward_head(..., pre_logits=True)``), so a frame's features never depend on the other frames. ``grid > 1``
    average-pools the feature map to ``grid x grid`` cells instead of one: the features keep *where* things are,
    which a model of motion over frames needs (a global pool keeps mostly *what*).
    """
    b, c, t, h, w = check_clip(x, "frame_features").shape
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, C, H, W), frame-major within each clip
    fmap = backbone.forward_features(frames)
    if grid > 1 and fmap.dim() == 4:
        f = nn.functional.adaptive_avg_pool2d(fmap, grid).flatten(1)  # (B*T, F * grid^2)
    else:
        f = backbone.forward_head(fmap, pre_logits=True)  # (B*T, F)
    return f.reshape(b, t, -1)


def frame_grid(backbone: nn.Module, grid: int) -> int:
    """The ``grid`` :func:`frame_features` can use with this backbone: ``grid`` when its pre-logits are a plain pool of
    its feature map (``num_features`` channels: small_cnn, ResNets, ...), else 1 -- a backbone with fully connected
    layers before its head (LeNet, VGG) keeps its own pooled features, or those layers would go unused. Found with one
    32 x 32 probe in eval mode (no BatchNorm statistics move)."""
    if grid <= 1:
        return 1
    in_chans = next((m.in_channels for m in backbone.modules() if isinstance(m, nn.Conv2d)), 3)
    was = backbone.training
    backbone.eval()
    with torch.no_grad():
        fmap = backbone.forward_features(torch.zeros(1, in_chans, 32, 32))
    backbone.train(was)
    return grid if fmap.dim() == 4 and fmap.shape[1] == backbone.num_features else 1


def backbone_cam_layer(backbone: nn.Module, prefix: str = "backbone") -> str:
    """The CAM layer of a 2-D backbone held as submodule ``prefix``, e.g. ``'backbone.features.6'`` for ``small_cnn``.

    The same choice as :func:`vislab.explain.cam.resolve_layer` (which models may not import): the backbone's
    ``cam_layer``, else its deepest ``feature_modules`` entry, else its last ``Conv2d``.
    """
    name = getattr(backbone, "cam_layer", None)
    if not name and getattr(backbone, "feature_modules", ()):
        name = backbone.feature_modules[-1]
    if not name:
        convs = [n for n, m in backbone.named_modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ModelError(f"{type(backbone).__name__}: expected a Conv2d or a `cam_layer` in the backbone, got neither")
        name = convs[-1]
    return f"{prefix}.{name}"

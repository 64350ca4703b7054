"""Building blocks of the segmentation networks: conv blocks, attention, upsampling, encoders.

* :class:`ConvBlock`: two 3x3 conv-BN-ReLU (U-Net), with a residual shortcut (ResUNet) or dense
  connections (Dense U-Net), optionally followed by squeeze-and-excitation or CBAM;
* :class:`AttentionGate`: the additive gate of Attention U-Net (Oktay et al., 2018);
* :class:`Upsample`: x2 upsampling by ``bilinear`` interpolation + 1x1 conv, ``transposed`` conv,
  ``pixelshuffle`` (sub-pixel conv) or ``unpool`` (max-unpooling with the encoder's pooling indices);
* :class:`Encoder`: any registry classifier as an encoder, through its ``feature_pyramid``;
  its levels' channels and strides are measured once with a dry forward pass.

Example:
    >>> x = torch.randn(2, 8, 9, 7)
    >>> ConvBlock(8, 16, "residual", "cbam")(x).shape, ConvBlock(8, 16, "dense")(x).shape
    (torch.Size([2, 16, 9, 7]), torch.Size([2, 16, 9, 7]))
    >>> Upsample(16, 8, "pixelshuffle")(torch.randn(2, 16, 4, 3)).shape
    torch.Size([2, 8, 8, 6])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ModelError
from vislab.models.layers import CBAM, SqueezeExcite, conv_bn_act

UPSAMPLE = ("bilinear", "transposed", "pixelshuffle", "unpool")
BLOCKS = ("plain", "residual", "dense")
ATTENTION = ("none", "se", "cbam")


def _check(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ModelError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")


class ConvBlock(nn.Module):
    """Two 3x3 conv-BN-ReLU layers ``(B, cin, H, W) -> (B, cout, H, W)``, in one of three wirings.

    Args:
        cin, cout: channels in and out.
        kind: ``plain`` (U-Net), ``residual`` (+ 1x1 projected shortcut), ``dense`` (each layer sees
            the concatenation of all earlier ones; a 1x1 transition to ``cout``).
        attention: ``none``, ``se`` (squeeze-and-excitation) or ``cbam`` after the block.
    """

    def __init__(self, cin: int, cout: int, kind: str = "plain", attention: str = "none"):
        super().__init__()
        _check("block", kind, BLOCKS)
        _check("attention", attention, ATTENTION)
        self.kind = kind
        if kind == "dense":
            g = max(cout // 2, 4)  # growth rate
            self.c1 = conv_bn_act(cin, g)
            self.c2 = conv_bn_act(cin + g, g)
            self.proj = nn.Sequential(nn.Conv2d(cin + 2 * g, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        else:
            self.c1 = conv_bn_act(cin, cout)
            self.c2 = conv_bn_act(cout, cout)
            if kind == "residual":
                self.c2[2] = nn.Identity()  # ReLU after the sum
                self.short = nn.Identity() if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.attn = {"none": nn.Identity, "se": lambda: SqueezeExcite(cout, 8), "cbam": lambda: CBAM(cout, 8)}[attention]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "dense":
            a = self.c1(x)
            b = self.c2(torch.cat([x, a], 1))
            y = self.proj(torch.cat([x, a, b], 1))
        elif self.kind == "residual":
            y = F.relu(self.c2(self.c1(x)) + self.short(x))
        else:
            y = self.c2(self.c1(x))
        return self.attn(y)


class AttentionGate(nn.Module):
    """Additive attention gate: skip features ``x`` weighted by ``sigmoid(psi(relu(Wx x + Wg g)))``.

    ``g`` ``(B, Cg, h, w)`` is the coarser gating signal (resized to ``x``'s size), ``x`` ``(B, Cx, H, W)``.
    """

    def __init__(self, cg: int, cx: int, inter: int | None = None):
        super().__init__()
        inter = inter or max(cx // 2, 1)
        self.wg = nn.Sequential(nn.Conv2d(cg, inter, 1, bias=False), nn.BatchNorm2d(inter))
        self.wx = nn.Sequential(nn.Conv2d(cx, inter, 1, bias=False), nn.BatchNorm2d(inter))
        self.psi = nn.Sequential(nn.Conv2d(inter, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        g = F.interpolate(self.wg(g), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * self.psi(F.relu(g + self.wx(x)))


class Upsample(nn.Module):
    """x2 upsampling ``(B, cin, h, w) -> (B, cout, 2h, 2w)``; ``unpool`` keeps ``cin`` and needs indices."""

    def __init__(self, cin: int, cout: int, mode: str = "bilinear"):
        super().__init__()
        _check("upsample", mode, UPSAMPLE)
        self.mode = mode
        if mode == "bilinear":
            self.op = nn.Conv2d(cin, cout, 1)
        elif mode == "transposed":
            self.op = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        elif mode == "pixelshuffle":
            self.op = nn.Sequential(nn.Conv2d(cin, 4 * cout, 3, padding=1), nn.PixelShuffle(2))
        else:
            self.op = nn.MaxUnpool2d(2, 2)
            self.proj = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, size: tuple[int, int] | torch.Size | None = None, indices: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "bilinear":
            y = self.op(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False) if size is None else
                        F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        elif self.mode == "unpool":
            if indices is None:
                raise ModelError("upsample 'unpool': expected the pooling indices of the encoder, got none (use a model with its own encoder)")
            y = self.op(self.proj(x), indices, output_size=size)
        else:
            y = self.op(x)
        if size is not None and tuple(y.shape[-2:]) != tuple(size):  # odd sizes: the skip decides
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return y


class Encoder(nn.Module):
    """A registry classifier's :meth:`feature_pyramid` as a multi-scale encoder.

    Attributes:
        channels: channels of each level, shallow to deep.
        strides: input-to-level size ratio of each level (measured on a 64x64 dry run).
    """

    def __init__(self, name: str, in_chans: int = 3, stem: str = "cifar"):
        super().__init__()
        from vislab.models.registry import MODELS

        if name.startswith("timm:"):
            net = MODELS.build(name, num_classes=0, in_chans=in_chans)
        else:
            entry = MODELS.get(name)
            if entry.task != "classify":
                raise ModelError(f"encoder: expected a classification model of the registry, got '{name}' (task {entry.task!r})")
            net = MODELS.build(name, num_classes=0, in_chans=in_chans, stem=stem)
        if not hasattr(net, "feature_pyramid"):
            raise ModelError(f"encoder: expected a model with feature_pyramid(), got '{name}'")
        self.net = net
        was = net.training
        net.eval()
        with torch.no_grad():
            feats = net.feature_pyramid(torch.zeros(1, in_chans, 64, 64))
        net.train(was)
        self.channels = [int(f.shape[1]) for f in feats]
        self.strides = [max(1, round(64 / f.shape[-1])) for f in feats]
        self.name = name

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # (B, C, H, W) -> [(B, C_i, H_i, W_i)]
        return self.net.feature_pyramid(x)


def separable_conv(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    """Atrous separable convolution: depthwise 3x3 (dilated) conv-BN-ReLU, then pointwise conv-BN-ReLU."""
    return nn.Sequential(conv_bn_act(cin, cin, 3, dilation=dilation, groups=cin), conv_bn_act(cin, cout, 1))


class SegmentationModel(nn.Module):
    """Common interface: ``forward(x (B, C, H, W)) -> logits (B, K, H, W)``; ``cam_layer`` for CAMs."""

    num_classes: int
    cam_layer: str | None = None

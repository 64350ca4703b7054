"""U-Net (Ronneberger et al., 2015) and its family: residual, dense, attention-gated, SE/CBAM, SegNet.

One :class:`UNet` class covers the family. It has either its own encoder (``encoder=""``: the
original's double-conv stages with 2x2 max pooling, ``width * 2**i`` channels) or any registry
classifier as the encoder (``encoder="resnet18"``: skips from its ``feature_pyramid``). The decoder
upsamples x2 per level (``upsample``: bilinear, transposed, pixelshuffle, or SegNet's max-unpooling
with the encoder's pooling indices), concatenates the skip (gated in Attention U-Net), and applies a
:class:`~vislab.models.segment.common.ConvBlock`. Convolutions are padded ("same"), unlike the paper's
valid convolutions, so the output has the input's size and no tiling arithmetic is needed.

Example:
    >>> m = unet(num_classes=3, width=8, depth=3)
    >>> m(torch.randn(2, 3, 17, 11)).shape
    torch.Size([2, 3, 17, 11])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ModelError
from vislab.models.registry import register_model
from vislab.models.segment.common import AttentionGate, ConvBlock, Encoder, SegmentationModel, Upsample


class UNet(SegmentationModel):
    """U-Net family network ``(B, C, H, W) -> (B, K, H, W)``.

    Args:
        num_classes: K.
        in_chans: C.
        width: channels of the first stage (own encoder) / of the shallowest decoder stage.
        depth: pooling steps of the own encoder.
        block: ``plain | residual | dense`` conv blocks.
        attention: ``none | se | cbam`` after each block.
        gate: attention gates on the skips (Attention U-Net).
        upsample: ``bilinear | transposed | pixelshuffle | unpool``.
        skips: concatenate encoder features (False: SegNet-style decoder).
        encoder: a registry classifier name ("" = the own encoder).
        stem: the encoder's stem (``cifar`` for small images).
        drop_rate: dropout before the classifier.
    """

    def __init__(self, num_classes: int = 2, in_chans: int = 3, width: int = 32, depth: int = 4, block: str = "plain",
                 attention: str = "none", gate: bool = False, upsample: str = "bilinear", skips: bool = True,
                 encoder: str = "", stem: str = "cifar", drop_rate: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.upsample_mode = upsample
        self.skips = skips
        if encoder:
            if upsample == "unpool":
                raise ModelError(f"upsample 'unpool': expected the model's own encoder (it keeps pooling indices), got encoder '{encoder}'")
            self.encoder: Encoder | None = Encoder(encoder, in_chans, stem)
            enc_ch, strides = self.encoder.channels, self.encoder.strides
        else:
            self.encoder = None
            enc_ch = [width * 2**i for i in range(depth + 1)]
            strides = [2**i for i in range(depth + 1)]
            self.down = nn.ModuleList([ConvBlock(in_chans if i == 0 else enc_ch[i - 1], enc_ch[i], block, attention) for i in range(depth + 1)])
            self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.enc_ch, self.strides = enc_ch, strides
        n = len(enc_ch)
        dec_ch = [max(width, enc_ch[i] // (1 if self.encoder is None else 2)) for i in range(n)]
        dec_ch[-1] = enc_ch[-1]
        self.ups, self.gates, self.blocks = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i in range(n - 2, -1, -1):  # deep -> shallow
            cin = dec_ch[i + 1]
            up_out = enc_ch[i] if skips else dec_ch[i]
            self.ups.append(Upsample(cin, up_out, upsample))
            self.gates.append(AttentionGate(cin, enc_ch[i]) if gate and skips else nn.Identity())
            self.blocks.append(ConvBlock(up_out + (enc_ch[i] if skips else 0), dec_ch[i], block, attention))
        self.drop = nn.Dropout2d(drop_rate)
        self.head = nn.Conv2d(dec_ch[0], num_classes, 1)
        self.cam_layer = f"blocks.{len(self.blocks) - 1}" if len(self.blocks) else None

    def _encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        if self.encoder is not None:
            return self.encoder(x), [None] * len(self.enc_ch)
        feats, idxs = [], []
        for i, blk in enumerate(self.down):
            if i:
                x, ind = self.pool(feats[-1])
                idxs.append(ind)
            feats.append(blk(x))
        return feats, [*idxs, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K, H, W)
        size = x.shape[-2:]
        feats, idxs = self._encode(x)
        y = feats[-1]
        for j, (up, gate, blk) in enumerate(zip(self.ups, self.gates, self.blocks, strict=True)):
            i = len(feats) - 2 - j
            skip = feats[i]
            u = up(y, skip.shape[-2:], idxs[i])
            if self.skips:
                s = gate(y, skip) if isinstance(gate, AttentionGate) else skip
                u = torch.cat([u, s], 1)
            y = blk(u)
        y = self.head(self.drop(y))
        if y.shape[-2:] != size:  # encoders whose shallowest level is below the input resolution
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return y


def _args(kw: dict) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


@register_model(task="segment", family="unet")
def unet(num_classes: int = 2, in_chans: int = 3, width: int = 32, depth: int = 4, block: str = "plain", attention: str = "none",
         gate: bool = False, upsample: str = "bilinear", encoder: str = "", stem: str = "cifar", drop_rate: float = 0.0) -> UNet:
    """U-Net (Ronneberger et al., 2015): the original encoder-decoder with concatenated skips; options for every variant."""
    return UNet(num_classes, in_chans, width, depth, block, attention, gate, upsample, True, encoder, stem, drop_rate)


@register_model(task="segment", family="unet")
def unet_residual(num_classes: int = 2, in_chans: int = 3, width: int = 32, depth: int = 4, attention: str = "none",
                  upsample: str = "bilinear", encoder: str = "", stem: str = "cifar", drop_rate: float = 0.0) -> UNet:
    """Residual U-Net (ResUNet, Zhang et al., 2018): conv blocks with identity / projected shortcuts."""
    return UNet(num_classes, in_chans, width, depth, "residual", attention, False, upsample, True, encoder, stem, drop_rate)


@register_model(task="segment", family="unet")
def unet_dense(num_classes: int = 2, in_chans: int = 3, width: int = 32, depth: int = 4, attention: str = "none",
               upsample: str = "bilinear", encoder: str = "", stem: str = "cifar", drop_rate: float = 0.0) -> UNet:
    """Dense U-Net: densely connected conv blocks (each layer sees all earlier ones of its block)."""
    return UNet(num_classes, in_chans, width, depth, "dense", attention, False, upsample, True, encoder, stem, drop_rate)


@register_model(task="segment", family="unet")
def attention_unet(num_classes: int = 2, in_chans: int = 3, width: int = 32, depth: int = 4, attention: str = "none",
                   upsample: str = "bilinear", encoder: str = "", stem: str = "cifar", drop_rate: float = 0.0) -> UNet:
    """Attention U-Net (Oktay et al., 2018): additive attention gates on the skip connections."""
    return UNet(num_classes, in_chans, width, depth, "plain", attention, True, upsample, True, encoder, stem, drop_rate)


@register_model(task="segment", family="segnet")
def segnet(num_classes: int = 2, in_chans: int = 3, width: int = 32, depth: int = 4, stem: str = "cifar", drop_rate: float = 0.0) -> UNet:
    """SegNet-style (Badrinarayanan et al., 2017): no skip concatenation; the decoder max-unpools with the encoder's indices."""
    return UNet(num_classes, in_chans, width, depth, "plain", "none", False, "unpool", False, "", stem, drop_rate)
